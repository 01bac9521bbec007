//! Key files and sealed files through the public API, as `init` and `open` use them.

use lifeboat_crypto::{CryptoError, MasterKey};
use lifeboat_format::{KdfParams, KeyFile};

const FAST: KdfParams = KdfParams {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

#[test]
fn several_passwords_open_the_same_keys() {
    let m = MasterKey::generate().unwrap();
    let a = KeyFile::decode(&m.wrap(b"first", FAST).unwrap().encode()).unwrap();
    let b = KeyFile::decode(&m.wrap(b"second", FAST).unwrap().encode()).unwrap();
    let ka = MasterKey::unwrap(b"first", &a).unwrap().keys();
    let kb = MasterKey::unwrap(b"second", &b).unwrap().keys();
    assert_eq!(ka.blob_id(b"x"), kb.blob_id(b"x"));
    assert_eq!(ka.chunker_seed, kb.chunker_seed);
    let sealed = ka.seal_file(b"LBSNAP01", b"payload").unwrap();
    assert_eq!(
        kb.open_file(b"LBSNAP01", &sealed, "snapshot").unwrap(),
        b"payload"
    );
    assert!(matches!(
        MasterKey::unwrap(b"second", &a),
        Err(CryptoError::WrongPassword)
    ));
}

#[test]
fn different_repositories_give_different_ids_and_ciphertexts() {
    let (k1, k2) = (
        MasterKey::generate().unwrap().keys(),
        MasterKey::generate().unwrap().keys(),
    );
    assert_ne!(k1.blob_id(b"same content"), k2.blob_id(b"same content"));
    let s = k1.seal_file(b"LBINDX01", b"same").unwrap();
    assert!(k2.open_file(b"LBINDX01", &s, "index").is_err());
    // Sealing twice gives different bytes (fresh salt), so equal plaintexts are not visible.
    assert_ne!(s, k1.seal_file(b"LBINDX01", b"same").unwrap());
}
