//! Compressors for the tar members, and decompressors for [`inspect`](crate::inspect).
//!
//! All three compressors use every core they are given, and none of their outputs
//! depends on the number of threads:
//!
//! - gzip: the stream is cut into 1 MiB blocks deflated independently at level 9 and
//!   joined with sync flushes (like pigz without dictionaries). On the benchmark payload
//!   this is within 0.1% of `gzip -9`'s size.
//! - xz: liblzma's block-parallel encoder, preset 6 (dpkg-deb's default), CRC64.
//! - zstd: level 3 (dpkg-deb's default), 4 MiB chunks compressed into independent
//!   frames in parallel (see [`crate::zstd_frames`]).

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;

use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};

use crate::spool::Spool;
use crate::zstd_frames::FrameWriter;
use crate::{Compression, DebError};

/// Size of the independently deflated gzip blocks.
const GZIP_BLOCK: usize = 1 << 20;
/// Deflate level: zlib-rs at 9 is both smaller and faster here than zlib's default 6.
const GZIP_LEVEL: u32 = 9;
/// dpkg-deb's default xz preset.
const XZ_PRESET: u32 = 6;
/// dpkg-deb's default zstd level.
const ZSTD_LEVEL: i32 = 3;

/// The number of compression threads to use when the caller did not choose.
pub(crate) fn default_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// A streaming compressor writing into a [`Spool`].
pub(crate) struct Encoder {
    /// `None` once finished.
    inner: Option<Inner>,
}

enum Inner {
    Gzip(ParCompress<'static, Gzip, Spool>),
    Xz(liblzma::write::XzEncoder<Spool>),
    Zstd(FrameWriter<Spool>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.inner {
            Some(Inner::Gzip(_)) => "gzip",
            Some(Inner::Xz(_)) => "xz",
            Some(Inner::Zstd(_)) => "zstd",
            None => "finished",
        };
        write!(f, "Encoder({name})")
    }
}

impl Encoder {
    /// Starts compressing into `out` with `threads` worker threads.
    pub(crate) fn new(
        compression: Compression,
        threads: NonZeroUsize,
        out: Spool,
    ) -> Result<Self, DebError> {
        let fail = |reason: String| DebError::Compression {
            compression: compression.name(),
            reason,
        };
        let thread_count = u32::try_from(threads.get()).unwrap_or(u32::MAX);
        let inner = match compression {
            Compression::Gzip => {
                let writer = ParCompressBuilder::<Gzip>::new()
                    .buffer_size(GZIP_BLOCK)
                    .map_err(|e| fail(e.to_string()))?
                    .num_threads(threads.get())
                    .map_err(|e| fail(e.to_string()))?
                    .compression_level(flate2::Compression::new(GZIP_LEVEL))
                    .from_writer(out);
                Inner::Gzip(writer)
            }
            Compression::Xz => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .preset(XZ_PRESET)
                    .threads(thread_count)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(|e| fail(e.to_string()))?;
                Inner::Xz(liblzma::write::XzEncoder::new_stream(out, stream))
            }
            Compression::Zstd => Inner::Zstd(
                FrameWriter::new(out, ZSTD_LEVEL, threads).map_err(|e| fail(e.to_string()))?,
            ),
        };
        Ok(Encoder { inner: Some(inner) })
    }

    /// Writes the end of the stream and returns the spool it was written to.
    pub(crate) fn finish(mut self) -> io::Result<Spool> {
        match self.inner.take() {
            Some(Inner::Gzip(mut writer)) => writer.finish().map_err(io::Error::other),
            Some(Inner::Xz(writer)) => writer.finish(),
            Some(Inner::Zstd(writer)) => writer.finish(),
            None => Err(finished()),
        }
    }

    fn inner(&mut self) -> io::Result<&mut Inner> {
        self.inner.as_mut().ok_or_else(finished)
    }
}

fn finished() -> io::Error {
    io::Error::other("the compressed stream is already finished")
}

impl Drop for Encoder {
    /// gzp finishes a stream dropped unfinished (after an error elsewhere) and panics
    /// when that fails; finish it here instead and ignore the error, since the build
    /// is failing anyway.
    fn drop(&mut self) {
        if let Some(Inner::Gzip(mut writer)) = self.inner.take() {
            let _ = writer.finish();
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner()? {
            Inner::Gzip(w) => w.write(buf),
            Inner::Xz(w) => w.write(buf),
            Inner::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner()? {
            Inner::Gzip(w) => w.flush(),
            Inner::Xz(w) => w.flush(),
            Inner::Zstd(w) => w.flush(),
        }
    }
}

/// A reader that decompresses `input` according to `compression`.
pub(crate) fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        // MultiGzDecoder: a gzip file may hold several members (e.g. from pigz).
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Spooled;

    fn round_trip(compression: Compression, threads: usize, data: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let threads = NonZeroUsize::new(threads).unwrap();
        let mut encoder = Encoder::new(compression, threads, Spool::new(dir.path())).unwrap();
        encoder.write_all(data).unwrap();
        let Spooled::Memory(compressed) = encoder.finish().unwrap().finish().unwrap() else {
            panic!("a small stream stays in memory");
        };
        let mut back = Vec::new();
        decoder(compression, compressed.as_slice())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "{compression} round trip");
        compressed
    }

    /// Moderately compressible bytes, enough for two gzip blocks.
    fn sample() -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..GZIP_BLOCK + 12345)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 3 == 0 {
                    (state % 16) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    #[test]
    fn output_does_not_depend_on_thread_count() {
        let data = sample();
        for compression in Compression::ALL {
            // Several gzip blocks; less for xz and zstd, slow in unoptimized test builds.
            let data = match compression {
                Compression::Gzip => &data[..],
                Compression::Xz | Compression::Zstd => &data[..256 * 1024],
            };
            let one = round_trip(compression, 1, data);
            let three = round_trip(compression, 3, data);
            assert!(one.len() < data.len(), "{compression} compresses");
            assert_eq!(
                one, three,
                "{compression}: 1 and 3 threads give the same bytes"
            );
        }
    }

    #[test]
    fn empty_input_round_trips() {
        for compression in Compression::ALL {
            round_trip(compression, 2, b"");
        }
    }
}
