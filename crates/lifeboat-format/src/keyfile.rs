//! Key files: a random master key wrapped with a key derived from a password by Argon2id.
//! Several key files can wrap the same master key (several passwords, one repository).
//!
//! Layout (all integers little-endian):
//! `magic[8] | m_cost u32 (KiB) | t_cost u32 | p_cost u32 | salt[32] | nonce[12] | sealed[64+16]`

use crate::codec::{Reader, Writer};
use crate::{FormatError, strip_magic};

/// Length of the wrapped master key: 64 key bytes plus the 16-byte tag.
pub const KEYFILE_WRAPPED_LEN: usize = 64 + 16;

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
    pub wrapped: [u8; KEYFILE_WRAPPED_LEN],
}

/// Bytes of a key file before the wrapped key; they are the AEAD's associated data.
pub const KEYFILE_HEADER_LEN: usize = 8 + 12 + 32 + 12;

impl KeyFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(KEYFILE_HEADER_LEN + KEYFILE_WRAPPED_LEN);
        w.raw(crate::magic::KEY);
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
        let mut r = Reader::new(strip_magic(data, crate::magic::KEY)?);
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
        let wrapped = r.array("wrapped key")?;
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
            wrapped: [3; 80],
        };
        let e = k.encode();
        assert_eq!(e.len(), KEYFILE_HEADER_LEN + KEYFILE_WRAPPED_LEN);
        assert_eq!(&e[..12], b"LBKEYF01\x00\x00\x01\x00");
        assert_eq!(KeyFile::decode(&e).unwrap(), k);
        assert!(KeyFile::decode(&e[..e.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(data: Vec<u8>) {
            let _ = KeyFile::decode(&data);
        }
    }
}
