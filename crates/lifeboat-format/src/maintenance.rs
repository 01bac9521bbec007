//! The two small files maintenance adds: the prune marks (which packs are waiting to be
//! deleted, since when) and leases (who is working on the repository, until when).
//!
//! Marks are binary like the index (a repository may mark many thousands of packs); leases are
//! JSON because people read them when a prune refuses to start.

use crate::{FormatError, Id, Reader, Writer};
use serde::{Deserialize, Serialize};

/// Layout version of the marks file.
pub const MARKS_VERSION: u8 = 1;

/// Why a pack is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkReason {
    /// No snapshot references any blob in it.
    Unreferenced = 1,
    /// Its referenced blobs were copied into new packs by a repack.
    Repacked = 2,
    /// No index segment lists it (a backup still running, or one that died).
    Unindexed = 3,
}

impl MarkReason {
    fn from_u8(v: u8) -> Result<Self, FormatError> {
        Ok(match v {
            1 => MarkReason::Unreferenced,
            2 => MarkReason::Repacked,
            3 => MarkReason::Unindexed,
            _ => return Err(FormatError::invalid("mark reason", format!("{v}"))),
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            MarkReason::Unreferenced => "unreferenced",
            MarkReason::Repacked => "repacked",
            MarkReason::Unindexed => "unindexed",
        }
    }
}

/// One marked pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub pack: Id,
    /// Seconds since the Unix epoch, by the clock of the prune that marked it.
    pub marked_at: i64,
    pub reason: MarkReason,
}

/// The complete set of marked packs, as written by one prune. Only the newest marks file
/// counts; a prune writes a new one and then removes the older ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// Seconds since the Unix epoch when this file was written.
    pub written_at: i64,
    /// Sorted by pack id, no duplicates.
    pub marks: Vec<Mark>,
}

/// Bytes of the smallest possible encoded mark (id, one-byte time, reason).
const MIN_MARK_LEN: usize = 32 + 1 + 1;

impl Marks {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16 + self.marks.len() * 40);
        w.u8(MARKS_VERSION);
        w.varint_signed(self.written_at);
        w.varint(self.marks.len() as u64);
        for m in &self.marks {
            w.raw(&m.pack.0);
            w.varint_signed(m.marked_at);
            w.u8(m.reason as u8);
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(data);
        let version = r.u8("marks version")?;
        if version != MARKS_VERSION {
            return Err(FormatError::Version {
                what: "marks",
                found: version as u64,
                supported: MARKS_VERSION as u64,
            });
        }
        let written_at = r.varint_signed("marks time")?;
        let count = r.varint("mark count")?;
        if count > (r.remaining() / MIN_MARK_LEN) as u64 {
            return Err(FormatError::invalid(
                "mark count",
                format!("{count} marks cannot fit in {} bytes", r.remaining()),
            ));
        }
        let mut marks: Vec<Mark> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let pack = Id(r.array("marked pack")?);
            let marked_at = r.varint_signed("mark time")?;
            let reason = MarkReason::from_u8(r.u8("mark reason")?)?;
            if let Some(prev) = marks.last()
                && prev.pack >= pack
            {
                return Err(FormatError::invalid(
                    "marked pack",
                    "marks are not in strictly increasing pack order",
                ));
            }
            marks.push(Mark {
                pack,
                marked_at,
                reason,
            });
        }
        r.finish()?;
        Ok(Marks { written_at, marks })
    }

    pub fn get(&self, pack: &Id) -> Option<&Mark> {
        self.marks
            .binary_search_by(|m| m.pack.cmp(pack))
            .ok()
            .map(|i| &self.marks[i])
    }
}

/// Layout version of lease files.
pub const LEASE_VERSION: u32 = 1;

/// What a lease is held for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseKind {
    /// Exclusive: prune, repair, key rotation. At most one holder.
    Maintenance,
    /// Shared: a running backup, so that prune does not delete what it may reuse.
    Backup,
}

/// A time-limited claim on the repository, renewed while its holder works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub version: u32,
    pub kind: LeaseKind,
    /// Random, unique per holder: a holder recognises its own lease by it.
    pub token: String,
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    /// What the holder is doing, e.g. "prune".
    pub command: String,
    pub started: jiff::Timestamp,
    pub renewed: jiff::Timestamp,
    /// The holder must renew before this; afterwards the lease may be taken over.
    pub expires: jiff::Timestamp,
}

