//! `hello` and `handoff` as real processes: upgrades under load, a binary
//! replaced on disk, failing successors, NOTIFY_SOCKET, socket activation and
//! shutdown. Every process runs in a group killed by the harness guard.

// Test helpers unwrap like the tests themselves (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used)]

mod failed_upgrades;
mod notify_socket;
mod replaced_binary;
mod several_listeners;
mod shutdown;
mod socket_activation;
mod support;
mod upgrade_under_load;
