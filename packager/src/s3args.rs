//! Where releases go: S3 flags shared by `release`, `history` and `rollback`, merged
//! with the environment and the `[s3]` table of `hoist.toml`.
//!
//! Precedence, per setting: command-line flag, then environment variable, then
//! `[s3]` in the manifest, then the default. The environment variables are the
//! standard AWS ones where they exist (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`)
//! and `HOIST_S3_BUCKET`, `HOIST_S3_KEY`, `HOIST_S3_PATH_STYLE` otherwise.
//! Credentials always come from the standard AWS chain (environment, profile, instance
//! profile), never from hoist's own settings.
//!
//! ```toml
//! [s3]
//! bucket = "acme-releases"
//! key = "releases/hello.deb"     # default: releases/PACKAGE.deb
//! region = "eu-west-1"
//! endpoint = "http://10.0.0.5:9000"
//! path-style = true
//! profile = "release"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_s3::S3Settings;

/// S3 flags, flattened into each subcommand that talks to the bucket.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// Bucket holding the releases (versioning should be enabled).
    #[arg(long, env = "HOIST_S3_BUCKET", value_name = "NAME")]
    pub bucket: Option<String>,

    /// Object key of the release [default: releases/PACKAGE.deb].
    #[arg(long, env = "HOIST_S3_KEY", value_name = "KEY")]
    pub key: Option<String>,

    /// AWS region [default: from the AWS profile, else us-east-1].
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Endpoint URL of an S3-compatible server, e.g. http://127.0.0.1:9000.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Path-style addressing (http://endpoint/bucket/key); always used for IP and
    /// localhost endpoints.
    #[arg(long, env = "HOIST_S3_PATH_STYLE")]
    pub path_style: bool,

    /// AWS profile for credentials and region.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// The parts of `hoist.toml` these commands read. Everything else in the file belongs
/// to `hoist build` and is ignored here.
#[derive(Debug, Default, serde::Deserialize)]
struct ManifestView {
    #[serde(default)]
    package: Option<PackageView>,
    #[serde(default)]
    s3: Option<S3Table>,
    #[serde(default)]
    sign: Option<SignTable>,
}

/// The `[sign]` table of `hoist.toml`: `key = "PATH"` of the minisign secret key that
/// `hoist release` and `hoist rollback` sign with (relative to the manifest's directory).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignTable {
    key: Option<PathBuf>,
}

#[derive(Debug, serde::Deserialize)]
struct PackageView {
    name: Option<String>,
}

/// The `[s3]` table of `hoist.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct S3Table {
    bucket: Option<String>,
    key: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    path_style: Option<bool>,
    profile: Option<String>,
}

/// What the manifest contributes: `[s3]` and the package name (for the default key).
#[derive(Debug, Default)]
pub struct ManifestS3 {
    table: S3Table,
    package: Option<String>,
    sign_key: Option<PathBuf>,
}

impl ManifestS3 {
    /// Reads `[s3]` and `package.name` from the manifest at `path`. A missing file is
    /// fine unless `required` (the user named it explicitly); a malformed one is an
    /// error naming the line and key.
    pub fn load(path: &Path, required: bool) -> anyhow::Result<ManifestS3> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(ManifestS3::default());
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot read {}: fix --manifest or run in the service's directory",
                        path.display()
                    )
                });
            }
        };
        let view: ManifestView = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid hoist manifest: {}",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(ManifestS3 {
            table: view.s3.unwrap_or_default(),
            package: view.package.and_then(|p| p.name),
            sign_key: view
                .sign
                .and_then(|s| s.key)
                .filter(|k| !k.as_os_str().is_empty())
                .map(|k| dir.join(k)),
        })
    }

    /// `[sign] key`, made relative to the manifest's directory.
    pub fn sign_key(&self) -> Option<&Path> {
        self.sign_key.as_deref()
    }
}

/// The default key for a package: `releases/PACKAGE.deb`.
pub fn default_key(package: &str) -> String {
    format!("releases/{package}.deb")
}

