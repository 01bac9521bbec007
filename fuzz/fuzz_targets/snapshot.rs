//! The JSON decoders: `Snapshot::decode` and `RepoConfig::decode`, both on the same untrusted
//! bytes. They must never panic. JSON is not canonical, so the bytes are not compared; but
//! whatever is accepted must survive a write and a read unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::{RepoConfig, Snapshot};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::decode(data) {
        let again = Snapshot::decode(&s.encode()).expect("an encoded snapshot does not decode");
        assert_eq!(again, s, "snapshot changed through encode and decode");
    }
    if let Ok(c) = RepoConfig::decode(data) {
        let again = RepoConfig::decode(&c.encode()).expect("an encoded config does not decode");
        assert_eq!(again, c, "config changed through encode and decode");
    }
});
