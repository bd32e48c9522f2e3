//! `hoist rollback`: make an older version of the key current again by copying it
//! onto the key (CopyObject `CopySource=bucket/key?versionId=…`). The copy is a new
//! version with the old bytes and the old metadata (sha256, signature), so hosts see a
//! change and install it; the history keeps everything.
//!
//! A rollback is not conditional (CopyObject has no destination precondition): if a
//! release lands at the same moment, the later write is current.
//!
//! Output: the new VersionId alone on stdout, a summary on stderr; `--json` prints
//! one JSON object on stdout instead.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cmd::history::{HistoryEntry, connect, load_history};
use crate::s3args::S3Args;

/// Arguments of `hoist rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub s3: S3Args,

    /// Manifest with `[s3]` settings and the package name (for the default key).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,

    /// The VersionId to bring back (see `hoist history`).
    #[arg(long, value_name = "VERSION_ID", conflicts_with = "steps")]
    pub to: Option<String>,

    /// Go back N versions from the current one, as listed by `hoist history` (delete
    /// markers skipped) [default: 1].
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Debug, serde::Serialize)]
struct RollbackReport {
    bucket: String,
    key: String,
    /// The version that was current before the rollback.
    previous_version_id: Option<String>,
    /// The version whose bytes and metadata were copied.
    restored_version_id: String,
    /// The new current version (a copy of the restored one).
    new_version_id: Option<String>,
    package: Option<String>,
    version: Option<String>,
    sha256: Option<String>,
}

/// Picks the version to restore from the history (newest first).
fn choose_target<'a>(
    history: &'a [HistoryEntry],
    to: Option<&str>,
    steps: Option<usize>,
    location: &str,
) -> anyhow::Result<&'a HistoryEntry> {
    if let Some(id) = to {
        let Some(target) = history.iter().find(|e| e.version_id == id) else {
            bail!("`{id}` is not a version of {location}: pick a VERSION ID from `hoist history`");
        };
        if target.delete_marker {
            bail!(
                "version `{id}` of {location} is a delete marker, not a release: pick another \
                 VERSION ID from `hoist history`"
            );
        }
        return Ok(target);
    }
    let steps = steps.unwrap_or(1);
    if steps == 0 {
        bail!("--steps must be at least 1 (1 = the version before the current one)");
    }
    let current = history.iter().position(|e| e.current).unwrap_or(0);
    let older: Vec<_> = history
        .iter()
        .skip(current + 1)
        .filter(|e| !e.delete_marker)
        .collect();
    match older.get(steps - 1) {
        Some(target) => Ok(target),
        None => bail!(
            "{location} has only {} older release(s) below the current one, so it cannot go back \
             {steps}: see `hoist history`",
            older.len()
        ),
    }
}

/// Runs `hoist rollback`.
pub async fn run(args: RollbackArgs) -> anyhow::Result<()> {
    let s3 = connect(&args.s3, args.manifest.as_ref()).await?;
    let location = s3.location().to_string();
    let history = load_history(&s3, 0).await?;
    if history.is_empty() {
        bail!("no releases at {location}: nothing to roll back to");
    }
    if history.iter().all(|e| e.version_id == "null") {
        bail!(
            "bucket `{}` has no versioning, so {location} keeps no older versions to roll back to",
            s3.settings().bucket
        );
    }
    let target = choose_target(&history, args.to.as_deref(), args.steps, &location)?;
    let current = history.iter().find(|e| e.current);

    let new_version_id = if current.is_some_and(|c| c.version_id == target.version_id) {
        eprintln!(
            "version {} is already the current version of {location}; nothing copied",
            target.version_id
        );
        Some(target.version_id.clone())
    } else {
        let outcome = s3
            .copy_version_to_latest(&target.version_id)
            .await
            .with_context(|| format!("cannot roll back to version {}", target.version_id))?;
        outcome.version_id
    };

    let m = &target.metadata;
    let report = RollbackReport {
        bucket: s3.settings().bucket.clone(),
        key: s3.settings().key.clone(),
        previous_version_id: current.map(|c| c.version_id.clone()),
        restored_version_id: target.version_id.clone(),
        new_version_id,
        package: m.package.clone(),
        version: m.version.clone(),
        sha256: m.sha256.clone(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot encode the report as JSON")?
        );
        return Ok(());
    }
    let describe = |e: Option<&HistoryEntry>| match e {
        Some(e) if e.delete_marker => "a delete marker".to_string(),
        Some(e) => format!(
            "{} {}",
            e.metadata.package.as_deref().unwrap_or("-"),
            e.metadata.version.as_deref().unwrap_or("-")
        ),
        None => "nothing".to_string(),
    };
    eprintln!("rolled back {location}");
    eprintln!(
        "  old current: {} ({})",
        report.previous_version_id.as_deref().unwrap_or("none"),
        describe(current)
    );
    eprintln!(
        "  new current: {} = copy of {} ({}, sha256 {})",
        report.new_version_id.as_deref().unwrap_or("null"),
        report.restored_version_id,
        describe(Some(target)),
        m.sha256.as_deref().unwrap_or("-")
    );
    println!("{}", report.new_version_id.as_deref().unwrap_or("null"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_s3::ReleaseMetadata;

    fn e(id: &str, current: bool, marker: bool) -> HistoryEntry {
        HistoryEntry {
            version_id: id.into(),
            current,
            delete_marker: marker,
            last_modified: None,
            size: 0,
            etag: String::new(),
            signed: false,
            metadata: ReleaseMetadata::default(),
        }
    }

    #[test]
    fn steps_count_releases_below_the_current_one() {
        let h = [
            e("v4", true, false),
            e("d", false, true),
            e("v2", false, false),
            e("v1", false, false),
        ];
        assert_eq!(choose_target(&h, None, None, "x").unwrap().version_id, "v2");
        assert_eq!(
            choose_target(&h, None, Some(2), "x").unwrap().version_id,
            "v1"
        );
        let err = choose_target(&h, None, Some(3), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only 2 older"), "{err}");
        assert!(choose_target(&h, None, Some(0), "x").is_err());
    }

    #[test]
    fn a_current_delete_marker_rolls_back_to_the_release_below_it() {
        let h = [e("d", true, true), e("v1", false, false)];
        assert_eq!(choose_target(&h, None, None, "x").unwrap().version_id, "v1");
    }

    #[test]
    fn to_refuses_unknown_ids_and_delete_markers() {
        let h = [
            e("v2", true, false),
            e("d", false, true),
            e("v1", false, false),
        ];
        assert_eq!(
            choose_target(&h, Some("v1"), None, "x").unwrap().version_id,
            "v1"
        );
        let err = choose_target(&h, Some("nope"), None, "s3://b/k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a version of s3://b/k"), "{err}");
        let err = choose_target(&h, Some("d"), None, "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("delete marker"), "{err}");
    }
}
