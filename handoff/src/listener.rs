//! Listening sockets (TCP or Unix) and the connections they accept.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::endpoint::Endpoint;

/// A listening socket obtained from [`Handoff::listen`](crate::Handoff::listen).
///
/// Dropping it stops this process from accepting on it; the socket itself stays
/// open as long as another process (a successor) holds it.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream listener.
    Unix(UnixListener),
}

impl Listener {
    /// Accepts the next connection. TCP connections get `TCP_NODELAY`.
    ///
    /// Errors are those of `accept(2)`; most (`EMFILE`, `ECONNABORTED`) are
    /// transient and the caller should keep accepting after a short pause.
    pub async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                // Responses are written whole; Nagle would only add latency.
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Stream::Unix(stream))
            }
        }
    }

    /// The address this listener is bound to (for an ephemeral port: the real port).
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Endpoint::Tcp),
            Listener::Unix(listener) => {
                let addr = listener.local_addr()?;
                addr.as_pathname()
                    .map(|path| Endpoint::Unix(path.to_path_buf()))
                    .ok_or_else(|| io::Error::other("unix listener has no filesystem path"))
            }
        }
    }

    /// Wraps a listening socket; must be called inside a Tokio runtime.
    pub(crate) fn from_socket(socket: Socket, endpoint: &Endpoint) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let fd = OwnedFd::from(socket);
        match endpoint {
            Endpoint::Tcp(_) => TcpListener::from_std(fd.into()).map(Listener::Tcp),
            Endpoint::Unix(_) => UnixListener::from_std(fd.into()).map(Listener::Unix),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(listener) => listener.as_fd(),
            Listener::Unix(listener) => listener.as_fd(),
        }
    }
}

/// Creates a fresh listening socket (close-on-exec, `SO_REUSEADDR` for TCP).
///
/// For a Unix path, a stale socket file left by a dead process is removed first;
/// a path that is not a socket, or a socket somebody still listens on, is left
/// alone and binding fails with `EADDRINUSE`.
pub(crate) fn bind(endpoint: &Endpoint, backlog: i32) -> io::Result<Socket> {
    let (domain, address) = match endpoint {
        Endpoint::Tcp(addr) => (Domain::for_address(*addr), SockAddr::from(*addr)),
        Endpoint::Unix(path) => {
            remove_stale_unix_socket(path)?;
            (Domain::UNIX, SockAddr::unix(path)?)
        }
    };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    if matches!(endpoint, Endpoint::Tcp(_)) {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&address)?;
    socket.listen(backlog)?;
    Ok(socket)
}

fn remove_stale_unix_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Ok(());
    }
    match StdUnixStream::connect(path) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale unix socket");
            std::fs::remove_file(path)
        }
        _ => Ok(()),
    }
}

/// A connection accepted by a [`Listener`]: TCP or Unix, usable as Tokio I/O.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream connection.
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }
}

/// The endpoint a listening socket is bound to, if it is one handoff can serve:
/// a TCP socket or a Unix socket with a filesystem path.
pub(crate) fn socket_endpoint(socket: &Socket) -> io::Result<Option<Endpoint>> {
    let addr = socket.local_addr()?;
    if let Some(addr) = addr.as_socket() {
        return Ok(Some(Endpoint::Tcp(addr)));
    }
    Ok(addr.as_pathname().map(|p| Endpoint::Unix(p.to_path_buf())))
}