impl S3Args {
    /// Merges flags/environment (already in `self`) with the manifest's `[s3]`.
    /// `package` names the package being released, for the default key; without it the
    /// manifest's `package.name` is used.
    ///
    /// Errors when no bucket is set anywhere, or no key can be derived.
    pub fn resolve(
        &self,
        manifest: &ManifestS3,
        package: Option<&str>,
    ) -> anyhow::Result<S3Settings> {
        let file = &manifest.table;
        let bucket = first_set(&self.bucket, &file.bucket);
        let Some(bucket) = bucket else {
            bail!(
                "no bucket given: pass --bucket, set HOIST_S3_BUCKET, or add `bucket = \"...\"` \
                 under [s3] in hoist.toml"
            );
        };
        let key = match first_set(&self.key, &file.key) {
            Some(key) => key,
            None => match package.or(manifest.package.as_deref()) {
                Some(package) => default_key(package),
                None => bail!(
                    "no object key given and no package to derive it from: pass --key, set \
                     HOIST_S3_KEY, add `key = \"...\"` under [s3] in hoist.toml, or run where \
                     hoist.toml names the package (default key releases/PACKAGE.deb)"
                ),
            },
        };
        Ok(S3Settings {
            bucket,
            key,
            region: first_set(&self.region, &file.region),
            endpoint: first_set(&self.endpoint, &file.endpoint),
            path_style: self.path_style || file.path_style.unwrap_or(false),
            profile: first_set(&self.profile, &file.profile),
        })
    }
}

/// The first non-empty value (flags and environment come first; an empty environment
/// variable counts as unset).
fn first_set(primary: &Option<String>, fallback: &Option<String>) -> Option<String> {
    [primary, fallback]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> S3Args {
        S3Args {
            bucket: None,
            key: None,
            region: None,
            endpoint: None,
            path_style: false,
            profile: None,
        }
    }

    fn manifest(text: &str) -> anyhow::Result<ManifestS3> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.toml");
        std::fs::write(&path, text).unwrap();
        ManifestS3::load(&path, true)
    }

    #[test]
    fn flags_win_over_the_manifest() {
        let m = manifest(
            "[package]\nname = \"hello\"\n[s3]\nbucket = \"file-b\"\nregion = \"eu-west-1\"\npath-style = true\n",
        )
        .unwrap();
        let mut a = args();
        a.bucket = Some("flag-b".into());
        let s = a.resolve(&m, None).unwrap();
        assert_eq!(s.bucket, "flag-b");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(s.path_style);
        assert_eq!(s.key, "releases/hello.deb");
    }

    #[test]
    fn the_released_package_names_the_default_key() {
        let m = manifest("[package]\nname = \"hello\"\n[s3]\nbucket = \"b\"\n").unwrap();
        let s = args().resolve(&m, Some("other")).unwrap();
        assert_eq!(s.key, "releases/other.deb");
    }

    #[test]
    fn missing_bucket_and_key_say_how_to_set_them() {
        let err = args()
            .resolve(&ManifestS3::default(), Some("p"))
            .unwrap_err();
        assert!(err.to_string().contains("--bucket"), "{err}");
        let mut a = args();
        a.bucket = Some("b".into());
        let err = a.resolve(&ManifestS3::default(), None).unwrap_err();
        assert!(err.to_string().contains("--key"), "{err}");
    }

    #[test]
    fn typos_in_the_s3_table_name_the_line_and_key() {
        let err = manifest("[package]\nname = \"hello\"\n\n[s3]\nbukket = \"b\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 5") && msg.contains("bukket"), "{msg}");
    }

    #[test]
    fn the_sign_key_is_relative_to_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.toml");
        std::fs::write(&path, "[sign]\nkey = \"keys/release.key\"\n").unwrap();
        let m = ManifestS3::load(&path, true).unwrap();
        assert_eq!(
            m.sign_key(),
            Some(dir.path().join("keys/release.key").as_path())
        );
        std::fs::write(&path, "[sign]\nkee = \"x\"\n").unwrap();
        let err = ManifestS3::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("kee"), "{err}");
    }

    #[test]
    fn a_missing_default_manifest_is_fine_an_explicit_one_is_not() {
        let path = Path::new("/nonexistent/hoist.toml");
        assert!(ManifestS3::load(path, false).is_ok());
        assert!(ManifestS3::load(path, true).is_err());
    }
}
