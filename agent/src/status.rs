//! `hoist-agent status`: what the state file says, for people (`status`) or tools
//! (`status --json`, the state file's own JSON).

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::state::{AgentState, Loaded, Release, StateStore};

/// Reads the state file of `state_dir` and renders it.
pub fn render(state_dir: &Path, json: bool) -> anyhow::Result<String> {
    let store = StateStore::new(state_dir);
    let state = match store
        .load()
        .with_context(|| format!("cannot read `{}`", store.path().display()))?
    {
        Loaded::Ok(state) => state,
        Loaded::Missing => anyhow::bail!(
            "no state file at `{}`: the agent has not run yet with this state_dir (start it, or run `hoist-agent once`)",
            store.path().display()
        ),
        Loaded::Corrupt(why) => anyhow::bail!(
            "the state file `{}` is corrupt ({why}); the agent rebuilds it at its next start",
            store.path().display()
        ),
    };
    if json {
        let mut text = serde_json::to_string_pretty(&state).context("cannot encode the state")?;
        text.push('\n');
        Ok(text)
    } else {
        Ok(human(&state))
    }
}

fn release_line(release: &Release) -> String {
    let mut line = release.version.clone();
    if let Some(v) = &release.version_id {
        let _ = write!(line, "  VersionId {v}");
    }
    if let Some(e) = &release.etag {
        let _ = write!(line, "  ETag {e}");
    }
    let _ = write!(line, "  since {}", release.installed_at);
    line
}

/// The human-readable rendering.
pub fn human(state: &AgentState) -> String {
    let mut out = String::new();
    if state.watches.is_empty() {
        out.push_str("no watches in the state file\n");
    }
    for (name, watch) in &state.watches {
        let _ = writeln!(out, "{name} (package {})", watch.package);
        if watch.unsigned {
            out.push_str(
                "  WARNING:        UNSIGNED: allow_unsigned = true, packages are installed without a signature check\n",
            );
        }
        match &watch.installed {
            Some(r) => {
                let _ = writeln!(out, "  installed:      {}", release_line(r));
                let _ = writeln!(out, "                  sha256 {}", r.sha256);
                if let Some(time) = &r.effective_time {
                    let _ = writeln!(
                        out,
                        "                  signed release in effect since {time}"
                    );
                }
                let _ = writeln!(out, "                  {}", r.deb.display());
            }
            None => out.push_str("  installed:      nothing yet\n"),
        }
        match &watch.previous_good {
            Some(r) => {
                let _ = writeln!(out, "  previous good:  {}", release_line(r));
            }
            None => out.push_str("  previous good:  none\n"),
        }
        for bad in &watch.bad {
            let _ = writeln!(
                out,
                "  bad:            {}{}  at {}: {}",
                bad.version.as_deref().unwrap_or("?"),
                bad.version_id.as_deref().map_or_else(
                    || format!("  ETag {}", bad.etag),
                    |v| format!("  VersionId {v}")
                ),
                bad.at,
                bad.reason
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BadRelease, STATE_FORMAT, WatchState};
    use std::path::PathBuf;

    #[test]
    fn renders_installed_previous_and_bad() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = WatchState::new("hello");
        watch.installed = Some(Release {
            version_id: Some("v2".into()),
            etag: Some("\"e2\"".into()),
            md5: "0".repeat(32),
            sha256: "1".repeat(64),
            version: "2.0.0".into(),
            deb: PathBuf::from("/x/hello_2.0.0_amd64.deb"),
            installed_at: "2024-01-01T00:00:00Z".into(),
            signed_time: None,
            effective_time: None,
        });
        watch.unsigned = true;
        watch.mark_bad(BadRelease {
            version_id: Some("v3".into()),
            etag: "\"e3\"".into(),
            version: Some("3.0.0".into()),
            reason: "health check failed".into(),
            at: "2024-01-02T00:00:00Z".into(),
            sha256: None,
            signed_time: None,
        });
        let mut state = AgentState {
            format: STATE_FORMAT,
            ..AgentState::default()
        };
        state.watches.insert("hello".into(), watch);
        StateStore::new(dir.path()).save(&state).unwrap();

        let text = render(dir.path(), false).unwrap();
        assert!(
            text.contains("installed:      2.0.0  VersionId v2"),
            "{text}"
        );
        assert!(text.contains("previous good:  none"), "{text}");
        assert!(text.contains("UNSIGNED"), "{text}");
        assert!(text.contains("3.0.0  VersionId v3"), "{text}");
        let json: AgentState = serde_json::from_str(&render(dir.path(), true).unwrap()).unwrap();
        assert_eq!(json, state);
    }

    #[test]
    fn missing_state_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("hoist-agent once"), "{err}");
    }
}
