//! Copying blobs out of packs into new packs: prune's repacking of partly used packs and
//! `repair packs`' salvage of damaged ones.
//!
//! Blobs are copied still compressed: each payload is opened with the old pack's key at its
//! old offset and sealed with the new pack's key at its new offset. The list of blobs comes
//! from the index segments, not the old pack's trailer, so a pack with a damaged trailer can
//! still be salvaged.

use crate::Result;
use crate::repository::{Repository, open_blob, pack_handle};
use crate::saver::{OpenPack, Packed};
use lifeboat_crypto::SALT_LEN;
use lifeboat_format::{BlobEntry, Id, IndexPack, magic};

/// What copying one pack gave.
#[derive(Debug, Default)]
pub struct CopyOutcome {
    pub copied: usize,
    pub copied_bytes: u64,
    /// Blobs that could not be read back whole: (blob, why).
    pub failed: Vec<(Id, String)>,
}

pub struct Repacker<'a> {
    repo: &'a Repository,
    open: [Option<OpenPack>; 2],
    done: Vec<IndexPack>,
    pack_size: usize,
    dry_run: bool,
}

impl<'a> Repacker<'a> {
    pub fn new(repo: &'a Repository) -> Self {
        Repacker {
            repo,
            open: [None, None],
            done: Vec::new(),
            pack_size: repo.config().pack_size as usize,
            dry_run: false,
        }
    }

    /// Reads and verifies as usual but writes no pack.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Copies `blobs` (entries of `pack`) into the new packs. With `verify`, each blob is also
    /// decompressed and hashed against its id (salvage); without, the AEAD tag alone vouches
    /// for it (repacking healthy data). A pack that cannot be read at all fails every blob.
    pub fn copy_pack(
        &mut self,
        pack: &Id,
        blobs: &[BlobEntry],
        verify: bool,
    ) -> Result<CopyOutcome> {
        let mut out = CopyOutcome::default();
        let h = pack_handle(pack);
        let bytes = match self.repo.storage().get(&h) {
            Ok(b) => b,
            Err(e) => {
                out.failed = blobs.iter().map(|b| (b.id, e.to_string())).collect();
                return Ok(out);
            }
        };
        let cipher = match bytes
            .get(..8 + SALT_LEN)
            .ok_or_else(|| "shorter than a pack header".to_string())
            .and_then(|hdr| {
                lifeboat_format::strip_magic(hdr, magic::PACK).map_err(|e| e.to_string())
            })
            .and_then(|salt| {
                let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| "short salt".to_string())?;
                self.repo
                    .keys()
                    .file_cipher(&salt)
                    .map_err(|e| e.to_string())
            }) {
            Ok(c) => c,
            Err(why) => {
                out.failed = blobs
                    .iter()
                    .map(|b| (b.id, format!("pack header: {why}")))
                    .collect();
                return Ok(out);
            }
        };
        for e in blobs {
            let range = e.offset as usize..e.offset as usize + e.stored_len as usize;
            let Some(stored) = bytes.get(range) else {
                out.failed
                    .push((e.id, "beyond the end of the pack (truncated)".into()));
                continue;
            };
            let mut buf = stored.to_vec();
            if verify {
                let loc = crate::index::BlobLocation {
                    pack: *pack,
                    pack_number: 0,
                    blob_type: e.blob_type,
                    compression: e.compression,
                    offset: e.offset,
                    stored_len: e.stored_len,
                    raw_len: e.raw_len,
                };
                if let Err(why) =
                    open_blob(self.repo.keys(), &cipher, &e.id, &loc, &mut buf.clone())
                {
                    out.failed.push((e.id, why));
                    continue;
                }
            }
            let payload = match cipher.open(e.offset as u64, b"", &mut buf, "blob") {
                Ok(p) => p.to_vec(),
                Err(err) => {
                    out.failed.push((e.id, err.to_string()));
                    continue;
                }
            };
            self.add(Packed {
                blob_type: e.blob_type,
                id: e.id,
                compression: e.compression,
                raw_len: e.raw_len,
                payload,
            })?;
            out.copied += 1;
            out.copied_bytes += e.stored_len as u64;
        }
        Ok(out)
    }

    fn add(&mut self, p: Packed) -> Result<()> {
        let slot = p.blob_type as usize;
        if self.open[slot].is_none() {
            self.open[slot] = Some(OpenPack::new(self.repo.keys(), self.pack_size)?);
        }
        let full = match self.open[slot].as_mut() {
            Some(op) => {
                op.add(p)?;
                op.buf.len() >= self.pack_size
            }
            None => false,
        };
        if full && let Some(op) = self.open[slot].take() {
            self.flush(op)?;
        }
        Ok(())
    }

    fn flush(&mut self, p: OpenPack) -> Result<()> {
        let (bytes, blobs) = p.seal()?;
        let id = lifeboat_crypto::storage_id(&bytes);
        if !self.dry_run {
            self.repo.storage().put(&pack_handle(&id), &bytes)?;
        }
        self.done.push(IndexPack {
            pack: id,
            pack_len: bytes.len() as u64,
            blobs,
        });
        Ok(())
    }

    /// Writes the last packs and returns every new pack (not yet indexed).
    pub fn finish(mut self) -> Result<Vec<IndexPack>> {
        for slot in 0..2 {
            if let Some(p) = self.open[slot].take() {
                self.flush(p)?;
            }
        }
        Ok(std::mem::take(&mut self.done))
    }
}
