//! Runs a host command with a deadline, capturing its output.
//!
//! The command leads its own process group; on timeout the whole group is killed
//! (nsenter forks the command it runs inside the container, and that child must go too).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::error::ContainerError;

/// How much of a failed command's output goes into an error message.
const ERROR_OUTPUT_CHARS: usize = 4000;

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line (for messages).
    pub command: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `self` when the command exited 0, otherwise [`ContainerError::CommandFailed`]
    /// carrying the end of its output.
    pub fn ok(self) -> Result<Output, ContainerError> {
        if self.success() {
            Ok(self)
        } else {
            Err(ContainerError::CommandFailed {
                command: self.command.clone(),
                status: self.status.to_string(),
                output: tail(
                    &format!("{}{}", self.stderr, self.stdout),
                    ERROR_OUTPUT_CHARS,
                ),
            })
        }
    }
}

/// The last `max` characters of `text` (on a char boundary).
pub(crate) fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let skip = count - max;
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

/// A printable form of `cmd` for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion, feeding it `stdin` (or /dev/null), and kills its process
/// group when it has not exited after `timeout`.
///
/// Errors: the program cannot be started ([`ContainerError::Io`]) or it timed out
/// ([`ContainerError::CommandTimeout`]). A non-zero exit is *not* an error here; use
/// [`Output::ok`].
pub(crate) fn run(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, ContainerError> {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(ContainerError::io(format!("cannot start `{command}`")))?;

    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A command that exits without reading its input closes the pipe: ignore EPIPE.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = child.stdout.take().map(read_to_end_in_thread);
    let stderr = child.stderr.take().map(read_to_end_in_thread);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(source) => {
                return Err(ContainerError::Io {
                    what: format!("cannot wait for `{command}`"),
                    source,
                });
            }
        }
    };
    // A daemonized grandchild may keep a pipe open after the command exited: wait for
    // the pipes only until the deadline (at least a moment), then go on without them.
    let pipe_deadline = deadline.max(Instant::now() + Duration::from_millis(500));
    let collect = |pipe: Option<mpsc::Receiver<Vec<u8>>>| {
        pipe.and_then(|rx| {
            rx.recv_timeout(pipe_deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
    };
    match status {
        Some(status) => Ok(Output {
            command,
            status,
            stdout: collect(stdout),
            stderr: collect(stderr),
        }),
        None => {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            let output = format!("{}{}", collect(stderr), collect(stdout));
            Err(ContainerError::CommandTimeout {
                command,
                timeout,
                output: tail(&output, ERROR_OUTPUT_CHARS),
            })
        }
    }
}

/// Reads `pipe` to its end on a thread; the bytes arrive on the returned channel.
fn read_to_end_in_thread<R: Read + Send + 'static>(mut pipe: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// SIGKILL to the process group led by `pid`.
pub(crate) fn kill_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(raw) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// SIGKILL to the process `pid`.
pub(crate) fn kill_pid(pid: u32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
}
