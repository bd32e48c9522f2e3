//! `hoist cloud-init`: renders the `#cloud-config` user-data that bootstraps a new host
//! (writes the agent's config, installs the verified `hoist-agent` package, syncs once,
//! enables the agent). Put the output in a launch template or `--user-data`.
//!
//! Before rendering anything it downloads the agent package released with `hoist
//! release` (the current version of `--key`, or `--version-id`), verifies its minisign
//! signature with the release key's public key (`--public-key`/`--public-key-file`, else
//! the `public_key` of the agent's own watch in the agent config), and refuses an
//! unsigned or tampered object. The user-data then pins that exact VersionId and the
//! SHA-256 of the verified bytes. How hosts fetch it:
//!
//! - by default with their own instance credentials (IMDSv2, then a GET signed with
//!   `curl --aws-sigv4`): nothing in the user-data expires, so it stays valid as long as
//!   the launch template lives. The instance profile needs `hoist iam-policy --for host`.
//! - `--presign --expires D`: a presigned URL, for stores without instance
//!   credentials; it stops working after D (at most 7 days), sooner when the
//!   credentials that signed it are temporary — the real expiry is printed.
//! - `--agent-url URL --agent-deb FILE`: a URL you host; FILE (with `FILE.minisig`
//!   next to it) is verified instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use hoist_s3::S3;
use hoist_s3::authenticate::Expected;

use crate::agent_object::{
    VerifiedAgent, parse_public_key, verify_agent_file, verify_agent_object,
};
use crate::s3args::S3Args;
use crate::userdata::{AgentSource, Bootstrap, render};

/// The agent's Debian package name.
const AGENT_PACKAGE: &str = "hoist-agent";

/// Arguments of `hoist cloud-init`.
#[derive(Debug, clap::Args)]
pub struct CloudInitArgs {
    /// The agent config to install as /etc/hoist/agent.toml on the host.
    #[arg(long, value_name = "PATH")]
    pub agent_config: PathBuf,

    /// Where `hoist-agent` was released (key default: releases/hoist-agent.deb).
    #[command(flatten)]
    pub s3: S3Args,

    /// Pin this VersionId of the key instead of the current version.
    #[arg(long, value_name = "ID", conflicts_with = "agent_url")]
    pub version_id: Option<String>,

    /// The release key's minisign public key (the `RW…` line) [default: the
    /// public_key of the hoist-agent watch in --agent-config].
    #[arg(long, value_name = "KEY", conflicts_with = "public_key_file")]
    pub public_key: Option<String>,

    /// File holding the release key's minisign public key (as written by `hoist keygen`).
    #[arg(long, value_name = "PATH")]
    pub public_key_file: Option<PathBuf>,

    /// Hosts download a presigned URL instead of signing the request with their
    /// instance credentials (for stores without instance credentials).
    #[arg(long, conflicts_with = "agent_url")]
    pub presign: bool,

    /// How long the presigned URL stays valid, e.g. 1h, 2d (at most 7d; shorter when
    /// the credentials that sign it are temporary).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration, requires = "presign")]
    pub expires: Duration,

    /// URL the host downloads the hoist-agent package from, instead of the S3 key.
    #[arg(long, value_name = "URL")]
    pub agent_url: Option<String>,

    /// Local copy of the package at --agent-url; `FILE.minisig` next to it is verified.
    #[arg(long, value_name = "PATH", requires = "agent_url")]
    pub agent_deb: Option<PathBuf>,

    /// SHA-256 of the package at --agent-url, when it cannot be verified here (needs
    /// --allow-unsigned).
    #[arg(
        long,
        value_name = "HEX",
        requires = "agent_url",
        conflicts_with = "agent_deb"
    )]
    pub agent_sha256: Option<String>,

    /// Render without checking a signature (the SHA-256 is still pinned). Hosts then
    /// trust whoever could write the object when this ran.
    #[arg(long)]
    pub allow_unsigned: bool,

    /// Write the user-data here instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs `hoist cloud-init`.
