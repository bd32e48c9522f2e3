//! Starting a successor with the listeners at fds `3, 4, …` (see [`protocol`](crate::protocol)).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::sys::signal::SigSet;
use tokio::process::{Child, Command};

use crate::executable::Executable;
use crate::protocol::{ENV_LISTENERS, ENV_PARENT_PID, ENV_READY_FD, FIRST_FD, SYSTEMD_LISTEN_VARS};

/// A successor command whose fds stay open in this process until it is spawned.
#[derive(Debug)]
pub(crate) struct PreparedSpawn {
    command: Command,
    /// Close-on-exec copies above the target range; the child `dup2`s them into
    /// place, and this process closes them once the child is started.
    _sources: Vec<OwnedFd>,
}

impl PreparedSpawn {
    /// Builds the command: same program path, arguments and working directory,
    /// the current environment plus the handoff variables (systemd's
    /// `LISTEN_*` removed), `listeners` at fds from 3 in order and `channel`
    /// right after them.
    pub(crate) fn new(
        executable: &Executable,
        listeners: Vec<(String, OwnedFd)>,
        channel: OwnedFd,
    ) -> io::Result<Self> {
        let (names, mut fds): (Vec<String>, Vec<OwnedFd>) = listeners.into_iter().unzip();
        fds.push(channel);
        let count = RawFd::try_from(fds.len()).map_err(io::Error::other)?;
        let ready_fd = FIRST_FD + count - 1;

        // Above every target number, so no dup2 onto 3.. can clobber a source.
        let lowest_source = FIRST_FD + count;
        let sources = fds
            .iter()
            .map(|fd| {
                let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(lowest_source))?;
                // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
                Ok(unsafe { OwnedFd::from_raw_fd(raw) })
            })
            .collect::<Result<Vec<_>, nix::Error>>()
            .map_err(io::Error::from)?;
        let moves: Vec<(RawFd, RawFd)> = sources
            .iter()
            .zip(FIRST_FD..)
            .map(|(fd, target)| (fd.as_raw_fd(), target))
            .collect();

        let mut command = Command::new(&executable.path);
        command
            .args(&executable.args)
            .current_dir(&executable.cwd)
            .env(
                ENV_LISTENERS,
                serde_json::to_string(&names).map_err(io::Error::other)?,
            )
            .env(ENV_READY_FD, ready_fd.to_string())
            .env(ENV_PARENT_PID, std::process::id().to_string())
            .kill_on_drop(false);
        for variable in SYSTEMD_LISTEN_VARS {
            command.env_remove(variable);
        }
        // The successor starts with no blocked signals, whatever the mask of the
        // thread that spawns it: it must receive SIGTERM and the upgrade signal.
        let unblocked = SigSet::empty();
        // SAFETY: the closure runs between fork and exec and only calls
        // sigprocmask and dup2, which are async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::sigprocmask(libc::SIG_SETMASK, unblocked.as_ref(), std::ptr::null_mut())
                    == -1
                {
                    return Err(io::Error::last_os_error());
                }
                for &(source, target) in &moves {
                    // dup2 leaves the target without FD_CLOEXEC, so it survives exec.
                    if libc::dup2(source, target) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(PreparedSpawn {
            command,
            _sources: sources,
        })
    }

    /// Starts the successor; the source fds are closed in this process afterwards.
    ///
    /// An exec that fails with ETXTBSY is retried for up to a second: the binary was
    /// just written by another process (a package manager, a deploy script) and a
    /// process forked while its write descriptor was open still holds it for the few
    /// milliseconds until that process execs. Runs on a blocking thread.
    pub(crate) fn spawn(mut self) -> io::Result<Child> {
        let mut attempts = 0;
        loop {
            match self.command.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }
}
