//! The agent's state file (`STATE_DIR/state.json`): per watch, what is installed (VersionId,
//! ETag, digests, package version, cached `.deb`), the previous good package to roll back
//! to, and the releases marked bad.
//!
//! Written atomically (temp file, fsync, rename, fsync dir), so a reader or a crash sees
//! either the old or the new state. A file that does not parse is reported as
//! [`Loaded::Corrupt`]; the caller rebuilds it (see `recover`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// Version of the file layout; bumped on incompatible changes.
pub const STATE_FORMAT: u32 = 1;
/// Bad releases remembered per watch (oldest dropped first).
const MAX_BAD: usize = 32;

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    /// Layout version ([`STATE_FORMAT`]).
    pub format: u32,
    /// State per watch name.
    #[serde(default)]
    pub watches: BTreeMap<String, WatchState>,
}

/// What the agent knows about one watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchState {
    /// The package this watch installs.
    pub package: String,
    /// The release currently installed and serving.
    #[serde(default)]
    pub installed: Option<Release>,
    /// The release installed before it: what a failed update rolls back to.
    #[serde(default)]
    pub previous_good: Option<Release>,
    /// Releases that failed verification, install, handoff or health; never retried.
    #[serde(default)]
    pub bad: Vec<BadRelease>,
    /// The watch accepts unsigned packages (`allow_unsigned = true`); written by the
    /// agent at each start so that `status` shows it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsigned: bool,
    /// A step that was begun and not finished: written before it starts, cleared when it
    /// ends, so that reconciliation finishes it after a crash. Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

/// An install or rollback in progress (see [`WatchState::pending`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// What was being done.
    pub action: PendingAction,
    /// The release being installed, or the failed one being rolled back from. The
    /// rollback target is [`WatchState::installed`], which is not changed before the
    /// candidate serves.
    pub candidate: Release,
    /// Why the candidate is rolled back (rollbacks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The kind of a [`Pending`] step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingAction {
    /// `dpkg -i` of the candidate, then handoff and health check.
    Install,
    /// Reinstalling the installed release over the failed candidate, then marking the
    /// candidate bad.
    Rollback,
}

/// One release the agent downloaded, verified and installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// S3 VersionId (absent on unversioned buckets, or when rebuilt from dpkg).
    pub version_id: Option<String>,
    /// ETag as S3 returned it, quotes included (absent when rebuilt from dpkg).
    pub etag: Option<String>,
    /// MD5 of the `.deb`, lowercase hex.
    pub md5: String,
    /// SHA-256 of the `.deb`, lowercase hex.
    pub sha256: String,
    /// Debian package version inside the `.deb`.
    pub version: String,
    /// The cached `.deb` in the state directory.
    pub deb: PathBuf,
    /// When it was installed (RFC 3339, UTC).
    pub installed_at: String,
    /// The signed release time of its release statement (RFC 3339 UTC, milliseconds);
    /// absent when installed unsigned or by an agent before signed statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_time: Option<String>,
    /// The time older objects are compared with: the release time, or the time of the
    /// rollback statement it was installed with (see `freshness`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_time: Option<String>,
}

/// A release that must not be tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadRelease {
    /// S3 VersionId, when the bucket is versioned.
    pub version_id: Option<String>,
    /// ETag as S3 returned it.
    pub etag: String,
    /// Package version, when known.
    pub version: Option<String>,
    /// Why it was refused or rolled back.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// SHA-256 of the bytes, from the authenticated statement: the mark holds for these
    /// bytes under any VersionId, up to [`BadRelease::signed_time`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The signed time of the statement it was refused under; only a newer signed
    /// (rollback) statement of the same bytes is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_time: Option<String>,
}

impl WatchState {
    /// A fresh state for `package`.
    pub fn new(package: &str) -> Self {
        Self {
            package: package.to_owned(),
            ..Self::default()
        }
    }

    /// True when the object identified by (`version_id`, `etag`) was marked bad. With a
    /// VersionId the VersionId decides; without one (unversioned bucket) the ETag does.
    pub fn is_bad(&self, version_id: Option<&str>, etag: &str) -> bool {
        self.bad
            .iter()
            .any(|bad| match (version_id, bad.version_id.as_deref()) {
                (Some(current), Some(marked)) => current == marked,
                (None, None) => bad.etag == etag,
                _ => false,
            })
    }

    /// True when the bytes with `sha256` were marked bad under a signed statement at
    /// least as new as `signed_time` (the object's authenticated time).
    pub fn is_bad_bytes(&self, sha256: &str, signed_time: SystemTime) -> bool {
        self.bad.iter().any(|bad| {
            bad.sha256.as_deref() == Some(sha256)
                && bad
                    .signed_time
                    .as_deref()
                    .and_then(hoist_s3::statement::parse_time)
                    .is_some_and(|marked| marked >= signed_time)
        })
    }

