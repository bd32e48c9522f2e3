//! `hello` and `handoff` as real processes: upgrades under load, a binary
//! replaced on disk, failing successors, NOTIFY_SOCKET, socket activation and
//! shutdown. Every process runs in a group killed by the harness guard.

mod failed_upgrades;
mod notify_socket;
mod replaced_binary;
mod shutdown;
mod socket_activation;
mod support;
mod upgrade_under_load;
