//! Reading and writing prune marks (`marks/<id>`): the packs waiting out their grace period.
//!
//! Only prune writes marks, under the maintenance lease: it writes a complete new file, then
//! removes the older ones. Readers take the newest readable file (highest `written_at`, then
//! name), so a crash between the two steps changes nothing. A damaged marks file is left out:
//! the packs it listed are simply marked again (with a later time) by the next prune, which
//! only delays their deletion.

use crate::repository::Damaged;
use crate::{RepoError, Repository, Result};
use lifeboat_format::{Marks, magic};
use lifeboat_storage::{FileKind, Handle, StorageError};

/// Marks files in the repository and the one that counts.
#[derive(Debug, Default)]
pub struct MarksState {
    /// The newest readable marks file: its name and contents.
    pub current: Option<(String, Marks)>,
    /// Every marks file listed (the current one included).
    pub files: Vec<String>,
    pub damaged: Vec<Damaged>,
}

impl MarksState {
    pub fn marks(&self) -> Option<&Marks> {
        self.current.as_ref().map(|(_, m)| m)
    }
    pub fn name(&self) -> Option<String> {
        self.current.as_ref().map(|(n, _)| n.clone())
    }
}

impl Repository {
    pub fn read_marks(&self) -> Result<MarksState> {
        let mut st = MarksState::default();
        for (name, _) in self.storage().list(FileKind::Marks)? {
            st.files.push(name.clone());
            let h = Handle::new(FileKind::Marks, name.clone());
            match self.read_sealed(&h, magic::MARKS, "marks", 1 << 30) {
                Ok(plain) => match Marks::decode(&plain) {
                    Ok(m) => {
                        let newer = match &st.current {
                            None => true,
                            Some((n, c)) => (m.written_at, &name) > (c.written_at, n),
                        };
                        if newer {
                            st.current = Some((name, m));
                        }
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

    /// Stores a complete marks file; returns its name.
    pub fn write_marks(&self, m: &Marks) -> Result<String> {
        Ok(self
            .write_sealed(FileKind::Marks, magic::MARKS, &m.encode())?
            .to_hex())
    }
}

impl Repository {
    /// Adds marks to the current ones (keeping existing marks as they are) under the
    /// maintenance lease: a new complete marks file, then the older files go.
    pub fn add_marks(
        &self,
        lease: &crate::MaintenanceLease,
        new: &[lifeboat_format::Mark],
    ) -> Result<()> {
        let st = self.read_marks()?;
        let mut all: std::collections::BTreeMap<lifeboat_format::Id, lifeboat_format::Mark> = st
            .marks()
            .map(|m| m.marks.iter().map(|x| (x.pack, *x)).collect())
            .unwrap_or_default();
        for m in new {
            all.entry(m.pack).or_insert(*m);
        }
        let now = jiff::Timestamp::now().as_second();
        let marks = Marks {
            written_at: now.max(st.marks().map(|m| m.written_at).unwrap_or(now)),
            marks: all.into_values().collect(),
        };
        lease.check()?;
        let name = self.write_marks(&marks)?;
        for f in st.files.iter().filter(|f| **f != name) {
            lease.check()?;
            match self
                .storage()
                .delete(&Handle::new(FileKind::Marks, f.clone()))
            {
                Ok(()) | Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
