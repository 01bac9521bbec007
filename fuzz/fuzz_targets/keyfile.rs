//! `KeyFile::decode` on untrusted bytes: it must never panic, and a key file it accepts must
//! re-encode to exactly the same bytes. (Unwrapping is not fuzzed: it runs Argon2 with the
//! file's own cost parameters.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::KeyFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(kf) = KeyFile::decode(data) {
        assert!(
            kf.encode() == data,
            "KeyFile encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
