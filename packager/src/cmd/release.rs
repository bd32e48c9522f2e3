//! `hoist release`: upload a `.deb` (built first unless one is given) as the new
//! current version of `s3://BUCKET/KEY`.
//!
//! - Refuses a bucket without versioning (rollback would be impossible) unless
//!   `--allow-unversioned`, which warns.
//! - One PUT with Content-MD5, so the server verifies the bytes and the ETag is the
//!   file's MD5 (multipart only above 5 GiB; see [`hoist_s3::DEFAULT_MULTIPART_THRESHOLD`]).
//! - Metadata: package, version, arch, sha256, md5, git commit, releaser, build time,
//!   and the signed release statement (package, version, sha256, bucket, key, time; see
//!   [`hoist_s3::statement`]). The `.deb` signature is written as `FILE.deb.minisig` and
//!   kept in metadata too while it fits S3's 2 KB budget (for older agents).
//! - Signed by default: the key comes from `--sign-key`, `HOIST_SIGN_KEY` or `[sign] key`
//!   in hoist.toml; without one it refuses unless `--unsigned` ([`crate::sign::resolve_key`]).
//!
//! Concurrent releases to one key: the write is conditional on the state seen at the
//! start — `If-Match: <ETag>` of the current version, or `If-None-Match: *` when the
//! key is new. The release whose upload completes first wins; the other fails with
//! "precondition failed", stores nothing, and exits non-zero asking to check
//! `hoist history` and release again. Servers without conditional writes accept both,
//! and the last upload to complete is current (every upload is still kept as a version).
//!
//! Output: the new VersionId alone on stdout (`null` on an unversioned bucket), a
//! summary on stderr; `--json` prints one JSON object on stdout instead.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use hoist_s3::statement::ReleaseStatement;
use hoist_s3::{
    Head, MAX_USER_METADATA_BYTES, ObjectInfo, PutOptions, ReleaseMetadata, S3, S3Error, Versioning,
};

use crate::cmd::build::{BuildArgs, build_package};
use crate::s3args::{ManifestS3, S3Args};
use crate::sign::Signer;

/// Arguments of `hoist release`.
#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// Upload this .deb instead of building one from the manifest.
    #[arg(long, value_name = "PATH")]
    pub deb: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub s3: S3Args,

    /// Release even to a bucket without versioning; `hoist rollback` will then be
    /// impossible and a release overwrites the previous one for good.
    #[arg(long)]
    pub allow_unversioned: bool,

    /// Sign the release with this minisign secret key (from `hoist keygen` or
    /// `minisign -G`); an encrypted key's password comes from HOIST_SIGN_PASSWORD or
    /// the terminal. Default: `[sign] key` in hoist.toml.
    #[arg(long, env = "HOIST_SIGN_KEY", value_name = "PATH")]
    pub sign_key: Option<PathBuf>,

    /// Publish without a signature when no signing key is configured (agents refuse
    /// it unless their watch says `allow_unsigned = true`).
    #[arg(long)]
    pub unsigned: bool,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The package to release.
struct Package {
    path: PathBuf,
    name: String,
    version: String,
    arch: String,
}

/// What `--json` prints.
#[derive(Debug, serde::Serialize)]
struct ReleaseReport {
    bucket: String,
    key: String,
    endpoint: String,
    version_id: Option<String>,
    previous_version_id: Option<String>,
    etag: String,
    versioning: &'static str,
    file: PathBuf,
    size: u64,
    signature_file: Option<PathBuf>,
    /// Public key (minisign base64) matching the signature.
    public_key: Option<String>,
    #[serde(flatten)]
    metadata: ReleaseMetadata,
}