    /// The installed release's effective signed time, if it has one.
    pub fn installed_effective_time(&self) -> Option<SystemTime> {
        let installed = self.installed.as_ref()?;
        installed
            .effective_time
            .as_deref()
            .or(installed.signed_time.as_deref())
            .and_then(hoist_s3::statement::parse_time)
    }

    /// Records a bad release (keeps the newest [`MAX_BAD`]).
    pub fn mark_bad(&mut self, bad: BadRelease) {
        if self.is_bad(bad.version_id.as_deref(), &bad.etag) {
            return;
        }
        self.bad.push(bad);
        if self.bad.len() > MAX_BAD {
            let excess = self.bad.len() - MAX_BAD;
            self.bad.drain(..excess);
        }
    }

    /// True when (`version_id`, `etag`) is exactly the installed object.
    pub fn is_installed(&self, version_id: Option<&str>, etag: &str) -> bool {
        self.installed.as_ref().is_some_and(|installed| {
            installed.etag.as_deref() == Some(etag) && installed.version_id.as_deref() == version_id
        })
    }

    /// Cached packages that must be kept (installed and previous good).
    pub fn referenced_debs(&self) -> Vec<&Path> {
        self.installed
            .iter()
            .chain(self.previous_good.iter())
            .map(|r| r.deb.as_path())
            .collect()
    }
}

/// Current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Result of reading the state file.
#[derive(Debug)]
pub enum Loaded {
    /// The file parsed.
    Ok(AgentState),
    /// No state file yet (first start).
    Missing,
    /// The file exists but does not parse (or has an unknown format); the text says why.
    Corrupt(String),
}

