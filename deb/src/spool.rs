//! Where a compressed member waits for the archive to be written: in memory while it
//! is small, in an anonymous temporary file once it is not.
//!
//! The members cannot be written into the `.deb` as they are produced: `control.tar`
//! comes first in the archive but needs the md5sums of everything in `data.tar`. Most
//! packages compress to a few MB, and keeping those in memory saves writing them to a
//! temporary file and copying them again.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

/// Compressed bytes kept in memory up to this size; beyond it, they go to a file.
pub(crate) const MEMORY_LIMIT: usize = 128 << 20;

/// A growing byte sink; see the module documentation.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    limit: usize,
    stored: Stored,
}

#[derive(Debug)]
enum Stored {
    Memory(Vec<u8>),
    File(File),
}

/// A finished spool's bytes, ready to be copied into the archive.
#[derive(Debug)]
pub(crate) enum Spooled {
    Memory(Vec<u8>),
    /// Positioned at its start.
    File(File),
}

impl Spooled {
    /// The number of bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            Spooled::Memory(bytes) => Ok(bytes.len() as u64),
            Spooled::File(file) => Ok(file.metadata()?.len()),
        }
    }
}

impl Spool {
    /// An empty spool that spills into an anonymous file in `dir` (the output
    /// directory, so that a large package does not fill a small `/tmp`).
    pub(crate) fn new(dir: &Path) -> Spool {
        Spool::with_limit(dir, MEMORY_LIMIT)
    }

    fn with_limit(dir: &Path, limit: usize) -> Spool {
        Spool {
            dir: dir.to_owned(),
            limit,
            stored: Stored::Memory(Vec::new()),
        }
    }

    /// The bytes written, from the start.
    pub(crate) fn finish(self) -> io::Result<Spooled> {
        match self.stored {
            Stored::Memory(bytes) => Ok(Spooled::Memory(bytes)),
            Stored::File(mut file) => {
                file.rewind()?;
                Ok(Spooled::File(file))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.stored {
            Stored::Memory(bytes) if bytes.len() + buf.len() <= self.limit => {
                bytes.extend_from_slice(buf);
                Ok(())
            }
            Stored::Memory(bytes) => {
                let mut file = tempfile::tempfile_in(&self.dir)?;
                file.write_all(bytes)?;
                file.write_all(buf)?;
                self.stored = Stored::File(file);
                Ok(())
            }
            Stored::File(file) => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read as _;

    use super::*;

    fn contents(spooled: Spooled) -> Vec<u8> {
        match spooled {
            Spooled::Memory(bytes) => bytes,
            Spooled::File(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).unwrap();
                bytes
            }
        }
    }

    #[test]
    fn small_output_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::with_limit(dir.path(), 10);
        spool.write_all(b"hello").unwrap();
        spool.write_all(b"world").unwrap();
        let spooled = spool.finish().unwrap();
        assert!(matches!(spooled, Spooled::Memory(_)));
        assert_eq!(spooled.len().unwrap(), 10);
        assert_eq!(contents(spooled), b"helloworld");
    }

    #[test]
    fn output_beyond_the_limit_goes_to_a_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::with_limit(dir.path(), 10);
        spool.write_all(b"hello").unwrap();
        spool.write_all(b"world!").unwrap();
        spool.write_all(b" more").unwrap();
        let spooled = spool.finish().unwrap();
        assert!(matches!(spooled, Spooled::File(_)));
        assert_eq!(spooled.len().unwrap(), 16);
        assert_eq!(contents(spooled), b"helloworld! more");
        // Anonymous: nothing appears in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
