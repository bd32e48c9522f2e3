//! The agent's configuration file (`/etc/hoist/agent.toml` by default).
//!
//! [`AgentConfig::load`] parses the TOML (syntax and type errors carry the line and
//! column and name the field) and then [`AgentConfig::validate`] checks what the types
//! cannot express (unique watch names, usable public keys, absolute paths, …). Every
//! error names the offending field, e.g. `watch[0] (hello).health.url`.
//!
//! ```toml
//! state_dir = "/var/lib/hoist-agent"   # default
//! interval = "10s"                      # default poll interval
//! jitter = "2s"                         # each poll waits interval ± jitter (default interval/5)
//! backoff_max = "5m"                    # cap of the error backoff
//! keep_packages = 3                     # cached .debs kept per watch
//! max_package_size = "1GiB"             # larger objects are refused unread (per watch too)
//!
//! [dpkg]
//! root = "/srv/chroot"                  # optional: dpkg --root=ROOT (tests, chroots)
//! lock_timeout = "5m"                   # how long to wait for the dpkg lock
//! timeout = "10m"                       # time limit of one dpkg run (scripts included)
//!
//! [[watch]]
//! name = "hello"
//! package = "hello"
//! public_key = "RWQ…"                   # or public_key_file = "/etc/hoist/hello.pub";
//!                                       # required unless allow_unsigned = true
//! s3 = { bucket = "releases", key = "hello.deb", region = "eu-west-1" }
//! max_package_size = "200MiB"          # overrides the global bound
//! signal = { kind = "systemd", unit = "hello.service" }
//! # or { kind = "pidfile", path = "/run/hello.pid", user = "hello", exe = "/usr/bin/hello" }
//! health = { kind = "http", url = "http://127.0.0.1:8080/healthz", within = "10s" }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_s3::S3Settings;
use serde::Deserialize;

use crate::duration;
use crate::size;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hoist/agent.toml";
/// Default state directory (state file, cached packages, partial downloads).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hoist-agent";
/// Default bound on a package's size (`max_package_size`): 1 GiB.
pub const DEFAULT_MAX_PACKAGE_SIZE: u64 = 1 << 30;

/// Why a configuration could not be used. The message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read the agent config `{path}`: {source}; create it or pass --config / HOIST_AGENT_CONFIG"
    )]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type / unknown field.
    #[error("invalid agent config `{path}`: {message}")]
    Parse {
        /// The config path.
        path: PathBuf,
        /// toml's message, which names the line, column and field.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("invalid agent config `{path}`: {field}: {problem}")]
    Invalid {
        /// The config path.
        path: PathBuf,
        /// Dotted path of the field, e.g. `watch[0] (hello).health.url`.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Directory for the state file, cached packages and partial downloads.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Default poll interval of every watch.
    #[serde(
        default = "default_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub interval: Duration,
    /// Default jitter: each poll waits `interval ± jitter` (default: a fifth of the interval).
    #[serde(default, deserialize_with = "duration::option::deserialize")]
    pub jitter: Option<Duration>,
    /// Upper bound of the exponential backoff after S3 errors.
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "duration::deserialize"
    )]
    pub backoff_max: Duration,
    /// How many cached `.deb` files to keep per watch (at least 2: installed + previous good).
    #[serde(default = "default_keep_packages")]
    pub keep_packages: usize,
    /// Objects larger than this (per the HEAD's Content-Length) are refused and marked
    /// bad without being downloaded; a watch may override it. `"500MiB"`, `"1GiB"`, or bytes.
    #[serde(
        default = "default_max_package_size",
        deserialize_with = "size::deserialize"
    )]
    pub max_package_size: u64,
    /// How dpkg is run.
    #[serde(default)]
    pub dpkg: DpkgSettings,
    /// The watched objects.
    #[serde(rename = "watch", default)]
    pub watches: Vec<WatchConfig>,
}

/// The `[dpkg]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpkgSettings {
    /// When set, every dpkg and dpkg-query call gets `--root=ROOT` (packages are
    /// installed into that tree; maintainer scripts run chrooted into it).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// How long to wait for another package manager to release the dpkg lock.
    #[serde(
        default = "default_lock_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub lock_timeout: Duration,
    /// Time limit of one `dpkg -i` or `dpkg --configure -a` (maintainer scripts included);
    /// at the limit dpkg and its scripts are killed and the install counts as failed.
    #[serde(
        default = "default_dpkg_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

