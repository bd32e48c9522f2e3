//! Writes the `.deb`: `data.tar`, then `control.tar` (which needs the md5sums and the
//! size of the data), then the ar archive around them, into a temporary file that is
//! renamed into place only when everything succeeded.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::debug;

use crate::compress::{self, Encoder};
use crate::control;
use crate::digest::Md5Worker;
use crate::layout::{Layout, Node, Payload};
use crate::publish::publish;
use crate::spool::{Spool, Spooled};
use crate::tarball::TarWriter;
use crate::{BuildOptions, Compression, DebError, PackageSpec, policy};

/// The content of the `debian-binary` member: format 2.0.
const DEBIAN_BINARY: &[u8] = b"2.0\n";

/// Builds the package described by `spec` into `options.out_dir`.
///
/// Returns the path of `NAME_VERSION_ARCH.deb` (the version without its epoch, as
/// dpkg-deb names files). The members are `debian-binary`, `control.tar.EXT` and
/// `data.tar.EXT`; `control.tar` holds `control` (with a computed Installed-Size),
/// `md5sums` (every regular file except conffiles, as dh_md5sums writes it),
/// `conffiles` when any file is under `/etc/`, and the maintainer scripts.
///
/// The output is a function of the inputs: entries are sorted, owned by root:root,
/// modes are normalized, and every mtime is clamped to `source_date_epoch` — or, when
/// that is `None`, to the newest mtime among the input files (so rebuilding unchanged
/// inputs gives identical bytes). `/usr/share/doc/NAME/changelog*.gz` and `copyright`
/// are generated unless the package ships its own, and hoist's lintian overrides are
/// added to `/usr/share/lintian/overrides/NAME`.
///
/// # Errors
/// A [`DebError`] naming the problem and its fix: a control field that breaks Debian
/// policy, a missing or unreadable input, a bad destination, an output directory that
/// cannot be written. On any error nothing is left in `out_dir`, and an existing file
/// of the same name is untouched.
pub fn build(spec: &PackageSpec, options: &BuildOptions) -> Result<PathBuf, DebError> {
    check_fields(spec)?;
    let layout = Layout::plan(spec, options)?;
    let threads = options.threads.unwrap_or_else(compress::default_threads);
    let dir = options.out_dir.as_path();
    let write_err = |what: &str| {
        let what = what.to_owned();
        move |source: io::Error| DebError::Write {
            what,
            dir: dir.to_owned(),
            source,
        }
    };
    if !dir.is_dir() {
        return Err(write_err("the package")(io::Error::new(
            io::ErrorKind::NotFound,
            "no such directory",
        )));
    }

    let data = write_data(&layout, options.compression, threads, dir)?;
    let control_text = control::render(spec, data.installed_size_kib);
    let control = write_control(
        &layout,
        &control_text,
        &data.md5sums,
        options.compression,
        dir,
    )?;

    let file_name = format!(
        "{}_{}_{}.deb",
        spec.name,
        version_for_file_name(&spec.version),
        spec.architecture
    );
    let target = dir.join(&file_name);
    let mut temp = tempfile::Builder::new()
        .prefix(".hoist-")
        .suffix(".deb.part")
        .tempfile_in(dir)
        .map_err(write_err("a temporary file"))?;
    let ext = options.compression.extension();
    let members: [(String, MemberSource); 3] = [
        ("debian-binary".into(), MemberSource::Bytes(DEBIAN_BINARY)),
        (format!("control.tar.{ext}"), MemberSource::Spooled(control)),
        (
            format!("data.tar.{ext}"),
            MemberSource::Spooled(data.member),
        ),
    ];
    write_ar(temp.as_file_mut(), members, layout.epoch).map_err(write_err(&file_name))?;
    // No fsync: like dpkg-deb, a build output need not survive a power cut; the
    // atomic rename alone guarantees that nobody ever sees a partial package.
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(write_err(&file_name))?;
    publish(temp, &target).map_err(write_err(&file_name))?;
    debug!(path = %target.display(), "package written");
    Ok(target)
}

