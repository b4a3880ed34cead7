//! What a tool does to its own process before it reads a key or a secret.

use crate::error::{Error, Result};

/// No core dump, ever: a dump of a tool holds the master key and the
/// secrets it opened. `PR_SET_DUMPABLE` 0 also keeps other processes of the
/// same user from attaching with ptrace or reading `/proc/<pid>/mem`, and
/// makes `/proc/<pid>` owned by root; `RLIMIT_CORE` 0 (soft and hard) covers
/// a core pattern that would ignore the dumpable flag.
pub fn no_core_dumps() -> Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    nix::sys::prctl::set_dumpable(false).map_err(|e| {
        Error::storage(format!("cannot turn off core dumps (PR_SET_DUMPABLE): {e}"))
    })?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| Error::storage(format!("cannot turn off core dumps (RLIMIT_CORE): {e}")))?;
    Ok(())
}
