//! What the end-to-end tests in `tests/` share.
//!
//! The tests boot real Debian 12 and 13 hosts (systemd-nspawn containers with systemd and
//! cloud-init, see `hoist_testkit::container`) from user-data rendered from
//! `cloud-init/user-data.yaml`, with moto on the machine's 127.0.0.1 as S3, and
//! deploy packages built by the real `hoist build` and released by the real
//! `hoist release`:
//!
//! - [`artifacts`]: `hoist`, `hoist-agent` and `hello` variants built from this workspace;
//! - [`packages`]: their `.deb`s, from the manifests in `fixtures/`;
//! - [`releases`]: a versioned bucket with `hoist release`, `rollback` and `history`;
//! - [`bootstrap`]: each host's agent config, user-data and port;
//! - [`instance`]: hosts with instance credentials (IMDSv2 stand-in), signed agent
//!   releases, a dpkg lock held at boot;
//! - [`probe`]: what a host serves, its units' state, dpkg and the agent's state;
//! - [`interrupts`]: clean-up on Ctrl-C for the demo and the fleet benchmark.
//!
//! They need root, systemd-container, debootstrap and moto (`make test` installs them).

pub mod artifacts;
pub mod bootstrap;
pub mod instance;
pub mod interrupts;
pub mod packages;
pub mod probe;
pub mod releases;
