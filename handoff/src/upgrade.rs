//! The old process's side of an upgrade: start the successor, wait for it to
//! be ready, commit, wait until it announced itself, or kill it and keep serving.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::UpgradeError;
use crate::events::Successor;
use crate::protocol::Message;
use crate::spawn::PreparedSpawn;
use crate::state::Shared;

/// How long a successor that closed the readiness channel gets to exit before
/// it is killed, so its exit status can be reported.
const EXIT_AFTER_CLOSE: Duration = Duration::from_secs(2);

/// Runs one upgrade attempt. The caller has moved the phase to "upgrading".
///
/// On error the successor has been killed and reaped (or, if the returned
/// future is dropped, killed and left to Tokio to reap), and this process is
/// again the main process.
pub(crate) async fn run(shared: &Shared) -> Result<Successor, UpgradeError> {
    let listeners = shared.successor_fds().map_err(UpgradeError::PassFds)?;
    let (ours, theirs) = StdUnixStream::pair().map_err(UpgradeError::PassFds)?;
    let executable = &shared.config.executable;
    let prepared =
        PreparedSpawn::new(executable, listeners, theirs.into()).map_err(UpgradeError::PassFds)?;
    // fork() copies this process's page tables: keep it off the async workers
    // that are serving requests meanwhile.
    let spawned = tokio::task::spawn_blocking(move || prepared.spawn())
        .await
        .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)));
    let child = spawned.map_err(|source| UpgradeError::Spawn {
        path: executable.path.clone(),
        source,
    })?;
    let mut child = KillOnDrop(Some(child));
    let pid = child.get().id().unwrap_or_default();
    let timeout = shared.config.ready_timeout;
    tracing::info!(
        pid,
        program = %executable.path.display(),
        "upgrade: started the new process; waiting up to {timeout:?} for it to be ready"
    );

    let (mut lines, mut writer) = match channel(ours) {
        Ok(halves) => halves,
        Err(source) => return Err(abort(child, UpgradeError::Channel { pid, source }).await),
    };
    let mut waiter = Waiter {
        pid,
        timeout,
        lines: &mut lines,
    };

    // 1. Until the successor is ready, shutdown aborts the upgrade.
    let deadline = Instant::now() + timeout;
    match waiter
        .next(child.get(), deadline, Some(&shared.shutdown))
        .await
    {
        Ok(Message::Ready) => {}
        Ok(other) => {
            let error = unexpected(pid, other);
            return Err(abort(child, error).await);
        }
        Err(error) => return Err(abort(child, error).await),
    }

    // 2. Commit: from here the successor may tell systemd it is the main process.
    if let Err(source) = writer.write_all(Message::Commit.encode().as_bytes()).await {
        return Err(abort(child, UpgradeError::Channel { pid, source }).await);
    }
    let deadline = Instant::now() + timeout;
    let error = match waiter.next(child.get(), deadline, None).await {
        Ok(Message::Notified) => {
            child.release();
            return Ok(Successor { pid });
        }
        Ok(Message::Failed(reason)) => UpgradeError::ChildFailed { pid, reason },
        Ok(other) => unexpected(pid, other),
        Err(error) => error,
    };
    // Take the main-process role back before the successor dies, so systemd
    // never sees its main process exit.
    shared.reclaim_main_process();
    Err(abort(child, error).await)
}

fn channel(
    ours: StdUnixStream,
) -> std::io::Result<(Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf)> {
    ours.set_nonblocking(true)?;
    let (read, write) = tokio::net::UnixStream::from_std(ours)?.into_split();
    Ok((BufReader::new(read).lines(), write))
}

fn unexpected(pid: u32, message: Message) -> UpgradeError {
    UpgradeError::ChildFailed {
        pid,
        reason: format!(
            "sent {message:?} out of turn (is it running a different handoff version?)"
        ),
    }
}

/// Kills and reaps the successor, then returns `error`.
async fn abort(mut child: KillOnDrop, error: UpgradeError) -> UpgradeError {
    if let Some(mut process) = child.0.take() {
        // Fails only if it was reaped already (it exited), which is fine.
        let _ = process.kill().await;
    }
    error
}

/// Waits for the successor's next message, its exit, a deadline or shutdown.
struct Waiter<'a> {
    pid: u32,
    timeout: Duration,
    lines: &'a mut Lines<BufReader<OwnedReadHalf>>,
}

enum Event {
    Line(std::io::Result<Option<String>>),
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Cancelled,
}

impl Waiter<'_> {
    async fn next(
        &mut self,
        child: &mut Child,
        deadline: Instant,
        shutdown: Option<&CancellationToken>,
    ) -> Result<Message, UpgradeError> {
        let pid = self.pid;
        let cancelled = async {
            match shutdown {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            biased;
            () = cancelled => Event::Cancelled,
            line = self.lines.next_line() => Event::Line(line),
            status = child.wait() => Event::Exited(status),
            () = tokio::time::sleep_until(deadline) => Event::TimedOut,
        };
        match event {
            Event::Line(Ok(Some(line))) => {
                Message::decode(&line).ok_or_else(|| UpgradeError::ChildFailed {
                    pid,
                    reason: format!("sent an unknown message {line:?}"),
                })
            }
            Event::Line(Ok(None)) => {
                // It closed the channel: most likely it is exiting. Report how.
                match tokio::time::timeout(EXIT_AFTER_CLOSE, child.wait()).await {
                    Ok(Ok(status)) => Err(UpgradeError::ChildExited { pid, status }),
                    _ => Err(UpgradeError::Channel {
                        pid,
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "it closed the channel without reporting ready",
                        ),
                    }),
                }
            }
            Event::Line(Err(source)) | Event::Exited(Err(source)) => {
                Err(UpgradeError::Channel { pid, source })
            }
            Event::Exited(Ok(status)) => Err(UpgradeError::ChildExited { pid, status }),
            Event::TimedOut => Err(UpgradeError::Timeout {
                pid,
                timeout: self.timeout,
            }),
            Event::Cancelled => Err(UpgradeError::Cancelled { pid }),
        }
    }
}

/// Owns the successor until it has taken over; kills it if the upgrade is
/// abandoned, including when the upgrade future is dropped half-way.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn get(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("the child is only taken by release or abort, which consume the guard")
    }

    /// The successor took over: let it run on after this process exits.
    fn release(mut self) {
        // Dropping a tokio Child neither kills nor blocks; Tokio reaps it if it
        // exits while this process still runs.
        drop(self.0.take());
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.start_kill();
        }
    }
}
