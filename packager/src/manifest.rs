//! `hoist.toml`: what goes into a service's package.
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "1.4.0"
//! # architecture = "amd64"          # default: the build host's (dpkg --print-architecture)
//! maintainer = "Ops Team <ops@example.com>"
//! description = """
//! says hello over HTTP
//! A small example service; the first line is the synopsis."""
//! license = "MIT"                   # generates /usr/share/doc/NAME/copyright (DEP-5)
//! # copyright = "2025 Example Ltd"  # default: "YEAR MAINTAINER", YEAR from SOURCE_DATE_EPOCH
//! depends = ["$auto", "procps"]     # "$auto": the binaries' shared libraries (libc6 (>= 2.34) ...);
//!                                   # absent means ["$auto"], a list without "$auto" is used as is
//! # pre-depends, recommends, suggests, breaks, conflicts, provides, replaces
//! # strip = true                    # strip ELF files (default); false ships them as built
//! # dbgsym = true                   # with strip: write NAME-dbgsym_VERSION_ARCH.deb (default)
//! section = "net"
//! priority = "optional"
//! homepage = "https://example.com/hello"
//!
//! [[binaries]]                      # -> /usr/bin/hello, mode 0755
//! source = "../../target/release/hello"
//! # dest = "/usr/sbin/hello"
//! # (or, before the first [table]: binaries = ["../../target/release/hello"])
//!
//! [[units]]                          # -> /usr/lib/systemd/system/hello.service
//! source = "hello.service"
//! # enable = true                   # enable on first install
//! # start = true                    # start on first install (never on upgrade)
//!
//! [[conffiles]]                      # must be under /etc/; dpkg keeps local edits
//! source = "hello.toml"
//! dest = "/etc/hello/hello.toml"
//!
//! [[files]]
//! source = "README.md"
//! dest = "/usr/share/doc/hello/README.md"
//! mode = "0644"                      # or 0o644; default 0755 if the source is executable
//!
//! [scripts]                          # optional; hoist's unit handling goes at a `#HOIST#` line
//! postinst = "debian/postinst"
//!
//! [s3]                               # release settings, read by `hoist release`
//!
//! [sign]                             # read by `hoist release` and `hoist rollback`
//! key = "keys/release.key"           # minisign secret key (relative to this file)
//! ```
//!
//! Relative paths are relative to the directory holding `hoist.toml`. Unknown keys are
//! errors (they are usually typos); errors name the line and the key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hoist_deb::{Copyright, FileEntry, MaintainerScripts, PackageSpec, Relations, SystemdUnit};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use toml::Spanned;

use crate::depends::AUTO;

/// Where binaries go when no `dest` is given.
const DEFAULT_BINARY_DIR: &str = "/usr/bin";

/// A parsed `hoist.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[package]`: the control fields.
    pub package: PackageSection,
    /// Executables, installed to `/usr/bin/NAME` unless a `dest` is given.
    #[serde(default)]
    pub binaries: Vec<Spanned<Binary>>,
    /// systemd units.
    #[serde(default)]
    pub units: Vec<Spanned<Unit>>,
    /// Configuration files under `/etc/`, which dpkg keeps when the admin edited them.
    #[serde(default)]
    pub conffiles: Vec<Spanned<InstallFile>>,
    /// Any other files.
    #[serde(default)]
    pub files: Vec<Spanned<InstallFile>>,
    /// Your own maintainer scripts.
    #[serde(default)]
    pub scripts: Scripts,
    /// `[s3]`: release settings, owned by `hoist release`; accepted and ignored here.
    #[serde(default, rename = "s3")]
    _s3: Option<de::IgnoredAny>,
    /// `[sign]`: the release signing key, read by `hoist release`/`rollback`; ignored here.
    #[serde(default, rename = "sign")]
    _sign: Option<de::IgnoredAny>,
}

/// `[package]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageSection {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    pub architecture: Option<Spanned<String>>,
    pub maintainer: Spanned<String>,
    pub description: Spanned<String>,
    pub license: Option<Spanned<String>>,
    pub copyright: Option<Spanned<String>>,
    pub section: Option<Spanned<String>>,
    pub priority: Option<Spanned<String>>,
    pub homepage: Option<Spanned<String>>,
    #[serde(default)]
    pub pre_depends: Vec<String>,
    /// `None` means `["$auto"]`.
    pub depends: Option<Vec<String>>,
    #[serde(default)]
    pub recommends: Vec<String>,
    #[serde(default)]
    pub suggests: Vec<String>,
    #[serde(default)]
    pub breaks: Vec<String>,
    #[serde(default)]
    pub conflicts: Vec<String>,
    #[serde(default)]
    pub provides: Vec<String>,
    #[serde(default)]
    pub replaces: Vec<String>,
    /// Strip ELF files (default true).
    pub strip: Option<bool>,
    /// Keep the stripped debug symbols in a `NAME-dbgsym` package (default true).
    pub dbgsym: Option<bool>,
}

