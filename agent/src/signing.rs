//! Signed by default: what each watch accepts.
//!
//! A watch with a public key (`public_key` or `public_key_file`) installs only objects
//! whose signed statements verify with it (see `freshness`). A watch without one is not
//! started, with a message naming the fix, unless it says `allow_unsigned = true`: then
//! it installs unsigned packages, and the agent warns at every start, `status` shows it,
//! and `check-config` lists it.

use crate::config::WatchConfig;

/// What a watch accepts.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Only objects signed with this key.
    Signed(minisign_verify::PublicKey),
    /// Anything (`allow_unsigned = true`).
    Unsigned,
    /// Neither a key nor `allow_unsigned`: the watch does not run; the text says why.
    Refused(String),
}

impl Policy {
    /// The policy of `watch`. The key itself was checked by config validation; an error
    /// here (a key file changed since) refuses the watch too.
    pub fn of(watch: &WatchConfig) -> Policy {
        match watch.load_public_key() {
            Ok(Some(key)) => Policy::Signed(key),
            Ok(None) if watch.allow_unsigned => Policy::Unsigned,
            Ok(None) => Policy::Refused(missing_key(watch)),
            Err(problem) => Policy::Refused(format!("watch `{}`: {problem}", watch.name)),
        }
    }

    /// The warning logged at every start for an unsigned watch.
    pub fn unsigned_warning(watch: &WatchConfig) -> String {
        format!(
            "watch `{}` installs UNSIGNED packages (allow_unsigned = true): anyone who can write s3://{}/{} is root on this host; set public_key (made with `hoist keygen`) and sign releases",
            watch.name, watch.s3.bucket, watch.s3.key
        )
    }
}

/// Why a watch without key and without `allow_unsigned` does not run, and the fix.
pub fn missing_key(watch: &WatchConfig) -> String {
    format!(
        "watch `{}` has no public key, so the packages in s3://{}/{} cannot be authenticated; it is not started. Fix: set public_key = \"RW…\" (or public_key_file) to the key its releases are signed with (`hoist keygen`), or set allow_unsigned = true to install unsigned packages",
        watch.name, watch.s3.bucket, watch.s3.key
    )
}
