//! Log setup: `tracing` to stderr; `RUST_LOG` overrides the level. Under systemd
//! (`JOURNAL_STREAM` set) no timestamps and no colours are printed — journald adds its own.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let colour = !under_journald && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    if under_journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
