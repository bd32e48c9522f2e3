//! Reproducible Debian binary packages (`.deb`), written and read without dpkg.
//!
//! [`build`] writes `NAME_VERSION_ARCH.deb` from a [`PackageSpec`]: control fields are
//! checked against Debian policy ([`policy`]), files under `/etc/` become conffiles,
//! systemd units get maintainer scripts that enable and start them on first install and
//! **never restart them on upgrade** ([`scripts`]), and two builds of the same inputs are
//! byte-identical. [`inspect`] reads a package's control information back.
//!
//! ```no_run
//! use hoist_deb::{BuildOptions, Copyright, FileEntry, PackageSpec, SystemdUnit};
//!
//! let spec = PackageSpec {
//!     name: "hello".into(),
//!     version: "1.4.0".into(),
//!     architecture: "amd64".into(),
//!     maintainer: "Ops Team <ops@example.com>".into(),
//!     description: "says hello over HTTP\nA small example service.".into(),
//!     files: vec![FileEntry::new("target/release/hello", "/usr/bin/hello").with_mode(0o755)],
//!     units: vec![SystemdUnit::new("systemd/hello.service")],
//!     copyright: Some(Copyright { holder: Some("2025 Example Ltd".into()), license: "MIT".into() }),
//!     ..PackageSpec::default()
//! };
//! let deb = hoist_deb::build(&spec, &BuildOptions::new("dist"))?;
//! let info = hoist_deb::inspect(&deb)?;
//! assert_eq!(info.package, "hello");
//! # Ok::<(), hoist_deb::DebError>(())
//! ```

mod compress;
mod control;
mod digest;
mod docs;
mod error;
mod inspect;
mod layout;
mod md5_lanes;
pub mod policy;
mod publish;
pub mod scripts;
mod spec;
mod spool;
mod tarball;
mod writer;
mod zstd_frames;

pub use error::DebError;
pub use inspect::{DebInfo, inspect};
pub use spec::{
    BuildOptions, Compression, Copyright, FileEntry, MaintainerScripts, PackageSpec, Relations,
    SYSTEMD_UNIT_DIR, SystemdUnit, UnknownCompression,
};
pub use writer::build;