/// Runs every policy check on the control fields.
fn check_fields(spec: &PackageSpec) -> Result<(), DebError> {
    policy::check_package_name(&spec.name)?;
    policy::check_version(&spec.version)?;
    policy::check_architecture(&spec.architecture)?;
    policy::check_maintainer(&spec.maintainer)?;
    policy::check_description(&spec.description)?;
    if let Some(section) = &spec.section {
        policy::check_section(section)?;
    }
    if let Some(priority) = &spec.priority {
        policy::check_priority(priority)?;
    }
    if let Some(homepage) = &spec.homepage {
        policy::check_homepage(homepage)?;
    }
    for (field, entries) in spec.relations.fields() {
        for entry in entries {
            policy::check_relation(field, entry)?;
        }
    }
    if let Some(copyright) = &spec.copyright {
        let holder = copyright.holder.as_ref();
        for (what, value) in [
            ("copyright holder", holder),
            ("license", Some(&copyright.license)),
        ]
        .into_iter()
        .filter_map(|(what, value)| Some((what, value?)))
        {
            if value.trim().is_empty() || value.contains('\n') {
                return Err(DebError::invalid(
                    what,
                    value,
                    "give a single non-empty line",
                ));
            }
        }
    }
    Ok(())
}

/// `1:2.0-1` → `2.0-1`: dpkg-deb leaves the epoch out of file names.
fn version_for_file_name(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, rest)| rest)
}

/// The compressed data member and what the control member needs to know about it.
struct DataMember {
    member: Spooled,
    /// `md5sums` lines, in archive order.
    md5sums: String,
    installed_size_kib: u64,
}

fn write_data(
    layout: &Layout,
    compression: Compression,
    threads: NonZeroUsize,
    dir: &Path,
) -> Result<DataMember, DebError> {
    let write_err = |source: io::Error| DebError::Write {
        what: "data.tar".into(),
        dir: dir.to_owned(),
        source,
    };
    let encoder = Encoder::new(compression, threads, Spool::new(dir))?;
    // No buffer in between: every encoder collects its input into blocks itself.
    let mut tar = TarWriter::new(encoder);
    let md5 = Md5Worker::start().map_err(write_err)?;
    // Counted as dpkg-gencontrol counts the package tree: each file's size rounded up
    // to KiB, one KiB per directory, the root `./` included.
    let mut installed_size_kib = 1;
    tar.dir("./", 0o755, layout.epoch).map_err(write_err)?;
    for (path, node) in &layout.entries {
        match node {
            Node::Dir => {
                installed_size_kib += 1;
                tar.dir(&format!("./{path}/"), 0o755, layout.epoch)
                    .map_err(write_err)?;
            }
            Node::File {
                payload,
                mode,
                mtime,
            } => {
                installed_size_kib += payload.size().div_ceil(1024);
                let name = format!("./{path}");
                append_file(&mut tar, &md5, &name, *mode, *mtime, payload, dir)?;
            }
        }
    }
    let member = tar
        .finish()
        .and_then(Encoder::finish)
        .and_then(Spool::finish)
        .map_err(write_err)?;

    // md5sums lists every regular file but the conffiles (dpkg records their hashes in
    // its status file), in archive order.
    let digests = md5.finish().map_err(write_err)?;
    let files = layout.entries.iter().filter_map(|(path, node)| match node {
        Node::File { .. } => Some(path),
        Node::Dir => None,
    });
    let mut md5sums = String::new();
    for (path, digest) in files.zip(&digests) {
        let dest = format!("/{path}");
        if !layout.conffiles.contains(&dest) {
            md5sums.push_str(&format!("{}  {path}\n", hex::encode(digest)));
        }
    }
    debug!(installed_size_kib, "data.tar written");
    Ok(DataMember {
        member,
        md5sums,
        installed_size_kib,
    })
}

