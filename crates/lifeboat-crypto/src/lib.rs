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
use lifeboat_format::{Id, KdfParams, KeyFile};
use zeroize::{Zeroize, Zeroizing};

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

/// The repository's master key: 64 random bytes, never stored in clear; after a rotation
/// also the data keys of every generation (a keyring).
pub struct MasterKey {
    master: Zeroizing<[u8; 64]>,
    /// The generation that writes; 0 = the data key derived from the master key.
    current: u64,
    generations: Vec<(u64, Zeroizing<[u8; 32]>)>,
}

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 64]);
        random_bytes(k.as_mut())?;
        Ok(MasterKey {
            master: k,
            current: 0,
            generations: Vec::new(),
        })
    }

    /// The same master key (blob ids and chunk boundaries do not change, so deduplication
    /// goes on) with a new random data key that writes from now on. Objects sealed under
    /// earlier generations stay readable.
    pub fn rotate(&self) -> Result<Self, CryptoError> {
        let mut tag = [0u8; 8];
        let mut t = 0u64;
        // Nonzero and new; the loop ends at once in practice (2^-64 per try).
        while t == 0 || self.generations.iter().any(|(g, _)| *g == t) {
            random_bytes(&mut tag)?;
            t = u64::from_le_bytes(tag);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        random_bytes(key.as_mut())?;
        let mut generations: Vec<(u64, Zeroizing<[u8; 32]>)> = self
            .generations
            .iter()
            .map(|(g, k)| (*g, k.clone()))
            .collect();
        generations.push((t, key));
        Ok(MasterKey {
            master: self.master.clone(),
            current: t,
            generations,
        })
    }

    /// The generation that writes (0 before any rotation).
    pub fn current_generation(&self) -> u64 {
        self.current
    }

    /// Derives the working keys. Done once per command.
    pub fn keys(&self) -> Keys {
        let data = Zeroizing::new(blake3::derive_key(context::DATA_KEY, self.master.as_ref()));
        let id = Zeroizing::new(blake3::derive_key(context::ID_KEY, self.master.as_ref()));
        let seed = blake3::derive_key(context::CHUNKER_SEED, self.master.as_ref());
        let mut s = [0u8; 8];
        s.copy_from_slice(&seed[..8]);
        Keys {
            data,
            generations: self
                .generations
                .iter()
                .map(|(g, k)| (*g, k.clone()))
                .collect(),
            current: self.current,
            id,
            chunker_seed: u64::from_le_bytes(s),
        }
    }

    /// Wraps this key under `password` into a new key file: version 1 (the master key alone)
    /// until the first rotation, version 2 (the keyring) after.
    pub fn wrap(&self, password: &[u8], kdf: KdfParams) -> Result<KeyFile, CryptoError> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        random_bytes(&mut salt)?;
        random_bytes(&mut nonce)?;
        let plain = if self.generations.is_empty() {
            Zeroizing::new(self.master.to_vec())
        } else {
            Zeroizing::new(
                lifeboat_format::Keyring {
                    master: *self.master,
                    current: self.current,
                    generations: self.generations.iter().map(|(g, k)| (*g, **k)).collect(),
                }
                .encode(),
            )
        };
        // The header (and with it the magic, which depends on the sealed length) is the
        // associated data, so the placeholder has the final length.
        let mut kf = KeyFile {
            kdf,
            salt,
            nonce,
            wrapped: vec![0u8; plain.len() + TAG_LEN],
        };
        let kek = kek(password, &kf)?;
        let mut buf = Zeroizing::new(plain.to_vec());
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
        if !kf.is_keyring() {
            let mut k = Zeroizing::new([0u8; 64]);
            k.copy_from_slice(plain);
            return Ok(MasterKey {
                master: k,
                current: 0,
                generations: Vec::new(),
            });
        }
        let ring =
            lifeboat_format::Keyring::decode(plain).map_err(|_| CryptoError::Corrupt("keyring"))?;
        let out = MasterKey {
            master: Zeroizing::new(ring.master),
            current: ring.current,
            generations: ring
                .generations
                .iter()
                .map(|(g, k)| (*g, Zeroizing::new(*k)))
                .collect(),
        };
        // The decoded copy held key material too.
        let mut ring = ring;
        ring.master.zeroize();
        for (_, k) in &mut ring.generations {
            k.zeroize();
        }
        Ok(out)
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
    /// Generation 0: derived from the master key.
    data: Zeroizing<[u8; 32]>,
    /// Later generations, by tag. An object's salt starts with its generation's tag
    /// (8 bytes, little-endian); a salt matching no tag is generation 0.
    generations: Vec<(u64, Zeroizing<[u8; 32]>)>,
    current: u64,
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

    /// The data-key generation an object with this salt was sealed under.
    pub fn generation_of(&self, salt: &[u8; SALT_LEN]) -> u64 {
        let mut t = [0u8; 8];
        t.copy_from_slice(&salt[..8]);
        let t = u64::from_le_bytes(t);
        if t != 0 && self.generations.iter().any(|(g, _)| *g == t) {
            t
        } else {
            0
        }
    }

    /// The generation new objects are sealed under.
    pub fn current_generation(&self) -> u64 {
        self.current
    }

    /// A fresh random salt for a new object, starting with the current generation's tag
    /// (from the first rotation on); 192 random bits remain.
    pub fn new_salt(&self) -> Result<[u8; SALT_LEN], CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt)?;
        if self.current != 0 {
            salt[..8].copy_from_slice(&self.current.to_le_bytes());
        }
        Ok(salt)
    }

    /// The cipher of one stored file with this salt.
    pub fn file_cipher(&self, salt: &[u8; SALT_LEN]) -> Result<FileCipher, CryptoError> {
        let g = self.generation_of(salt);
        let data: &[u8; 32] = match self.generations.iter().find(|(t, _)| *t == g) {
            Some((_, k)) => k,
            None => &self.data,
        };
        let mut material = Zeroizing::new([0u8; 64]);
        material[..32].copy_from_slice(data.as_ref());
        material[32..].copy_from_slice(salt);
        let k = Zeroizing::new(blake3::derive_key(context::FILE_KEY, material.as_ref()));
        Ok(FileCipher(aead_key(&k)?))
    }

    /// Seals a whole small file (config, index segment, snapshot):
    /// `header | salt[32] | AES-GCM(plaintext) | tag[16]`, with nonce counter 0 and the header
    /// (the magic, for config also the repository id) as associated data, so a file of one
    /// kind cannot be passed off as another.
    pub fn seal_file(&self, header: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let salt = self.new_salt()?;
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
        MasterKey {
            master: k,
            current: 0,
            generations: Vec::new(),
        }
    }

    #[test]
    fn rotation_writes_with_a_new_key_and_still_reads_the_old() {
        let m = fixed_master();
        let k0 = m.keys();
        let old = k0.seal_file(b"HDR", b"before").unwrap();
        let r = m.rotate().unwrap();
        assert_ne!(r.current_generation(), 0);
        let k1 = r.keys();
        // Same ids and chunk boundaries: deduplication goes on across the rotation.
        assert_eq!(k0.blob_id(b"x"), k1.blob_id(b"x"));
        assert_eq!(k0.chunker_seed, k1.chunker_seed);
        let new = k1.seal_file(b"HDR", b"after").unwrap();
        assert_eq!(k1.open_file(b"HDR", &old, "f").unwrap(), b"before");
        assert_eq!(k1.open_file(b"HDR", &new, "f").unwrap(), b"after");
        // The old keys (a leaked master key) cannot open what the new generation sealed.
        assert!(k0.open_file(b"HDR", &new, "f").is_err());
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&new[3..3 + SALT_LEN]);
        assert_eq!(k1.generation_of(&salt), r.current_generation());
        // The keyring survives a wrap (version 2) and a second rotation keeps every key.
        let kf = r.wrap(b"pw", FAST).unwrap();
        assert!(kf.is_keyring());
        let kf = KeyFile::decode(&kf.encode()).unwrap();
        let back = MasterKey::unwrap(b"pw", &kf).unwrap();
        assert_eq!(back.current_generation(), r.current_generation());
        assert_eq!(back.keys().open_file(b"HDR", &old, "f").unwrap(), b"before");
        let r2 = back.rotate().unwrap();
        let k2 = r2.keys();
        assert_eq!(k2.open_file(b"HDR", &new, "f").unwrap(), b"after");
        assert_eq!(k2.open_file(b"HDR", &old, "f").unwrap(), b"before");
        assert!(
            !m.wrap(b"pw", FAST).unwrap().is_keyring(),
            "no rotation: version 1"
        );
    }

    #[test]
    fn wrap_unwrap_and_wrong_password() {
        let m = MasterKey::generate().unwrap();
        let kf = m.wrap(b"secret", FAST).unwrap();
        let kf = KeyFile::decode(&kf.encode()).unwrap();
        let m2 = MasterKey::unwrap(b"secret", &kf).unwrap();
        assert_eq!(*m.master, *m2.master);
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
