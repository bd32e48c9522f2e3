//! The MD5 of every packed file (for `md5sums`), computed on a worker thread from the
//! very bytes that go into `data.tar`, so hashing does not hold up the tar stream.
//!
//! [`Md5Worker::read_chunk`] reads an input file in large chunks; the caller hands
//! each chunk to the worker and writes the same bytes into the tar stream. The worker
//! returns one digest per file, in order.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use md5::{Digest, Md5};

/// Bytes read from an input file at a time.
const CHUNK: usize = 256 * 1024;
/// A batch goes to the worker once it holds this many bytes...
const BATCH_BYTES: usize = 1 << 20;
/// ...or this many messages (a package of many small files would otherwise wake the
/// worker once per file: thousands of context switches for little hashing each).
const BATCH_MESSAGES: usize = 128;
/// Batches in flight to the worker (bounds memory to about 10 MiB).
const QUEUE: usize = 8;
/// Hashed buffers kept for reuse.
const SPARE_BUFFERS: usize = 64;

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
    let mut digests = Vec::new();
    let mut md5 = Md5::new();
    for message in receiver.iter().flatten() {
        match message {
            Message::Chunk(chunk) => {
                md5.update(chunk.as_slice());
                // A full queue or a gone reader only means this buffer is not reused.
                let _ = recycle.try_send(chunk);
            }
            Message::EndOfFile => digests.push(md5.finalize_reset().into()),
        }
    }
    digests
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    #[test]
    fn digests_match_the_bytes_served() {
        let worker = Md5Worker::start().unwrap();
        let big: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut served = Vec::new();
        for content in [&big[..], b"", b"small"] {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(content).unwrap();
            file.rewind().unwrap();
            let mut out = Vec::new();
            loop {
                let chunk = worker.read_chunk(&mut file).unwrap();
                if chunk.is_empty() {
                    break;
                }
                assert!(chunk.len() <= CHUNK);
                out.extend_from_slice(&chunk);
                worker.chunk(chunk).unwrap();
            }
            assert_eq!(out.len(), content.len());
            worker.end_file().unwrap();
            served.push(out);
        }
        let digests = worker.finish().unwrap();
        let expected: Vec<[u8; 16]> = served.iter().map(|b| Md5::digest(b).into()).collect();
        assert_eq!(digests, expected);
        assert_eq!(served[0], big);
    }
}
