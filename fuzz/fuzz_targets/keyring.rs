//! `Keyring::decode` (the plaintext a version-2 key file seals) on untrusted bytes: it must
//! never panic, and a keyring it accepts must re-encode to exactly the same bytes. All its
//! fields are fixed-width and generations keep their stored order (they are not sorted, only
//! unique), so the encoding is byte-for-byte canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::{Keyring, MAX_GENERATIONS};

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = Keyring::decode(data) {
        let g = &k.generations;
        assert!(g.len() <= MAX_GENERATIONS, "too many generations accepted");
        for (i, (t, _)) in g.iter().enumerate() {
            assert!(*t != 0, "generation tag 0 accepted");
            assert!(g[..i].iter().all(|(u, _)| u != t), "repeated tag accepted");
        }
        assert!(
            k.current == 0 || g.iter().any(|(t, _)| *t == k.current),
            "the current generation is not among the generations"
        );
        assert!(
            k.encode() == data,
            "Keyring encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
