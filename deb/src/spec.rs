//! What a package is made of: [`PackageSpec`] (control fields and contents) and
//! [`BuildOptions`] (where and how to write it).

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;

/// Where systemd units are installed: `/usr/lib/systemd/system`, the location both
/// Debian 12 and 13 read (on merged-/usr systems `/lib` is an alias dpkg does not
/// know about; Debian 13 expects packages to ship under `/usr`). Upgrading from a
/// package that shipped the unit under `/lib` keeps the unit (dpkg sees the same file).
pub const SYSTEMD_UNIT_DIR: &str = "/usr/lib/systemd/system";

/// Everything that goes into one binary package.
///
/// Control fields are checked against Debian policy by [`build`](crate::build); files are
/// read only when the package is written. Installed-Size is computed, never given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageSpec {
    /// `Package`: `^[a-z0-9][a-z0-9+.-]+$`.
    pub name: String,
    /// `Version`: `[epoch:]upstream[-revision]`.
    pub version: String,
    /// `Architecture`: e.g. `amd64`, or `all`.
    pub architecture: String,
    /// `Maintainer`: `Full Name <address@example.com>`.
    pub maintainer: String,
    /// `Description`: the first line is the synopsis (at most 80 characters), the
    /// following lines the extended description (an empty line becomes ` .`).
    pub description: String,
    /// `Section`, e.g. `net`.
    pub section: Option<String>,
    /// `Priority`, e.g. `optional`.
    pub priority: Option<String>,
    /// `Homepage`: an http(s) URL.
    pub homepage: Option<String>,
    /// `Depends`, `Conflicts` and the other relation fields.
    pub relations: Relations,
    /// Files to install. Those whose destination is under `/etc/` become conffiles.
    pub files: Vec<FileEntry>,
    /// systemd units, installed to [`SYSTEMD_UNIT_DIR`] and managed by the generated
    /// maintainer scripts (see [`scripts`](crate::scripts)).
    pub units: Vec<SystemdUnit>,
    /// Your own maintainer scripts, merged with the generated ones.
    pub scripts: MaintainerScripts,
    /// Generates `/usr/share/doc/NAME/copyright` unless [`files`](Self::files) installs one.
    pub copyright: Option<Copyright>,
}

/// The relation fields of a binary package (policy 7.1). Each entry is one relation,
/// alternatives separated by `|`, e.g. `libc6 (>= 2.36)` or `default-mta | mail-transport-agent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    /// `Pre-Depends`.
    pub pre_depends: Vec<String>,
    /// `Depends`.
    pub depends: Vec<String>,
    /// `Recommends`.
    pub recommends: Vec<String>,
    /// `Suggests`.
    pub suggests: Vec<String>,
    /// `Breaks`.
    pub breaks: Vec<String>,
    /// `Conflicts`.
    pub conflicts: Vec<String>,
    /// `Provides`.
    pub provides: Vec<String>,
    /// `Replaces`.
    pub replaces: Vec<String>,
}

impl Relations {
    /// The fields in the order dpkg-gencontrol writes them, with their entries.
    pub fn fields(&self) -> [(&'static str, &[String]); 8] {
        [
            ("Pre-Depends", &self.pre_depends),
            ("Depends", &self.depends),
            ("Recommends", &self.recommends),
            ("Suggests", &self.suggests),
            ("Breaks", &self.breaks),
            ("Conflicts", &self.conflicts),
            ("Provides", &self.provides),
            ("Replaces", &self.replaces),
        ]
    }
}

/// One file to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The file on the build machine (a regular file, or a symlink to one).
    pub source: PathBuf,
    /// The absolute install path, e.g. `/usr/bin/hello`. No `.`/`..` components,
    /// whitespace or control characters.
    pub dest: String,
    /// Permission bits; `None` gives 0755 when the source has any execute bit, else 0644.
    pub mode: Option<u32>,
}

