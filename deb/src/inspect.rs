//! Reading a `.deb`'s control information without dpkg.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::compress;
use crate::control;
use crate::{Compression, DebError};

/// The control information of a `.deb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebInfo {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// Every control field in file order, including the three above. Multi-line values
    /// keep their continuation lines (with the leading space) after a newline.
    pub fields: Vec<(String, String)>,
    /// The conffiles (absolute paths), empty when there are none.
    pub conffiles: Vec<String>,
    /// The maintainer scripts present (`postinst`, `prerm`, ...), sorted.
    pub scripts: Vec<String>,
    /// The compression of the `data.tar` member.
    pub data_compression: Compression,
}

impl DebInfo {
    /// The value of control field `name` (case-insensitive, as in deb822).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `NAME_VERSION_ARCH.deb` (the version without epoch), as dpkg-deb names it.
    pub fn file_name(&self) -> String {
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        format!("{}_{}_{}.deb", self.package, version, self.architecture)
    }
}

/// Reads the control information of the package at `path`.
///
/// Checks the ar layout dpkg requires (`debian-binary` with format 2.x first, then
/// `control.tar.*`, then `data.tar.*`), decompresses only the control member and parses
/// `control`. `Package`, `Version` and `Architecture` must be present.
///
/// # Errors
/// [`DebError::ReadPackage`] when the file cannot be read, [`DebError::NotADeb`] with
/// the reason when it is not a well-formed binary package.
pub fn inspect(path: &Path) -> Result<DebInfo, DebError> {
    let read_err = |source: io::Error| DebError::ReadPackage {
        path: path.to_owned(),
        source,
    };
    let not_deb = |reason: String| DebError::NotADeb {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut archive = ar::Archive::new(BufReader::new(file));

    let mut next_member = |expected: &str| -> Result<(String, Vec<u8>), DebError> {
        let mut entry = archive
            .next_entry()
            .ok_or_else(|| not_deb(format!("it ends before the {expected} member")))?
            .map_err(|e| not_deb(format!("it is not an ar archive ({e})")))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| not_deb(format!("member {name} is truncated ({e})")))?;
        Ok((name, bytes))
    };

    let (name, version) = next_member("debian-binary")?;
    if name != "debian-binary" || !version.starts_with(b"2.") {
        return Err(not_deb(format!(
            "the first member must be debian-binary with format 2.x, found `{name}`"
        )));
    }
    let (control_name, control_bytes) = next_member("control.tar")?;
    let control_compression = member_compression(&control_name, "control").ok_or_else(|| {
        not_deb(format!(
            "the second member must be control.tar.{{gz,xz,zst}}, found `{control_name}`"
        ))
    })?;
    // Read only the data member's header: its name tells the compression. Its bytes
    // are skipped with a seek (a package can be hundreds of MB), then the file's
    // length shows whether they are all there.
    let (data_name, data_size) = {
        let mut entry = archive
            .next_entry()
            .ok_or_else(|| not_deb("it has no data.tar member".into()))?
            .map_err(|e| not_deb(format!("it is not an ar archive ({e})")))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        entry.seek(SeekFrom::End(0)).map_err(read_err)?;
        (name, entry.header().size())
    };
    let mut reader = archive.into_inner().map_err(read_err)?;
    let data_end = reader.stream_position().map_err(read_err)?;
    let file_size = reader.get_ref().metadata().map_err(read_err)?.len();
    if data_end > file_size {
        return Err(not_deb(format!(
            "it is truncated: member {data_name} should have {data_size} bytes, the file \
             ends {} bytes short; download or build it again",
            data_end - file_size
        )));
    }
    let data_compression = member_compression(&data_name, "data").ok_or_else(|| {
        not_deb(format!(
            "the third member must be data.tar.{{gz,xz,zst}}, found `{data_name}`"
        ))
    })?;

    let members = read_control_tar(control_compression, &control_bytes)
        .map_err(|e| not_deb(format!("{control_name} cannot be read ({e})")))?;
    let control_text = members
        .iter()
        .find(|(name, _)| name == "control")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .ok_or_else(|| not_deb(format!("{control_name} has no control file")))?;
    let fields = control::parse(&control_text)
        .map_err(|e| not_deb(format!("its control file is malformed: {e}")))?;
    let required = |field: &str| {
        fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(field))
            .map(|(_, value)| value.clone())
            .ok_or_else(|| not_deb(format!("its control file has no {field} field")))
    };
    let conffiles = members
        .iter()
        .find(|(name, _)| name == "conffiles")
        .map(|(_, bytes)| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut scripts: Vec<String> = members
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            matches!(
                *name,
                "preinst" | "postinst" | "prerm" | "postrm" | "config"
            )
        })
        .map(str::to_owned)
        .collect();
    scripts.sort();
    Ok(DebInfo {
        package: required("Package")?,
        version: required("Version")?,
        architecture: required("Architecture")?,
        fields,
        conffiles,
        scripts,
        data_compression,
    })
}

fn member_compression(name: &str, stem: &str) -> Option<Compression> {
    name.strip_prefix(stem)
        .filter(|rest| rest.starts_with(".tar."))
        .and_then(|_| Compression::from_member_name(name))
}

/// The regular files of a control tarball, by name without the `./` prefix.
fn read_control_tar(compression: Compression, bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(compress::decoder(compression, bytes)?);
    let mut members = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw);
        let name = name.trim_start_matches("./").to_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        members.push((name, content));
    }
    Ok(members)
}
