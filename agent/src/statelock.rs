//! One agent per state directory: `run` and `once` hold an exclusive `flock` on
//! `STATE_DIR/lock` (released automatically when the process exits or re-executes, since
//! the descriptor is close-on-exec).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

/// Creates `state_dir` if needed and takes the lock without waiting. The error names
/// the other agent's pid when known.
pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
    std::fs::create_dir_all(state_dir).map_err(|err| {
        anyhow::anyhow!(
            "cannot create the state directory `{}`: {err}; run the agent as root or fix state_dir",
            state_dir.display()
        )
    })?;
    let path = state_dir.join("lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot open `{}`: {err}; run the agent as root or fix state_dir",
                path.display()
            )
        })?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            anyhow::bail!(
                "another hoist-agent{} is using the state directory `{}`; stop it first (or use `hoist-agent status` to look at its state)",
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
                state_dir.display()
            );
        }
    };
    // Record our pid for the message above (best effort).
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = writeln!(*lock, "{}", std::process::id());
    Ok(StateLock { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_same_dir_is_refused_with_pid() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let first = acquire(&dir).unwrap();
        // flock locks belong to the open file description: a second open conflicts.
        let err = acquire(&dir).unwrap_err().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        acquire(&dir).unwrap();
    }
}