pub async fn run(args: CloudInitArgs) -> anyhow::Result<()> {
    let config = std::fs::read(&args.agent_config).with_context(|| {
        format!(
            "cannot read the agent config `{}`: pass the path of an agent.toml with --agent-config",
            args.agent_config.display()
        )
    })?;
    let table = std::str::from_utf8(&config)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(text).ok())
        .with_context(|| {
            format!(
                "`{}` is not valid TOML; check it with `hoist-agent check-config --config {}`",
                args.agent_config.display(),
                args.agent_config.display()
            )
        })?;
    let key = public_key(&args, &table)?;
    if key.is_none() && !args.allow_unsigned {
        bail!(
            "no public key to verify the hoist-agent package with: pass --public-key or --public-key-file (the release key's .pub), or set public_key in the agent config's hoist-agent watch (--allow-unsigned renders without a check)"
        );
    }
    if key.is_none() {
        tracing::warn!(
            "--allow-unsigned: the agent package's signature is NOT checked; hosts will trust whatever was at the key now"
        );
    }

    let user_data = match &args.agent_url {
        Some(url) => {
            let sha256 = hosted_sha256(&args, key.as_ref())?;
            render(&Bootstrap {
                agent_config: &config,
                source: AgentSource::Url {
                    url,
                    note: "from a URL given to hoist cloud-init",
                },
                agent_sha256: &sha256,
            })?
        }
        None => from_s3(&args, key.as_ref(), &config).await?,
    };
    match &args.output {
        Some(path) => {
            write_atomically(path, user_data.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{user_data}"),
    }
    Ok(())
}

/// The release key: from the flags, else the hoist-agent watch of the agent config.
/// A key given on the command line must equal the one in the agent watch, if any
/// (hosts would otherwise trust another key for their updates than the one checked here).
fn public_key(
    args: &CloudInitArgs,
    config: &toml::Table,
) -> anyhow::Result<Option<minisign_verify::PublicKey>> {
    let from_flags = match (&args.public_key, &args.public_key_file) {
        (Some(text), _) => {
            Some(parse_public_key(text).map_err(|e| anyhow::anyhow!("--public-key is {e}"))?)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the public key file `{}`", path.display()))?;
            Some(
                parse_public_key(&text)
                    .map_err(|e| anyhow::anyhow!("`{}` is {e}", path.display()))?,
            )
        }
        (None, None) => None,
    };
    let watch = agent_watch(config, args.s3.key.as_deref());
    let inline = watch
        .and_then(|w| w.get("public_key"))
        .and_then(|v| v.as_str());
    let from_config = inline
        .map(|text| {
            parse_public_key(text).map_err(|e| {
                anyhow::anyhow!("the hoist-agent watch's public_key in the agent config is {e}")
            })
        })
        .transpose()?;
    match (from_flags, from_config) {
        (Some(flag), Some(conf)) if flag != conf => bail!(
            "the public key given differs from the hoist-agent watch's public_key in the agent config: hosts would verify their agent updates with another key than this bootstrap; use one key"
        ),
        (Some(key), _) | (None, Some(key)) => Ok(Some(key)),
        (None, None) => {
            if let Some(file) = watch
                .and_then(|w| w.get("public_key_file"))
                .and_then(|v| v.as_str())
            {
                bail!(
                    "the hoist-agent watch reads its key from public_key_file = \"{file}\" on the host; pass the same key here with --public-key-file PATH"
                );
            }
            Ok(None)
        }
    }
}

/// The agent config's watch of the agent package (the one on `key` when several).
fn agent_watch<'a>(config: &'a toml::Table, key: Option<&str>) -> Option<&'a toml::Table> {
    let watches: Vec<&toml::Table> = config
        .get("watch")?
        .as_array()?
        .iter()
        .filter_map(|w| w.as_table())
        .filter(|w| w.get("package").and_then(|p| p.as_str()) == Some(AGENT_PACKAGE))
        .collect();
    let on_key = |w: &&toml::Table| {
        key.is_some()
            && w.get("s3")
                .and_then(|s| s.get("key"))
                .and_then(|k| k.as_str())
                == key
    };
    watches
        .iter()
        .copied()
        .find(on_key)
        .or(watches.first().copied())
}

/// The SHA-256 for `--agent-url`: of `--agent-deb`, verified with its `.minisig`; or
/// `--agent-sha256` as given (only with --allow-unsigned).
fn hosted_sha256(
    args: &CloudInitArgs,
    key: Option<&minisign_verify::PublicKey>,
) -> anyhow::Result<String> {
    if let Some(deb) = &args.agent_deb {
        let Some(key) = key else {
            let digests = hoist_s3::file_digests_blocking(deb)
                .with_context(|| format!("cannot read `{}`", deb.display()))?;
            return Ok(hex::encode(digests.sha256));
        };
        let sig_path = PathBuf::from(format!(
            "{}{}",
            deb.display(),
            hoist_s3::signature::MINISIG_SUFFIX
        ));
        let minisig = match std::fs::read_to_string(&sig_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "`{}` has no signature beside it (`{}`): pass the package `hoist release --sign-key` signed, with its .minisig, or --allow-unsigned",
                deb.display(),
                sig_path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read `{}`", sig_path.display()));
            }
        };
        let verified = verify_agent_file(key, &minisig, deb, AGENT_PACKAGE)
            .with_context(|| format!("refusing `{}` ({})", deb.display(), sig_path.display()))?;
        report_verified(&deb.display().to_string(), &verified);
        return Ok(verified.sha256);
    }
    match &args.agent_sha256 {
        Some(sha) if args.allow_unsigned || key.is_none() => Ok(sha.clone()),
        Some(_) => bail!(
            "--agent-sha256 cannot be verified against the public key: pass the package with --agent-deb FILE (and FILE.minisig next to it)"
        ),
        None => bail!(
            "--agent-url needs the package: pass the local copy with --agent-deb FILE (or --agent-sha256 HEX with --allow-unsigned)"
        ),
    }
}

