//! `decode_blob_entries` (a pack trailer's plaintext) on untrusted bytes. Input layout:
//! `data_end: u64 LE | trailer plaintext`; `data_start` is 40, a pack header's length.
//! It must never panic; entries it accepts must tile `[40, data_end)` and re-encode to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::{decode_blob_entries, encode_blob_entries};

const DATA_START: u64 = 40;

fuzz_target!(|data: &[u8]| {
    let Some((end, trailer)) = data.split_first_chunk::<8>() else {
        return;
    };
    let end = u64::from_le_bytes(*end);
    if let Ok(entries) = decode_blob_entries(trailer, DATA_START, end) {
        lifeboat_fuzz::assert_tiles(&entries, DATA_START, end);
        assert!(
            encode_blob_entries(&entries) == trailer,
            "blob entries encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
