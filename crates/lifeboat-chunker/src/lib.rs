//! Chunkers: split a byte stream into pieces whose boundaries depend on content (FastCDC
//! v2020 with a keyed gear table), so an insertion early in a file moves only nearby cut
//! points and the rest still deduplicates; or into fixed-size pieces for disk images.
//!
//! Cut points are part of the repository format: the same bytes, parameters and seed must
//! always give the same chunks, or deduplication against older backups is lost. fastcdc is
//! pinned exactly and the golden test below pins the cut points.
//!
//! The chunker reads into one reusable buffer and hands out slices of it, so a chunk costs
//! no allocation; the caller copies only the chunks it has to store.

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};
use std::borrow::Cow;
use std::io::{self, Read};

/// Content-defined chunking sizes (bytes, powers of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min: usize,
    pub avg: usize,
    pub max: usize,
}

impl ChunkerParams {
    /// 256 KiB / 1 MiB / 4 MiB: large enough that per-chunk costs vanish, small enough that a
    /// changed row in a dump re-stores about a megabyte.
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min: 256 << 10,
        avg: 1 << 20,
        max: 4 << 20,
    };

    /// Parameters for an average size; min and max are a quarter and four times it.
    pub fn with_average(avg: usize) -> Option<Self> {
        if !avg.is_power_of_two() || !(1024..=(4 << 20)).contains(&avg) {
            return None;
        }
        Some(ChunkerParams {
            min: avg / 4,
            avg,
            max: avg * 4,
        })
    }
}

