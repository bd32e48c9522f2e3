//! Taking over the sockets this process was started with: from an old process
//! doing a handoff (see [`protocol`](crate::protocol)) or from systemd socket
//! activation (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`).

use std::env;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::libc;
use socket2::{Socket, Type};

use crate::endpoint::Endpoint;
use crate::error::StartError;
use crate::listener::socket_endpoint;
use crate::protocol::{ENV_LISTENERS, ENV_PARENT_PID, ENV_READY_FD, FIRST_FD};

/// Who passed the inherited sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// An old process handing over during an upgrade.
    Predecessor,
    /// systemd socket activation.
    Systemd,
}

impl Source {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Source::Predecessor => "the previous process",
            Source::Systemd => "systemd (LISTEN_FDS)",
        }
    }
}

/// An inherited listening socket not yet claimed by the service.
#[derive(Debug)]
pub(crate) struct InheritedSocket {
    pub(crate) name: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) socket: Socket,
    pub(crate) source: Source,
}

/// The old process that started this one, reachable over the readiness channel.
#[derive(Debug)]
pub(crate) struct Predecessor {
    pub(crate) pid: u32,
    pub(crate) channel: UnixStream,
}

/// Everything this process inherited at start.
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    pub(crate) sockets: Vec<InheritedSocket>,
    pub(crate) predecessor: Option<Predecessor>,
}

/// Reads the environment and takes ownership of the fds it names.
///
/// Must run at most once per process (the caller guards this): the fds become
/// owned values and a second call would own them twice.
pub(crate) fn from_environment() -> Result<Inherited, StartError> {
    if let Some(inherited) = from_predecessor()? {
        return Ok(inherited);
    }
    from_systemd()
}

fn from_predecessor() -> Result<Option<Inherited>, StartError> {
    let Ok(parent) = env::var(ENV_PARENT_PID) else {
        return Ok(None);
    };
    let parent: u32 = parent.parse().map_err(|_| StartError::Environment {
        variable: ENV_PARENT_PID,
        problem: format!("`{parent}` is not a pid"),
    })?;
    let actual_parent = nix::unistd::getppid().as_raw().unsigned_abs();
    if parent != actual_parent {
        tracing::debug!(
            parent,
            actual_parent,
            "ignoring {ENV_PARENT_PID}: it names another process, not this one's parent"
        );
        return Ok(None);
    }
    let names_json = env::var(ENV_LISTENERS).map_err(|_| StartError::Environment {
        variable: ENV_LISTENERS,
        problem: format!("missing although {ENV_PARENT_PID} is set"),
    })?;
    let names: Vec<String> =
        serde_json::from_str(&names_json).map_err(|e| StartError::Environment {
            variable: ENV_LISTENERS,
            problem: format!("not a JSON array of names: {e}"),
        })?;
    let ready_fd: RawFd = env::var(ENV_READY_FD)
        .ok()
        .and_then(|fd| fd.parse().ok())
        .ok_or(StartError::Environment {
            variable: ENV_READY_FD,
            problem: "missing or not an fd number".to_owned(),
        })?;
    let expected_ready_fd = FIRST_FD + names.len() as RawFd;
    if ready_fd != expected_ready_fd {
        return Err(StartError::Environment {
            variable: ENV_READY_FD,
            problem: format!("is {ready_fd}, expected {expected_ready_fd}"),
        });
    }

    let sockets = adopt_sockets(names, Source::Predecessor)?;
    let channel = UnixStream::from(adopt_fd(ready_fd, ENV_READY_FD)?);
    Ok(Some(Inherited {
        sockets,
        predecessor: Some(Predecessor {
            pid: parent,
            channel,
        }),
    }))
}

fn from_systemd() -> Result<Inherited, StartError> {
    // Checks LISTEN_PID against our pid and marks the fds close-on-exec.
    let fds = sd_notify::listen_fds().map_err(|e| StartError::Environment {
        variable: "LISTEN_FDS",
        problem: e.to_string(),
    })?;
    let count = fds.len();
    if count == 0 {
        // Also when LISTEN_PID names another process: then LISTEN_FDNAMES is
        // not ours either (sd-notify's listen_fds_with_names rejects that case).
        return Ok(Inherited::default());
    }
    let names: Vec<String> = match env::var("LISTEN_FDNAMES") {
        Ok(names) => names.split(':').map(str::to_owned).collect(),
        Err(_) => vec!["unknown".to_owned(); count],
    };
    if names.len() != count {
        return Err(StartError::Environment {
            variable: "LISTEN_FDNAMES",
            problem: format!("names {} sockets but LISTEN_FDS is {count}", names.len()),
        });
    }
    Ok(Inherited {
        sockets: adopt_sockets(names, Source::Systemd)?,
        predecessor: None,
    })
}

/// Adopts fds `3..3+names.len()`; fds that are not stream listeners are closed
/// with a warning rather than failing the start.
fn adopt_sockets(names: Vec<String>, source: Source) -> Result<Vec<InheritedSocket>, StartError> {
    let mut sockets = Vec::with_capacity(names.len());
    for (index, name) in names.into_iter().enumerate() {
        let fd = adopt_fd(FIRST_FD + index as RawFd, ENV_LISTENERS)?;
        let socket = Socket::from(fd);
        match classify(&socket) {
            Ok(Some(endpoint)) => {
                tracing::debug!(%endpoint, name, "inherited listener from {}", source.describe());
                sockets.push(InheritedSocket {
                    name,
                    endpoint,
                    socket,
                    source,
                });
            }
            Ok(None) => tracing::warn!(
                fd = FIRST_FD + index as RawFd,
                name,
                "closing inherited fd from {}: not a TCP or Unix-path stream listener",
                source.describe()
            ),
            Err(e) => tracing::warn!(
                fd = FIRST_FD + index as RawFd,
                name,
                "closing inherited fd from {}: {e}",
                source.describe()
            ),
        }
    }
    Ok(sockets)
}

fn classify(socket: &Socket) -> io::Result<Option<Endpoint>> {
    if socket.r#type()? != Type::STREAM || !socket.is_listener()? {
        return Ok(None);
    }
    socket_endpoint(socket)
}

/// Takes ownership of an fd passed to this process and marks it close-on-exec.
fn adopt_fd(fd: RawFd, named_by: &'static str) -> Result<OwnedFd, StartError> {
    // SAFETY: F_GETFD reads the flags of an fd number and has no other effect;
    // on a closed fd it fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(StartError::InheritedFd {
            fd,
            named_by,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the fd is open, and the handoff protocol / systemd hand it to this
    // process exclusively. `Handoff::start` runs once per process, so nothing
    // else in the process has adopted this fd number.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let socket = Socket::from(owned);
    socket
        .set_cloexec(true)
        .map_err(|source| StartError::InheritedFd {
            fd,
            named_by,
            source,
        })?;
    Ok(OwnedFd::from(socket))
}
