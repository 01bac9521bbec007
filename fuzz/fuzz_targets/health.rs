//! `Health::decode` (the health file's plaintext) on untrusted bytes: it must never panic, and
//! a record it accepts must re-encode to exactly the same bytes (minimal varints, strictly
//! sorted entries: the encoding is canonical). Merging an accepted record with itself must
//! give a record that survives `encode` then `decode` unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::Health;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Health::decode(data) {
        assert!(
            h.verified.windows(2).all(|w| w[0].0 < w[1].0),
            "accepted verified packs are not strictly sorted"
        );
        assert!(
            h.bad
                .windows(2)
                .all(|w| (w[0].blob, w[0].pack) < (w[1].blob, w[1].pack)),
            "accepted bad blobs are not strictly sorted"
        );
        for (p, t) in &h.verified {
            assert_eq!(h.verified_at(p), Some(*t), "a verified pack is not found");
        }
        assert!(
            h.encode() == data,
            "Health encoding is not canonical: decode then encode changed the bytes"
        );
        let m = h.merge(&h);
        assert_eq!(
            Health::decode(&m.encode()).as_ref(),
            Ok(&m),
            "a merged health record does not survive encode and decode"
        );
    }
});