/// Reads and writes `STATE_DIR/state.json`.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// The store for state directory `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("state.json"),
        }
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state file. I/O errors other than "not found" are returned as errors;
    /// a file that does not parse is [`Loaded::Corrupt`].
    pub fn load(&self) -> std::io::Result<Loaded> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(err) => return Err(err),
        };
        match serde_json::from_slice::<AgentState>(&bytes) {
            Ok(state) if state.format == STATE_FORMAT => Ok(Loaded::Ok(state)),
            Ok(state) => Ok(Loaded::Corrupt(format!(
                "format {} is not the supported format {STATE_FORMAT}",
                state.format
            ))),
            Err(err) => Ok(Loaded::Corrupt(err.to_string())),
        }
    }

    /// Writes `state` atomically (temp, fsync, rename, fsync dir).
    pub fn save(&self, state: &AgentState) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        fsutil::write_atomic(&self.path, &bytes)
    }

    /// Moves a corrupt state file aside to `state.json.corrupt` (kept for inspection).
    pub fn set_aside_corrupt(&self) -> std::io::Result<PathBuf> {
        let aside = self.path.with_extension("json.corrupt");
        std::fs::rename(&self.path, &aside)?;
        Ok(aside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version_id: Option<&str>, etag: &str) -> Release {
        Release {
            version_id: version_id.map(str::to_owned),
            etag: Some(etag.to_owned()),
            md5: "00".repeat(16),
            sha256: "11".repeat(32),
            version: "1.0.0".into(),
            deb: PathBuf::from("/var/lib/hoist-agent/cache/hello/hello_1.0.0_amd64.deb"),
            installed_at: now_rfc3339(),
            signed_time: None,
            effective_time: None,
        }
    }

    fn bad(version_id: Option<&str>, etag: &str) -> BadRelease {
        BadRelease {
            version_id: version_id.map(str::to_owned),
            etag: etag.to_owned(),
            version: None,
            reason: "test".into(),
            at: now_rfc3339(),
            sha256: None,
            signed_time: None,
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert!(matches!(store.load().unwrap(), Loaded::Missing));
        let mut state = AgentState {
            format: STATE_FORMAT,
            ..AgentState::default()
        };
        let mut watch = WatchState::new("hello");
        watch.installed = Some(release(Some("v2"), "\"e2\""));
        watch.previous_good = Some(release(Some("v1"), "\"e1\""));
        watch.mark_bad(bad(Some("v3"), "\"e3\""));
        watch.pending = Some(Pending {
            action: PendingAction::Rollback,
            candidate: release(Some("v3"), "\"e3\""),
            reason: Some("health check failed".into()),
        });
        state.watches.insert("hello".into(), watch);
        store.save(&state).unwrap();
        match store.load().unwrap() {
            Loaded::Ok(loaded) => assert_eq!(loaded, state),
            other => panic!("expected a state, got {other:?}"),
        }
    }

    #[test]
    fn files_without_pending_steps_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        std::fs::write(
            store.path(),
            br#"{"format": 1, "watches": {"hello": {"package": "hello", "installed": null, "previous_good": null, "bad": []}}}"#,
        )
        .unwrap();
        match store.load().unwrap() {
            Loaded::Ok(loaded) => assert_eq!(loaded.watches["hello"].pending, None),
            other => panic!("expected a state, got {other:?}"),
        }
    }

    #[test]
    fn garbage_and_wrong_format_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        std::fs::write(store.path(), b"{\"format\": 1, \"watches\": {\"x\": ").unwrap();
        assert!(matches!(store.load().unwrap(), Loaded::Corrupt(_)));
        std::fs::write(store.path(), b"{\"format\": 99}").unwrap();
        match store.load().unwrap() {
            Loaded::Corrupt(why) => assert!(why.contains("99"), "{why}"),
            other => panic!("expected corrupt, got {other:?}"),
        }
        let aside = store.set_aside_corrupt().unwrap();
        assert!(aside.exists());
        assert!(matches!(store.load().unwrap(), Loaded::Missing));
    }

    #[test]
    fn bad_matching_uses_version_id_when_present() {
        let mut watch = WatchState::new("hello");
        watch.mark_bad(bad(Some("v3"), "\"e3\""));
        watch.mark_bad(bad(None, "\"e9\""));
        assert!(watch.is_bad(Some("v3"), "\"anything\""));
        assert!(
            !watch.is_bad(Some("v4"), "\"e3\""),
            "a newer version with the same bytes is new"
        );
        assert!(watch.is_bad(None, "\"e9\""));
        assert!(!watch.is_bad(None, "\"e3\""));
        watch.mark_bad(bad(Some("v3"), "\"e3\""));
        assert_eq!(watch.bad.len(), 2, "marking twice keeps one entry");
    }

    #[test]
    fn bad_bytes_hold_until_a_newer_signed_statement() {
        let t = |s: &str| hoist_s3::statement::parse_time(s).unwrap();
        let mut watch = WatchState::new("hello");
        let sha = "ab".repeat(32);
        watch.mark_bad(BadRelease {
            sha256: Some(sha.clone()),
            signed_time: Some("2026-01-01T00:00:00.000Z".into()),
            ..bad(Some("v3"), "\"e3\"")
        });
        assert!(watch.is_bad_bytes(&sha, t("2026-01-01T00:00:00Z")));
        assert!(watch.is_bad_bytes(&sha, t("2025-06-01T00:00:00Z")));
        assert!(!watch.is_bad_bytes(&sha, t("2026-01-01T00:00:00.001Z")));
        assert!(!watch.is_bad_bytes(&"cd".repeat(32), t("2025-01-01T00:00:00Z")));
    }

    #[test]
    fn older_state_files_load() {
        // Written by an agent before signed statements: no signed times, no unsigned flag.
        let old = r#"{"format": 1, "watches": {"hello": {"package": "hello",
            "installed": {"version_id": "v1", "etag": "\"e\"", "md5": "00", "sha256": "11",
              "version": "1.0", "deb": "/x.deb", "installed_at": "2026-01-01T00:00:00Z"},
            "bad": [{"version_id": "v0", "etag": "\"f\"", "version": null, "reason": "r",
              "at": "2026-01-01T00:00:00Z"}]}}}"#;
        let state: AgentState = serde_json::from_str(old).unwrap();
        let watch = &state.watches["hello"];
        assert_eq!(watch.installed_effective_time(), None);
        assert!(!watch.unsigned);
        assert_eq!(watch.bad[0].sha256, None);
        // and a new one writes the fields only when set
        let text = serde_json::to_string(&state).unwrap();
        assert!(
            !text.contains("signed_time") && !text.contains("unsigned"),
            "{text}"
        );
    }

    #[test]
    fn bad_list_is_bounded() {
        let mut watch = WatchState::new("hello");
        for i in 0..(MAX_BAD + 5) {
            watch.mark_bad(bad(Some(&format!("v{i}")), "\"e\""));
        }
        assert_eq!(watch.bad.len(), MAX_BAD);
        assert!(!watch.is_bad(Some("v0"), "\"e\""));
        assert!(watch.is_bad(Some(&format!("v{}", MAX_BAD + 4)), "\"e\""));
    }

    #[test]
    fn installed_needs_both_etag_and_version_id() {
        let mut watch = WatchState::new("hello");
        watch.installed = Some(release(Some("v2"), "\"e2\""));
        assert!(watch.is_installed(Some("v2"), "\"e2\""));
        assert!(!watch.is_installed(Some("v5"), "\"e2\""));
        assert!(!watch.is_installed(Some("v2"), "\"e5\""));
        assert!(!watch.is_installed(None, "\"e2\""));
    }
}
