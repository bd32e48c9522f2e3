//! MD5 of many independent messages at once ("multi-buffer" hashing).
//!
//! One MD5 stream is a chain of dependent 32-bit operations, so a single message cannot
//! use vector instructions. Many messages can: each of [`LANES`] lanes hashes its own
//! message, and every step of the compression function is done for all lanes with one
//! vector operation (AVX-512: 16 lanes in one register; AVX2: two registers of 8).
//! The per-lane arithmetic below is plain Rust on `[u32; LANES]` arrays that the
//! compiler vectorizes; [`digest_all`] picks the widest instruction set the CPU has
//! at run time. A package's `md5sums` is the use case: hundreds of files, hashed
//! several times faster than one after the other.
//!
//! When a lane's message ends, the lane takes the next one, so lanes stay busy when
//! messages differ in length (longest messages go first).

use std::cmp::Reverse;

/// Messages hashed side by side.
pub(crate) const LANES: usize = 16;

const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Whether this CPU has a vector unit that makes [`digest_all`] faster than hashing the
/// messages one after the other (AVX2 or AVX-512 on x86-64). Without one, callers are
/// better off with a plain MD5 per message.
pub(crate) fn is_vectorized() -> bool {
    VectorUnit::detect() != VectorUnit::None
}

/// The widest vector unit the compression function is built for that this CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum VectorUnit {
    Avx512,
    Avx2,
    None,
}

impl VectorUnit {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return VectorUnit::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return VectorUnit::Avx2;
            }
        }
        VectorUnit::None
    }
}

/// The MD5 digest of every message, in order. A message is the concatenation of its
/// parts (parts may have any length, including zero).
pub(crate) fn digest_all(messages: &[Vec<&[u8]>]) -> Vec<[u8; 16]> {
    let compress = compressor();
    let mut digests = vec![[0u8; 16]; messages.len()];
    // Longest first: the long ones start together, short ones fill the gaps.
    let mut queue: Vec<usize> = (0..messages.len()).collect();
    queue.sort_by_cached_key(|&i| Reverse(messages[i].iter().map(|p| p.len()).sum::<usize>()));
    let mut queue = queue.into_iter().peekable();

    let mut state = [[0u32; LANES]; 4];
    let mut feeds: [Option<(usize, Feed<'_>)>; LANES] = std::array::from_fn(|_| None);
    let mut block = [[0u32; LANES]; 16];
    loop {
        for (lane, feed) in feeds.iter_mut().enumerate() {
            if feed.is_none()
                && let Some(index) = queue.next()
            {
                for (word, iv) in state.iter_mut().zip(IV) {
                    word[lane] = iv;
                }
                *feed = Some((index, Feed::new(&messages[index])));
            }
        }
        let mut active = feeds.iter().enumerate().filter(|(_, f)| f.is_some());
        match (active.next(), active.next(), queue.peek()) {
            (None, _, _) => return digests,
            // The last message, alone: one lane of a vector step costs as much as a
            // whole step, more than a plain MD5 step.
            (Some((lane, _)), None, None) => {
                if let Some((index, feed)) = feeds[lane].take() {
                    let lane_state = std::array::from_fn(|word| [state[word][lane]]);
                    digests[index] = finish_alone(lane_state, feed);
                }
                return digests;
            }
            _ => {}
        }
        for (lane, slot) in feeds.iter_mut().enumerate() {
            if let Some((_, feed)) = slot {
                feed.next_block(&mut block, lane);
            }
        }
        compress(&mut state, &block);
        for (lane, slot) in feeds.iter_mut().enumerate() {
            if let Some((index, feed)) = slot
                && feed.is_done()
            {
                digests[*index] = digest_of(&state, lane);
                *slot = None;
            }
        }
    }
}

/// Hashes the rest of one message from its current state, one block at a time.
fn finish_alone(mut state: [[u32; 1]; 4], mut feed: Feed<'_>) -> [u8; 16] {
    let mut block = [[0u32; 1]; 16];
    while !feed.is_done() {
        feed.next_block(&mut block, 0);
        compress_lanes(&mut state, &block);
    }
    digest_of(&state, 0)
}

fn digest_of<const N: usize>(state: &[[u32; N]; 4], lane: usize) -> [u8; 16] {
    let mut digest = [0u8; 16];
    for (word, bytes) in state.iter().zip(digest.chunks_exact_mut(4)) {
        bytes.copy_from_slice(&word[lane].to_le_bytes());
    }
    digest
}

/// Cuts one message into 64-byte blocks, then the padding block(s).
#[derive(Debug)]
struct Feed<'a> {
    /// What is left of the part being read.
    rest: &'a [u8],
    /// The parts after it.
    later: &'a [&'a [u8]],
    length: u64,
    /// The last one or two blocks (rest of the data, 0x80, zeros, bit length), once
    /// fewer than 64 data bytes are left.
    tail: Option<Tail>,
}

