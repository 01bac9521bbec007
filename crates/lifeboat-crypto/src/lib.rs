//! Lifeboat's cryptography: one random master key per repository, wrapped by password-derived
//! keys (Argon2id) in key files; sub-keys derived from it with BLAKE3's `derive_key`; keyed
//! BLAKE3 blob ids; AES-256-GCM for every stored byte under a key derived per stored file.
//!
//! Why a key per file: AES-GCM's 96-bit nonces are safe for about 2^32 random messages per
//! key, and a repository can hold more blobs than that. Each pack, index segment and snapshot
//! carries a random 32-byte salt; its key is derived from the data key and that salt, and its
//! blobs use a counter as nonce. Nonce reuse would need two files with the same salt.
//!
//! Secrets live in `Zeroizing` buffers and have no `Debug` output.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use lifeboat_format::{Id, KEYFILE_WRAPPED_LEN, KdfParams, KeyFile};
use zeroize::Zeroizing;

/// BLAKE3 `derive_key` contexts. They are part of the format: changing one makes every
/// existing repository unreadable.
pub mod context {
    pub const DATA_KEY: &str = "lifeboat 2026-11-23 data encryption key v1";
    pub const ID_KEY: &str = "lifeboat 2026-11-23 blob id key v1";
    pub const CHUNKER_SEED: &str = "lifeboat 2026-11-23 chunker seed v1";
    pub const FILE_KEY: &str = "lifeboat 2026-11-23 file key v1";
}

/// Length of the AES-GCM tag appended to every sealed message.
pub const TAG_LEN: usize = 16;
/// Length of the per-file salt.
pub const SALT_LEN: usize = 32;
/// Nonce counter of a pack's trailer; blobs count up from 0 and never reach it.
pub const TRAILER_COUNTER: u64 = u64::MAX;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// No key file opened with this password. Not retryable with the same password.
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    /// The ciphertext or its tag was changed: the stored bytes are damaged or forged.
    #[error("authentication failed: {0} is damaged or was modified")]
    Corrupt(&'static str),
    #[error("stored object too short to hold {0}")]
    Truncated(&'static str),
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// Name of a stored object: plain BLAKE3 of its stored bytes, so anyone holding the storage
/// can check that a file is whole without the key.
pub fn storage_id(stored: &[u8]) -> Id {
    Id(*blake3::hash(stored).as_bytes())
}

/// The repository's master key: 64 random bytes, never stored in clear.
pub struct MasterKey(Zeroizing<[u8; 64]>);

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 64]);
        random_bytes(k.as_mut())?;
        Ok(MasterKey(k))
    }

    /// Derives the working keys. Done once per command.
    pub fn keys(&self) -> Keys {
        let data = Zeroizing::new(blake3::derive_key(context::DATA_KEY, self.0.as_ref()));
        let id = Zeroizing::new(blake3::derive_key(context::ID_KEY, self.0.as_ref()));
        let seed = blake3::derive_key(context::CHUNKER_SEED, self.0.as_ref());
        let mut s = [0u8; 8];
        s.copy_from_slice(&seed[..8]);
        Keys {
            data,
            id,
            chunker_seed: u64::from_le_bytes(s),
        }
    }

    /// Wraps this key under `password` into a new key file.
    pub fn wrap(&self, password: &[u8], kdf: KdfParams) -> Result<KeyFile, CryptoError> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        random_bytes(&mut salt)?;
        random_bytes(&mut nonce)?;
        let mut kf = KeyFile {
            kdf,
            salt,
            nonce,
            wrapped: [0u8; KEYFILE_WRAPPED_LEN],
        };
        let kek = kek(password, &kf)?;
        let mut buf = Zeroizing::new(self.0.to_vec());
        kek.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kf.header()),
            &mut *buf,
        )
        .map_err(|_| CryptoError::Kdf("sealing the master key failed".into()))?;
        kf.wrapped.copy_from_slice(&buf);
        Ok(kf)
    }

    /// Opens a key file with `password`.
    pub fn unwrap(password: &[u8], kf: &KeyFile) -> Result<Self, CryptoError> {
        let kek = kek(password, kf)?;
        let mut buf = Zeroizing::new(kf.wrapped.to_vec());
        let plain = kek
            .open_in_place(
                Nonce::assume_unique_for_key(kf.nonce),
                Aad::from(kf.header()),
                &mut buf[..],
            )
            .map_err(|_| CryptoError::WrongPassword)?;
        let mut k = Zeroizing::new([0u8; 64]);
        k.copy_from_slice(plain);
        Ok(MasterKey(k))
    }
}

