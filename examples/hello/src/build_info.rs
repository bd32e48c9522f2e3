//! What this build of `hello` is: its version and whether it is a deliberately
//! broken variant. Both are fixed at compile time (see `build.rs`), so two
//! builds are two different binaries, as two released packages would be.

/// `HELLO_VERSION` at build time, else the crate version.
pub const VERSION: &str = match option_env!("HELLO_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

/// A deliberately broken build, for failure tests (`HELLO_BROKEN` at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Exits non-zero during start-up, before reporting ready.
    Crash,
    /// Opens its listeners but never reports ready (and never serves).
    Hang,
    /// Starts normally, but `/` and `/healthz` answer 500.
    Status500,
}

/// The variant this binary was built as; `None` for a working build.
pub fn broken() -> Option<Broken> {
    match option_env!("HELLO_BROKEN") {
        Some("crash") => Some(Broken::Crash),
        Some("hang") => Some(Broken::Hang),
        Some("500") => Some(Broken::Status500),
        // build.rs rejects any other value.
        _ => None,
    }
}
