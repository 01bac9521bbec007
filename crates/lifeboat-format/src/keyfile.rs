//! Key files: a random master key wrapped with a key derived from a password by Argon2id.
//! Several key files can wrap the same master key (several passwords, one repository).
//!
//! Layout (all integers little-endian):
//! `magic[8] | m_cost u32 (KiB) | t_cost u32 | p_cost u32 | salt[32] | nonce[12] | sealed`
//!
//! Version 1 (`LBKEYF01`) seals the 64-byte master key (80 sealed bytes). Version 2
//! (`LBKEYF02`, written once the data key has been rotated) seals a keyring: the master key,
//! the current data-key generation and every generation's data key ([`Keyring`]).

use crate::codec::{Reader, Writer};
use crate::{FormatError, strip_magic};

/// Length of the wrapped master key: 64 key bytes plus the 16-byte tag.
pub const KEYFILE_WRAPPED_LEN: usize = 64 + 16;

/// At most this many data-key generations in a keyring.
pub const MAX_GENERATIONS: usize = 1024;

/// The plaintext a version-2 key file seals: `master[64] | current u64 | count u32 |
/// count × (tag u64 | key[32])`. Generation tags are random and nonzero; tag 0 is the data key
/// derived from the master key (what version-1 repositories use).
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    pub master: [u8; 64],
    pub current: u64,
    pub generations: Vec<(u64, [u8; 32])>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(
            f,
            "Keyring {{ current: {:#x}, generations: {} }}",
            self.current,
            self.generations.len()
        )
    }
}

