//! The tools under test: one list, their names and where cargo built them.

/// The one list of the tools: a constant for each name, [`TOOLS`], and
/// [`built_tools!`](crate::built_tools) (their paths as cargo built them),
/// from the same lines.
macro_rules! tools {
    ($($konst:ident = $name:literal,)*) => {
        $(#[doc = concat!("`", $name, "`")] pub const $konst: &str = $name;)*

        /// Every tool of the set (each is a `[[bin]]` of tests/Cargo.toml).
        pub const TOOLS: [&str; [$($name),*].len()] = [$($konst),*];

        /// `[(name, path)]` of every tool, the paths being what cargo built
        /// for the integration test that expands this (`CARGO_BIN_EXE_<name>`,
        /// which cargo sets only there, not for this library). A tool missing
        /// from tests/Cargo.toml's `[[bin]]`s fails that build.
        #[macro_export]
        macro_rules! built_tools {
            () => {
                [$(($name, env!(concat!("CARGO_BIN_EXE_", $name)))),*]
            };
        }
    };
}

tools! {
    ENABLE = "mb-2fa-enable",
    VERIFY = "mb-2fa-verify",
    DISABLE = "mb-2fa-disable",
    BACKUP_CODES = "mb-2fa-backup-codes",
    LIST = "mb-2fa-list",
    UNLOCK = "mb-2fa-unlock",
    AUDIT = "mb-2fa-audit",
    POLICY = "mb-2fa-policy",
    STORE = "mb-2fa-store",
    IMPORT = "mb-2fa-import",
}

/// The tools that act on one account named by a top-level `--email` (audit's
/// `--email` is an optional filter; policy's is a subcommand's).
pub const EMAIL_TOOLS: [&str; 5] = [ENABLE, VERIFY, DISABLE, BACKUP_CODES, UNLOCK];
