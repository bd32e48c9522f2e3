//! `hoist history`: the versions of the release key, newest first, with what each one
//! is (from its metadata) and a `*` on the current one.

use std::path::PathBuf;

use anyhow::Context;
use futures::{StreamExt as _, TryStreamExt as _};
use hoist_s3::{Head, ObjectInfo, ReleaseMetadata, S3, S3Error, VersionInfo};

use crate::cmd::release::format_time;
use crate::s3args::{ManifestS3, S3Args};

/// How many versions' metadata are fetched at once.
const HEAD_CONCURRENCY: usize = 8;

/// Arguments of `hoist history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub s3: S3Args,

    /// Manifest with `[s3]` settings and the package name (for the default key).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,

    /// Show at most N versions (0 = all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One row of the history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    /// VersionId.
    pub version_id: String,
    /// Whether this is the current version of the key.
    pub current: bool,
    /// Whether this entry is a delete marker (no content).
    pub delete_marker: bool,
    /// When this version was written (RFC 3339 UTC).
    pub last_modified: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// ETag as returned.
    pub etag: String,
    /// Whether a signature is stored with it.
    pub signed: bool,
    /// Its release metadata (empty for delete markers and foreign uploads).
    #[serde(flatten)]
    pub metadata: ReleaseMetadata,
}

/// Connects with the settings from flags, environment and manifest.
pub async fn connect(s3: &S3Args, manifest: Option<&PathBuf>) -> anyhow::Result<S3> {
    let manifest = load_manifest(manifest)?;
    let settings = s3.resolve(&manifest, None)?;
    Ok(S3::connect(&settings).await?)
}

/// The manifest given with `--manifest` (it must exist), else `hoist.toml` when present.
pub fn load_manifest(manifest: Option<&PathBuf>) -> anyhow::Result<ManifestS3> {
    let (path, required) = match manifest {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("hoist.toml"), false),
    };
    ManifestS3::load(&path, required)
}

/// The key's versions newest first with their metadata (fetched by HEAD ?versionId,
/// a few at a time), at most `limit` (0 = all).
pub async fn load_history(s3: &S3, limit: usize) -> anyhow::Result<Vec<HistoryEntry>> {
    let mut versions = s3.list_versions().await?;
    if limit > 0 {
        versions.truncate(limit);
    }
    futures::stream::iter(versions)
        .map(|v| async move { entry(s3, v).await })
        .buffered(HEAD_CONCURRENCY)
        .try_collect()
        .await
}

async fn entry(s3: &S3, v: VersionInfo) -> anyhow::Result<HistoryEntry> {
    let metadata = if v.is_delete_marker {
        ReleaseMetadata::default()
    } else if v.version_id == "null" && v.is_latest {
        // Unversioned bucket: some servers (moto) do not answer HEAD ?versionId=null,
        // but the current object is this version.
        match s3.head(None).await? {
            Head::Found(info) => info.metadata,
            Head::NotModified => ReleaseMetadata::default(),
        }
    } else {
        match s3.head_version(&v.version_id).await {
            Ok(ObjectInfo { metadata, .. }) => metadata,
            // Deleted between the listing and now: show it without metadata.
            Err(S3Error::NoSuchVersion { .. }) => ReleaseMetadata::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading version {}", v.version_id));
            }
        }
    };
    Ok(HistoryEntry {
        current: v.is_latest,
        delete_marker: v.is_delete_marker,
        last_modified: v.last_modified.and_then(format_time),
        size: v.size,
        etag: v.etag,
        signed: metadata.statement_sig.is_some(),
        version_id: v.version_id,
        metadata,
    })
}

/// Runs `hoist history`.
pub async fn run(args: HistoryArgs) -> anyhow::Result<()> {
    let s3 = connect(&args.s3, args.manifest.as_ref()).await?;
    let entries = load_history(&s3, args.limit).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).context("cannot encode the history as JSON")?
        );
        return Ok(());
    }
    if entries.is_empty() {
        eprintln!("no releases at {}", s3.location());
        return Ok(());
    }
    print!("{}", render_table(&entries));
    Ok(())
}

/// The first `n` characters of `s` (ids and digests are ASCII).
fn prefix(s: &str, n: usize) -> &str {
    s.get(..n).unwrap_or(s)
}

/// The human-readable table: one line per version, `*` marks the current one.
pub fn render_table(entries: &[HistoryEntry]) -> String {
    let id_width = entries
        .iter()
        .map(|e| e.version_id.len())
        .max()
        .unwrap_or(0)
        .max("VERSION ID".len());
    let mut out = format!(
        "  {:id_width$}  {:20}  {:>10}  {:20}  {:12}  {:18}  {}\n",
        "VERSION ID", "TIME (UTC)", "SIZE", "PACKAGE VERSION", "SHA256", "COMMIT", "SIGNED"
    );
    for e in entries {
        let marker = if e.current { '*' } else { ' ' };
        let time = e.last_modified.as_deref().unwrap_or("-");
        if e.delete_marker {
            out.push_str(&format!(
                "{marker} {:id_width$}  {time:20}  {:>10}  (delete marker)\n",
                e.version_id, "-"
            ));
            continue;
        }
        let m = &e.metadata;
        let package = match (&m.package, &m.version) {
            (Some(p), Some(v)) => format!("{p} {v}"),
            (None, Some(v)) => v.clone(),
            _ => "-".into(),
        };
        let sha = m.sha256.as_deref().map_or("-", |s| prefix(s, 12));
        let commit = m.git_commit.as_deref().map_or_else(
            || "-".to_string(),
            |c| {
                let short = prefix(c, 12);
                if c.ends_with("-dirty") {
                    format!("{short}-dirty")
                } else {
                    short.to_string()
                }
            },
        );
        let signed = if e.signed { "yes" } else { "no" };
        out.push_str(&format!(
            "{marker} {:id_width$}  {time:20}  {:>10}  {package:20}  {sha:12}  {commit:18}  {signed}\n",
            e.version_id, e.size
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, current: bool, marker: bool) -> HistoryEntry {
        HistoryEntry {
            version_id: id.into(),
            current,
            delete_marker: marker,
            last_modified: Some("2026-01-02T03:04:05Z".into()),
            size: 1234,
            etag: "\"x\"".into(),
            signed: false,
            metadata: ReleaseMetadata {
                package: Some("hello".into()),
                version: Some("1.4.0".into()),
                sha256: Some("abcdef0123456789".repeat(4)),
                git_commit: Some(format!("{}-dirty", "1234567890ab".repeat(3))),
                ..ReleaseMetadata::default()
            },
        }
    }

    #[test]
    fn table_marks_the_current_version_and_shortens_digests() {
        let table = render_table(&[entry("v2", true, false), entry("v1", false, false)]);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("* v2"), "{table}");
        assert!(lines[2].starts_with("  v1"), "{table}");
        assert!(lines[1].contains("hello 1.4.0"));
        assert!(lines[1].contains("abcdef012345 "));
        assert!(lines[1].contains("1234567890ab-dirty"));
        assert!(lines[1].contains("1234"));
    }

    #[test]
    fn delete_markers_are_labelled() {
        let table = render_table(&[entry("d1", true, true)]);
        assert!(
            table.lines().nth(1).unwrap().contains("(delete marker)"),
            "{table}"
        );
    }
}