impl Lease {
    pub fn encode(&self) -> Vec<u8> {
        // Plain fields with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let l: Lease =
            serde_json::from_slice(data).map_err(|e| FormatError::Json(e.to_string()))?;
        if l.version > LEASE_VERSION {
            return Err(FormatError::Version {
                what: "lease",
                found: l.version as u64,
                supported: LEASE_VERSION as u64,
            });
        }
        Ok(l)
    }

    /// "prune by root@ctrl1 (pid 4242), started …, expires …" for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} by {}@{} (pid {}), started {}, renewed {}, expires {}",
            self.command,
            self.username,
            self.hostname,
            self.pid,
            self.started
                .round(jiff::Unit::Second)
                .unwrap_or(self.started),
            self.renewed
                .round(jiff::Unit::Second)
                .unwrap_or(self.renewed),
            self.expires
                .round(jiff::Unit::Second)
                .unwrap_or(self.expires),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    #[test]
    fn marks_round_trip_and_golden_bytes() {
        let m = Marks {
            written_at: 1,
            marks: vec![Mark {
                pack: id(0xab),
                marked_at: -1,
                reason: MarkReason::Repacked,
            }],
        };
        let b = m.encode();
        let mut want = vec![1u8, 0x02, 0x01];
        want.extend_from_slice(&[0xab; 32]);
        want.extend_from_slice(&[0x01, 0x02]);
        assert_eq!(b, want);
        assert_eq!(Marks::decode(&b).unwrap(), m);
        assert_eq!(
            m.get(&id(0xab)).map(|m| m.reason),
            Some(MarkReason::Repacked)
        );
        assert!(m.get(&id(1)).is_none());
    }

