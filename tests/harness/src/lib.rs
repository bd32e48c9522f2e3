//! Test harness shared by the integration and end-to-end tests of every hoist crate.
//!
//! - [`s3server`]: real S3-compatible servers (moto, garage) started on a free
//!   127.0.0.1 port, killed by PID when dropped.
//! - [`sandbox`]: a Debian root (debootstrap, cached once per machine) in which the
//!   real `dpkg` installs packages without touching the host's package database.
//!
//! - [`hello`]: builds the example service `hello` with a chosen version (or a
//!   deliberately broken variant) and runs it as a real process.
//!
//! - [`container`]: real Debian 12 and 13 hosts booted by systemd-nspawn (systemd +
//!   cloud-init) over a throwaway overlay of a cached root.
//!
//! - [`imds`]: a stand-in for the EC2 instance metadata service (IMDSv2) that hands
//!   out instance-role credentials.
//!
//! - [`captured_log`]: a child's stderr captured line by line, to wait for a log line.
//!
//! - [`workspace_bins`]: the `hoist` CLI, `hoist-agent` and `hello` variants built for
//!   tests in one target directory of their own.
//!
//! Everything started here is stopped on drop, also when a test panics.

pub mod captured_log;
pub mod container;
pub mod debian_tools;
pub mod hello;
pub mod imds;
pub mod s3server;
pub mod sandbox;
pub mod workspace_bins;