/// A `binaries` entry: a path, or a table with `source` and an optional `dest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Binary {
    pub source: String,
    pub dest: Option<String>,
}

/// A `units` entry: a path, or a table with `source`, `enable` and `start`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Unit {
    pub source: String,
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

/// A `conffiles` or `files` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallFile {
    pub source: String,
    pub dest: String,
    pub mode: Option<Mode>,
}

/// `[scripts]`: paths of your own maintainer scripts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripts {
    pub preinst: Option<String>,
    pub postinst: Option<String>,
    pub prerm: Option<String>,
    pub postrm: Option<String>,
}

/// Permission bits, written as a TOML octal integer (`0o644`) or a string (`"0644"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl Visitor<'_> for ModeVisitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "permission bits as an octal string like \"0644\" or a TOML octal like 0o644",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
                let mode = u32::try_from(v).map_err(|_| E::custom("mode must not be negative"))?;
                if mode > 0o777 {
                    return Err(E::custom(format!(
                        "mode {v} is not permission bits (was it meant as octal? write 0o{v} or \"0{v}\")"
                    )));
                }
                Ok(Mode(mode))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
                let digits = v.strip_prefix("0o").unwrap_or(v);
                match u32::from_str_radix(digits, 8) {
                    Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(Mode(mode)),
                    _ => Err(E::custom(format!(
                        "mode \"{v}\" is not octal permission bits such as \"0644\" or \"0755\""
                    ))),
                }
            }
        }
        deserializer.deserialize_any(ModeVisitor)
    }
}

/// Implements `Deserialize` for a type that is either a plain string (its `source`) or
/// a table; the table form uses the type's derived `remote = "Self"` impl, so unknown
/// keys are still rejected.
macro_rules! string_or_table {
    ($ty:ident, $expecting:literal, |$source:ident| $from_string:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct StringOrTable;
                impl<'de> Visitor<'de> for StringOrTable {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, $source: &str) -> Result<$ty, E> {
                        Ok($from_string)
                    }
                    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<$ty, M::Error> {
                        $ty::deserialize(MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_any(StringOrTable)
            }
        }
    };
}

string_or_table!(
    Binary,
    "a path, or a table with `source` and optional `dest`",
    |source| Binary {
        source: source.to_owned(),
        dest: None,
    }
);

string_or_table!(
    Unit,
    "a path, or a table with `source` and optional `enable`/`start`",
    |source| Unit {
        source: source.to_owned(),
        enable: true,
        start: true,
    }
);

/// Values given on the command line that take precedence over the manifest.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--version`.
    pub version: Option<String>,
    /// `--arch`.
    pub architecture: Option<String>,
}

/// A parsed manifest with the file it came from, for relative paths and error lines.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The parsed content.
    pub manifest: Manifest,
    /// The manifest file as given.
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub dir: PathBuf,
    text: String,
}

