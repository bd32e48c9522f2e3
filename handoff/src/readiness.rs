//! Becoming ready: as the first process (pidfile, `READY=1`) or as a successor
//! taking over from an old process (the handshake in [`protocol`](crate::protocol)).

use std::io;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::error::ReadyError;
use crate::inherit::Predecessor;
use crate::protocol::Message;
use crate::{notify, pidfile};

/// First start: writes the pidfile, then sends `READY=1`.
pub(crate) fn first_start(pidfile: Option<&Path>) -> Result<(), ReadyError> {
    write_pidfile(pidfile)?;
    notify::ready().map_err(ReadyError::Notify)
}

/// Successor: reports ready, waits for the old process to commit, then writes
/// the pidfile and sends `MAINPID=<own pid>` + `READY=1` before confirming, so
/// the old process exits only after systemd knows the new main process.
pub(crate) async fn take_over(
    predecessor: Predecessor,
    pidfile: Option<&Path>,
) -> Result<(), ReadyError> {
    let pid = predecessor.pid;
    let channel_error = |source| ReadyError::Channel {
        predecessor: pid,
        source,
    };
    predecessor
        .channel
        .set_nonblocking(true)
        .map_err(channel_error)?;
    let (read, mut write) = tokio::net::UnixStream::from_std(predecessor.channel)
        .map_err(channel_error)?
        .into_split();

    send(&mut write, Message::Ready)
        .await
        .map_err(channel_error)?;
    let mut lines = BufReader::new(read).lines();
    match lines.next_line().await {
        Ok(Some(line)) if Message::decode(&line) == Some(Message::Commit) => {}
        Ok(_) => return Err(ReadyError::Abandoned { predecessor: pid }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            return Err(ReadyError::Abandoned { predecessor: pid });
        }
        Err(source) => return Err(channel_error(source)),
    }

    let announced = write_pidfile(pidfile)
        .and_then(|()| notify::main_process_is(std::process::id()).map_err(ReadyError::Notify));
    match announced {
        Ok(()) => {
            if let Err(e) = send(&mut write, Message::Notified).await {
                // We are the main process now; the old one is gone or about to go.
                tracing::warn!("could not confirm the takeover to pid {pid}: {e}");
            }
            Ok(())
        }
        Err(error) => {
            // Best effort: the old process also learns of it when we exit.
            let _ = send(&mut write, Message::Failed(error.to_string())).await;
            Err(error)
        }
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, message: Message) -> io::Result<()> {
    write.write_all(message.encode().as_bytes()).await
}

fn write_pidfile(path: Option<&Path>) -> Result<(), ReadyError> {
    let Some(path) = path else {
        return Ok(());
    };
    pidfile::write(path, std::process::id()).map_err(|source| ReadyError::Pidfile {
        path: path.to_owned(),
        source,
    })
}