impl Default for DpkgSettings {
    fn default() -> Self {
        Self {
            root: None,
            lock_timeout: default_lock_timeout(),
            timeout: default_dpkg_timeout(),
        }
    }
}

fn default_dpkg_timeout() -> Duration {
    Duration::from_secs(600)
}

/// One `[[watch]]` entry: an S3 object that carries a package to keep installed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// Unique name; used in logs and as a file name in the state directory.
    pub name: String,
    /// The Debian package the object must contain.
    pub package: String,
    /// Where the object lives.
    pub s3: S3Settings,
    /// How the service is told to pick up the new binary.
    #[serde(default)]
    pub signal: SignalConfig,
    /// How the agent decides that the new version works.
    #[serde(default)]
    pub health: HealthConfig,
    /// Minisign public key (the base64 line, or the whole `.pub` file text). When
    /// set (here or in `public_key_file`), unsigned or wrongly signed packages are refused.
    #[serde(default)]
    pub public_key: Option<String>,
    /// File holding the minisign public key (as written by `minisign -G`).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Install packages without any signature check. Without a public key and without
    /// this, the watch is not started (signed by default; see `signing`).
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Overrides the global poll interval.
    #[serde(default, deserialize_with = "duration::option::deserialize")]
    pub interval: Option<Duration>,
    /// Overrides the global jitter.
    #[serde(default, deserialize_with = "duration::option::deserialize")]
    pub jitter: Option<Duration>,
    /// How long the new process may take to take over after the signal.
    #[serde(
        default = "default_handoff_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub handoff_timeout: Duration,
    /// Overrides the global `max_package_size` for this watch.
    #[serde(default, deserialize_with = "size::option::deserialize")]
    pub max_package_size: Option<u64>,
}

/// How to signal the service after installing (`signal = { kind = "…", … }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SignalConfig {
    /// `systemctl reload UNIT` (the unit's `ExecReload` sends SIGUSR2 to its MainPID);
    /// the handoff is confirmed by a new MainPID.
    Systemd {
        /// The unit, e.g. `hello.service`.
        unit: String,
    },
    /// SIGUSR2 to the pid in this file; the handoff is confirmed when the file names a new pid.
    ///
    /// As systemd's `PIDFile=`, the file is trusted only when it is not a symlink and is
    /// owned by root (or by `user`), and the pid it names must run one of the package's
    /// executables (`exe`, by default the executables the package installs).
    Pidfile {
        /// Absolute path of the pidfile.
        path: PathBuf,
        /// The service's user, who may own the pidfile besides root.
        #[serde(default)]
        user: Option<String>,
        /// The executable the named process must run (default: the package's own).
        #[serde(default)]
        exe: Option<PathBuf>,
    },
    /// SIGUSR2 to every process whose executable's base name is NAME (like `killall -USR2
    /// NAME`) and whose executable is one of the package's (`exe`, by default the
    /// executables the package installs).
    Process {
        /// Executable base name.
        name: String,
        /// The executable the processes must run (default: the package's own).
        #[serde(default)]
        exe: Option<PathBuf>,
    },
    /// Nothing is signalled (the package's own scripts or the service handle it).
    #[default]
    None,
}

/// How to check the service after the handoff (`health = { kind = "…", … }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum HealthConfig {
    /// `GET URL` must answer 2xx within the time given (retried until then).
    Http {
        /// `http://host:port/path` (plain HTTP; the check runs on the host itself).
        url: String,
        /// Deadline for a 2xx answer.
        #[serde(
            default = "default_health_within",
            deserialize_with = "duration::deserialize"
        )]
        within: Duration,
    },
    /// The systemd unit stays active with the new MainPID for the time given.
    Unit {
        /// The unit, e.g. `hello.service`.
        unit: String,
        /// How long it must stay up.
        #[serde(
            default = "default_unit_stable",
            deserialize_with = "duration::deserialize",
            rename = "for"
        )]
        stable_for: Duration,
    },
    /// No check beyond the handoff confirmation.
    #[default]
    None,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}
fn default_keep_packages() -> usize {
    3
}
fn default_max_package_size() -> u64 {
    DEFAULT_MAX_PACKAGE_SIZE
}
fn default_lock_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_handoff_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_health_within() -> Duration {
    Duration::from_secs(10)
}
fn default_unit_stable() -> Duration {
    Duration::from_secs(5)
}

