//! `Keys::open_file` (config, index segments, snapshots) on untrusted bytes, with the fixed
//! fuzzing key. It must never panic. The header is chosen as the repository chooses it: a
//! config's header is its magic plus the repository id read from the file itself; index
//! segments and snapshots have their magic alone (a snapshot's is used for anything else, so
//! wrong magics are exercised too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::magic;

fuzz_target!(|data: &[u8]| {
    let header: &[u8] = if data.starts_with(magic::CONFIG) && data.len() >= 8 + 32 {
        &data[..8 + 32]
    } else if data.starts_with(magic::INDEX) {
        magic::INDEX
    } else {
        magic::SNAPSHOT
    };
    if let Ok(plain) = lifeboat_fuzz::keys().open_file(header, data, "x") {
        assert_eq!(plain.len(), data.len() - header.len() - 32 - 16);
    }
});