#[derive(Debug)]
struct Tail {
    bytes: [[u8; 64]; 2],
    blocks: usize,
    sent: usize,
}

impl<'a> Feed<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Feed {
            rest: &[],
            later: parts,
            length: parts.iter().map(|p| p.len() as u64).sum(),
            tail: None,
        }
    }

    /// True once the last block has been handed out.
    fn is_done(&self) -> bool {
        self.tail.as_ref().is_some_and(|t| t.sent == t.blocks)
    }

    /// Writes the next block's 16 words into column `lane` of `block`.
    fn next_block<const N: usize>(&mut self, block: &mut [[u32; N]; 16], lane: usize) {
        if self.tail.is_none() {
            // Fast path: a whole block inside the current part.
            if let Some((head, rest)) = self.rest.split_first_chunk::<64>() {
                put_words(block, lane, head);
                self.rest = rest;
                return;
            }
            let mut bytes = [0u8; 64];
            let taken = self.take_up_to_64(&mut bytes);
            if taken == 64 {
                put_words(block, lane, &bytes);
                return;
            }
            self.tail = Some(Tail::new(&bytes[..taken], self.length));
        }
        if let Some(tail) = &mut self.tail {
            put_words(block, lane, &tail.bytes[tail.sent]);
            tail.sent += 1;
        }
    }

    /// Copies up to 64 bytes across part boundaries; returns how many.
    fn take_up_to_64(&mut self, into: &mut [u8; 64]) -> usize {
        let mut taken = 0;
        while taken < 64 {
            if self.rest.is_empty() {
                let Some((next, later)) = self.later.split_first() else {
                    break;
                };
                self.rest = next;
                self.later = later;
                continue;
            }
            let n = self.rest.len().min(64 - taken);
            let (now, rest) = self.rest.split_at(n);
            into[taken..taken + n].copy_from_slice(now);
            taken += n;
            self.rest = rest;
        }
        taken
    }
}

impl Tail {
    /// `rest` is the message's last `length % 64` bytes.
    fn new(rest: &[u8], length: u64) -> Self {
        let mut flat = [0u8; 128];
        flat[..rest.len()].copy_from_slice(rest);
        flat[rest.len()] = 0x80;
        let blocks = if rest.len() < 56 { 1 } else { 2 };
        let end = blocks * 64;
        flat[end - 8..end].copy_from_slice(&length.wrapping_mul(8).to_le_bytes());
        let (blocks_of_64, _) = flat.as_chunks::<64>();
        Tail {
            bytes: [blocks_of_64[0], blocks_of_64[1]],
            blocks,
            sent: 0,
        }
    }
}

fn put_words<const N: usize>(block: &mut [[u32; N]; 16], lane: usize, bytes: &[u8; 64]) {
    let (words, _) = bytes.as_chunks::<4>();
    for (word, bytes) in block.iter_mut().zip(words) {
        word[lane] = u32::from_le_bytes(*bytes);
    }
}

type Compress = fn(&mut [[u32; LANES]; 4], &[[u32; LANES]; 16]);

