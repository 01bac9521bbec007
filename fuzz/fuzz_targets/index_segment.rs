//! `IndexSegment::decode` on untrusted bytes: it must never panic, and a segment it accepts
//! must re-encode to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::IndexSegment;

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = IndexSegment::decode(data) {
        for p in &seg.packs {
            for b in &p.blobs {
                assert!(b.offset as u64 + b.stored_len as u64 <= p.pack_len);
            }
        }
        assert!(
            seg.encode() == data,
            "IndexSegment encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
