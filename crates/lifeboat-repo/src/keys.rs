//! The key files of an open repository: listing, adding, removing, changing a password.
//!
//! Every key file wraps the same master key under a different password (docs/format.md §4.1),
//! so adding or removing one never touches any other file. What must never happen is that no
//! working key file is left: `remove_key` refuses the key this session opened with (the only
//! one known to work with a password someone has) and, in any case, the last one.

use crate::error::{RepoError, Result};
use crate::repository::{Repository, config_header};
use lifeboat_crypto::MasterKey;
use lifeboat_format::{Id, KdfParams, KeyFile, RepoConfig};
use lifeboat_storage::{FileKind, Handle, StorageError};

/// One file under `keys/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The file name: the BLAKE3 hash of the key file's bytes, in hex.
    pub name: String,
    /// Argon2id parameters, when the file decodes.
    pub kdf: Option<KdfParams>,
    /// Whether this is the key file the repository was opened with (or `init` wrote).
    pub current: bool,
    /// Why the file cannot be used as written: unreadable, not a key file, or its contents
    /// do not match its name. Damage to one key file does not affect the others.
    pub damaged: Option<String>,
}

impl KeyInfo {
    /// The name as an id, when it is one.
    pub fn id(&self) -> Option<Id> {
        self.name.parse().ok()
    }
}

impl Repository {
    /// Name of the key file this session opened with (or `init` wrote).
    pub fn current_key(&self) -> &str {
        &self.key_name
    }