    #[test]
    fn marks_reject_disorder_bad_reason_and_trailing_bytes() {
        let mk = |ids: &[u8]| Marks {
            written_at: 5,
            marks: ids
                .iter()
                .map(|b| Mark {
                    pack: id(*b),
                    marked_at: 3,
                    reason: MarkReason::Unreferenced,
                })
                .collect(),
        };
        assert!(Marks::decode(&mk(&[1, 2, 3]).encode()).is_ok());
        assert!(Marks::decode(&mk(&[2, 1]).encode()).is_err());
        assert!(Marks::decode(&mk(&[2, 2]).encode()).is_err());
        let mut b = mk(&[1]).encode();
        let last = b.len() - 1;
        b[last] = 9;
        assert!(Marks::decode(&b).is_err());
        let mut b = mk(&[1]).encode();
        b.push(0);
        assert!(matches!(Marks::decode(&b), Err(FormatError::Trailing(1))));
        let mut b = mk(&[1]).encode();
        b[0] = 2;
        assert!(matches!(
            Marks::decode(&b),
            Err(FormatError::Version { .. })
        ));
        // A count larger than the bytes could hold is refused before allocating.
        assert!(Marks::decode(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn lease_round_trip() {
        let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let l = Lease {
            version: 1,
            kind: LeaseKind::Maintenance,
            token: "00ff".into(),
            hostname: "ctrl1".into(),
            username: "root".into(),
            pid: 42,
            command: "prune".into(),
            started: t,
            renewed: t,
            expires: t,
        };
        let b = l.encode();
        assert!(
            std::str::from_utf8(&b)
                .unwrap()
                .contains("\"kind\":\"maintenance\"")
        );
        assert_eq!(Lease::decode(&b).unwrap(), l);
        assert!(l.describe().contains("prune by root@ctrl1 (pid 42)"));
        assert!(Lease::decode(b"{}").is_err());
    }
}

/// Layout version of the health file.
pub const HEALTH_VERSION: u8 = 1;

/// A blob that `check` found damaged in one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BadBlob {
    pub blob: Id,
    pub pack: Id,
    /// Unix seconds when it was found.
    pub found_at: i64,
}

/// What `check --read-data*` learned: when each pack was last read and verified whole, and
/// which blobs were found damaged where. Several health files are merged (union, newest
/// verification per pack); a check writes the merge and removes the files it merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub written_at: i64,
    /// (pack, verified_at), sorted by pack, no duplicates.
    pub verified: Vec<(Id, i64)>,
    /// Sorted by (blob, pack), no duplicates.
    pub bad: Vec<BadBlob>,
}

impl Health {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16 + self.verified.len() * 40 + self.bad.len() * 72);
        w.u8(HEALTH_VERSION);
        w.varint_signed(self.written_at);
        w.varint(self.verified.len() as u64);
        for (p, t) in &self.verified {
            w.raw(&p.0);
            w.varint_signed(*t);
        }
        w.varint(self.bad.len() as u64);
        for b in &self.bad {
            w.raw(&b.blob.0);
            w.raw(&b.pack.0);
            w.varint_signed(b.found_at);
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(data);
        let version = r.u8("health version")?;
        if version != HEALTH_VERSION {
            return Err(FormatError::Version {
                what: "health",
                found: version as u64,
                supported: HEALTH_VERSION as u64,
            });
        }
        let written_at = r.varint_signed("health time")?;
        let n = r.varint("verified count")?;
        if n > (r.remaining() / 33) as u64 {
            return Err(FormatError::invalid(
                "verified count",
                format!("{n} too large"),
            ));
        }
        let mut verified: Vec<(Id, i64)> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let p = Id(r.array("verified pack")?);
            let t = r.varint_signed("verified time")?;
            if verified.last().is_some_and(|(q, _)| *q >= p) {
                return Err(FormatError::invalid(
                    "verified pack",
                    "not in strictly increasing order",
                ));
            }
            verified.push((p, t));
        }
        let n = r.varint("bad blob count")?;
        if n > (r.remaining() / 65) as u64 {
            return Err(FormatError::invalid(
                "bad blob count",
                format!("{n} too large"),
            ));
        }
        let mut bad: Vec<BadBlob> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let b = BadBlob {
                blob: Id(r.array("bad blob")?),
                pack: Id(r.array("bad blob pack")?),
                found_at: r.varint_signed("bad blob time")?,
            };
            if bad
                .last()
                .is_some_and(|q| (q.blob, q.pack) >= (b.blob, b.pack))
            {
                return Err(FormatError::invalid(
                    "bad blob",
                    "not in strictly increasing order",
                ));
            }
            bad.push(b);
        }
        r.finish()?;
        Ok(Health {
            written_at,
            verified,
            bad,
        })
    }

    /// The union of two health records: the newest verification of each pack, and every bad
    /// blob not since cleared by a later verification of its pack.
    pub fn merge(&self, other: &Health) -> Health {
        let mut v: std::collections::BTreeMap<Id, i64> = std::collections::BTreeMap::new();
        for (p, t) in self.verified.iter().chain(&other.verified) {
            let e = v.entry(*p).or_insert(*t);
            *e = (*e).max(*t);
        }
        let mut bad: std::collections::BTreeMap<(Id, Id), i64> = std::collections::BTreeMap::new();
        for b in self.bad.iter().chain(&other.bad) {
            let e = bad.entry((b.blob, b.pack)).or_insert(b.found_at);
            *e = (*e).max(b.found_at);
        }
        Health {
            written_at: self.written_at.max(other.written_at),
            bad: bad
                .into_iter()
                .filter(|((_, p), t)| v.get(p).is_none_or(|vt| vt <= t))
                .map(|((blob, pack), found_at)| BadBlob {
                    blob,
                    pack,
                    found_at,
                })
                .collect(),
            verified: v.into_iter().collect(),
        }
    }

    pub fn verified_at(&self, pack: &Id) -> Option<i64> {
        self.verified
            .binary_search_by(|(p, _)| p.cmp(pack))
            .ok()
            .map(|i| self.verified[i].1)
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn health_round_trip_order_and_merge() {
        let id = |b: u8| Id([b; 32]);
        let h = Health {
            written_at: 10,
            verified: vec![(id(1), 5), (id(2), 4)],
            bad: vec![BadBlob {
                blob: id(9),
                pack: id(2),
                found_at: 6,
            }],
        };
        assert_eq!(Health::decode(&h.encode()).unwrap(), h);
        let mut b = h.encode();
        b.push(0);
        assert!(Health::decode(&b).is_err());
        let dis = Health {
            verified: vec![(id(2), 1), (id(1), 1)],
            ..Health::default()
        };
        assert!(Health::decode(&dis.encode()).is_err());
        // Pack 2 verified again after the bad blob was found there: the record clears.
        let later = Health {
            written_at: 20,
            verified: vec![(id(2), 8), (id(3), 8)],
            bad: vec![],
        };
        let m = h.merge(&later);
        assert_eq!(m.verified, vec![(id(1), 5), (id(2), 8), (id(3), 8)]);
        assert!(m.bad.is_empty());
        assert_eq!(m.written_at, 20);
        let m = h.merge(&Health::default());
        assert_eq!(m.bad.len(), 1);
        assert_eq!(m.verified_at(&id(2)), Some(4));
    }
}