/// Downloads, verifies and pins the released agent package; renders the user-data.
async fn from_s3(
    args: &CloudInitArgs,
    key: Option<&minisign_verify::PublicKey>,
    config: &[u8],
) -> anyhow::Result<String> {
    if args.s3.bucket.is_none() {
        bail!(
            "no agent package given: pass --bucket (and --key) of the hoist-agent package released with `hoist release`, or --agent-url with --agent-deb"
        );
    }
    let settings = args
        .s3
        .resolve(&Default::default(), Some(AGENT_PACKAGE))
        .context("cannot tell where the hoist-agent package was released")?;
    let s3 = S3::connect(&settings).await?;
    let object = format!("s3://{}/{}", settings.bucket, settings.key);
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let deb = dir.path().join("hoist-agent.deb");
    let (info, mut body) = s3.get(args.version_id.as_deref()).await?;
    if let Some(wanted) = &args.version_id
        && info.version_id.as_deref() != Some(wanted.as_str())
    {
        bail!(
            "{object}: asked for version {wanted} but the server answered with {}: it does not keep versions (enable versioning on the bucket)",
            info.version_id.as_deref().unwrap_or("no version")
        );
    }
    let mut file = tokio::fs::File::create(&deb)
        .await
        .with_context(|| format!("cannot create `{}`", deb.display()))?;
    tokio::io::copy(&mut body, &mut file)
        .await
        .with_context(|| format!("cannot download {object}"))?;
    drop(file);
    let version = info.version_id.clone().filter(|v| v != "null");
    let described = match &version {
        Some(v) => format!("{object} version {v}"),
        None => object.clone(),
    };
    let sha256 = match key {
        Some(key) => {
            let deb = deb.clone();
            let metadata = info.metadata.clone();
            let key = key.clone();
            let (bucket, object_key) = (settings.bucket.clone(), settings.key.clone());
            let verified = tokio::task::spawn_blocking(move || {
                let expected = Expected {
                    bucket: &bucket,
                    key: &object_key,
                    package: AGENT_PACKAGE,
                };
                verify_agent_object(&key, &metadata, expected, &deb)
            })
            .await
            .context("the verification task failed")?
            .with_context(|| format!("refusing {described}"))?;
            report_verified(&described, &verified);
            verified.sha256
        }
        None => {
            let digests = hoist_s3::file_digests(&deb)
                .await
                .with_context(|| format!("cannot read the download of {object}"))?;
            hex::encode(digests.sha256)
        }
    };
    if version.is_none() {
        tracing::warn!(
            "{object} has no VersionId (the bucket does not keep versions): hosts download whatever is at the key and refuse it unless its SHA-256 is {sha256}; enable versioning so the user-data pins one version"
        );
    }
    if args.presign {
        let presigned = s3
            .presign_get_until(version.as_deref(), args.expires)
            .await?;
        let until =
            crate::cmd::release::format_time(presigned.expires_at).unwrap_or_else(|| "?".into());
        let left = presigned
            .expires_at
            .duration_since(SystemTime::now())
            .map(|d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string())
            .unwrap_or_else(|_| "0s".into());
        let why = if presigned.limited_by_credentials {
            " — the temporary credentials that signed it expire then, before --expires"
        } else {
            ""
        };
        eprintln!(
            "presigned URL valid until {until} (in {left}){why}; hosts launched later come up without the agent: render again, or drop --presign so hosts use their instance credentials"
        );
        let note = format!("from a presigned URL valid until {until}");
        return Ok(render(&Bootstrap {
            agent_config: config,
            source: AgentSource::Url {
                url: &presigned.url,
                note: &note,
            },
            agent_sha256: &sha256,
        })?);
    }
    let url = s3.object_url(version.as_deref()).await?;
    let region = s3.region();
    eprintln!(
        "hosts fetch {described} with their instance credentials (IMDSv2, SigV4 for {region}); their role needs `hoist iam-policy --for host --key {}`",
        settings.key
    );
    Ok(render(&Bootstrap {
        agent_config: config,
        source: AgentSource::InstanceCredentials {
            url: &url,
            region: &region,
        },
        agent_sha256: &sha256,
    })?)
}

/// Prints what was verified.
fn report_verified(what: &str, verified: &VerifiedAgent) {
    eprintln!(
        "verified {what}: {} {} ({}), sha256 {}, signed `{}`",
        verified.package,
        verified.version,
        verified.architecture,
        verified.sha256,
        verified.statement
    );
}

/// Writes `bytes` to `path` through a temp file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
