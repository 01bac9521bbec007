//! `Marks::decode` (the prune marks' plaintext) on untrusted bytes: it must never panic, and
//! marks it accepts must re-encode to exactly the same bytes. The encoding is canonical: the
//! varints must be minimal (the codec rejects overlong ones), a reason is one of three bytes
//! and packs are strictly increasing, so each value has exactly one encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::Marks;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Marks::decode(data) {
        assert!(
            m.marks.windows(2).all(|w| w[0].pack < w[1].pack),
            "accepted marks are not strictly sorted by pack"
        );
        for mark in &m.marks {
            assert_eq!(m.get(&mark.pack), Some(mark), "a marked pack is not found");
        }
        assert!(
            m.encode() == data,
            "Marks encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
