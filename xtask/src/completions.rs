//! Shell completions of each tool, for the directories where bash-completion,
//! zsh and fish look for the completions of installed packages: the bash file
//! is named after the command (loaded on demand), the zsh file `_command`, the
//! fish file `command.fish`.

use std::path::PathBuf;

use clap_complete::Shell;

use crate::Output;
use crate::tools::Tool;

pub fn files(tool: &Tool) -> Vec<Output> {
    let name = tool.name;
    [
        (Shell::Bash, format!("completions/bash/{name}")),
        (Shell::Zsh, format!("completions/zsh/_{name}")),
        (Shell::Fish, format!("completions/fish/{name}.fish")),
    ]
    .into_iter()
    .map(|(shell, path)| {
        let mut cmd = (tool.command)();
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut bytes);
        Output {
            path: PathBuf::from(path),
            bytes,
        }
    })
    .collect()
}
