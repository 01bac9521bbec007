//! The repository configuration: fixed at `init`, sealed with the master key.

use crate::FormatError;
use serde::{Deserialize, Serialize};

pub const REPO_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub version: u32,
    /// Random, shown in clear in the `config` file too, so tools can tell repositories apart.
    pub id: crate::Id,
    /// Content-defined chunking sizes in bytes (powers of two).
    pub chunk_min: u32,
    pub chunk_avg: u32,
    pub chunk_max: u32,
    /// zstd level used when a backup does not say otherwise; 0 stores blobs uncompressed.
    pub compression: i32,
    /// Packs are closed once they reach this many bytes.
    pub pack_size: u32,
}

impl RepoConfig {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let c: RepoConfig =
            serde_json::from_slice(data).map_err(|e| FormatError::Json(e.to_string()))?;
        if c.version > REPO_VERSION {
            return Err(FormatError::Version {
                what: "repository",
                found: c.version as u64,
                supported: REPO_VERSION as u64,
            });
        }
        let pow2 = |v: u32| v.is_power_of_two();
        let sizes_ok = pow2(c.chunk_min) && pow2(c.chunk_avg) && pow2(c.chunk_max);
        let ordered = c.chunk_min < c.chunk_avg && c.chunk_avg < c.chunk_max;
        if !sizes_ok
            || !ordered
            || c.chunk_min < 64
            || c.chunk_max > 16 << 20
            || c.pack_size < 1 << 20
            || c.pack_size > 1 << 30
        {
            return Err(FormatError::invalid(
                "repository config",
                "chunk or pack sizes out of range",
            ));
        }
        Ok(c)
    }
}