impl LoadedManifest {
    /// Reads and parses `path`.
    ///
    /// # Errors
    /// When the file cannot be read, or is not valid TOML of the expected shape; the
    /// message names the line, the offending text and what is wrong with it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the manifest {}: create it (see the README) or pass --manifest PATH",
                path.display()
            )
        })?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}", describe_toml_error(path, &text, &e)))?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(LoadedManifest {
            manifest,
            path: path.to_owned(),
            dir,
            text,
        })
    }

    /// `hoist.toml line N`, for the value at `span`.
    fn at(&self, span: Range<usize>) -> String {
        format!(
            "{} line {}",
            self.path.display(),
            line_of(&self.text, span.start)
        )
    }

    /// A path from the manifest, resolved against the manifest's directory.
    fn resolve(&self, path: &str) -> PathBuf {
        self.dir.join(path)
    }

    /// The package described by the manifest, with `overrides` applied.
    ///
    /// Checks what can be pointed at in the manifest — name, version, architecture,
    /// that conffiles are under `/etc/` — so that those errors name the line; everything
    /// else is checked by [`hoist_deb::build`]. Sources are not looked at here (the
    /// build stats each one anyway): when the build finds one missing,
    /// [`explain_missing`](Self::explain_missing) names its line.
    pub fn to_spec(&self, overrides: &Overrides) -> anyhow::Result<PackageSpec> {
        let pkg = &self.manifest.package;
        let checked = |value: &Spanned<String>,
                       check: fn(&str) -> Result<(), hoist_deb::DebError>| {
            check(value.get_ref()).with_context(|| self.at(value.span()))
        };
        checked(&pkg.name, hoist_deb::policy::check_package_name)?;
        let version = match &overrides.version {
            Some(version) => {
                hoist_deb::policy::check_version(version).context("--version")?;
                version.clone()
            }
            None => {
                checked(&pkg.version, hoist_deb::policy::check_version)?;
                pkg.version.get_ref().clone()
            }
        };
        let architecture = match (&overrides.architecture, &pkg.architecture) {
            (Some(arch), _) => {
                hoist_deb::policy::check_architecture(arch).context("--arch")?;
                arch.clone()
            }
            (None, Some(arch)) => {
                checked(arch, hoist_deb::policy::check_architecture)?;
                arch.get_ref().clone()
            }
            (None, None) => host_architecture()?,
        };

        let mut files = Vec::new();
        for binary in &self.manifest.binaries {
            let source = self.resolve(&binary.get_ref().source);
            let dest = match &binary.get_ref().dest {
                Some(dest) => dest.clone(),
                None => {
                    let name = source
                        .file_name()
                        .and_then(|n| n.to_str())
                        .with_context(|| {
                            format!(
                                "{}: binary `{}` has no usable file name: give a `dest`",
                                self.at(binary.span()),
                                binary.get_ref().source
                            )
                        })?;
                    format!("{DEFAULT_BINARY_DIR}/{name}")
                }
            };
            files.push(FileEntry::new(source, dest).with_mode(0o755));
        }
        for conffile in &self.manifest.conffiles {
            let entry = conffile.get_ref();
            if !entry.dest.starts_with("/etc/") {
                bail!(
                    "{}: conffile dest `{}` is not under /etc/: dpkg only treats files in /etc as \
                     configuration; move it under /etc/ or list it in [[files]]",
                    self.at(conffile.span()),
                    entry.dest
                );
            }
            files.push(self.install_file(conffile));
        }
        for file in &self.manifest.files {
            files.push(self.install_file(file));
        }

        let mut units = Vec::new();
        for unit in &self.manifest.units {
            let source = self.resolve(&unit.get_ref().source);
            units.push(SystemdUnit {
                source,
                enable: unit.get_ref().enable,
                start: unit.get_ref().start,
            });
        }

        let depends = match &pkg.depends {
            Some(list) => list.iter().filter(|d| d.trim() != AUTO).cloned().collect(),
            None => Vec::new(),
        };
        for (field, list) in [
            ("pre-depends", &pkg.pre_depends),
            ("recommends", &pkg.recommends),
            ("suggests", &pkg.suggests),
            ("breaks", &pkg.breaks),
            ("conflicts", &pkg.conflicts),
            ("provides", &pkg.provides),
            ("replaces", &pkg.replaces),
        ] {
            if list.iter().any(|d| d.trim() == AUTO) {
                bail!(
                    "{}: \"{AUTO}\" is only meaningful in `depends`: remove it from `{field}`",
                    self.path.display()
                );
            }
        }

        let scripts = &self.manifest.scripts;
        let script = |path: &Option<String>| path.as_deref().map(|p| self.resolve(p));
        let copyright = pkg.license.as_ref().map(|license| Copyright {
            holder: pkg.copyright.as_ref().map(|c| c.get_ref().clone()),
            license: license.get_ref().clone(),
        });
        let text = |value: &Option<Spanned<String>>| value.as_ref().map(|v| v.get_ref().clone());
        Ok(PackageSpec {
            name: pkg.name.get_ref().clone(),
            version,
            architecture,
            maintainer: pkg.maintainer.get_ref().clone(),
            description: pkg.description.get_ref().clone(),
            section: text(&pkg.section),
            priority: text(&pkg.priority),
            homepage: text(&pkg.homepage),
            relations: Relations {
                pre_depends: pkg.pre_depends.clone(),
                depends,
                recommends: pkg.recommends.clone(),
                suggests: pkg.suggests.clone(),
                breaks: pkg.breaks.clone(),
                conflicts: pkg.conflicts.clone(),
                provides: pkg.provides.clone(),
                replaces: pkg.replaces.clone(),
            },
            files,
            units,
            scripts: MaintainerScripts {
                preinst: script(&scripts.preinst),
                postinst: script(&scripts.postinst),
                prerm: script(&scripts.prerm),
                postrm: script(&scripts.postrm),
            },
            copyright,
        })
    }

    /// Whether `depends` asks for the binaries' library dependencies: it is absent
    /// (the default is `["$auto"]`) or lists `"$auto"`.
    pub fn auto_depends(&self) -> bool {
        self.manifest
            .package
            .depends
            .as_ref()
            .is_none_or(|list| list.iter().any(|d| d.trim() == AUTO))
    }

    /// Whether ELF files are stripped (`strip`, default true).
    pub fn strip(&self) -> bool {
        self.manifest.package.strip.unwrap_or(true)
    }

    /// Whether stripped debug symbols go into a `-dbgsym` package (`dbgsym`, default true).
    pub fn dbgsym(&self) -> bool {
        self.manifest.package.dbgsym.unwrap_or(true)
    }

    fn install_file(&self, entry: &Spanned<InstallFile>) -> FileEntry {
        let file = entry.get_ref();
        let mut out = FileEntry::new(self.resolve(&file.source), file.dest.clone());
        out.mode = file.mode.map(|m| m.0);
        out
    }

    /// The error for a source the build found missing at `missing`, naming the manifest
    /// line that lists it; `None` when no source of the manifest resolves to that path.
    pub fn explain_missing(&self, missing: &Path) -> Option<anyhow::Error> {
        let m = &self.manifest;
        let sources = m
            .binaries
            .iter()
            .map(|b| ("binaries", b.span(), &b.get_ref().source))
            .chain(
                m.units
                    .iter()
                    .map(|u| ("units", u.span(), &u.get_ref().source)),
            )
            .chain(
                m.conffiles
                    .iter()
                    .map(|c| ("conffiles", c.span(), &c.get_ref().source)),
            )
            .chain(
                m.files
                    .iter()
                    .map(|f| ("files", f.span(), &f.get_ref().source)),
            );
        for (list, span, source) in sources {
            if self.resolve(source) != missing {
                continue;
            }
            let hint = if list == "binaries" {
                "build it first (e.g. `cargo build --release`) or fix `source`"
            } else {
                "create it or fix `source`"
            };
            return Some(anyhow::anyhow!(
                "{}: {list} source `{source}` does not exist (looked for {}): {hint}",
                self.at(span),
                missing.display()
            ));
        }
        None
    }
}

