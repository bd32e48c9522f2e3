//! `hoist cloud-init`: renders the `#cloud-config` user-data that bootstraps a new host
//! (writes the agent's config, installs a verified `hoist-agent` package, syncs once,
//! enables the agent). Put the output in a launch template or `--user-data`.
//!
//! The agent package comes from one of two places:
//! - a URL you host (`--agent-url`), with its SHA-256 given (`--agent-sha256`) or
//!   computed from the local file (`--agent-deb`);
//! - the S3 key it was released to with `hoist release` (`--bucket`/`--key`…): the
//!   SHA-256 is read from the release metadata and the URL is presigned for that exact
//!   VersionId, valid for `--expires` (at most 7 days — for autoscaling groups whose
//!   hosts launch later than that, host the package at a stable URL instead).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hoist_s3::{Head, S3};

use crate::s3args::S3Args;
use crate::userdata::{Bootstrap, render};

/// Arguments of `hoist cloud-init`.
#[derive(Debug, clap::Args)]
pub struct CloudInitArgs {
    /// The agent config to install as /etc/hoist/agent.toml on the host.
    #[arg(long, value_name = "PATH")]
    pub agent_config: PathBuf,

    /// URL the host downloads the hoist-agent package from (instead of presigning
    /// the S3 key given by --bucket/--key).
    #[arg(long, value_name = "URL")]
    pub agent_url: Option<String>,

    /// SHA-256 of the package at --agent-url.
    #[arg(
        long,
        value_name = "HEX",
        requires = "agent_url",
        conflicts_with = "agent_deb"
    )]
    pub agent_sha256: Option<String>,

    /// Local copy of the package at --agent-url, to compute its SHA-256.
    #[arg(long, value_name = "PATH", requires = "agent_url")]
    pub agent_deb: Option<PathBuf>,

    /// Where `hoist-agent` was released (key default: releases/hoist-agent.deb).
    #[command(flatten)]
    pub s3: S3Args,

    /// How long a presigned URL stays valid, e.g. 1h, 2d (at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub expires: Duration,

    /// Write the user-data here instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs `hoist cloud-init`.
pub async fn run(args: CloudInitArgs) -> anyhow::Result<()> {
    let config = std::fs::read_to_string(&args.agent_config).with_context(|| {
        format!(
            "cannot read the agent config `{}`: pass the path of an agent.toml with --agent-config",
            args.agent_config.display()
        )
    })?;
    toml::from_str::<toml::Table>(&config).with_context(|| {
        format!(
            "`{}` is not valid TOML; check it with `hoist-agent check-config --config {}`",
            args.agent_config.display(),
            args.agent_config.display()
        )
    })?;

    let (url, sha256) = match &args.agent_url {
        Some(url) => (url.clone(), local_sha256(&args)?),
        None => presigned(&args).await?,
    };
    let user_data = render(&Bootstrap {
        agent_config: &config,
        agent_url: &url,
        agent_sha256: &sha256,
    })?;
    match &args.output {
        Some(path) => {
            write_atomically(path, user_data.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{user_data}"),
    }
    Ok(())
}

/// The SHA-256 for `--agent-url`: given, or computed from `--agent-deb`.
fn local_sha256(args: &CloudInitArgs) -> anyhow::Result<String> {
    if let Some(sha) = &args.agent_sha256 {
        return Ok(sha.clone());
    }
    let Some(deb) = &args.agent_deb else {
        bail!(
            "--agent-url needs the package's SHA-256: pass --agent-sha256 HEX or the local file with --agent-deb PATH"
        );
    };
    let digests = hoist_s3::file_digests_blocking(deb)
        .with_context(|| format!("cannot read `{}` to compute its SHA-256", deb.display()))?;
    Ok(hex::encode(digests.sha256))
}

/// A presigned URL for the current version of the agent's release key, with the
/// SHA-256 from its release metadata.
async fn presigned(args: &CloudInitArgs) -> anyhow::Result<(String, String)> {
    if args.s3.bucket.is_none() {
        bail!(
            "no agent package given: pass --agent-url (with --agent-sha256 or --agent-deb), or --bucket (and --key) of the released hoist-agent package"
        );
    }
    let settings = args
        .s3
        .resolve(&Default::default(), Some("hoist-agent"))
        .context("cannot tell where the hoist-agent package was released")?;
    let s3 = S3::connect(&settings).await?;
    let Head::Found(info) = s3.head(None).await? else {
        bail!("S3 answered 304 to a HEAD without a condition; this is a server bug");
    };
    let Some(sha256) = info.metadata.sha256.clone() else {
        bail!(
            "s3://{}/{} has no hoist-sha256 metadata, so hosts could not verify it: release it with `hoist release`",
            settings.bucket,
            settings.key
        );
    };
    let url = s3
        .presign_get(info.version_id.as_deref(), args.expires)
        .await?;
    Ok((url, sha256))
}

/// Writes `bytes` to `path` through a temp file and a rename.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