    /// Every key file, in name order. A key file that cannot be read or decoded is listed
    /// with `damaged` set rather than failing the listing: the point of listing keys is often
    /// to find such a file. Which password opens which key cannot be told without the
    /// passwords; only the current key is known.
    pub fn key_files(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (name, _) in self.storage().list(FileKind::Key)? {
            let mut info = KeyInfo {
                current: name == self.key_name,
                name,
                kdf: None,
                damaged: None,
            };
            if info.id().is_none() {
                info.damaged = Some("not a key file name".into());
                out.push(info);
                continue;
            }
            match self
                .storage()
                .get(&Handle::new(FileKind::Key, info.name.clone()))
            {
                // Removed meanwhile: it is gone, which is what a listing says.
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => info.damaged = Some(e.to_string()),
                Ok(bytes) => match KeyFile::decode(&bytes) {
                    Ok(kf) => {
                        info.kdf = Some(kf.kdf);
                        // The name is the hash of the bytes, so a flipped bit in the salt or
                        // the wrapped key shows here, without the password it belongs to.
                        if lifeboat_crypto::storage_id(&bytes).to_hex() != info.name {
                            info.damaged = Some("contents do not match the file name".into());
                        }
                    }
                    Err(e) => info.damaged = Some(e.to_string()),
                },
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Finds a key file by its full name or a unique prefix of it.
    pub fn find_key(&self, spec: &str) -> Result<Id> {
        let spec_l = spec.trim().to_ascii_lowercase();
        if spec_l.is_empty() {
            return Err(RepoError::NoSuchKey(spec.to_string()));
        }
        let listed = self.storage().list(FileKind::Key)?;
        let mut found: Vec<Id> = listed
            .iter()
            .filter(|(name, _)| name.starts_with(&spec_l))
            .filter_map(|(name, _)| name.parse().ok())
            .collect();
        match found.len() {
            // `key_files` lists such a file as damaged; say why it cannot be named here.
            0 if listed.iter().any(|(name, _)| name == spec) => Err(RepoError::Invalid(format!(
                "keys/{spec} is not a key file Lifeboat wrote (its name is not an id); delete it by hand if it does not belong there"
            ))),
            0 => Err(RepoError::NoSuchKey(spec.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(RepoError::AmbiguousKey(spec.to_string())),
        }
    }

    /// Wraps this repository's master key under `password` into a new key file; returns its
    /// name (BLAKE3 of its bytes, as `init` names key files). The salt and nonce are random,
    /// so the same password added twice gives two different files.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        check_kdf(kdf)?;
        let kf = self
            .master
            .wrap(password, kdf)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let bytes = kf.encode();
        let id = lifeboat_crypto::storage_id(&bytes);
        self.storage()
            .put(&Handle::new(FileKind::Key, id.to_hex()), &bytes)?;
        Ok(id)
    }

    /// Removes a key file. Refuses the last key file (the repository could not be opened
    /// again) and the one this session opened with (the only one known to work); use
    /// [`Repository::change_password`] to replace that one.
    pub fn remove_key(&self, id: &Id) -> Result<()> {
        let name = id.to_hex();
        let listed = self.storage().list(FileKind::Key)?;
        if !listed.iter().any(|(n, _)| *n == name) {
            return Err(RepoError::NoSuchKey(name));
        }
        if listed.len() == 1 {
            return Err(RepoError::LastKey(id.short()));
        }
        if name == self.key_name {
            return Err(RepoError::CurrentKey(id.short()));
        }
        // Keeping the current key is what guarantees a working key remains. If another
        // session removed it meanwhile, that guarantee is gone: the remaining files may all
        // belong to passwords nobody has, or be damaged.
        if !listed.iter().any(|(n, _)| *n == self.key_name) {
            return Err(RepoError::Invalid(format!(
                "the key this password opened ({}) has been removed meanwhile; open the repository again before removing keys",
                short(&self.key_name)
            )));
        }
        match self
            .storage()
            .delete(&Handle::new(FileKind::Key, name.clone()))
        {
            Err(StorageError::NotFound(_)) => Err(RepoError::NoSuchKey(name)),
            r => Ok(r?),
        }
    }

    /// Changes the password of this session's key: adds a key file for `new_password`,
    /// checks that it opens the repository, then removes the key file this session opened
    /// with. Returns the new key's name.
    ///
    /// A crash between adding and removing leaves both key files, and each opens the
    /// repository with its own password: safe, and `key list` / `key remove` tidy it up.
    /// The reverse order could leave no key at all.
    pub fn change_password(&mut self, new_password: &[u8], kdf: KdfParams) -> Result<Id> {
        let new = self.add_key(new_password, kdf)?;
        if let Err(e) = self.verify_key(&new, new_password) {
            // The old key is untouched, so nothing is lost; a new key that does not work is
            // only clutter, removed on a best-effort basis.
            let _ = self
                .storage()
                .delete(&Handle::new(FileKind::Key, new.to_hex()));
            return Err(e);
        }
        let old = std::mem::replace(&mut self.key_name, new.to_hex());
        match self
            .storage()
            .delete(&Handle::new(FileKind::Key, old.clone()))
        {
            // Already removed by someone else: the old password no longer opens it either.
            Ok(()) | Err(StorageError::NotFound(_)) => Ok(new),
            Err(e) => Err(RepoError::OldKeyKept {
                new: new.short(),
                old: short(&old),
                source: Box::new(e.into()),
            }),
        }
    }

    /// Reads a key file back from storage and checks that `password` opens it and that its
    /// master key opens this repository's config: the same path `open` takes. Before the
    /// only working key is removed, the replacement must be proven, not assumed.
    fn verify_key(&self, id: &Id, password: &[u8]) -> Result<()> {
        let h = Handle::new(FileKind::Key, id.to_hex());
        let bytes = self.storage().get(&h)?;
        if lifeboat_crypto::storage_id(&bytes) != *id {
            return Err(RepoError::corrupt(
                h.path(),
                "read back with contents that do not match its name",
            ));
        }
        let kf = KeyFile::decode(&bytes).map_err(|e| RepoError::from_format(h.path(), e))?;
        let master = lifeboat_crypto::MasterKey::unwrap(password, &kf).map_err(|e| {
            RepoError::corrupt(h.path(), format!("read back, it does not open: {e}"))
        })?;
        let cfg = self.storage().get(&Handle::config())?;
        let plain = master
            .keys()
            .open_file(&config_header(&self.config().id), &cfg, "config")
            .map_err(|e| RepoError::from_crypto("config", e))?;
        RepoConfig::decode(&plain).map_err(|e| RepoError::from_format("config", e))?;
        Ok(())
    }
}

/// Refuses Argon2 parameters that readers of this version would reject (the bounds in
/// `KeyFile::decode`), before anything is written: a key file nobody can open is worse than
/// none, and `change_password` would then remove the working one.
fn check_kdf(kdf: KdfParams) -> Result<()> {
    let probe = KeyFile {
        kdf,
        salt: [0; 32],
        nonce: [0; 12],
        wrapped: vec![0; lifeboat_format::KEYFILE_WRAPPED_LEN],
    };
    KeyFile::decode(&probe.encode())
        .map(|_| ())
        .map_err(|e| RepoError::Invalid(format!("refusing to write this key file: {e}")))
}

/// The first 8 characters of a key file name, as listings show it.
fn short(name: &str) -> String {
    name.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InitOptions;
    use lifeboat_storage::{LocalStorage, Storage};
    use std::sync::Arc;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn storage(d: &tempfile::TempDir) -> Arc<dyn Storage> {
        Arc::new(LocalStorage::new(d.path().join("repo")).without_sync())
    }

    fn new_repo(d: &tempfile::TempDir) -> Repository {
        let opts = InitOptions {
            kdf: FAST,
            ..InitOptions::default()
        };
        Repository::init(storage(d), b"one", &opts).expect("init")
    }

    fn key_path(d: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        d.path().join("repo").join("keys").join(name)
    }

    #[test]
    fn added_key_opens_the_same_repository() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&d);
        let first = repo.key_name.clone();
        let added = repo.add_key(b"two", FAST).expect("add");
        let by_two = Repository::open(storage(&d), b"two").expect("open with the new password");
        assert_eq!(by_two.config().id, repo.config().id);
        assert_eq!(by_two.key_name, added.to_hex());
        // Same master key: same blob ids.
        assert_eq!(by_two.keys().blob_id(b"x"), repo.keys().blob_id(b"x"));
        let by_one = Repository::open(storage(&d), b"one").expect("open with the old password");
        assert_eq!(by_one.key_name, first);
        let list = by_two.key_files().expect("list");
        assert_eq!(list.len(), 2);
        let current: Vec<_> = list.iter().filter(|k| k.current).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].name, added.to_hex());
        assert!(
            list.iter()
                .all(|k| k.damaged.is_none() && k.kdf == Some(FAST))
        );
    }

