//! `Lease::decode` (a lease's JSON plaintext) on untrusted bytes: it must never panic, and a
//! lease it accepts must survive `encode` then `decode` unchanged. JSON is not canonical
//! (whitespace, key order, escapes, time offsets), so the bytes are not compared.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::{LEASE_VERSION, Lease};

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Lease::decode(data) {
        assert!(
            l.version <= LEASE_VERSION,
            "a newer lease version was accepted"
        );
        let again = Lease::decode(&l.encode()).expect("an encoded lease does not decode");
        assert_eq!(again, l, "lease changed through encode and decode");
        // What a refused prune prints; rounds the timestamps, which can fail near their limits.
        let _ = l.describe();
    }
});