impl Keyring {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(76 + 40 * self.generations.len());
        w.raw(&self.master);
        w.u64_le(self.current);
        w.u32_le(self.generations.len() as u32);
        for (t, k) in &self.generations {
            w.u64_le(*t);
            w.raw(k);
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(data);
        let master = r.array("master key")?;
        let current = r.u64_le("current generation")?;
        let n = r.u32_le("generation count")? as usize;
        if n > MAX_GENERATIONS || n * 40 != r.remaining() {
            return Err(FormatError::invalid(
                "generation count",
                format!("{n} generations in {} bytes", r.remaining()),
            ));
        }
        let mut generations: Vec<(u64, [u8; 32])> = Vec::with_capacity(n);
        for _ in 0..n {
            let t = r.u64_le("generation tag")?;
            let k = r.array("generation key")?;
            if t == 0 || generations.iter().any(|(x, _)| *x == t) {
                return Err(FormatError::invalid("generation tag", "zero or repeated"));
            }
            generations.push((t, k));
        }
        r.finish()?;
        if current != 0 && !generations.iter().any(|(t, _)| *t == current) {
            return Err(FormatError::invalid(
                "current generation",
                "not among the generations",
            ));
        }
        Ok(Keyring {
            master,
            current,
            generations,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl KdfParams {
    /// 32 MiB, 4 passes: about 0.1 s here, paid once per command. Memory is what makes
    /// Argon2id expensive to attack, but it is also every command's peak RSS: 64 MiB made
    /// `lifeboat snapshots` use more memory than restic's whole check. 32 MiB x 4 is well above
    /// OWASP's Argon2id minimum (19 MiB x 2). The parameters live in each key file, so
    /// changing this default never affects existing repositories.
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 32 * 1024,
        t_cost: 4,
        p_cost: 1,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub kdf: KdfParams,
    pub salt: [u8; 32],
    pub nonce: [u8; 12],
    /// Sealed master key (80 bytes: version 1) or sealed [`Keyring`] (version 2).
    pub wrapped: Vec<u8>,
}

/// Bytes of a key file before the wrapped key; they are the AEAD's associated data.
pub const KEYFILE_HEADER_LEN: usize = 8 + 12 + 32 + 12;

impl KeyFile {
    /// Version 1 holds exactly a sealed master key; anything else is a version-2 keyring
    /// (whose sealed length is never 80: at least 76 + 16 bytes).
    pub fn is_keyring(&self) -> bool {
        self.wrapped.len() != KEYFILE_WRAPPED_LEN
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(KEYFILE_HEADER_LEN + self.wrapped.len());
        w.raw(if self.is_keyring() {
            crate::magic::KEY_V2
        } else {
            crate::magic::KEY
        });
        w.u32_le(self.kdf.m_cost_kib);
        w.u32_le(self.kdf.t_cost);
        w.u32_le(self.kdf.p_cost);
        w.raw(&self.salt);
        w.raw(&self.nonce);
        w.raw(&self.wrapped);
        w.into_inner()
    }

    /// The header bytes that the wrap authenticates.
    pub fn header(&self) -> Vec<u8> {
        let mut e = self.encode();
        e.truncate(KEYFILE_HEADER_LEN);
        e
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let v2 = data.starts_with(crate::magic::KEY_V2);
        let body = if v2 {
            strip_magic(data, crate::magic::KEY_V2)?
        } else {
            strip_magic(data, crate::magic::KEY)?
        };
        let mut r = Reader::new(body);
        let kdf = KdfParams {
            m_cost_kib: r.u32_le("argon2 memory")?,
            t_cost: r.u32_le("argon2 passes")?,
            p_cost: r.u32_le("argon2 lanes")?,
        };
        // Bound the cost a hostile key file can make us pay: 4 GiB, 64 passes, 64 lanes.
        if kdf.m_cost_kib < 8
            || kdf.m_cost_kib > 4 << 20
            || kdf.t_cost == 0
            || kdf.t_cost > 64
            || kdf.p_cost == 0
            || kdf.p_cost > 64
        {
            return Err(FormatError::invalid(
                "key file",
                "argon2 parameters out of range",
            ));
        }
        let salt = r.array("key salt")?;
        let nonce = r.array("key nonce")?;
        let wrapped = if v2 {
            let n = r.remaining();
            // A keyring of 0..=MAX_GENERATIONS generations, sealed.
            if !(92..=92 + 40 * MAX_GENERATIONS).contains(&n) || !(n - 92).is_multiple_of(40) {
                return Err(FormatError::invalid(
                    "key file",
                    format!("a sealed keyring cannot be {n} bytes"),
                ));
            }
            r.take(n, "wrapped keyring")?.to_vec()
        } else {
            r.array::<KEYFILE_WRAPPED_LEN>("wrapped key")?.to_vec()
        };
        r.finish()?;
        Ok(KeyFile {
            kdf,
            salt,
            nonce,
            wrapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_and_length() {
        let k = KeyFile {
            kdf: KdfParams {
                m_cost_kib: 65536,
                t_cost: 3,
                p_cost: 1,
            },
            salt: [1; 32],
            nonce: [2; 12],
            wrapped: vec![3; 80],
        };
        let e = k.encode();
        assert_eq!(e.len(), KEYFILE_HEADER_LEN + KEYFILE_WRAPPED_LEN);
        assert_eq!(&e[..12], b"LBKEYF01\x00\x00\x01\x00");
        assert_eq!(KeyFile::decode(&e).unwrap(), k);
        assert!(KeyFile::decode(&e[..e.len() - 1]).is_err());
        // Version 2: a sealed keyring.
        let k2 = KeyFile {
            wrapped: vec![4; 92 + 40],
            ..k.clone()
        };
        let e2 = k2.encode();
        assert_eq!(&e2[..8], b"LBKEYF02");
        assert_eq!(KeyFile::decode(&e2).unwrap(), k2);
        assert!(KeyFile::decode(&e2[..e2.len() - 1]).is_err());
        let mut bad = e.clone();
        bad[7] = b'2'; // a v1 body under the v2 magic
        assert!(KeyFile::decode(&bad).is_err());
    }

    #[test]
    fn keyring_round_trip_and_checks() {
        let r = Keyring {
            master: [7; 64],
            current: 9,
            generations: vec![(9, [1; 32]), (5, [2; 32])],
        };
        let b = r.encode();
        assert_eq!(b.len(), 76 + 80);
        assert_eq!(Keyring::decode(&b).unwrap(), r);
        assert!(
            !format!("{r:?}").contains("7, 7"),
            "no key material in Debug"
        );
        let bad = Keyring {
            current: 3,
            ..r.clone()
        };
        assert!(Keyring::decode(&bad.encode()).is_err());
        let dup = Keyring {
            generations: vec![(9, [1; 32]), (9, [2; 32])],
            ..r.clone()
        };
        assert!(Keyring::decode(&dup.encode()).is_err());
        assert!(Keyring::decode(&b[..b.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(data: Vec<u8>) {
            let _ = KeyFile::decode(&data);
        }
    }
}
