//! `KeyFile::decode` on untrusted bytes, both versions (`LBKEYF01`: a sealed master key of 80
//! bytes; `LBKEYF02`: a sealed keyring of 92 + 40 x generations bytes). It must never panic,
//! the version must follow the magic, and a key file it accepts must re-encode to exactly the
//! same bytes (encode picks the magic from the sealed length). Unwrapping is not fuzzed: it
//! runs Argon2 with the file's own cost parameters; the keyring's plaintext is fuzzed
//! directly by the `keyring` target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::{KEYFILE_WRAPPED_LEN, KeyFile, MAX_GENERATIONS, magic};

fuzz_target!(|data: &[u8]| {
    if let Ok(kf) = KeyFile::decode(data) {
        let n = kf.wrapped.len();
        if data.starts_with(magic::KEY_V2) {
            assert!(kf.is_keyring(), "a version-2 key file is not a keyring");
            assert!(
                n >= 92 && (n - 92).is_multiple_of(40) && (n - 92) / 40 <= MAX_GENERATIONS,
                "a sealed keyring of {n} bytes was accepted"
            );
        } else {
            assert!(
                data.starts_with(magic::KEY),
                "a key file with a wrong magic was accepted"
            );
            assert!(!kf.is_keyring(), "a version-1 key file is a keyring");
            assert_eq!(n, KEYFILE_WRAPPED_LEN);
        }
        assert!(
            kf.encode() == data,
            "KeyFile encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
