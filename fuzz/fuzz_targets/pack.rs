//! `saver::parse_pack` (what `check` and index rebuilding run on every pack file) on untrusted
//! bytes, with the fixed fuzzing key. It must never panic. Mutated inputs almost never get
//! past the trailer's authentication, so this mostly exercises the framing before it; the
//! trailer's plaintext is fuzzed directly by the `blob_entries` target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_repo::PACK_HEADER_LEN;
use lifeboat_repo::saver::parse_pack;

fuzz_target!(|data: &[u8]| {
    if let Ok((_cipher, entries)) = parse_pack(lifeboat_fuzz::keys(), data) {
        let tlen = u32::from_le_bytes(data[data.len() - 4..].try_into().unwrap()) as u64;
        let tstart = data.len() as u64 - 4 - tlen;
        lifeboat_fuzz::assert_tiles(&entries, PACK_HEADER_LEN as u64, tstart);
    }
});
