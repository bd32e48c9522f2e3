//! The example service `hello` for tests, as real processes.
//!
//! - [`build_hello`] builds a variant (a version, or a deliberately [`Broken`]
//!   build) once per test binary and returns a cached copy of the executable.
//! - [`HelloCommand`] starts one in its own process group on a free 127.0.0.1
//!   port; the [`HelloProcess`] guard captures its log and kills the whole group
//!   (upgraded successors included) and reaps it on drop, also when the test
//!   panics.
//! - [`get`] and [`SlowRequest`] are small blocking HTTP clients; [`Load`]
//!   drives continuous traffic (keep-alive, new connection per request, slow
//!   requests) from its own thread and counts every failed request.
//! - [`wait_until`] polls a condition with a deadline: use it instead of sleeps.
//!
//! ```no_run
//! use std::time::Duration;
//! use hoist_testkit::hello::{build_hello, HelloCommand, Load, LoadConfig};
//!
//! let binary = build_hello("2.0.0", None);
//! let hello = HelloCommand::new(&binary).spawn();
//! let first = hello.wait_serving(Duration::from_secs(10));
//! let load = Load::start(hello.addr(), LoadConfig::default());
//! let successor = hello.upgrade(Duration::from_secs(30));
//! assert_ne!(successor, first.pid);
//! assert_eq!(load.stop().total_failed(), 0);
//! ```

mod build;
mod http;
mod load;
mod process;

pub use build::{Broken, build_hello, replace_like_dpkg};
pub use http::{HelloInfo, HttpResponse, SlowRequest, get};
pub use load::{Load, LoadConfig, LoadReport, RequestKind, Sample, Window, WorkerFailure};
pub use process::{HelloCommand, HelloProcess, free_port, pid_alive, wait_until};