impl AgentConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text`; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the constraints the types cannot express.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: String, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        if !self.state_dir.is_absolute() {
            return Err(invalid(
                "state_dir".into(),
                format!("`{}` must be an absolute path", self.state_dir.display()),
            ));
        }
        if self.interval.is_zero() {
            return Err(invalid("interval".into(), "must be longer than 0s".into()));
        }
        if let Some(jitter) = self.jitter
            && jitter >= self.interval
        {
            return Err(invalid(
                "jitter".into(),
                format!(
                    "{} must be shorter than interval ({})",
                    humantime::format_duration(jitter),
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        if self.max_package_size == 0 {
            return Err(invalid(
                "max_package_size".into(),
                "must be larger than 0 (e.g. \"1GiB\")".into(),
            ));
        }
        if self.keep_packages < 2 {
            return Err(invalid(
                "keep_packages".into(),
                "must be at least 2 (the installed package and the previous good one)".into(),
            ));
        }
        if self.dpkg.timeout < Duration::from_secs(1) {
            return Err(invalid(
                "dpkg.timeout".into(),
                "must be at least 1s (a dpkg run with its maintainer scripts)".into(),
            ));
        }
        if let Some(root) = &self.dpkg.root {
            if !root.is_absolute() {
                return Err(invalid(
                    "dpkg.root".into(),
                    format!("`{}` must be an absolute path", root.display()),
                ));
            }
            if !root.join("var/lib/dpkg").is_dir() {
                return Err(invalid(
                    "dpkg.root".into(),
                    format!(
                        "`{}` has no var/lib/dpkg: point it at a Debian root (e.g. made by debootstrap) or remove it to use the host's dpkg",
                        root.display()
                    ),
                ));
            }
        }
        if self.watches.is_empty() {
            return Err(invalid(
                "watch".into(),
                "no [[watch]] entry: add at least one watched object".into(),
            ));
        }
        let mut names = HashSet::new();
        for (index, watch) in self.watches.iter().enumerate() {
            let field = |name: &str| format!("watch[{index}] ({}).{name}", watch.name);
            if !is_safe_name(&watch.name) {
                return Err(invalid(
                    format!("watch[{index}].name"),
                    format!(
                        "`{}` must be 1-64 characters of letters, digits, `.`, `_` or `-` (it names files in the state directory)",
                        watch.name
                    ),
                ));
            }
            if !names.insert(watch.name.as_str()) {
                return Err(invalid(
                    format!("watch[{index}].name"),
                    format!(
                        "`{}` is used by another watch: names must be unique",
                        watch.name
                    ),
                ));
            }
            if !is_debian_package_name(&watch.package) {
                return Err(invalid(
                    field("package"),
                    format!(
                        "`{}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`; at least 2 characters, starting with a letter or digit)",
                        watch.package
                    ),
                ));
            }
            if watch.s3.bucket.is_empty() {
                return Err(invalid(field("s3.bucket"), "must not be empty".into()));
            }
            if watch.s3.key.is_empty() {
                return Err(invalid(field("s3.key"), "must not be empty".into()));
            }
            let interval = watch.interval.unwrap_or(self.interval);
            let jitter = watch.jitter(self);
            if interval.is_zero() {
                return Err(invalid(field("interval"), "must be longer than 0s".into()));
            }
            if jitter >= interval {
                return Err(invalid(
                    field("jitter"),
                    format!(
                        "{} must be shorter than the watch's interval ({})",
                        humantime::format_duration(jitter),
                        humantime::format_duration(interval)
                    ),
                ));
            }
            if let Err(problem) = watch.load_public_key() {
                let name = if watch.public_key_file.is_some() && watch.public_key.is_none() {
                    "public_key_file"
                } else {
                    "public_key"
                };
                return Err(invalid(field(name), problem));
            }
            if watch.allow_unsigned
                && (watch.public_key.is_some() || watch.public_key_file.is_some())
            {
                return Err(invalid(
                    field("allow_unsigned"),
                    "contradicts the public key set on the same watch: remove allow_unsigned to require signatures, or the key to accept unsigned packages".into(),
                ));
            }
            if watch.max_package_size == Some(0) {
                return Err(invalid(
                    field("max_package_size"),
                    "must be larger than 0 (e.g. \"500MiB\")".into(),
                ));
            }
            validate_signal(&watch.signal).map_err(|(f, p)| invalid(field(f), p))?;
            validate_health(&watch.health).map_err(|(f, p)| invalid(field(f), p))?;
        }
        Ok(())
    }
}

impl WatchConfig {
    /// The effective poll interval (the watch's own or the global one).
    pub fn interval(&self, global: &AgentConfig) -> Duration {
        self.interval.unwrap_or(global.interval)
    }

    /// The effective jitter: the watch's own, else the global one, else a fifth of the
    /// effective interval.
    pub fn jitter(&self, global: &AgentConfig) -> Duration {
        self.jitter
            .or(global.jitter)
            .unwrap_or_else(|| self.interval(global) / 5)
    }

    /// The effective size bound (the watch's own or the global one), in bytes.
    pub fn max_package_size(&self, global: &AgentConfig) -> u64 {
        self.max_package_size.unwrap_or(global.max_package_size)
    }

    /// The configured minisign public key, if any. Errors say what is wrong with it
    /// (both fields set, unreadable file, not a minisign key).
    pub fn load_public_key(&self) -> Result<Option<minisign_verify::PublicKey>, String> {
        let (text, origin) = match (&self.public_key, &self.public_key_file) {
            (Some(_), Some(_)) => {
                return Err("set either public_key or public_key_file, not both".into());
            }
            (None, None) => return Ok(None),
            (Some(text), None) => (text.clone(), "the value".to_owned()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|err| {
                    format!(
                        "cannot read `{}`: {err}; point it at the minisign .pub file",
                        file.display()
                    )
                })?;
                (text, format!("`{}`", file.display()))
            }
        };
        parse_public_key(&text).map(Some).map_err(|err| {
            format!(
                "{origin} is not a minisign public key ({err}); use the `RW…` line of the .pub file written by `minisign -G` or `hoist keygen`"
            )
        })
    }
}

/// Accepts either the bare base64 key or the text of a `.pub` file (comment line + key).
fn parse_public_key(text: &str) -> Result<minisign_verify::PublicKey, minisign_verify::Error> {
    let trimmed = text.trim();
    if trimmed.lines().count() > 1 {
        minisign_verify::PublicKey::decode(trimmed)
    } else {
        minisign_verify::PublicKey::from_base64(trimmed)
    }
}

fn validate_signal(signal: &SignalConfig) -> Result<(), (&'static str, String)> {
    match signal {
        SignalConfig::Systemd { unit } if unit.trim().is_empty() || unit.contains('/') => Err((
            "signal.unit",
            format!("`{unit}` is not a systemd unit name (e.g. `hello.service`)"),
        )),
        SignalConfig::Pidfile { path, .. } if !path.is_absolute() => Err((
            "signal.path",
            format!("`{}` must be an absolute path", path.display()),
        )),
        SignalConfig::Pidfile {
            user: Some(user), ..
        } if !matches!(nix::unistd::User::from_name(user), Ok(Some(_))) => Err((
            "signal.user",
            format!("no user `{user}` on this host: name the user the service runs as"),
        )),
        SignalConfig::Process { name, .. } if name.is_empty() || name.contains('/') => Err((
            "signal.name",
            format!("`{name}` must be an executable's base name, without `/`"),
        )),
        SignalConfig::Pidfile { exe: Some(exe), .. }
        | SignalConfig::Process { exe: Some(exe), .. }
            if !exe.is_absolute() =>
        {
            Err((
                "signal.exe",
                format!(
                    "`{}` must be the absolute path of the service's executable",
                    exe.display()
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn validate_health(health: &HealthConfig) -> Result<(), (&'static str, String)> {
    match health {
        HealthConfig::Http { url, within } => {
            let uri: hyper::Uri = url.parse().map_err(|err| {
                (
                    "health.url",
                    format!("`{url}` is not a URL ({err}); e.g. http://127.0.0.1:8080/healthz"),
                )
            })?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err((
                    "health.url",
                    format!(
                        "`{url}` must be an http:// URL with a host (the check runs locally; https is not supported)"
                    ),
                ));
            }
            if within.is_zero() {
                return Err(("health.within", "must be longer than 0s".into()));
            }
            Ok(())
        }
        HealthConfig::Unit { unit, stable_for } => {
            if unit.trim().is_empty() {
                return Err(("health.unit", "must name a systemd unit".into()));
            }
            if stable_for.is_zero() {
                return Err(("health.for", "must be longer than 0s".into()));
            }
            Ok(())
        }
        HealthConfig::None => Ok(()),
    }
}

/// Names used as file names: `[A-Za-z0-9._-]{1,64}`, not `.` or `..`.
fn is_safe_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Debian policy 5.6.1: lowercase letters, digits, `+`, `-`, `.`; ≥ 2 chars; starts alphanumeric.
pub fn is_debian_package_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'.'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(Path::new("/etc/hoist/agent.toml"), text)
    }

    fn minimal() -> String {
        r#"
[[watch]]
name = "hello"
package = "hello"
s3 = { bucket = "b", key = "k/hello.deb" }
"#
        .to_owned()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(&minimal()).unwrap();
        assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(config.interval, Duration::from_secs(10));
        assert_eq!(config.jitter, None);
        assert_eq!(config.watches[0].jitter(&config), Duration::from_secs(2));
        assert_eq!(config.dpkg.root, None);
        let watch = &config.watches[0];
        assert_eq!(watch.signal, SignalConfig::None);
        assert_eq!(watch.health, HealthConfig::None);
        assert_eq!(watch.interval(&config), Duration::from_secs(10));
        assert!(watch.load_public_key().unwrap().is_none());
        assert_eq!(watch.max_package_size(&config), 1 << 30);
    }

    #[test]
    fn package_size_bounds_take_units() {
        let config = parse(&format!(
            "max_package_size = \"2GiB\"\n{}max_package_size = \"500MiB\"\n",
            minimal()
        ))
        .unwrap();
        assert_eq!(config.max_package_size, 2 << 30);
        assert_eq!(config.watches[0].max_package_size(&config), 500 << 20);
        let config = parse(&format!("max_package_size = 4096\n{}", minimal())).unwrap();
        assert_eq!(config.watches[0].max_package_size(&config), 4096);
        let err = parse(&format!("max_package_size = \"huge\"\n{}", minimal()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("huge") && err.contains("500MiB"), "{err}");
        let err = parse(&format!("{}max_package_size = \"0B\"\n", minimal()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("watch[0] (hello).max_package_size"), "{err}");
    }

    #[test]
    fn full_config_parses() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        let text = format!(
            r#"
state_dir = "/tmp/state"
interval = "500ms"
jitter = "100ms"
backoff_max = "1m 30s"
[dpkg]
root = "{root}"
lock_timeout = "20s"
timeout = "90s"
[[watch]]
name = "hello"
package = "hello"
public_key = "{KEY}"
interval = "2s"
s3 = {{ bucket = "b", key = "k", endpoint = "http://127.0.0.1:9000", path_style = true }}
signal = {{ kind = "pidfile", path = "/run/hello.pid" }}
health = {{ kind = "http", url = "http://127.0.0.1:8080/healthz", within = "3s" }}
[[watch]]
name = "agent"
package = "hoist-agent"
s3 = {{ bucket = "b", key = "agent.deb" }}
signal = {{ kind = "systemd", unit = "x.service" }}
health = {{ kind = "unit", unit = "x.service", for = "4s" }}
"#,
            root = root.path().display()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.interval, Duration::from_millis(500));
        assert_eq!(config.backoff_max, Duration::from_secs(90));
        assert_eq!(config.dpkg.lock_timeout, Duration::from_secs(20));
        assert_eq!(config.dpkg.timeout, Duration::from_secs(90));
        assert_eq!(config.watches[0].interval(&config), Duration::from_secs(2));
        assert_eq!(
            config.watches[0].jitter(&config),
            Duration::from_millis(100)
        );
        assert!(config.watches[0].load_public_key().unwrap().is_some());
        assert_eq!(
            config.watches[0].health,
            HealthConfig::Http {
                url: "http://127.0.0.1:8080/healthz".into(),
                within: Duration::from_secs(3)
            }
        );
        assert_eq!(
            config.watches[1].health,
            HealthConfig::Unit {
                unit: "x.service".into(),
                stable_for: Duration::from_secs(4)
            }
        );
    }

    #[test]
    fn unknown_field_is_named_with_its_line() {
        let text = format!("{}colour = \"blue\"\n", minimal());
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn bad_duration_is_named() {
        let err = parse(&format!("interval = \"ten seconds\"\n{}", minimal()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("interval") || err.contains("line 1"), "{err}");
        assert!(err.contains("ten seconds"), "{err}");
    }

    #[test]
    fn dpkg_root_must_be_a_debian_root() {
        let err = parse(&format!(
            "[dpkg]\nroot = \"/nonexistent-root\"\n{}",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dpkg.root") && err.contains("var/lib/dpkg"),
            "{err}"
        );
        let err = parse(&format!("[dpkg]\nroot = \"relative\"\n{}", minimal()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute"), "{err}");
    }

    #[test]
    fn bad_public_key_is_named() {
        let text = format!("{}public_key = \"not a key\"\n", minimal());
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("watch[0] (hello).public_key"), "{err}");
    }

    #[test]
    fn allow_unsigned_parses_and_contradicting_a_key_is_refused() {
        let config = parse(&format!("{}allow_unsigned = true\n", minimal())).unwrap();
        assert!(config.watches[0].allow_unsigned);
        assert!(!parse(&minimal()).unwrap().watches[0].allow_unsigned);
        let err = parse(&format!(
            "{}allow_unsigned = true\npublic_key = \"{KEY}\"\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("watch[0] (hello).allow_unsigned"), "{err}");
    }

    #[test]
    fn public_key_file_with_comment_line_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.pub");
        std::fs::write(
            &file,
            format!("untrusted comment: minisign public key\n{KEY}\n"),
        )
        .unwrap();
        let text = format!("{}public_key_file = \"{}\"\n", minimal(), file.display());
        let config = parse(&text).unwrap();
        assert!(config.watches[0].load_public_key().unwrap().is_some());
    }

    #[test]
    fn duplicate_names_and_bad_package_are_rejected() {
        let err = parse(&format!("{0}{0}", minimal()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("watch[1].name"), "{err}");
        let err = parse(&minimal().replace("package = \"hello\"", "package = \"Hello_World\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("watch[0] (hello).package"), "{err}");
    }

    #[test]
    fn signal_and_health_are_checked() {
        let err = parse(&format!(
            "{}signal = {{ kind = \"pidfile\", path = \"run/x.pid\" }}\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("signal.path"), "{err}");
        let err = parse(&format!(
            "{}signal = {{ kind = \"pidfile\", path = \"/run/x.pid\", user = \"no-such-user-hoist\" }}\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("signal.user"), "{err}");
        let err = parse(&format!(
            "{}signal = {{ kind = \"process\", name = \"x\", exe = \"bin/x\" }}\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("signal.exe"), "{err}");
        let config = parse(&format!(
            "{}signal = {{ kind = \"pidfile\", path = \"/run/x.pid\", user = \"root\", exe = \"/usr/bin/x\" }}\n",
            minimal()
        ))
        .unwrap();
        assert_eq!(
            config.watches[0].signal,
            SignalConfig::Pidfile {
                path: "/run/x.pid".into(),
                user: Some("root".into()),
                exe: Some("/usr/bin/x".into())
            }
        );
        let err = parse(&format!(
            "{}signal = {{ kind = \"carrier-pigeon\" }}\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
        let err = parse(&format!(
            "{}health = {{ kind = \"http\", url = \"https://example.com/\" }}\n",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("health.url"), "{err}");
    }

    #[test]
    fn jitter_must_be_below_interval_and_watches_must_exist() {
        let err = parse(&format!(
            "interval = \"1s\"\njitter = \"1s\"\n{}",
            minimal()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("jitter"), "{err}");
        let config = parse(&format!("interval = \"1s\"\n{}", minimal())).unwrap();
        assert_eq!(
            config.watches[0].jitter(&config),
            Duration::from_millis(200)
        );
        let err = parse("interval = \"1s\"\n").unwrap_err().to_string();
        assert!(err.contains("[[watch]]"), "{err}");
    }

    #[test]
    fn package_names_follow_policy() {
        assert!(is_debian_package_name("hello"));
        assert!(is_debian_package_name("libc6-dev"));
        assert!(is_debian_package_name("g++"));
        assert!(!is_debian_package_name("h"));
        assert!(!is_debian_package_name("Hello"));
        assert!(!is_debian_package_name("-x"));
    }
}