/// The keyed cutter: finds cut points in memory.
#[derive(Clone)]
pub struct Cutter {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Cutter {
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        let (mask_s, mask_l) = select_masks(params.avg, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Cutter {
            params,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the first chunk of `data`. `data` must hold at least `max` bytes unless it
    /// is the end of the stream.
    pub fn cut(&self, data: &[u8]) -> usize {
        let p = self.params;
        if data.len() <= p.min {
            return data.len();
        }
        let (_, n) = cut_gear(
            data,
            p.min,
            p.avg,
            p.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n
    }
}

/// How a stream is split.
#[derive(Clone)]
pub enum Chunking {
    Content(Cutter),
    Fixed(usize),
}

impl Chunking {
    fn max(&self) -> usize {
        match self {
            Chunking::Content(c) => c.params.max,
            Chunking::Fixed(n) => *n,
        }
    }
    fn cut(&self, data: &[u8]) -> usize {
        match self {
            Chunking::Content(c) => c.cut(data),
            Chunking::Fixed(n) => data.len().min(*n),
        }
    }
}

/// Splits a reader into chunks, reusing one buffer.
pub struct StreamChunker<R> {
    reader: R,
    chunking: Chunking,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> StreamChunker<R> {
    pub fn new(reader: R, chunking: Chunking) -> Self {
        Self::with_buffer(reader, chunking, Vec::new())
    }

    /// Like `new`, reusing `buf` (from [`StreamChunker::into_parts`]) so that chunking many
    /// files allocates the buffer once.
    pub fn with_buffer(reader: R, chunking: Chunking, mut buf: Vec<u8>) -> Self {
        // Two maximum chunks, so a refill moves at most one chunk's worth of bytes.
        let cap = chunking.max() * 2;
        if buf.len() != cap {
            buf.resize(cap, 0);
        }
        StreamChunker {
            reader,
            chunking,
            buf,
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The reader and the buffer, for reuse.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        (self.reader, self.buf)
    }

    /// The next chunk, or `None` at the end of the stream. The slice is valid until the next
    /// call.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let max = self.chunking.max();
        if !self.eof && self.end - self.start < max {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < self.buf.len() {
                match self.reader.read(&mut self.buf[self.end..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        if self.start == self.end {
            return Ok(None);
        }
        let n = self.chunking.cut(&self.buf[self.start..self.end]);
        let s = self.start;
        self.start += n;
        Ok(Some(&self.buf[s..s + n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic pseudo-random bytes (xorshift), so the golden test needs no fixture file.
    fn pseudo_random(n: usize, mut x: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(n);
        v
    }

    fn lengths(data: &[u8], chunking: Chunking) -> Vec<usize> {
        let mut c = StreamChunker::new(data, chunking);
        let mut out = vec![];
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch.len());
        }
        out
    }

    /// Pins cut points: if this fails, new backups no longer deduplicate against old ones.
    #[test]
    fn golden_cut_points() {
        let data = pseudo_random(8 << 20, 0x9e3779b97f4a7c15);
        let seeded = lengths(
            &data,
            Chunking::Content(Cutter::new(ChunkerParams::DEFAULT, 8100002163365806893)),
        );
        assert_eq!(seeded, GOLDEN_SEEDED);
        let small = ChunkerParams::with_average(64 << 10).unwrap();
        let unseeded = lengths(&data[..1 << 20], Chunking::Content(Cutter::new(small, 0)));
        assert_eq!(unseeded, GOLDEN_UNSEEDED_64K);
    }

    const GOLDEN_SEEDED: &[usize] = &[514430, 1091110, 1221968, 1637640, 1436861, 2486599];
    const GOLDEN_UNSEEDED_64K: &[usize] = &[
        44750, 219962, 100125, 28400, 91429, 28467, 19017, 114735, 88164, 66867, 152283, 94377,
    ];

    /// Our buffered cutter must agree with the reference in-memory FastCDC of the crate.
    #[test]
    fn agrees_with_reference_fastcdc() {
        let data = pseudo_random(6 << 20, 42);
        for seed in [0u64, 12345] {
            let p = ChunkerParams::DEFAULT;
            let reference: Vec<usize> = fastcdc::v2020::FastCDC::with_level_and_seed(
                &data,
                p.min,
                p.avg,
                p.max,
                Normalization::Level1,
                seed,
            )
            .map(|c| c.length)
            .collect();
            assert_eq!(
                lengths(&data, Chunking::Content(Cutter::new(p, seed))),
                reference
            );
        }
    }

    #[test]
    fn seed_changes_cut_points() {
        let data = pseudo_random(4 << 20, 1);
        let a = lengths(
            &data,
            Chunking::Content(Cutter::new(ChunkerParams::DEFAULT, 1)),
        );
        let b = lengths(
            &data,
            Chunking::Content(Cutter::new(ChunkerParams::DEFAULT, 2)),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn insertion_keeps_later_chunks() {
        let p = ChunkerParams::with_average(16 << 10).unwrap();
        let data = pseudo_random(1 << 20, 7);
        let mut edited = data.clone();
        edited.splice(1000..1000, b"inserted".iter().copied());
        let ids = |d: &[u8]| {
            let mut c = StreamChunker::new(d, Chunking::Content(Cutter::new(p, 5)));
            let mut v = std::collections::HashSet::new();
            while let Some(ch) = c.next_chunk().unwrap() {
                v.insert(*blake3::hash(ch).as_bytes());
            }
            v
        };
        let (a, b) = (ids(&data), ids(&edited));
        assert!(a.intersection(&b).count() >= a.len() - 3);
    }

    proptest! {
        #[test]
        fn chunks_cover_input_within_bounds(len in 0usize..300_000, seed: u64, read_size in 1usize..70_000) {
            struct Dribble<'a>(&'a [u8], usize);
            impl Read for Dribble<'_> {
                fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                    let n = b.len().min(self.1).min(self.0.len());
                    b[..n].copy_from_slice(&self.0[..n]);
                    self.0 = &self.0[n..];
                    Ok(n)
                }
            }
            let p = ChunkerParams::with_average(4096).unwrap();
            let data = pseudo_random(len, seed | 1);
            let whole = lengths(&data, Chunking::Content(Cutter::new(p, seed)));
            let mut c = StreamChunker::new(Dribble(&data, read_size), Chunking::Content(Cutter::new(p, seed)));
            let mut joined = vec![];
            let mut lens = vec![];
            while let Some(ch) = c.next_chunk().unwrap() {
                prop_assert!(ch.len() <= p.max);
                joined.extend_from_slice(ch);
                lens.push(ch.len());
            }
            prop_assert_eq!(&joined, &data);
            // Short reads must not move cut points.
            prop_assert_eq!(lens.clone(), whole);
            for l in &lens[..lens.len().saturating_sub(1)] {
                prop_assert!(*l >= p.min);
            }
        }
    }
}