/// The compression function built for the widest vector unit this CPU has.
fn compressor() -> Compress {
    match VectorUnit::detect() {
        #[cfg(target_arch = "x86_64")]
        VectorUnit::Avx512 => |state, block| {
            // SAFETY: the CPU supports AVX-512F (`VectorUnit::detect`).
            unsafe { compress_avx512(state, block) }
        },
        #[cfg(target_arch = "x86_64")]
        VectorUnit::Avx2 => |state, block| {
            // SAFETY: the CPU supports AVX2 (`VectorUnit::detect`).
            unsafe { compress_avx2(state, block) }
        },
        _ => compress_portable,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn compress_avx512(state: &mut [[u32; LANES]; 4], block: &[[u32; LANES]; 16]) {
    compress_lanes(state, block);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn compress_avx2(state: &mut [[u32; LANES]; 4], block: &[[u32; LANES]; 16]) {
    compress_lanes(state, block);
}

fn compress_portable(state: &mut [[u32; LANES]; 4], block: &[[u32; LANES]; 16]) {
    compress_lanes(state, block);
}

/// One MD5 compression (RFC 1321, section 3.4) in each of `N` lanes.
#[inline(always)]
fn compress_lanes<const N: usize>(state: &mut [[u32; N]; 4], m: &[[u32; N]; 16]) {
    let [mut a, mut b, mut c, mut d] = *state;

    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $k:expr, $s:expr) => {
            for l in 0..N {
                let f: u32 = $f($b[l], $c[l], $d[l]);
                $a[l] = $b[l].wrapping_add(
                    $a[l]
                        .wrapping_add(f)
                        .wrapping_add(m[$i][l])
                        .wrapping_add($k)
                        .rotate_left($s),
                );
            }
        };
    }
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| y ^ (z & (x ^ y));
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let i = |x: u32, y: u32, z: u32| y ^ (x | !z);

    step!(f, a, b, c, d, 0, 0xd76a_a478, 7);
    step!(f, d, a, b, c, 1, 0xe8c7_b756, 12);
    step!(f, c, d, a, b, 2, 0x2420_70db, 17);
    step!(f, b, c, d, a, 3, 0xc1bd_ceee, 22);
    step!(f, a, b, c, d, 4, 0xf57c_0faf, 7);
    step!(f, d, a, b, c, 5, 0x4787_c62a, 12);
    step!(f, c, d, a, b, 6, 0xa830_4613, 17);
    step!(f, b, c, d, a, 7, 0xfd46_9501, 22);
    step!(f, a, b, c, d, 8, 0x6980_98d8, 7);
    step!(f, d, a, b, c, 9, 0x8b44_f7af, 12);
    step!(f, c, d, a, b, 10, 0xffff_5bb1, 17);
    step!(f, b, c, d, a, 11, 0x895c_d7be, 22);
    step!(f, a, b, c, d, 12, 0x6b90_1122, 7);
    step!(f, d, a, b, c, 13, 0xfd98_7193, 12);
    step!(f, c, d, a, b, 14, 0xa679_438e, 17);
    step!(f, b, c, d, a, 15, 0x49b4_0821, 22);

    step!(g, a, b, c, d, 1, 0xf61e_2562, 5);
    step!(g, d, a, b, c, 6, 0xc040_b340, 9);
    step!(g, c, d, a, b, 11, 0x265e_5a51, 14);
    step!(g, b, c, d, a, 0, 0xe9b6_c7aa, 20);
    step!(g, a, b, c, d, 5, 0xd62f_105d, 5);
    step!(g, d, a, b, c, 10, 0x0244_1453, 9);
    step!(g, c, d, a, b, 15, 0xd8a1_e681, 14);
    step!(g, b, c, d, a, 4, 0xe7d3_fbc8, 20);
    step!(g, a, b, c, d, 9, 0x21e1_cde6, 5);
    step!(g, d, a, b, c, 14, 0xc337_07d6, 9);
    step!(g, c, d, a, b, 3, 0xf4d5_0d87, 14);
    step!(g, b, c, d, a, 8, 0x455a_14ed, 20);
    step!(g, a, b, c, d, 13, 0xa9e3_e905, 5);
    step!(g, d, a, b, c, 2, 0xfcef_a3f8, 9);
    step!(g, c, d, a, b, 7, 0x676f_02d9, 14);
    step!(g, b, c, d, a, 12, 0x8d2a_4c8a, 20);

    step!(h, a, b, c, d, 5, 0xfffa_3942, 4);
    step!(h, d, a, b, c, 8, 0x8771_f681, 11);
    step!(h, c, d, a, b, 11, 0x6d9d_6122, 16);
    step!(h, b, c, d, a, 14, 0xfde5_380c, 23);
    step!(h, a, b, c, d, 1, 0xa4be_ea44, 4);
    step!(h, d, a, b, c, 4, 0x4bde_cfa9, 11);
    step!(h, c, d, a, b, 7, 0xf6bb_4b60, 16);
    step!(h, b, c, d, a, 10, 0xbebf_bc70, 23);
    step!(h, a, b, c, d, 13, 0x289b_7ec6, 4);
    step!(h, d, a, b, c, 0, 0xeaa1_27fa, 11);
    step!(h, c, d, a, b, 3, 0xd4ef_3085, 16);
    step!(h, b, c, d, a, 6, 0x0488_1d05, 23);
    step!(h, a, b, c, d, 9, 0xd9d4_d039, 4);
    step!(h, d, a, b, c, 12, 0xe6db_99e5, 11);
    step!(h, c, d, a, b, 15, 0x1fa2_7cf8, 16);
    step!(h, b, c, d, a, 2, 0xc4ac_5665, 23);

    step!(i, a, b, c, d, 0, 0xf429_2244, 6);
    step!(i, d, a, b, c, 7, 0x432a_ff97, 10);
    step!(i, c, d, a, b, 14, 0xab94_23a7, 15);
    step!(i, b, c, d, a, 5, 0xfc93_a039, 21);
    step!(i, a, b, c, d, 12, 0x655b_59c3, 6);
    step!(i, d, a, b, c, 3, 0x8f0c_cc92, 10);
    step!(i, c, d, a, b, 10, 0xffef_f47d, 15);
    step!(i, b, c, d, a, 1, 0x8584_5dd1, 21);
    step!(i, a, b, c, d, 8, 0x6fa8_7e4f, 6);
    step!(i, d, a, b, c, 15, 0xfe2c_e6e0, 10);
    step!(i, c, d, a, b, 6, 0xa301_4314, 15);
    step!(i, b, c, d, a, 13, 0x4e08_11a1, 21);
    step!(i, a, b, c, d, 4, 0xf753_7e82, 6);
    step!(i, d, a, b, c, 11, 0xbd3a_f235, 10);
    step!(i, c, d, a, b, 2, 0x2ad7_d2bb, 15);
    step!(i, b, c, d, a, 9, 0xeb86_d391, 21);

    for (word, new) in state.iter_mut().zip([a, b, c, d]) {
        for l in 0..N {
            word[l] = word[l].wrapping_add(new[l]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn expected(parts: &[&[u8]]) -> [u8; 16] {
        let mut md5 = Md5::new();
        for part in parts {
            md5.update(part);
        }
        md5.finalize().into()
    }

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn known_answers() {
        // RFC 1321, appendix A.5.
        let cases: [(&[u8], &str); 4] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        let messages: Vec<Vec<&[u8]>> = cases.iter().map(|(m, _)| vec![*m]).collect();
        let digests = digest_all(&messages);
        for ((_, hex), digest) in cases.iter().zip(digests) {
            let got: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&got, hex);
        }
    }

    #[test]
    fn every_length_around_the_block_and_padding_edges() {
        // Lengths 0..=200 cover empty, 55/56/63/64 (one or two padding blocks) and
        // several whole blocks; more messages than lanes, so lanes are refilled.
        let data: Vec<Vec<u8>> = (0..=200).map(|len| bytes(len, len as u64)).collect();
        let messages: Vec<Vec<&[u8]>> = data.iter().map(|d| vec![d.as_slice()]).collect();
        let digests = digest_all(&messages);
        for (data, digest) in data.iter().zip(digests) {
            assert_eq!(digest, expected(&[data]), "length {}", data.len());
        }
    }

    #[test]
    fn parts_of_any_length_give_the_digest_of_their_concatenation() {
        let data = bytes(5000, 7);
        // Cuts inside blocks, at block edges, and empty parts.
        let cuts: [&[usize]; 5] = [
            &[0, 5000],
            &[64, 128, 4096],
            &[1, 1, 63, 65, 4999],
            &[3000, 3000, 3001],
            &[100, 200, 300, 4950, 4990],
        ];
        let split: Vec<Vec<&[u8]>> = cuts
            .iter()
            .map(|cuts| {
                let mut parts = Vec::new();
                let mut from = 0;
                for &cut in cuts.iter() {
                    parts.push(&data[from..cut]);
                    from = cut;
                }
                parts.push(&data[from..]);
                parts
            })
            .collect();
        for digest in digest_all(&split) {
            assert_eq!(digest, expected(&[&data]));
        }
    }

    #[test]
    fn many_messages_of_mixed_sizes_keep_their_order() {
        let data: Vec<Vec<u8>> = (0..100u64)
            .map(|i| bytes(((i * 7919) % 3000) as usize + (i as usize % 3) * 70_000, i))
            .collect();
        let messages: Vec<Vec<&[u8]>> = data.iter().map(|d| vec![d.as_slice()]).collect();
        let digests = digest_all(&messages);
        assert_eq!(digests.len(), data.len());
        for (i, (data, digest)) in data.iter().zip(digests).enumerate() {
            assert_eq!(digest, expected(&[data]), "message {i}");
        }
    }

    #[test]
    fn a_long_message_finished_alone_after_the_others() {
        // The long one outlasts the others and ends in a lane of its own; with fewer
        // messages than lanes and with more.
        for short in [3, LANES + 3] {
            let mut data = vec![bytes(100_003, 99)];
            data.extend((0..short).map(|i| bytes(i * 50, i as u64)));
            let messages: Vec<Vec<&[u8]>> = data.iter().map(|d| vec![d.as_slice()]).collect();
            for (data, digest) in data.iter().zip(digest_all(&messages)) {
                assert_eq!(digest, expected(&[data]), "length {}", data.len());
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_digests() {
        let data: Vec<Vec<u8>> = (0..40).map(|i| bytes(i * 37, i as u64)).collect();
        let messages: Vec<Vec<&[u8]>> = data.iter().map(|d| vec![d.as_slice()]).collect();
        let mut state = [[0u32; LANES]; 4];
        let mut block = [[0u32; LANES]; 16];
        for (i, word) in block.iter_mut().flatten().enumerate() {
            *word = (i as u32).wrapping_mul(0x9e37_79b9);
        }
        let mut portable = state;
        compress_portable(&mut portable, &block);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = state;
                // SAFETY: AVX2 is there (checked above).
                unsafe { compress_avx2(&mut avx2, &block) };
                assert_eq!(avx2, portable);
            } else {
                eprintln!("skipped: the AVX2 comparison (this CPU has no AVX2)");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut avx512 = state;
                // SAFETY: AVX-512F is there (checked above).
                unsafe { compress_avx512(&mut avx512, &block) };
                assert_eq!(avx512, portable);
            } else {
                eprintln!("skipped: the AVX-512 comparison (this CPU has no AVX-512F)");
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        eprintln!("skipped: the AVX2 and AVX-512 comparisons (not an x86_64 CPU)");
        compressor()(&mut state, &block);
        assert_eq!(state, portable);
        let digests = digest_all(&messages);
        for (data, digest) in data.iter().zip(digests) {
            assert_eq!(digest, expected(&[data]));
        }
    }
}
