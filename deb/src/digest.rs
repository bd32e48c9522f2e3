//! The MD5 of every packed file (for `md5sums`), computed on a worker thread from the
//! very bytes that go into `data.tar`, so hashing does not hold up the tar stream.
//!
//! [`Md5Worker::read_chunk`] reads an input file in large chunks; the caller hands
//! each chunk to the worker and writes the same bytes into the tar stream. The worker
//! returns one digest per file, in order.
//!
//! On a CPU with AVX2 or AVX-512, the worker keeps finished files until it has a few
//! dozen of them and hashes those side by side ([`md5_lanes`]), several times faster
//! than one after the other. A file larger than [`STREAM_ABOVE`] is hashed as its
//! chunks arrive instead, so the memory held stays bounded whatever the package holds.
//! Without those vector units every file is hashed as it arrives.
//!
//! Memory: besides the [`QUEUE`] batches in flight (about 10 MiB of data), the worker
//! holds the buffers of up to [`BATCH_HASH_FILES`] ended files and of the current one —
//! about 16 MiB of buffers (each chunk buffer is [`CHUNK`] long, however small the file)
//! or 12 MiB of data ([`BATCH_HASH_BYTES`] plus a last file of up to [`STREAM_ABOVE`]),
//! whichever is more — and up to [`SPARE_BUFFERS`] × [`CHUNK`] = 32 MiB of buffers
//! waiting to be reused.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use md5::{Digest, Md5};

use crate::md5_lanes::{self, LANES};

/// Bytes read from an input file at a time.
const CHUNK: usize = 256 * 1024;
/// A batch goes to the worker once it holds this many bytes...
const BATCH_BYTES: usize = 1 << 20;
/// ...or this many messages (a package of many small files would otherwise wake the
/// worker once per file: thousands of context switches for little hashing each).
const BATCH_MESSAGES: usize = 128;
/// Batches in flight to the worker (about 10 MiB of file data).
const QUEUE: usize = 8;
/// Hashed buffers kept for reuse.
const SPARE_BUFFERS: usize = 128;
/// Ended files are hashed side by side once this many are waiting, or once they hold
/// [`BATCH_HASH_BYTES`]. (Larger batches fill the lanes better but keep more buffers
/// from being reused, and leave more to hash after the last file: slower overall.)
const BATCH_HASH_FILES: usize = 4 * LANES;
const BATCH_HASH_BYTES: usize = 8 << 20;
/// A file larger than this is hashed on its own as it arrives, not kept for a batch.
const STREAM_ABOVE: usize = 4 << 20;

enum Message {
    Chunk(Arc<Vec<u8>>),
    EndOfFile,
}

/// Messages not sent to the worker yet.
#[derive(Default)]
struct Batch {
    messages: Vec<Message>,
    bytes: usize,
}

/// Hashes chunks on its own thread; one digest per [`end_file`](Self::end_file).
/// Messages travel in batches; hashed chunks come back for reuse, so reading does not
/// allocate (and page-fault) fresh buffers all the time.
pub(crate) struct Md5Worker {
    sender: SyncSender<Vec<Message>>,
    recycled: Receiver<Arc<Vec<u8>>>,
    handle: JoinHandle<Vec<[u8; 16]>>,
    batch: RefCell<Batch>,
}

impl std::fmt::Debug for Md5Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Worker")
    }
}

impl Md5Worker {
    pub(crate) fn start() -> io::Result<Self> {
        let (sender, receiver) = sync_channel(QUEUE);
        let (recycle, recycled) = sync_channel(SPARE_BUFFERS);
        let handle = std::thread::Builder::new()
            .name("hoist-deb-md5".into())
            .spawn(move || hash_all(&receiver, &recycle))?;
        Ok(Md5Worker {
            sender,
            recycled,
            handle,
            batch: RefCell::new(Batch::default()),
        })
    }

