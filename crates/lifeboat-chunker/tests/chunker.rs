//! Chunking a file through `Read`, as the archiver does with a stream.

use lifeboat_chunker::{ChunkerParams, Chunking, Cutter, StreamChunker};
use std::io::Write;

#[test]
fn a_file_chunks_the_same_as_memory_and_buffers_are_reusable() {
    let mut data = Vec::new();
    let mut x = 0x1234_5678_u64;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&data).unwrap();
    use std::io::Seek;
    f.rewind().unwrap();
    let p = ChunkerParams::with_average(64 << 10).unwrap();
    let chunking = Chunking::Content(Cutter::new(p, 99));
    let mut from_file = StreamChunker::new(std::io::BufReader::new(f), chunking.clone());
    let mut lens = vec![];
    while let Some(c) = from_file.next_chunk().unwrap() {
        lens.push(c.len());
    }
    let (_, buf) = from_file.into_parts();
    let mut from_mem = StreamChunker::with_buffer(&data[..], chunking, buf);
    let mut lens2 = vec![];
    while let Some(c) = from_mem.next_chunk().unwrap() {
        lens2.push(c.len());
    }
    assert_eq!(lens, lens2);
    assert_eq!(lens.iter().sum::<usize>(), data.len());
    let fixed: Vec<usize> = {
        let mut c = StreamChunker::new(&data[..], Chunking::Fixed(1 << 20));
        let mut v = vec![];
        while let Some(ch) = c.next_chunk().unwrap() {
            v.push(ch.len());
        }
        v
    };
    assert_eq!(fixed, vec![1 << 20; 3]);
    assert!(ChunkerParams::with_average(1000).is_none());
}
