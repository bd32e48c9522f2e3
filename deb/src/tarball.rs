//! A tar writer whose output depends only on the entries given to it.
//!
//! Entries are GNU-format headers as dpkg-deb writes them: names start with `./`,
//! directories end with `/`, owner root:root (uid/gid 0), the caller's mode and mtime,
//! and names longer than 100 bytes use a GNU `././@LongLink` entry.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

/// Length of the name field of a tar header.
const NAME_FIELD: usize = 100;
/// Entries are padded to whole blocks.
const BLOCK: u64 = 512;

/// Writes tar entries in the order they are given.
pub(crate) struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> std::fmt::Debug for TarWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TarWriter")
    }
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        TarWriter {
            builder: tar::Builder::new(out),
        }
    }

    /// Adds a directory. `name` is its archive name, e.g. `./usr/bin/`.
    pub(crate) fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> io::Result<()> {
        let header = self.header(name, EntryType::Directory, mode, mtime, 0)?;
        self.builder.append(&header, io::empty())
    }

    /// Adds a regular file of exactly `size` bytes read from `data`.
    ///
    /// `data` must yield exactly `size` bytes; the caller checks that (a short read
    /// would otherwise shift every following entry).
    pub(crate) fn file(
        &mut self,
        name: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        data: impl Read,
    ) -> io::Result<()> {
        let header = self.header(name, EntryType::Regular, mode, mtime, size)?;
        self.builder.append(&header, data)
    }

    /// Starts a regular file of exactly `size` bytes, which the caller then writes
    /// into the returned [`FileBody`] straight from its own buffers (no copy through
    /// a reader).
    pub(crate) fn begin_file(
        &mut self,
        name: &str,
        mode: u32,
        mtime: u64,
        size: u64,
    ) -> io::Result<FileBody<'_, W>> {
        let header = self.header(name, EntryType::Regular, mode, mtime, size)?;
        // An empty body: the header alone, no padding.
        self.builder.append(&header, io::empty())?;
        Ok(FileBody {
            out: self.builder.get_mut(),
            size,
            written: 0,
        })
    }

    /// Writes the end-of-archive marker and returns the output.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    /// A header for `name`, preceded in the archive by a GNU long-name entry when the
    /// name does not fit the 100-byte field.
    fn header(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        mtime: u64,
        size: u64,
    ) -> io::Result<Header> {
        let bytes = name.as_bytes();
        if bytes.len() > NAME_FIELD {
            let mut long = bytes.to_vec();
            long.push(0);
            let link = base_header(
                b"././@LongLink",
                EntryType::GNULongName,
                0o644,
                0,
                long.len() as u64,
            )?;
            self.builder.append(&link, long.as_slice())?;
        }
        base_header(
            &bytes[..bytes.len().min(NAME_FIELD)],
            kind,
            mode,
            mtime,
            size,
        )
    }
}

/// The content of a file entry started by [`TarWriter::begin_file`].
pub(crate) struct FileBody<'a, W: Write> {
    out: &'a mut W,
    size: u64,
    written: u64,
}

impl<W: Write> FileBody<'_, W> {
    /// Appends `bytes`; more than the announced size is an error.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = bytes.len() as u64;
        if self.written + len > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a tar entry of {} bytes was given more", self.size),
            ));
        }
        self.out.write_all(bytes)?;
        self.written += len;
        Ok(())
    }

    /// Ends the entry: pads it to the 512-byte block. Fewer bytes than announced
    /// is an error (every following entry would be shifted).
    pub(crate) fn finish(self) -> io::Result<()> {
        if self.written != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a tar entry of {} bytes was given only {}",
                    self.size, self.written
                ),
            ));
        }
        let partial = (self.size % BLOCK) as usize;
        if partial != 0 {
            self.out.write_all(&[0; BLOCK as usize][partial..])?;
        }
        Ok(())
    }
}

fn base_header(
    name: &[u8],
    kind: EntryType,
    mode: u32,
    mtime: u64,
    size: u64,
) -> io::Result<Header> {
    let mut header = Header::new_gnu();
    let gnu = header
        .as_gnu_mut()
        .ok_or_else(|| io::Error::other("a new GNU header is GNU"))?;
    gnu.name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("root")?;
    header.set_groupname("root")?;
    header.set_mtime(mtime);
    header.set_size(size);
    header.set_cksum();
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_with_owner_mode_and_long_names() {
        let long = format!("./usr/share/doc/{}/file", "d".repeat(120));
        let mut tar = TarWriter::new(Vec::new());
        tar.dir("./", 0o755, 100).unwrap();
        tar.file("./usr/bin/hello", 0o755, 200, 5, &b"hello"[..])
            .unwrap();
        tar.file(&long, 0o644, 300, 2, &b"hi"[..]).unwrap();
        let mut body = tar.begin_file("./chunks", 0o644, 400, 7).unwrap();
        body.write_all(b"chu").unwrap();
        body.write_all(b"nks").unwrap();
        body.write_all(b"!").unwrap();
        body.finish().unwrap();
        tar.file("./after", 0o644, 500, 1, &b"a"[..]).unwrap();
        let bytes = tar.finish().unwrap();

        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some("root"));
            assert_eq!(header.groupname().unwrap(), Some("root"));
            seen.push((path, header.mode().unwrap(), header.mtime().unwrap(), body));
        }
        assert_eq!(
            seen,
            vec![
                ("./".to_owned(), 0o755, 100, vec![]),
                ("./usr/bin/hello".to_owned(), 0o755, 200, b"hello".to_vec()),
                (long, 0o644, 300, b"hi".to_vec()),
                ("./chunks".to_owned(), 0o644, 400, b"chunks!".to_vec()),
                ("./after".to_owned(), 0o644, 500, b"a".to_vec()),
            ]
        );
    }

    #[test]
    fn a_body_of_the_wrong_size_is_an_error() {
        let mut tar = TarWriter::new(Vec::new());
        let mut body = tar.begin_file("./f", 0o644, 0, 3).unwrap();
        body.write_all(b"ab").unwrap();
        assert!(body.write_all(b"cd").is_err());
        let err = body.finish().unwrap_err();
        assert!(err.to_string().contains("only 2"), "{err}");
    }
}
