//! What the fuzz targets and the seed generator (`examples/make-seeds.rs`) share: a fixed
//! master key, so that the `pack` and `sealed_file` targets behave the same in every process
//! (a crash found once reproduces from its artifact) and their seeds can be sealed properly.
//!
//! `MasterKey` has no public constructor from bytes, so the key comes from a committed key
//! file (`src/fuzz.key`, cheap Argon2 parameters) opened with [`KEY_PASSWORD`] through the
//! public `MasterKey::unwrap`. The key protects nothing: it is only for fuzzing.

use lifeboat_crypto::{Keys, MasterKey};
use lifeboat_format::KeyFile;
use std::sync::OnceLock;

/// Password of `src/fuzz.key`.
pub const KEY_PASSWORD: &[u8] = b"lifeboat-fuzz";

/// The encoded key file (written by `cargo run --example make-seeds -- --new-key`).
pub const KEY_FILE: &[u8] = include_bytes!("fuzz.key");

/// The working keys of the fixed master key; derived once per process.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let kf = KeyFile::decode(KEY_FILE)
            .expect("fuzz/src/fuzz.key is not a key file: run make-seeds --new-key");
        MasterKey::unwrap(KEY_PASSWORD, &kf)
            .expect("fuzz/src/fuzz.key does not open with KEY_PASSWORD")
            .keys()
    })
}

/// Checks what every pack trailer promises: blobs tile `[start, end)` in order.
pub fn assert_tiles(entries: &[lifeboat_format::BlobEntry], start: u64, end: u64) {
    let mut pos = start;
    for e in entries {
        assert_eq!(
            e.offset as u64, pos,
            "blob does not start where the previous ended"
        );
        pos += e.stored_len as u64;
    }
    assert_eq!(pos, end, "blobs do not reach the end of the data area");
}