    /// An empty buffer for a chunk, reused when one is available.
    fn buffer(&self) -> Vec<u8> {
        while let Ok(chunk) = self.recycled.try_recv() {
            // The reader let go of it before asking; the worker has hashed it.
            if let Ok(mut buf) = Arc::try_unwrap(chunk) {
                buf.clear();
                return buf;
            }
        }
        Vec::with_capacity(CHUNK)
    }

    /// Reads the next chunk of an input file — up to [`CHUNK`] bytes, fewer only at
    /// the end of `from` — into a recycled buffer. Empty at the end. The caller hands
    /// it to [`chunk`](Self::chunk) and lets go of it before reading the next one, so
    /// that the buffer can come back.
    ///
    /// # Errors
    /// Reading `from` failed: a problem with the input, not with the worker.
    pub(crate) fn read_chunk(&self, from: &mut impl Read) -> io::Result<Arc<Vec<u8>>> {
        let mut buf = self.buffer();
        from.take(CHUNK as u64).read_to_end(&mut buf)?;
        Ok(Arc::new(buf))
    }

    /// Adds bytes to the current file.
    pub(crate) fn chunk(&self, chunk: Arc<Vec<u8>>) -> io::Result<()> {
        let len = chunk.len();
        self.push(Message::Chunk(chunk), len)
    }

    /// Ends the current file: its digest is the next one [`finish`](Self::finish) returns.
    pub(crate) fn end_file(&self) -> io::Result<()> {
        self.push(Message::EndOfFile, 0)
    }

    /// The digests of all files, in the order they were ended.
    pub(crate) fn finish(self) -> io::Result<Vec<[u8; 16]>> {
        self.send_batch()?;
        drop(self.sender);
        self.handle
            .join()
            .map_err(|_| io::Error::other("the md5 worker thread panicked"))
    }

    fn push(&self, message: Message, bytes: usize) -> io::Result<()> {
        let full = {
            let mut batch = self.batch.borrow_mut();
            batch.messages.push(message);
            batch.bytes += bytes;
            batch.bytes >= BATCH_BYTES || batch.messages.len() >= BATCH_MESSAGES
        };
        if full { self.send_batch() } else { Ok(()) }
    }

    fn send_batch(&self) -> io::Result<()> {
        let messages = std::mem::take(&mut *self.batch.borrow_mut()).messages;
        if messages.is_empty() {
            return Ok(());
        }
        self.sender
            .send(messages)
            .map_err(|_| io::Error::other("the md5 worker thread stopped"))
    }
}

fn hash_all(
    receiver: &Receiver<Vec<Message>>,
    recycle: &SyncSender<Arc<Vec<u8>>>,
) -> Vec<[u8; 16]> {
    let mut hasher = Hasher {
        digests: Vec::new(),
        current: Vec::new(),
        current_bytes: 0,
        streaming: None,
        stream_above: if md5_lanes::is_vectorized() {
            STREAM_ABOVE
        } else {
            0
        },
        waiting: Waiting::default(),
        recycle,
    };
    for message in receiver.iter().flatten() {
        match message {
            Message::Chunk(chunk) => hasher.chunk(chunk),
            Message::EndOfFile => hasher.end_file(),
        }
    }
    hasher.hash_waiting();
    hasher.digests
}

/// The worker's side: files waiting for a side-by-side batch, or one large file being
/// hashed as it arrives.
struct Hasher<'a> {
    /// One per ended file, in order; those still waiting are filled in by their batch.
    digests: Vec<[u8; 16]>,
    /// The chunks of the file being received.
    current: Vec<Arc<Vec<u8>>>,
    current_bytes: usize,
    /// Set once the current file has grown past `stream_above`.
    streaming: Option<Md5>,
    /// [`STREAM_ABOVE`], or 0 (every file streamed) without vector units.
    stream_above: usize,
    waiting: Waiting,
    recycle: &'a SyncSender<Arc<Vec<u8>>>,
}