fn kek(password: &[u8], kf: &KeyFile) -> Result<LessSafeKey, CryptoError> {
    let params = argon2::Params::new(kf.kdf.m_cost_kib, kf.kdf.t_cost, kf.kdf.p_cost, Some(32))
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(password, &kf.salt, out.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    aead_key(&out)
}

fn aead_key(k: &[u8; 32]) -> Result<LessSafeKey, CryptoError> {
    let unbound = UnboundKey::new(&AES_256_GCM, k)
        .map_err(|_| CryptoError::Kdf("bad AES key length".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// The keys a repository works with, derived from the master key.
pub struct Keys {
    data: Zeroizing<[u8; 32]>,
    id: Zeroizing<[u8; 32]>,
    /// XORed into the FastCDC gear table so cut points do not reveal content across repositories.
    pub chunker_seed: u64,
}

impl Keys {
    /// The id of a blob: keyed BLAKE3 of its plaintext. Keyed, so that someone holding the
    /// storage cannot confirm that a known file is in it.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// The cipher of one stored file with this salt.
    pub fn file_cipher(&self, salt: &[u8; SALT_LEN]) -> Result<FileCipher, CryptoError> {
        let mut material = Zeroizing::new([0u8; 64]);
        material[..32].copy_from_slice(self.data.as_ref());
        material[32..].copy_from_slice(salt);
        let k = Zeroizing::new(blake3::derive_key(context::FILE_KEY, material.as_ref()));
        Ok(FileCipher(aead_key(&k)?))
    }

    /// Seals a whole small file (config, index segment, snapshot):
    /// `header | salt[32] | AES-GCM(plaintext) | tag[16]`, with nonce counter 0 and the header
    /// (the magic, for config also the repository id) as associated data, so a file of one
    /// kind cannot be passed off as another.
    pub fn seal_file(&self, header: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt)?;
        let cipher = self.file_cipher(&salt)?;
        let mut out = Vec::with_capacity(header.len() + SALT_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(header);
        out.extend_from_slice(&salt);
        out.extend_from_slice(plaintext);
        let start = header.len() + SALT_LEN;
        let tag = cipher.seal_detached(0, header, &mut out[start..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens what [`Keys::seal_file`] sealed; `header` must match the stored header exactly.
    pub fn open_file(
        &self,
        header: &[u8],
        stored: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, CryptoError> {
        if stored.len() < header.len() + SALT_LEN + TAG_LEN {
            return Err(CryptoError::Truncated(what));
        }
        if &stored[..header.len()] != header {
            return Err(CryptoError::Corrupt(what));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&stored[header.len()..header.len() + SALT_LEN]);
        let cipher = self.file_cipher(&salt)?;
        let mut body = stored[header.len() + SALT_LEN..].to_vec();
        let n = cipher.open(0, header, &mut body, what)?.len();
        body.truncate(n);
        Ok(body)
    }
}

/// AES-256-GCM under one stored file's key. Nonces are `[0,0,0,0] ++ counter (u64 LE)`.
pub struct FileCipher(LessSafeKey);

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl FileCipher {
    /// Encrypts `buf` in place and appends the tag.
    pub fn seal(&self, counter: u64, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.0
            .seal_in_place_append_tag(nonce(counter), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Kdf("AES-GCM seal failed".into()))
    }

    fn seal_detached(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(counter), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Kdf("AES-GCM seal failed".into()))?;
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag.as_ref());
        Ok(t)
    }

    /// Decrypts `buf` (ciphertext and tag) in place, returning the plaintext part.
    pub fn open<'a>(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &'a mut [u8],
        what: &'static str,
    ) -> Result<&'a mut [u8], CryptoError> {
        if buf.len() < TAG_LEN {
            return Err(CryptoError::Truncated(what));
        }
        self.0
            .open_in_place(nonce(counter), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Corrupt(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn fixed_master() -> MasterKey {
        let mut k = Zeroizing::new([0u8; 64]);
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        MasterKey(k)
    }

    #[test]
    fn wrap_unwrap_and_wrong_password() {
        let m = MasterKey::generate().unwrap();
        let kf = m.wrap(b"secret", FAST).unwrap();
        let kf = KeyFile::decode(&kf.encode()).unwrap();
        let m2 = MasterKey::unwrap(b"secret", &kf).unwrap();
        assert_eq!(*m.0, *m2.0);
        assert!(matches!(
            MasterKey::unwrap(b"Secret", &kf),
            Err(CryptoError::WrongPassword)
        ));
        let mut tampered = kf.clone();
        tampered.kdf.t_cost = 2;
        assert!(MasterKey::unwrap(b"secret", &tampered).is_err());
    }

    /// Golden vectors: these pin the derivation contexts, the id key and the AEAD framing.
    /// They were cross-checked against independent implementations (Python blake3 and
    /// cryptography.AESGCM) computing the same derivations from docs/format.md.
    /// If this test fails, existing repositories have become unreadable.
    #[test]
    fn golden_vectors() {
        let keys = fixed_master().keys();
        assert_eq!(keys.blob_id(b"hello").to_hex(), GOLDEN_BLOB_ID,);
        assert_eq!(keys.chunker_seed, GOLDEN_SEED);
        let cipher = keys.file_cipher(&[7u8; 32]).unwrap();
        let mut buf = b"hello".to_vec();
        cipher.seal(3, b"", &mut buf).unwrap();
        assert_eq!(hex(&buf), GOLDEN_SEALED);
        let plain = cipher.open(3, b"", &mut buf, "blob").unwrap();
        assert_eq!(plain, b"hello");
    }

    const GOLDEN_BLOB_ID: &str = "1318641d7f13e5263ca04e280e8ccbcec752c260c20df483fae32d75fdab4fc0";
    const GOLDEN_SEED: u64 = 8100002163365806893;
    const GOLDEN_SEALED: &str = "1d5769b24669809457211e8ae6fad4105ccfbbff08";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sealed_file_detects_every_flipped_byte() {
        let keys = MasterKey::generate().unwrap().keys();
        let stored = keys.seal_file(b"LBSNAP01", b"{\"a\":1}").unwrap();
        assert_eq!(
            keys.open_file(b"LBSNAP01", &stored, "snapshot").unwrap(),
            b"{\"a\":1}"
        );
        for i in 0..stored.len() {
            let mut s = stored.clone();
            s[i] ^= 0x01;
            assert!(
                keys.open_file(b"LBSNAP01", &s, "snapshot").is_err(),
                "flip at {i} undetected"
            );
        }
        assert!(keys.open_file(b"LBINDX01", &stored, "index").is_err());
        assert!(
            keys.open_file(b"LBSNAP01", &stored[..stored.len() - 1], "snapshot")
                .is_err()
        );
    }
}
