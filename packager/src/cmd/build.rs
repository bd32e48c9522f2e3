//! `hoist build`: `hoist.toml` → `NAME_VERSION_ARCH.deb`.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hoist_deb::{BuildOptions, Compression, DebInfo};

use crate::binaries::{self, Settings};
use crate::manifest::{LoadedManifest, Overrides, host_architecture};

/// Arguments of `hoist build`; also flattened into `hoist release`, which builds first
/// when it is not given a `.deb`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// The package manifest; relative paths in it are relative to its directory.
    #[arg(long, value_name = "PATH", default_value = "hoist.toml")]
    pub manifest: PathBuf,

    /// Package version, overriding `version` in the manifest (e.g. `1.4.0-2`).
    #[arg(long = "version", value_name = "VERSION")]
    pub package_version: Option<String>,

    /// Debian architecture, overriding the manifest and the build host's.
    #[arg(long = "arch", value_name = "ARCH")]
    pub arch: Option<String>,

    /// Directory that receives the .deb (created if missing).
    #[arg(long, value_name = "DIR", default_value = "dist")]
    pub out_dir: PathBuf,

    /// Compression of the package members: gzip (readable everywhere), xz (smallest)
    /// or zstd (fastest; needs dpkg >= 1.21.18, i.e. Debian 12; Debian's own archive
    /// and lintian do not accept it).
    #[arg(long, value_name = "gzip|xz|zstd", default_value_t = Compression::Gzip)]
    pub compression: Compression,

    /// Upper bound for file mtimes in the package, in seconds since 1970. Unset: the
    /// newest mtime among the input files, so unchanged inputs give identical bytes.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Compression threads (default: all cores). The output does not depend on it.
    #[arg(long, value_name = "N")]
    pub compress_threads: Option<NonZeroUsize>,

    /// Package ELF files as built, with their symbols (overrides `strip` in the manifest);
    /// no -dbgsym package then.
    #[arg(long)]
    pub no_strip: bool,

    /// Strip ELF files but drop their debug symbols instead of writing
    /// NAME-dbgsym_VERSION_ARCH.deb (overrides `dbgsym` in the manifest).
    #[arg(long)]
    pub no_dbgsym: bool,
}

/// A package `hoist build` wrote.
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    /// The `.deb` file.
    pub path: PathBuf,
    /// Its control information, read back from the file.
    pub info: DebInfo,
    /// `NAME-dbgsym_VERSION_ARCH.deb`, holding the debug symbols stripped from the
    /// package's ELF files (none when nothing was stripped).
    pub dbgsym: Option<PathBuf>,
}

/// Builds the package described by `args.manifest`.
///
/// # Errors
/// A manifest that cannot be read or parsed (naming the line and key), a field that
/// breaks Debian policy, a missing or unreadable input, an output directory that
/// cannot be written. No `.deb` (and no directory created for it) is left behind then.
pub fn build_package(args: &BuildArgs) -> anyhow::Result<BuiltPackage> {
    let manifest = LoadedManifest::load(&args.manifest)?;
    let mut spec = manifest.to_spec(&Overrides {
        version: args.package_version.clone(),
        architecture: args.arch.clone(),
    })?;
    let strip = manifest.strip() && !args.no_strip;
    let settings = Settings {
        auto_depends: manifest.auto_depends(),
        strip,
        dbgsym: strip && manifest.dbgsym() && !args.no_dbgsym,
    };
    let prepared =
        binaries::prepare(&mut spec, settings, host_architecture).with_context(|| {
            format!(
                "cannot build {} {} from {}",
                spec.name,
                spec.version,
                args.manifest.display()
            )
        })?;
    let created_dir = create_out_dir(&args.out_dir)?;
    let options = BuildOptions {
        out_dir: args.out_dir.clone(),
        compression: args.compression,
        source_date_epoch: args.source_date_epoch,
        threads: args.compress_threads,
    };
    // The debug package first: when the main package fails, it is removed again.
    let dbgsym = match &prepared.dbgsym {
        Some(dbgsym_spec) => match hoist_deb::build(dbgsym_spec, &options) {
            Ok(path) => Some(path),
            Err(err) => {
                if created_dir {
                    let _ = std::fs::remove_dir(&args.out_dir);
                }
                return Err(err).with_context(|| format!("cannot build {}", dbgsym_spec.name));
            }
        },
        None => None,
    };
    let built = hoist_deb::build(&spec, &options);
    if built.is_err()
        && let Some(dbgsym) = &dbgsym
    {
        let _ = std::fs::remove_file(dbgsym);
    }
    let path = match built {
        Ok(path) => path,
        Err(err) => {
            if created_dir {
                // Only succeeds while empty, which it is after a failed build.
                let _ = std::fs::remove_dir(&args.out_dir);
            }
            let context = format!(
                "cannot build {} {} from {}",
                spec.name,
                spec.version,
                args.manifest.display()
            );
            if let hoist_deb::DebError::MissingFile { path, .. } = &err
                && let Some(explained) = manifest.explain_missing(path)
            {
                return Err(explained.context(context));
            }
            return Err(err).context(context);
        }
    };
    let info = hoist_deb::inspect(&path).with_context(|| {
        format!(
            "reading back the package just written to {}",
            path.display()
        )
    })?;
    Ok(BuiltPackage { path, info, dbgsym })
}

/// Creates `dir` if needed; returns whether it was created.
fn create_out_dir(dir: &Path) -> anyhow::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the output directory {}: choose another with --out-dir",
            dir.display()
        )
    })?;
    Ok(true)
}

/// Runs `hoist build`: builds the package and prints its path.
pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let built = build_package(&args)?;
    tracing::info!(
        package = %built.info.package,
        version = %built.info.version,
        architecture = %built.info.architecture,
        "package built"
    );
    if let Some(dbgsym) = &built.dbgsym {
        tracing::info!(path = %dbgsym.display(), "debug symbols package built");
    }
    println!("{}", built.path.display());
    Ok(())
}