/// Runs `hoist release`.
pub async fn run(args: ReleaseArgs) -> anyhow::Result<()> {
    let package = resolve_package(&args).await?;
    let manifest_required = args.build.manifest != Path::new("hoist.toml");
    let manifest = ManifestS3::load(
        &args.build.manifest,
        manifest_required && args.deb.is_none(),
    )?;
    let key = crate::sign::resolve_key(
        args.sign_key.as_deref(),
        manifest.sign_key(),
        args.unsigned,
        "publish",
    )?;
    // Ask for the key's password before talking to S3.
    let signer = key.as_deref().map(Signer::load).transpose()?;
    let settings = args.s3.resolve(&manifest, Some(&package.name))?;
    let s3 = S3::connect(&settings).await?;

    let versioning = s3.versioning().await?;
    check_versioning(versioning, args.allow_unversioned, &s3)?;

    let (previous, options) = conditional_write(&s3).await?;

    let digests = hoist_s3::file_digests(&package.path)
        .await
        .with_context(|| format!("cannot read {}", package.path.display()))?;
    let sha256 = digests.sha256_hex();
    let mut metadata = ReleaseMetadata {
        package: Some(package.name.clone()),
        version: Some(package.version.clone()),
        arch: Some(package.arch.clone()),
        sha256: Some(sha256.clone()),
        md5: Some(digests.md5_hex()),
        git_commit: git_commit(&source_dir(&args)),
        releaser: Some(releaser()),
        build_time: build_time(&package.path),
        ..ReleaseMetadata::default()
    };
    let (signature, public_key) = match &signer {
        Some(signer) => {
            let statement = ReleaseStatement {
                package: package.name.clone(),
                version: package.version.clone(),
                sha256: sha256.clone(),
                bucket: settings.bucket.clone(),
                key: settings.key.clone(),
                time: hoist_s3::statement::truncate_to_millis(SystemTime::now()),
            };
            statement.validate().context("cannot sign this release")?;
            let text = statement.render();
            metadata.statement_sig = Some(signer.sign_statement(&text)?);
            metadata.statement = Some(text.clone());
            let sig = signer.sign_package(&package.path, &text)?;
            metadata.minisig = Some(hoist_s3::signature::encode_minisig(&sig.text));
            fit_metadata_budget(&mut metadata);
            (Some(sig), Some(signer.public_key_base64()))
        }
        None => (None, None),
    };

    let bar = progress_bar(digests.size, args.json);
    let options = PutOptions {
        progress: bar.clone().map(|bar| {
            Arc::new(move |sent: u64, _total: u64| bar.set_position(sent)) as hoist_s3::ProgressFn
        }),
        ..options
    };
    let result = s3.put_file(&package.path, &metadata, &options).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(S3Error::PreconditionFailed { at, .. }) => bail!(
            "another release or rollback changed {at} while this one was uploading \
             ({} {} was NOT released; the other one is current): check `hoist history`, then \
             release again if this package should win",
            package.name,
            package.version
        ),
        Err(e) => return Err(e.into()),
    };

    let report = ReleaseReport {
        bucket: settings.bucket.clone(),
        key: settings.key.clone(),
        endpoint: s3.location().endpoint.clone(),
        version_id: outcome.version_id.clone(),
        previous_version_id: previous.and_then(|p| p.version_id),
        etag: outcome.etag,
        versioning: match versioning {
            Versioning::Enabled => "enabled",
            Versioning::Suspended => "suspended",
            Versioning::Never => "never",
        },
        file: package.path.clone(),
        size: digests.size,
        signature_file: signature.map(|s| s.path),
        public_key,
        metadata,
    };
    print_report(&report, args.json)
}

/// Keeps the metadata within S3's 2 KB: the `.deb` signature (`hoist-minisig`) is only
/// there for agents older than signed statements, so it is the part dropped (with a
/// warning) when everything does not fit. Too large without it → the upload's own
/// check names the problem.
pub fn fit_metadata_budget(metadata: &mut ReleaseMetadata) {
    let total = metadata.user_metadata_bytes();
    if total > MAX_USER_METADATA_BYTES && metadata.minisig.is_some() {
        metadata.minisig = None;
        tracing::warn!(
            "the metadata would take {total} of S3's {MAX_USER_METADATA_BYTES} bytes: the .deb \
             signature (hoist-minisig, read only by agents older than signed statements) is \
             left out; current agents check the signed statement"
        );
    }
}

/// The current object and the matching condition for the write: `If-Match` its ETag,
/// or `If-None-Match: *` when the key has no current object.
async fn conditional_write(s3: &S3) -> anyhow::Result<(Option<ObjectInfo>, PutOptions)> {
    match s3.head(None).await {
        Ok(Head::Found(current)) => {
            let options = PutOptions {
                if_match: Some(current.etag.clone()),
                ..PutOptions::default()
            };
            Ok((Some(current), options))
        }
        Ok(Head::NotModified) => bail!(
            "{} answered 304 Not Modified to a HEAD without If-None-Match, which S3 never does: \
             check that the endpoint is an S3 server",
            s3.location()
        ),
        Err(S3Error::NoSuchKey { .. }) => Ok((
            None,
            PutOptions {
                if_none_match_any: true,
                ..PutOptions::default()
            },
        )),
        Err(e) => Err(e.into()),
    }
}