impl FileEntry {
    /// A file installed at `dest` with the default mode.
    pub fn new(source: impl Into<PathBuf>, dest: impl Into<String>) -> Self {
        FileEntry {
            source: source.into(),
            dest: dest.into(),
            mode: None,
        }
    }

    /// The same entry with explicit permission bits.
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Whether dpkg treats this file as a conffile (it is under `/etc/`).
    pub fn is_conffile(&self) -> bool {
        self.dest.starts_with("/etc/")
    }
}

/// A systemd unit shipped in the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdUnit {
    /// The unit file; its file name is the unit name (e.g. `hello.service`).
    pub source: PathBuf,
    /// Enable the unit when the package first sets it up (default true).
    pub enable: bool,
    /// Start the unit when the package first sets it up (default true). Never on upgrade.
    pub start: bool,
}

impl SystemdUnit {
    /// A unit that is enabled and started on first install.
    pub fn new(source: impl Into<PathBuf>) -> Self {
        SystemdUnit {
            source: source.into(),
            enable: true,
            start: true,
        }
    }
}

/// Your own maintainer scripts. The generated unit handling is inserted where a line
/// reads exactly `#HOIST#`, or right after the `#!` line when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainerScripts {
    /// `preinst`.
    pub preinst: Option<PathBuf>,
    /// `postinst`.
    pub postinst: Option<PathBuf>,
    /// `prerm`.
    pub prerm: Option<PathBuf>,
    /// `postrm`.
    pub postrm: Option<PathBuf>,
}

/// The facts a generated copyright file (machine-readable, DEP-5) states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copyright {
    /// The copyright notice: years and holder, e.g. `2025 Example Ltd`. `None` gives
    /// `YEAR MAINTAINER`, the year being that of the package's mtime bound
    /// (SOURCE_DATE_EPOCH).
    pub holder: Option<String>,
    /// The license, e.g. `MIT`, `Apache-2.0` or `proprietary`.
    pub license: String,
}

/// The compression of `control.tar` and `data.tar`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `.gz`, readable by every dpkg; compressed in parallel blocks.
    #[default]
    Gzip,
    /// `.xz`, smallest; multi-threaded.
    Xz,
    /// `.zst`, fast to build and install; needs dpkg >= 1.21.18 (Debian 12).
    Zstd,
}

impl Compression {
    /// All compressions, in the order they are usually compared.
    pub const ALL: [Compression; 3] = [Compression::Gzip, Compression::Xz, Compression::Zstd];

    /// The member name suffix: `gz`, `xz` or `zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Xz => "xz",
            Compression::Zstd => "zst",
        }
    }

    /// The name used on the command line: `gzip`, `xz` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression of an ar member called `*.tar.EXT`, if known.
    pub fn from_member_name(member: &str) -> Option<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| member.ends_with(&format!(".tar.{}", c.extension())))
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compression name that is not `gzip`, `xz` or `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression `{0}`: use gzip, xz or zstd")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "xz" => Ok(Compression::Xz),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_owned())),
        }
    }
}

/// Where and how [`build`](crate::build) writes the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// The directory that receives `NAME_VERSION_ARCH.deb` (must exist).
    pub out_dir: PathBuf,
    /// The compression of both tar members.
    pub compression: Compression,
    /// Upper bound for every mtime in the package, in seconds since 1970
    /// (`SOURCE_DATE_EPOCH`). `None` uses the newest mtime among the input files, so
    /// the same inputs still give the same bytes.
    pub source_date_epoch: Option<u64>,
    /// Compression threads; `None` uses every available core. The output does not
    /// depend on it.
    pub threads: Option<NonZeroUsize>,
}

impl BuildOptions {
    /// Gzip, no epoch override, all cores, writing into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        BuildOptions {
            out_dir: out_dir.into(),
            compression: Compression::default(),
            source_date_epoch: None,
            threads: None,
        }
    }
}