/// The 1-based line of byte offset `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// One line: `hoist.toml line 3 (`versoin = "1"`): unknown field `versoin`, expected ...`.
fn describe_toml_error(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().trim().to_owned();
    for list in ["binaries", "units", "conffiles", "files", "scripts"] {
        if message.starts_with(&format!("unknown field `{list}`")) {
            message.push_str(&format!(
                " (TOML puts a key after a [table] header into that table: write `{list}` \
                 before the first [table], or as [[{list}]] / [{list}] tables)"
            ));
        }
    }
    match error.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let content = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("{} line {line} (`{content}`): {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
}

/// The Debian architecture of the build host: `dpkg --print-architecture`, or the
/// architecture this program was compiled for when dpkg is not installed.
pub fn host_architecture() -> anyhow::Result<String> {
    if let Ok(out) = std::process::Command::new("dpkg")
        .arg("--print-architecture")
        .output()
    {
        let arch = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !arch.is_empty() {
            return Ok(arch);
        }
    }
    let arch = match (std::env::consts::ARCH, cfg!(target_endian = "little")) {
        ("x86_64", _) => "amd64",
        ("x86", _) => "i386",
        ("aarch64", _) => "arm64",
        ("arm", _) => "armhf",
        ("riscv64", _) => "riscv64",
        ("powerpc64", true) => "ppc64el",
        ("powerpc64", false) => "ppc64",
        ("s390x", _) => "s390x",
        ("loongarch64", _) => "loong64",
        ("mips64", true) => "mips64el",
        (other, _) => bail!(
            "cannot tell the Debian architecture of this `{other}` host: set \
             `architecture` in [package] or pass --arch"
        ),
    };
    Ok(arch.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[package]
name = "hello"
version = "1.0"
maintainer = "Ops <ops@example.com>"
description = "says hello"
"#;

    fn parse(text: &str) -> Result<Manifest, String> {
        toml::from_str(text).map_err(|e| describe_toml_error(Path::new("hoist.toml"), text, &e))
    }

    #[test]
    fn binaries_and_units_take_a_path_or_a_table() {
        let short = format!(
            "binaries = [\"target/release/hello\"]\nunits = [\"hello.service\"]\n{MINIMAL}"
        );
        let long = format!(
            "{MINIMAL}\n[[binaries]]\nsource = \"helper\"\ndest = \"/usr/sbin/helper\"\n\n\
             [[units]]\nsource = \"hello.socket\"\nstart = false\n"
        );
        let entries = |text: &str| {
            let manifest = parse(text).unwrap();
            let binaries: Vec<(String, Option<String>)> = manifest
                .binaries
                .iter()
                .map(|b| (b.get_ref().source.clone(), b.get_ref().dest.clone()))
                .collect();
            let units: Vec<(String, bool, bool)> = manifest
                .units
                .iter()
                .map(|u| {
                    (
                        u.get_ref().source.clone(),
                        u.get_ref().enable,
                        u.get_ref().start,
                    )
                })
                .collect();
            (binaries, units)
        };
        assert_eq!(
            entries(&short),
            (
                vec![("target/release/hello".into(), None)],
                vec![("hello.service".into(), true, true)]
            )
        );
        assert_eq!(
            entries(&long),
            (
                vec![("helper".into(), Some("/usr/sbin/helper".into()))],
                vec![("hello.socket".into(), true, false)]
            )
        );
    }

    #[test]
    fn s3_table_is_accepted_and_other_unknown_keys_are_not() {
        let with_s3 = format!("{MINIMAL}\n[s3]\nbucket = \"b\"\nanything = {{ x = 1 }}\n");
        assert!(parse(&with_s3).is_ok());
        let with_sign = format!("{MINIMAL}\n[sign]\nkey = \"k.key\"\n");
        assert!(parse(&with_sign).is_ok());
        let typo = format!("{MINIMAL}\n[[binaries]]\nsorce = \"x\"\n");
        let err = parse(&typo).unwrap_err();
        assert!(
            err.starts_with("hoist.toml line 9 (`sorce = \"x\"`)"),
            "{err}"
        );
        assert!(err.contains("unknown field `sorce`"), "{err}");
        let top = format!("{MINIMAL}binaries = [\"x\"]\n");
        let err = parse(&top).unwrap_err();
        assert!(err.contains("before the first [table]"), "{err}");
    }

    #[test]
    fn modes_are_octal() {
        for (value, mode) in [
            ("\"0644\"", 0o644),
            ("\"755\"", 0o755),
            ("0o600", 0o600),
            ("\"0o640\"", 0o640),
        ] {
            let text =
                format!("{MINIMAL}\n[[files]]\nsource = \"a\"\ndest = \"/a\"\nmode = {value}\n");
            let manifest = parse(&text).unwrap();
            assert_eq!(
                manifest.files[0].get_ref().mode,
                Some(Mode(mode)),
                "{value}"
            );
        }
        for value in ["644", "\"9\"", "\"\"", "-1", "\"01777\""] {
            let text =
                format!("{MINIMAL}\n[[files]]\nsource = \"a\"\ndest = \"/a\"\nmode = {value}\n");
            assert!(parse(&text).is_err(), "{value}");
        }
    }

    #[test]
    fn auto_depends_is_the_default_and_explicit_lists_are_kept() {
        let load = |extra: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hoist.toml");
            std::fs::write(&path, format!("{MINIMAL}{extra}")).unwrap();
            let loaded = LoadedManifest::load(&path).unwrap();
            let spec = loaded.to_spec(&Overrides {
                architecture: Some("amd64".into()),
                ..Overrides::default()
            });
            (loaded.auto_depends(), spec.map(|s| s.relations.depends))
        };
        let ok = |extra: &str| {
            let (auto, spec) = load(extra);
            (auto, spec.unwrap())
        };
        assert_eq!(ok(""), (true, vec![]));
        assert_eq!(
            ok("depends = [\"$auto\", \"procps\"]\n"),
            (true, vec!["procps".to_owned()])
        );
        assert_eq!(
            ok("depends = [\"procps\"]\n"),
            (false, vec!["procps".to_owned()])
        );
        assert_eq!(ok("depends = []\n"), (false, vec![]));
        let (_, err) = load("conflicts = [\"$auto\"]\n");
        assert!(format!("{:#}", err.unwrap_err()).contains("only meaningful in `depends`"));
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 100), 3);
    }
}