/// Appends one file, its bytes also going to the md5 worker.
fn append_file(
    tar: &mut TarWriter<Encoder>,
    md5: &Md5Worker,
    name: &str,
    mode: u32,
    mtime: u64,
    payload: &Payload,
    dir: &Path,
) -> Result<(), DebError> {
    let write_err = |source: io::Error| DebError::Write {
        what: "data.tar".into(),
        dir: dir.to_owned(),
        source,
    };
    match payload {
        Payload::Generated(bytes) => {
            md5.chunk(Arc::new(bytes.clone())).map_err(write_err)?;
            tar.file(name, mode, mtime, bytes.len() as u64, bytes.as_slice())
                .map_err(write_err)?;
        }
        Payload::Source { path, role, size } => {
            let unreadable = |source: io::Error| DebError::UnreadableFile {
                role: role.clone(),
                path: path.clone(),
                source,
            };
            let changed = || DebError::FileChanged {
                role: role.clone(),
                path: path.clone(),
                expected: *size,
            };
            let mut file = File::open(path).map_err(unreadable)?;
            let mut body = tar
                .begin_file(name, mode, mtime, *size)
                .map_err(write_err)?;
            let mut remaining = (&mut file).take(*size);
            loop {
                // Each chunk goes to the md5 worker and, the same bytes, into the tar
                // stream: read once, copied once.
                let chunk = md5.read_chunk(&mut remaining).map_err(unreadable)?;
                if chunk.is_empty() {
                    break;
                }
                body.write_all(&chunk).map_err(write_err)?;
                md5.chunk(chunk).map_err(write_err)?;
            }
            // Shorter than when the build started, or longer: the package would not
            // match the file list it was planned from.
            let shrank = remaining.limit() != 0;
            let mut probe = [0u8; 1];
            let grew = file.read(&mut probe).map_err(unreadable)? > 0;
            if shrank || grew {
                return Err(changed());
            }
            body.finish().map_err(write_err)?;
        }
    }
    md5.end_file().map_err(write_err)
}

fn write_control(
    layout: &Layout,
    control_text: &str,
    md5sums: &str,
    compression: Compression,
    dir: &Path,
) -> Result<Spooled, DebError> {
    let write_err = |source: io::Error| DebError::Write {
        what: "control.tar".into(),
        dir: dir.to_owned(),
        source,
    };
    let mut members: Vec<(&str, u32, &[u8])> = vec![
        ("./control", 0o644, control_text.as_bytes()),
        ("./md5sums", 0o644, md5sums.as_bytes()),
    ];
    let conffiles: String = layout.conffiles.iter().map(|c| format!("{c}\n")).collect();
    if !conffiles.is_empty() {
        members.push(("./conffiles", 0o644, conffiles.as_bytes()));
    }
    let scripts: Vec<(String, &str)> = layout
        .scripts
        .present()
        .into_iter()
        .map(|(name, text)| (format!("./{name}"), text))
        .collect();
    for (name, text) in &scripts {
        members.push((name, 0o755, text.as_bytes()));
    }
    members.sort_by(|a, b| a.0.cmp(b.0));

    // The control member is small: one thread is plenty.
    let mut tar = TarWriter::new(Encoder::new(
        compression,
        NonZeroUsize::MIN,
        Spool::new(dir),
    )?);
    tar.dir("./", 0o755, layout.epoch).map_err(write_err)?;
    for (name, mode, bytes) in members {
        tar.file(name, mode, layout.epoch, bytes.len() as u64, bytes)
            .map_err(write_err)?;
    }
    tar.finish()
        .and_then(Encoder::finish)
        .and_then(Spool::finish)
        .map_err(write_err)
}

enum MemberSource {
    Bytes(&'static [u8]),
    Spooled(Spooled),
}

fn write_ar(out: &mut File, members: [(String, MemberSource); 3], mtime: u64) -> io::Result<()> {
    // Unbuffered, so that copying the members is a file-to-file copy in the kernel.
    let mut ar = ar::Builder::new(out);
    for (name, source) in members {
        let size = match &source {
            MemberSource::Bytes(bytes) => bytes.len() as u64,
            MemberSource::Spooled(spooled) => spooled.len()?,
        };
        let mut header = ar::Header::new(name.into_bytes(), size);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o100644);
        match source {
            MemberSource::Bytes(bytes) => ar.append(&header, bytes)?,
            MemberSource::Spooled(Spooled::Memory(bytes)) => {
                ar.append(&header, bytes.as_slice())?
            }
            MemberSource::Spooled(Spooled::File(file)) => ar.append(&header, file)?,
        }
    }
    ar.into_inner()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_leave_out_the_epoch() {
        assert_eq!(version_for_file_name("1:2.0-1"), "2.0-1");
        assert_eq!(version_for_file_name("2.0"), "2.0");
    }
}
