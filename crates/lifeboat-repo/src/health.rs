//! The repository's health record (`health/<id>`): when `check` last read and verified each
//! pack, and which blobs it found damaged where.
//!
//! It makes a nightly `check --read-data-subset 5%` cover the whole repository over time (the
//! least recently verified packs are read first), and it drives self-healing: backups store
//! again any blob recorded as damaged, readers prefer an undamaged copy, and prune then treats
//! the damaged copy as unused. Writers merge every health file they read into a new one and
//! remove the ones merged; concurrent writers leave several files, which readers merge.

use crate::repository::Damaged;
use crate::{RepoError, Repository, Result};
use lifeboat_format::{Health, magic};
use lifeboat_storage::{FileKind, Handle, StorageError};

#[derive(Debug, Default)]
pub struct HealthState {
    pub health: Health,
    pub files: Vec<String>,
    pub damaged: Vec<Damaged>,
}

impl Repository {
    pub fn read_health(&self) -> Result<HealthState> {
        let mut st = HealthState::default();
        for (name, _) in self.storage().list(FileKind::Health)? {
            let h = Handle::new(FileKind::Health, name.clone());
            match self.read_sealed(&h, magic::HEALTH, "health", 1 << 30) {
                Ok(plain) => match Health::decode(&plain) {
                    Ok(x) => {
                        st.health = st.health.merge(&x);
                        st.files.push(name);
                    }
                    Err(e) => st.damaged.push((h.path(), e.to_string())),
                },
                Err(RepoError::Storage(StorageError::NotFound(_))) => {}
                Err(e @ RepoError::Corrupt { .. }) => st.damaged.push((h.path(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(st)
    }

    /// Writes `h` (already merged with `replaces`), then removes the files it replaces.
    pub fn write_health(&self, h: &Health, replaces: &[String]) -> Result<String> {
        let name = self
            .write_sealed(FileKind::Health, magic::HEALTH, &h.encode())?
            .to_hex();
        for f in replaces.iter().filter(|f| **f != name) {
            match self
                .storage()
                .delete(&Handle::new(FileKind::Health, f.clone()))
            {
                Ok(()) | Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(name)
    }
}
