//! `Tree::decode` on untrusted bytes: it must never panic, and a tree it accepts must
//! re-encode to exactly the same bytes (the encoding is canonical: a tree's id is a function
//! of its content).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_format::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data) {
        assert!(
            tree.encode() == data,
            "Tree encoding is not canonical: decode then encode changed the bytes"
        );
    }
});
