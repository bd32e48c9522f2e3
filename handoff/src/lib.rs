//! Zero-downtime upgrades for socket servers.
//!
//! A service built on `handoff` hands its listening sockets to a new version of
//! itself without refusing or failing a request, and shuts down gracefully:
//!
//! - **Listeners** come from the old process during an upgrade, from systemd
//!   socket activation (`LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`), or are
//!   bound fresh; TCP and Unix, as many as the service wants
//!   ([`Handoff::listen`]).
//! - **Upgrades** are requested by SIGUSR2 (configurable) or
//!   [`Handoff::request_upgrade`]; the service receives the request
//!   ([`Handoff::upgrade_requested`]) and decides when to act
//!   ([`Handoff::upgrade`]). The new process runs the program *path* the service
//!   was started from (so a binary replaced by the package manager is the one
//!   that runs), with the same arguments and environment plus the listeners.
//!   It reports ready over an inherited socket pair; if it exits, fails or
//!   times out, it is killed and reaped and the old process keeps serving.
//! - **systemd**: `READY=1` on first start; a successor sends `MAINPID=<pid>`
//!   and `READY=1` before the old process exits; `STOPPING=1` on shutdown.
//!   Works with `Type=notify`, `NotifyAccess=all` and
//!   `ExecReload=/bin/kill -USR2 $MAINPID`.
//! - **Pidfile** (optional): always names the process currently serving.
//! - **Drain**: on shutdown (SIGTERM/SIGINT; a second one exits at once) or
//!   after an upgrade, [`Handoff::draining`] fires. [`http::HttpServer`] then
//!   drains a hyper service without the keep-alive race.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let handoff = handoff::Handoff::builder().pidfile("/run/hello.pid").start()?;
//!     let listener = handoff.listen(&"127.0.0.1:8080".parse()?)?;
//!     handoff.ready().await?;
//!
//!     // A web server upgrades as soon as it is asked to.
//!     let upgrader = handoff.clone();
//!     tokio::spawn(async move { upgrader.upgrade_when_requested().await });
//!
//!     let service = service_fn(|_req: Request<Incoming>| async {
//!         Ok::<_, Infallible>(Response::new("hello\n".to_owned()))
//!     });
//!     handoff::http::HttpServer::new(service)
//!         .serve(vec![listener], handoff.draining())
//!         .await;
//!     handoff.finish();
//!     Ok(())
//! }
//! ```
//!
//! The protocol between an old process and its successor is described in the
//! `protocol` module's source; both sides must run compatible `handoff` versions.

mod builder;
mod draining;
mod endpoint;
mod error;
mod events;
mod executable;
pub mod http;
mod inherit;
mod lifecycle;
mod listener;
mod notify;
mod pidfile;
mod protocol;
mod readiness;
mod registry;
mod signals;
mod spawn;
mod state;
mod upgrade;

pub use builder::HandoffBuilder;
pub use draining::Draining;
pub use endpoint::{Endpoint, EndpointParseError};
pub use error::{ListenError, ReadyError, StartError, UpgradeError};
pub use events::{DrainReason, Started, Successor, UpgradeRequest};
pub use lifecycle::Handoff;
pub use listener::{Listener, Stream};
pub use pidfile::{PidfileError, read_pidfile};