/// Builds the package, or reads the given one.
async fn resolve_package(args: &ReleaseArgs) -> anyhow::Result<Package> {
    let (path, info) = match &args.deb {
        Some(path) => {
            let info = hoist_deb::inspect(path)
                .with_context(|| format!("cannot release {}", path.display()))?;
            (path.clone(), info)
        }
        None => {
            let build = args.build.clone();
            let built = tokio::task::spawn_blocking(move || build_package(&build))
                .await
                .context("the build task panicked")??;
            (built.path, built.info)
        }
    };
    Ok(Package {
        path,
        name: info.package,
        version: info.version,
        arch: info.architecture,
    })
}

fn check_versioning(
    versioning: Versioning,
    allow_unversioned: bool,
    s3: &S3,
) -> anyhow::Result<()> {
    let bucket = &s3.settings().bucket;
    let state = match versioning {
        Versioning::Enabled => return Ok(()),
        Versioning::Suspended => "suspended",
        Versioning::Never => "not enabled",
    };
    if allow_unversioned {
        tracing::warn!(
            "versioning is {state} on bucket `{bucket}`: this release replaces the previous one \
             for good and `hoist rollback` cannot bring it back"
        );
        return Ok(());
    }
    bail!(
        "versioning is {state} on bucket `{bucket}` ({}), so a release would overwrite the \
         previous one and rollback would be impossible: enable it (`aws s3api \
         put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled`) or \
         pass --allow-unversioned",
        s3.location().endpoint
    )
}

/// The source tree the release comes from: the manifest's directory when building,
/// the current directory otherwise.
fn source_dir(args: &ReleaseArgs) -> PathBuf {
    if args.deb.is_none()
        && let Some(dir) = args.build.manifest.parent()
        && !dir.as_os_str().is_empty()
    {
        return dir.to_path_buf();
    }
    PathBuf::from(".")
}

/// `git rev-parse HEAD` of `dir`, with `-dirty` when tracked files have changes;
/// `None` outside a git work tree or without git.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--verify", "HEAD"]).filter(|c| !c.is_empty())?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// `$HOIST_RELEASER`, else `user@host` (non-ASCII characters replaced by `?`, since
/// S3 metadata is ASCII).
fn releaser() -> String {
    if let Ok(releaser) = std::env::var("HOIST_RELEASER")
        && !releaser.trim().is_empty()
    {
        return releaser.trim().to_string();
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| nix::unistd::getuid().to_string());
    let host = nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// The package file's modification time (when it was built) as RFC 3339 UTC.
fn build_time(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    format_time(modified)
}

/// RFC 3339 UTC with second precision, e.g. `2026-01-02T03:04:05Z`.
pub fn format_time(t: SystemTime) -> Option<String> {
    let t = time::OffsetDateTime::from(t).replace_nanosecond(0).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A progress bar on stderr when it is a terminal (and not `--json`).
fn progress_bar(size: u64, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(size);
    let style = indicatif::ProgressStyle::with_template(
        "uploading {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}

fn print_report(report: &ReleaseReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("cannot encode the report as JSON")?
        );
        return Ok(());
    }
    let meta = &report.metadata;
    let unset = || "-".to_string();
    eprintln!(
        "released {} {} ({}) to s3://{}/{} at {}",
        meta.package.clone().unwrap_or_else(unset),
        meta.version.clone().unwrap_or_else(unset),
        meta.arch.clone().unwrap_or_else(unset),
        report.bucket,
        report.key,
        report.endpoint
    );
    eprintln!(
        "  version id {}  (previous: {})",
        report.version_id.as_deref().unwrap_or("null"),
        report.previous_version_id.as_deref().unwrap_or("none")
    );
    eprintln!(
        "  sha256 {}  size {}  commit {}",
        meta.sha256.clone().unwrap_or_else(unset),
        report.size,
        meta.git_commit.clone().unwrap_or_else(unset)
    );
    if let (Some(sig), Some(key)) = (&report.signature_file, &report.public_key) {
        eprintln!("  signed with public key {key}: {}", sig.display());
        if let Some(statement) = &meta.statement {
            eprintln!("  statement: {statement}");
        }
    } else {
        eprintln!("  UNSIGNED: only agents whose watch says allow_unsigned = true install it");
    }
    println!("{}", report.version_id.as_deref().unwrap_or("null"));
    Ok(())
}