    #[test]
    fn out_of_range_kdf_parameters_are_refused_before_writing() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&d);
        let bad = KdfParams {
            m_cost_kib: 4,
            ..FAST
        };
        assert!(matches!(
            repo.add_key(b"x", bad),
            Err(RepoError::Invalid(_))
        ));
        assert_eq!(repo.key_files().expect("list").len(), 1);
    }

    #[test]
    fn remove_refuses_the_last_and_the_current_key() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&d);
        let own: Id = repo.key_name.parse().expect("id");
        assert!(matches!(repo.remove_key(&own), Err(RepoError::LastKey(_))));
        let other = repo.add_key(b"two", FAST).expect("add");
        assert!(matches!(
            repo.remove_key(&own),
            Err(RepoError::CurrentKey(_))
        ));
        assert!(matches!(
            repo.remove_key(&Id([7; 32])),
            Err(RepoError::NoSuchKey(_))
        ));
        repo.remove_key(&other).expect("remove the other key");
        assert!(matches!(
            Repository::open(storage(&d), b"two"),
            Err(RepoError::WrongPassword(_))
        ));
        Repository::open(storage(&d), b"one").expect("the current key still works");
    }

    #[test]
    fn change_password_replaces_the_current_key() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut repo = new_repo(&d);
        let old = repo.key_name.clone();
        let new = repo.change_password(b"new", FAST).expect("passwd");
        assert_eq!(repo.key_name, new.to_hex());
        let list = repo.key_files().expect("list");
        assert_eq!(list.len(), 1);
        assert!(list[0].current && list[0].name != old);
        assert!(matches!(
            Repository::open(storage(&d), b"one"),
            Err(RepoError::WrongPassword(_))
        ));
        Repository::open(storage(&d), b"new").expect("new password opens");
    }

    #[test]
    fn damaged_key_files_are_listed_not_fatal() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&d);
        let other = repo.add_key(b"two", FAST).expect("add");
        // One flipped bit in the wrapped key: still decodes, but no longer matches its name.
        let p = key_path(&d, &other.to_hex());
        let mut b = std::fs::read(&p).expect("read");
        b[100] ^= 1;
        std::fs::write(&p, &b).expect("write");
        // Not a key file at all, under a name that sorts first.
        std::fs::write(key_path(&d, &"0".repeat(64)), b"junk").expect("write");
        std::fs::write(key_path(&d, "notes.txt"), b"junk").expect("write");
        let list = repo.key_files().expect("list");
        assert_eq!(list.len(), 4);
        let by_name = |n: &str| list.iter().find(|k| k.name == n).expect("listed");
        assert!(by_name(&other.to_hex()).damaged.is_some());
        assert_eq!(by_name(&other.to_hex()).kdf, Some(FAST));
        assert!(by_name(&"0".repeat(64)).damaged.is_some());
        assert!(by_name("notes.txt").damaged.is_some());
        assert!(by_name(&repo.key_name).damaged.is_none());
        Repository::open(storage(&d), b"one").expect("damaged key files are skipped");
        assert!(matches!(
            Repository::open(storage(&d), b"two"),
            Err(RepoError::WrongPassword(_))
        ));
    }

    #[test]
    fn find_key_by_prefix() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = new_repo(&d);
        let own = repo.key_name.clone();
        assert_eq!(
            repo.find_key(&own[..8].to_ascii_uppercase())
                .expect("prefix")
                .to_hex(),
            own
        );
        assert!(matches!(repo.find_key(""), Err(RepoError::NoSuchKey(_))));
        std::fs::write(key_path(&d, "notes.txt"), b"junk").expect("write");
        assert!(matches!(
            repo.find_key("notes.txt"),
            Err(RepoError::Invalid(_))
        ));
        let other = if own.starts_with('f') { "0" } else { "f" };
        assert!(matches!(
            repo.find_key(&other.repeat(8)),
            Err(RepoError::NoSuchKey(_))
        ));
        // Enough keys that some two share a first hex digit (17 > 16 digits).
        for i in 0..16u8 {
            repo.add_key(&[i], FAST).expect("add");
        }
        let names: Vec<String> = repo
            .key_files()
            .expect("list")
            .into_iter()
            .map(|k| k.name)
            .collect();
        let shared = names
            .iter()
            .find(|n| names.iter().filter(|m| m[..1] == n[..1]).count() > 1)
            .expect("pigeonhole");
        assert!(matches!(
            repo.find_key(&shared[..1]),
            Err(RepoError::AmbiguousKey(_))
        ));
    }
}