impl Hasher<'_> {
    fn chunk(&mut self, chunk: Arc<Vec<u8>>) {
        if let Some(md5) = &mut self.streaming {
            md5.update(chunk.as_slice());
            give_back(self.recycle, chunk);
            return;
        }
        self.current_bytes += chunk.len();
        self.current.push(chunk);
        if self.current_bytes > self.stream_above {
            let mut md5 = Md5::new();
            for chunk in std::mem::take(&mut self.current) {
                md5.update(chunk.as_slice());
                give_back(self.recycle, chunk);
            }
            self.streaming = Some(md5);
        }
    }

    fn end_file(&mut self) {
        let index = self.digests.len();
        let bytes = std::mem::take(&mut self.current_bytes);
        if let Some(md5) = self.streaming.take() {
            self.digests.push(md5.finalize().into());
            return;
        }
        self.digests.push([0; 16]);
        self.waiting
            .files
            .push((index, std::mem::take(&mut self.current)));
        self.waiting.bytes += bytes;
        if self.waiting.files.len() >= BATCH_HASH_FILES || self.waiting.bytes >= BATCH_HASH_BYTES {
            self.hash_waiting();
        }
    }

    /// Hashes the waiting files side by side, fills in their digests and gives the
    /// buffers back.
    fn hash_waiting(&mut self) {
        let files = std::mem::take(&mut self.waiting).files;
        let messages: Vec<Vec<&[u8]>> = files
            .iter()
            .map(|(_, chunks)| chunks.iter().map(|c| c.as_slice()).collect())
            .collect();
        let hashed = md5_lanes::digest_all(&messages);
        drop(messages);
        for ((index, chunks), digest) in files.into_iter().zip(hashed) {
            self.digests[index] = digest;
            for chunk in chunks {
                give_back(self.recycle, chunk);
            }
        }
    }
}

/// Ended files (digest index, chunks) waiting for their batch.
#[derive(Default)]
struct Waiting {
    files: Vec<(usize, Vec<Arc<Vec<u8>>>)>,
    bytes: usize,
}

/// A full queue or a gone reader only means this buffer is not reused.
fn give_back(recycle: &SyncSender<Arc<Vec<u8>>>, chunk: Arc<Vec<u8>>) {
    let _ = recycle.try_send(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `contents` through a worker as the packer does; returns the digests and the
    /// bytes each file was served as.
    fn serve(contents: &[Vec<u8>]) -> (Vec<[u8; 16]>, Vec<Vec<u8>>) {
        let worker = Md5Worker::start().unwrap();
        let mut served = Vec::new();
        for content in contents {
            let mut from = content.as_slice();
            let mut out = Vec::new();
            loop {
                let chunk = worker.read_chunk(&mut from).unwrap();
                if chunk.is_empty() {
                    break;
                }
                assert!(chunk.len() <= CHUNK);
                out.extend_from_slice(&chunk);
                worker.chunk(chunk).unwrap();
            }
            worker.end_file().unwrap();
            served.push(out);
        }
        (worker.finish().unwrap(), served)
    }

    fn expected(contents: &[Vec<u8>]) -> Vec<[u8; 16]> {
        contents.iter().map(|c| Md5::digest(c).into()).collect()
    }

    #[test]
    fn digests_match_the_bytes_served() {
        let big: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let contents = vec![big, Vec::new(), b"small".to_vec()];
        let (digests, served) = serve(&contents);
        assert_eq!(served, contents);
        assert_eq!(digests, expected(&contents));
    }

    #[test]
    fn batches_and_streamed_large_files_keep_the_file_order() {
        // More files than one batch, of one chunk and more, with files above the
        // streaming limit between them (one exactly at it, which still waits).
        let mut contents: Vec<Vec<u8>> = (0..BATCH_HASH_FILES * 3 + 5)
            .map(|i| vec![(i % 256) as u8; (i * 997) % 70_000 + usize::from(i % 9 == 0) * CHUNK])
            .collect();
        contents.insert(10, vec![1; STREAM_ABOVE + 1]);
        contents.insert(100, vec![2; STREAM_ABOVE]);
        contents.push(vec![3; STREAM_ABOVE + CHUNK + 3]);
        let (digests, served) = serve(&contents);
        assert_eq!(served, contents);
        assert_eq!(digests, expected(&contents));
    }
}
