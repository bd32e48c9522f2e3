//! `hoist rollback`: make an older version of the key current again by copying it
//! onto the key (CopyObject `CopySource=bucket/key?versionId=…`). The copy is a new
//! version with the old bytes and the old metadata (sha256, signed release statement),
//! so hosts see a change; the history keeps everything.
//!
//! Agents refuse a release older than the one they run (a copy of an old version is
//! what an attacker with write access but no key would make), so a rollback needs the
//! signing key, like a release: it checks that the target's release statement is signed
//! by that key and adds a signed *rollback statement* (package, version, sha256,
//! bucket, key, source VersionId, time; [`hoist_s3::statement::RollbackStatement`]) to
//! the copy's metadata (CopyObject with `MetadataDirective: REPLACE`, every other field
//! kept). The key comes from `--sign-key`, `HOIST_SIGN_KEY` or `[sign] key`; `--unsigned`
//! makes a plain copy (for watches with `allow_unsigned = true`).
//!
//! A rollback is not conditional (CopyObject has no destination precondition): if a
//! release lands at the same moment, the later write is current.
//!
//! Output: the new VersionId alone on stdout, a summary on stderr; `--json` prints
//! one JSON object on stdout instead.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, bail};
use hoist_s3::statement::{ReleaseStatement, RollbackStatement};
use hoist_s3::{ReleaseMetadata, S3};

use crate::cmd::history::{HistoryEntry, connect, load_history, load_manifest};
use crate::s3args::S3Args;
use crate::sign::Signer;

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

    /// Sign the rollback statement with this minisign secret key (the release key).
    /// Default: `[sign] key` in the manifest.
    #[arg(long, env = "HOIST_SIGN_KEY", value_name = "PATH")]
    pub sign_key: Option<PathBuf>,

    /// Copy the old version without a signed rollback statement when no key is
    /// configured (agents with a public key refuse such a copy as a downgrade).
    #[arg(long)]
    pub unsigned: bool,

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
    /// The signed rollback statement written onto the copy.
    rollback_statement: Option<String>,
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
    let manifest = load_manifest(args.manifest.as_ref())?;
    let key = crate::sign::resolve_key(
        args.sign_key.as_deref(),
        manifest.sign_key(),
        args.unsigned,
        "roll back",
    )?;
    let signer = key.as_deref().map(Signer::load).transpose()?;
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

    let mut rollback_statement = None;
    let new_version_id = if current.is_some_and(|c| c.version_id == target.version_id) {
        eprintln!(
            "version {} is already the current version of {location}; nothing copied",
            target.version_id
        );
        Some(target.version_id.clone())
    } else if let Some(signer) = &signer {
        let metadata = signed_rollback(signer, &s3, target)?;
        rollback_statement = metadata.rollback.clone();
        let outcome = s3
            .copy_version_with_metadata(&target.version_id, &metadata)
            .await
            .with_context(|| format!("cannot roll back to version {}", target.version_id))?;
        outcome.version_id
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
        rollback_statement,
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
    match &report.rollback_statement {
        Some(statement) => eprintln!("  signed: {statement}"),
        None if signer.is_none() => eprintln!(
            "  UNSIGNED copy (--unsigned): agents with a public key refuse it as a downgrade"
        ),
        None => {}
    }
    println!("{}", report.new_version_id.as_deref().unwrap_or("null"));
    Ok(())
}

/// The copy's metadata: the target's, with a rollback statement signed by `signer`.
/// Refuses a target whose release statement is missing, not signed by this key, or made
/// for another bucket or key (agents would refuse it anyway).
fn signed_rollback(
    signer: &Signer,
    s3: &S3,
    target: &HistoryEntry,
) -> anyhow::Result<ReleaseMetadata> {
    let id = &target.version_id;
    let m = &target.metadata;
    let (Some(text), Some(sig)) = (&m.statement, &m.statement_sig) else {
        bail!(
            "version {id} has no signed release statement (released unsigned or by an older \
             hoist), so agents would refuse it: pick another version, or release that package \
             again with `hoist release`"
        );
    };
    signer.verify_statement(text, sig).with_context(|| {
        format!(
            "version {id} was not released with this signing key ({})",
            signer.public_key_base64()
        )
    })?;
    let release = ReleaseStatement::parse(text)?;
    let settings = s3.settings();
    if release.bucket != settings.bucket || release.key != settings.key {
        bail!(
            "version {id} was signed for s3://{}/{}, not for s3://{}/{}: agents would refuse it",
            release.bucket,
            release.key,
            settings.bucket,
            settings.key
        );
    }
    let rollback = RollbackStatement {
        package: release.package,
        version: release.version,
        sha256: release.sha256,
        bucket: settings.bucket.clone(),
        key: settings.key.clone(),
        source: id.clone(),
        time: hoist_s3::statement::truncate_to_millis(SystemTime::now()),
    };
    rollback.validate()?;
    let text = rollback.render();
    let mut metadata = m.clone();
    metadata.rollback_sig = Some(signer.sign_statement(&text)?);
    metadata.rollback = Some(text);
    crate::cmd::release::fit_metadata_budget(&mut metadata);
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

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