/// What `key rotate` did.
#[derive(Debug)]
pub struct Rotation {
    /// The new key file (the keyring, wrapped by the password given).
    pub key: Id,
    /// The generation that now writes.
    pub generation: u64,
    /// Key files removed: they wrap the old keys, so a leaked one must stop opening the
    /// repository.
    pub removed: Vec<String>,
}

impl Repository {
    /// Rotates the data key: a new random data key writes everything from now on (the
    /// master key stays, so blob ids and deduplication go on). The keyring is wrapped by
    /// `password` into a new key file, checked, and then every other key file is removed
    /// (their passwords must be added again with `key add`). Objects sealed earlier stay
    /// readable; prune re-encrypts them ([`crate::prune`]).
    pub fn rotate_key(
        &mut self,
        lease: &crate::MaintenanceLease,
        password: &[u8],
        kdf: KdfParams,
    ) -> Result<Rotation> {
        check_kdf(kdf)?;
        let rotated = self
            .master
            .rotate()
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let kf = rotated
            .wrap(password, kdf)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let bytes = kf.encode();
        let id = lifeboat_crypto::storage_id(&bytes);
        lease.check()?;
        self.storage()
            .put(&Handle::new(FileKind::Key, id.to_hex()), &bytes)?;
        // Read it back and open it before anything is removed.
        let back = self
            .storage()
            .get(&Handle::new(FileKind::Key, id.to_hex()))?;
        let ok = KeyFile::decode(&back)
            .ok()
            .and_then(|k| MasterKey::unwrap(password, &k).ok())
            .is_some_and(|m| m.current_generation() == rotated.current_generation());
        if !ok {
            return Err(RepoError::Invalid(format!(
                "the new key file {} does not read back; nothing was removed",
                id.short()
            )));
        }
        let generation = rotated.current_generation();
        self.keys = std::sync::Arc::new(rotated.keys());
        self.master = rotated;
        self.key_name = id.to_hex();
        let mut removed = Vec::new();
        for (name, _) in self.storage().list(FileKind::Key)? {
            if name == self.key_name {
                continue;
            }
            lease.check()?;
            match self
                .storage()
                .delete(&Handle::new(FileKind::Key, name.clone()))
            {
                Ok(()) | Err(StorageError::NotFound(_)) => removed.push(name),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Rotation {
            key: id,
            generation,
            removed,
        })
    }
}
