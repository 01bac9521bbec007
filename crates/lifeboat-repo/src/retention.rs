//! Retention: which snapshots a policy keeps, and why.
//!
//! The policy is restic's, so operators who know `restic forget` get what they expect:
//!
//! - Snapshots are split into groups (by host and paths unless told otherwise), and each
//!   group is decided on its own: one host's schedule never thins out another's history.
//! - `last N` keeps the N newest snapshots. `hourly`, `daily`, `weekly`, `monthly` and
//!   `yearly N` walk the group from newest to oldest and keep the newest snapshot of each
//!   hour, day, ISO week (Monday to Sunday), month or year, until N such buckets have one.
//!   Buckets that hold no snapshot are not counted: `daily 7` keeps the last seven days *that
//!   have a backup*, so a host that was down for a week keeps seven days of history.
//! - When a bucket count is still not used up at the oldest snapshot of the group, that
//!   oldest snapshot is kept too ("oldest daily"): a young repository then keeps its first
//!   backup, the longest history the policy allows.
//! - `within D` keeps every snapshot newer than D before the newest snapshot of the group
//!   (not before now: a host whose backups stopped keeps its last D of history instead of
//!   losing it all once D has passed). Snapshots dated in the future (a clock that was wrong)
//!   are not used as that reference, so they cannot push the window forward.
//! - `tag T` keeps every snapshot carrying tag T.
//! - A snapshot is kept if any rule keeps it; every rule that does is given as a reason.
//!
//! Bucket boundaries are wall-clock boundaries in the time zone passed in (the command line
//! passes the local one): a backup at 00:30 belongs to the day it was taken on for the
//! operator reading the listing, not to the previous day in UTC.
//!
//! Everything here is pure: no I/O, no clock. Deleting what [`apply`] removes is the caller's
//! business.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use lifeboat_format::{Id, Snapshot};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A bucket count meaning "every bucket there is".
pub const UNLIMITED: u32 = u32::MAX;

/// What to keep. Counts of 0 are rules that are not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<Within>,
    /// Keep every snapshot that carries any one of these tags.
    pub tags: Vec<String>,
}

impl KeepPolicy {
    /// The documented operator default for control planes: a backup a day for a week, a
    /// week for a month, a month for half a year.
    pub fn defaults() -> KeepPolicy {
        KeepPolicy {
            daily: 7,
            weekly: 4,
            monthly: 6,
            ..KeepPolicy::default()
        }
    }

    /// This policy and the defaults together. A snapshot is kept when either keeps it, so for
    /// a count given in both the larger one is what both together keep.
    pub fn with_defaults(mut self) -> KeepPolicy {
        let d = KeepPolicy::defaults();
        self.daily = self.daily.max(d.daily);
        self.weekly = self.weekly.max(d.weekly);
        self.monthly = self.monthly.max(d.monthly);
        self
    }

    /// True when no rule keeps anything: applying it would remove every snapshot.
    pub fn is_empty(&self) -> bool {
        self.buckets().iter().all(|(_, n)| *n == 0) && self.within.is_none() && self.tags.is_empty()
    }

    fn buckets(&self) -> [(Bucket, u32); 6] {
        [
            (Bucket::Last, self.last),
            (Bucket::Hourly, self.hourly),
            (Bucket::Daily, self.daily),
            (Bucket::Weekly, self.weekly),
            (Bucket::Monthly, self.monthly),
            (Bucket::Yearly, self.yearly),
        ]
    }
}

/// For messages: "keep 2 last, 7 daily, within 7d, tag nightly".
impl fmt::Display for KeepPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .buckets()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(b, n)| match *n {
                UNLIMITED => format!("all {b}"),
                n => format!("{n} {b}"),
            })
            .collect();
        if let Some(w) = &self.within {
            parts.push(format!("within {w}"));
        }
        parts.extend(self.tags.iter().map(|t| format!("tag {t}")));
        if parts.is_empty() {
            f.write_str("keep nothing")
        } else {
            write!(f, "keep {}", parts.join(", "))
        }
    }
}

/// The kinds of bucket a count applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Every snapshot is a bucket of its own.
    Last,
    Hourly,
    Daily,
    /// ISO 8601 weeks: Monday to Sunday, numbered within the ISO week-numbering year.
    Weekly,
    Monthly,
    Yearly,
}

impl Bucket {
    /// A number that is equal for two times exactly when they fall into the same bucket.
    /// `position` tells snapshots apart for `Last`.
    fn key(self, t: &Zoned, position: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
        );
        match self {
            Bucket::Last => i64::try_from(position).unwrap_or(i64::MAX),
            Bucket::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
            Bucket::Daily => (y * 100 + m) * 100 + d,
            Bucket::Weekly => {
                let w = t.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Bucket::Monthly => y * 100 + m,
            Bucket::Yearly => y,
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bucket::Last => "last",
            Bucket::Hourly => "hourly",
            Bucket::Daily => "daily",
            Bucket::Weekly => "weekly",
            Bucket::Monthly => "monthly",
            Bucket::Yearly => "yearly",
        })
    }
}

/// Why a snapshot is kept. Shown as "daily 2" (the newest snapshot of the second most
/// recent day that has one), "oldest daily", "within 7d", "tag nightly".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The newest snapshot of the `n`th most recent bucket of this kind (1 = the newest).
    Bucket(Bucket, u32),
    /// The oldest snapshot of the group, kept because this bucket count was not used up.
    Oldest(Bucket),
    Within(Within),
    Tag(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Bucket(b, n) => write!(f, "{b} {n}"),
            Reason::Oldest(b) => write!(f, "oldest {b}"),
            Reason::Within(w) => write!(f, "within {w}"),
            Reason::Tag(t) => write!(f, "tag {t}"),
        }
    }
}

/// A calendar duration for `within`: `36h`, `7d`, `2w`, `1y2m`. Grammar: one or more
/// `<number><unit>` with units `y` (years), `m` (months), `w` (weeks), `d` (days) and `h`
/// (hours), each unit at most once, no spaces; the total must be more than zero.
///
/// Years, months, weeks and days are calendar units taken back from the reference on the
/// wall clock (a month before 31 March is 29 February in a leap year; a day is a calendar
/// day even across a daylight-saving change), then hours are taken back as elapsed time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Within {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
}

impl Within {
    fn parts(&self) -> [(u32, char); 5] {
        [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.weeks, 'w'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ]
    }

    fn calendar_span(&self) -> Result<Span, jiff::Error> {
        Span::new()
            .try_years(self.years)?
            .try_months(self.months)?
            .try_weeks(self.weeks)?
            .try_days(self.days)
    }

    /// The earliest time still inside the window that ends at `reference` (exclusive: a
    /// snapshot exactly `self` older than the reference is outside, as in restic). `None`
    /// when the window reaches back beyond the earliest time there is: everything is inside.
    pub fn cutoff(&self, reference: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let z = reference.to_zoned(tz.clone());
        let z = z.checked_sub(self.calendar_span().ok()?).ok()?;
        let z = z
            .checked_sub(Span::new().try_hours(self.hours).ok()?)
            .ok()?;
        Some(z.timestamp())
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in self.parts() {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Within {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{s:?} is not a duration: use numbers with the units y (years), m (months), \
                 w (weeks), d (days) and h (hours), e.g. 36h, 7d, 2w, 1y2m"
            )
        };
        let mut w = Within::default();
        let mut seen = Vec::new();
        let mut rest = s;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u32 = rest[..digits]
                .parse()
                .map_err(|_| format!("{s:?}: the number is too large"))?;
            let mut tail = rest[digits..].chars();
            let unit = tail.next().ok_or_else(bad)?;
            let slot = match unit {
                'y' => &mut w.years,
                'm' => &mut w.months,
                'w' => &mut w.weeks,
                'd' => &mut w.days,
                'h' => &mut w.hours,
                _ => return Err(bad()),
            };
            if seen.contains(&unit) {
                return Err(format!("{s:?}: the unit {unit} is given twice"));
            }
            seen.push(unit);
            *slot = n;
            rest = tail.as_str();
        }
        if w.parts().iter().all(|(n, _)| *n == 0) {
            return Err(format!("{s:?}: the duration must be more than zero"));
        }
        // Refuse here what the arithmetic later could not represent, so a policy that parses
        // always means what it says.
        if w.calendar_span().is_err() || Span::new().try_hours(w.hours).is_err() {
            return Err(format!("{s:?}: the duration is too long"));
        }
        Ok(w)
    }
}

/// Which snapshot fields split snapshots into groups that are decided separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub tags: bool,
    pub paths: bool,
}

impl Default for GroupBy {
    /// Host and paths: each host's backup of each set of paths keeps its own history.
    fn default() -> Self {
        GroupBy {
            host: true,
            tags: false,
            paths: true,
        }
    }
}

impl GroupBy {
    pub const NONE: GroupBy = GroupBy {
        host: false,
        tags: false,
        paths: false,
    };

    fn key(&self, s: &Snapshot) -> GroupKey {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        };
        GroupKey {
            host: self.host.then(|| s.hostname.clone()),
            tags: self.tags.then(|| sorted(&s.tags)),
            paths: self.paths.then(|| sorted(&s.paths)),
        }
    }
}

/// `host,tags,paths` or any subset, in any order; the empty string puts all snapshots into
/// one group.
impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut g = GroupBy::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" | "hosts" => g.host = true,
                "tags" | "tag" => g.tags = true,
                "paths" | "path" => g.paths = true,
                _ => {
                    return Err(format!(
                        "cannot group by {part:?}: use host, tags and paths separated by \
                         commas, or an empty string for one group"
                    ));
                }
            }
        }
        Ok(g)
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.host, "host"),
            (self.tags, "tags"),
            (self.paths, "paths"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        f.write_str(&parts.join(","))
    }
}

/// What the snapshots of one group have in common: the fields grouped by, the others `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub host: Option<String>,
    /// Sorted, without repeats.
    pub tags: Option<Vec<String>>,
    /// Sorted, without repeats.
    pub paths: Option<Vec<String>>,
}

/// "host ctrl1, paths /etc /var/lib/glance", or "all snapshots" when not grouped.
impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(t) = &self.tags {
            parts.push(if t.is_empty() {
                "no tags".to_string()
            } else {
                format!("tags {}", t.join(","))
            });
        }
        if let Some(p) = &self.paths {
            parts.push(if p.is_empty() {
                "no paths".to_string()
            } else {
                format!("paths {}", p.join(" "))
            });
        }
        if parts.is_empty() {
            f.write_str("all snapshots")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One snapshot and the reasons it is kept (none: it is removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: Id,
    pub snapshot: Snapshot,
    pub reasons: Vec<Reason>,
}

/// One group and what happens to each of its snapshots. Both lists are oldest first, as
/// `snapshots` lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: GroupKey,
    pub keep: Vec<Decision>,
    pub remove: Vec<Decision>,
}

/// [`apply`] was given a policy that keeps nothing. Forgetting everything must be asked for
/// by name ([`forget_all`]), never be the result of leaving the options out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyPolicy;

impl fmt::Display for EmptyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the retention policy keeps nothing")
    }
}

impl std::error::Error for EmptyPolicy {}

/// Applies `policy` to each group of `snapshots`. Bucket boundaries are in `tz`; `now` only
/// tells which snapshots are dated in the future (see the module documentation).
pub fn apply(
    snapshots: Vec<(Id, Snapshot)>,
    policy: &KeepPolicy,
    group_by: GroupBy,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<Vec<Group>, EmptyPolicy> {
    if policy.is_empty() {
        return Err(EmptyPolicy);
    }
    Ok(groups(snapshots, group_by)
        .into_iter()
        .map(|(key, list)| decide(key, list, policy, tz, now))
        .collect())
}

/// Every snapshot removed, in the same groups [`apply`] would make: what `--keep-none` asks
/// for.
pub fn forget_all(snapshots: Vec<(Id, Snapshot)>, group_by: GroupBy) -> Vec<Group> {
    groups(snapshots, group_by)
        .into_iter()
        .map(|(key, mut list)| {
            sort_oldest_first(&mut list);
            Group {
                key,
                keep: Vec::new(),
                remove: list
                    .into_iter()
                    .map(|(id, snapshot)| Decision {
                        id,
                        snapshot,
                        reasons: Vec::new(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn groups(
    snapshots: Vec<(Id, Snapshot)>,
    group_by: GroupBy,
) -> BTreeMap<GroupKey, Vec<(Id, Snapshot)>> {
    let mut groups: BTreeMap<GroupKey, Vec<(Id, Snapshot)>> = BTreeMap::new();
    for (id, s) in snapshots {
        groups.entry(group_by.key(&s)).or_default().push((id, s));
    }
    groups
}

/// Oldest first; equal times by id, so that every run decides the same way.
fn sort_oldest_first(list: &mut [(Id, Snapshot)]) {
    list.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
}

struct Counter {
    bucket: Bucket,
    limit: u32,
    used: u32,
    last: Option<i64>,
}

fn decide(
    key: GroupKey,
    mut list: Vec<(Id, Snapshot)>,
    policy: &KeepPolicy,
    tz: &TimeZone,
    now: Timestamp,
) -> Group {
    sort_oldest_first(&mut list);
    list.reverse();
    let reference = list
        .iter()
        .map(|(_, s)| s.time)
        .find(|t| *t <= now)
        .or_else(|| list.first().map(|(_, s)| s.time));
    // Outer None: no `within` rule. Inner None: the window covers everything.
    let cutoff = policy
        .within
        .zip(reference)
        .map(|(w, r)| (w, w.cutoff(r, tz)));
    let mut counters: Vec<Counter> = policy
        .buckets()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|&(bucket, limit)| Counter {
            bucket,
            limit,
            used: 0,
            last: None,
        })
        .collect();
    let mut tags = policy.tags.clone();
    tags.sort();
    tags.dedup();

    let n = list.len();
    let mut group = Group {
        key,
        keep: Vec::new(),
        remove: Vec::new(),
    };
    for (position, (id, snapshot)) in list.into_iter().enumerate() {
        let mut reasons = Vec::new();
        let local = snapshot.time.to_zoned(tz.clone());
        for c in counters.iter_mut().filter(|c| c.used < c.limit) {
            let k = c.bucket.key(&local, position);
            if c.last != Some(k) {
                c.last = Some(k);
                c.used = c.used.saturating_add(1);
                reasons.push(Reason::Bucket(c.bucket, c.used));
            } else if position + 1 == n {
                reasons.push(Reason::Oldest(c.bucket));
            }
        }
        if let Some((w, c)) = cutoff
            && c.is_none_or(|c| snapshot.time > c)
        {
            reasons.push(Reason::Within(w));
        }
        for t in &tags {
            if snapshot.tags.contains(t) {
                reasons.push(Reason::Tag(t.clone()));
            }
        }
        let d = Decision {
            id,
            snapshot,
            reasons,
        };
        if d.reasons.is_empty() {
            group.remove.push(d);
        } else {
            group.keep.push(d);
        }
    }
    group.keep.reverse();
    group.remove.reverse();
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Built from its JSON form, so that fields added to snapshots later (with serde
    /// defaults) do not touch these tests.
    fn snap(time: &str, host: &str, tags: &[&str]) -> Snapshot {
        let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
        let json = format!(
            r#"{{"version":1,"time":"{time}","time_end":"{time}","hostname":"{host}",
               "username":"root","paths":["/etc"],"tags":[{}],"tree":"{}",
               "program_version":"test"}}"#,
            tags.join(","),
            Id::default().to_hex()
        );
        Snapshot::decode(json.as_bytes()).expect("test snapshot")
    }

    fn entries(times: &[&str]) -> Vec<(Id, Snapshot)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (Id([i as u8; 32]), snap(t, "h", &[])))
            .collect()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn now() -> Timestamp {
        "2100-01-01T00:00:00Z".parse().expect("now")
    }

    /// Kept times with their reasons, oldest first, for one group.
    fn kept(g: &Group) -> Vec<(String, Vec<String>)> {
        g.keep
            .iter()
            .map(|d| {
                (
                    d.snapshot.time.to_string(),
                    d.reasons.iter().map(|r| r.to_string()).collect(),
                )
            })
            .collect()
    }

    fn run(times: &[&str], p: &KeepPolicy, tz: &TimeZone) -> Group {
        let mut g = apply(entries(times), p, GroupBy::default(), tz, now()).expect("policy");
        assert_eq!(g.len(), 1);
        g.remove(0)
    }

    #[test]
    fn daily_keeps_newest_of_each_recent_day() {
        let times = [
            "2024-03-01T10:00:00Z",
            "2024-03-02T08:00:00Z",
            "2024-03-02T20:00:00Z",
            "2024-03-03T01:00:00Z",
            "2024-03-03T23:00:00Z",
        ];
        let p = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        let g = run(&times, &p, &utc());
        assert_eq!(
            kept(&g),
            vec![
                ("2024-03-02T20:00:00Z".into(), vec!["daily 2".into()]),
                ("2024-03-03T23:00:00Z".into(), vec!["daily 1".into()]),
            ]
        );
        assert_eq!(g.remove.len(), 3);
    }

    #[test]
    fn days_are_local_days() {
        // 20:00 UTC on the 1st and 02:00 UTC on the 2nd are both the 2nd at UTC+10.
        let times = [
            "2024-01-01T10:00:00Z",
            "2024-01-01T20:00:00Z",
            "2024-01-02T02:00:00Z",
        ];
        let p = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        let g = run(&times, &p, &utc());
        assert_eq!(g.keep.len(), 2);
        assert_eq!(g.keep[0].snapshot.time.to_string(), "2024-01-01T20:00:00Z");
        let plus10 = TimeZone::fixed(jiff::tz::offset(10));
        let g = run(&times, &p, &plus10);
        assert_eq!(
            kept(&g),
            vec![
                ("2024-01-01T10:00:00Z".into(), vec!["daily 2".into()]),
                ("2024-01-02T02:00:00Z".into(), vec!["daily 1".into()]),
            ]
        );
    }

    #[test]
    fn weeks_are_iso_weeks() {
        // Sunday 2024-12-29 is in 2024-W52; Monday 2024-12-30 starts 2025-W01.
        let times = [
            "2024-12-28T12:00:00Z",
            "2024-12-29T12:00:00Z",
            "2024-12-30T12:00:00Z",
            "2024-12-31T12:00:00Z",
        ];
        let p = KeepPolicy {
            weekly: 2,
            ..Default::default()
        };
        let g = run(&times, &p, &utc());
        assert_eq!(
            kept(&g),
            vec![
                ("2024-12-29T12:00:00Z".into(), vec!["weekly 2".into()]),
                ("2024-12-31T12:00:00Z".into(), vec!["weekly 1".into()]),
            ]
        );
    }

    #[test]
    fn unused_counts_keep_the_oldest() {
        let times = [
            "2024-03-01T10:00:00Z",
            "2024-03-01T11:00:00Z",
            "2024-03-02T10:00:00Z",
        ];
        let p = KeepPolicy {
            daily: 7,
            ..Default::default()
        };
        let g = run(&times, &p, &utc());
        assert_eq!(
            kept(&g),
            vec![
                ("2024-03-01T10:00:00Z".into(), vec!["oldest daily".into()]),
                ("2024-03-01T11:00:00Z".into(), vec!["daily 2".into()]),
                ("2024-03-02T10:00:00Z".into(), vec!["daily 1".into()]),
            ]
        );
    }

    #[test]
    fn within_counts_back_from_the_newest_not_from_now() {
        let times = [
            "2020-01-01T00:00:00Z",
            "2020-01-05T00:00:00Z",
            "2020-01-06T00:00:00Z",
            "2020-01-08T00:00:00Z",
            // A snapshot from a wrong clock does not move the window.
            "2099-01-01T00:00:00Z",
        ];
        let p = KeepPolicy {
            within: Some("3d".parse().expect("duration")),
            ..Default::default()
        };
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().expect("now");
        let mut g = apply(entries(&times), &p, GroupBy::default(), &utc(), now).expect("policy");
        let g = g.remove(0);
        let kept: Vec<String> = g.keep.iter().map(|d| d.snapshot.time.to_string()).collect();
        // Exactly 3 days before the reference is outside.
        assert_eq!(
            kept,
            [
                "2020-01-06T00:00:00Z",
                "2020-01-08T00:00:00Z",
                "2099-01-01T00:00:00Z"
            ]
        );
        assert_eq!(
            g.keep[0].reasons,
            vec![Reason::Within(p.within.expect("w"))]
        );
    }

    #[test]
    fn tags_and_several_reasons() {
        let list = vec![
            (Id([1; 32]), snap("2024-01-01T00:00:00Z", "h", &["nightly"])),
            (Id([2; 32]), snap("2024-01-02T00:00:00Z", "h", &[])),
            (Id([3; 32]), snap("2024-01-03T00:00:00Z", "h", &["nightly"])),
        ];
        let p = KeepPolicy {
            last: 1,
            tags: vec!["nightly".into(), "nightly".into()],
            ..Default::default()
        };
        let g = apply(list, &p, GroupBy::default(), &utc(), now()).expect("policy");
        assert_eq!(
            kept(&g[0]),
            vec![
                ("2024-01-01T00:00:00Z".into(), vec!["tag nightly".into()]),
                (
                    "2024-01-03T00:00:00Z".into(),
                    vec!["last 1".into(), "tag nightly".into()]
                ),
            ]
        );
        assert_eq!(g[0].remove[0].id, Id([2; 32]));
    }

    #[test]
    fn groups_are_decided_apart() {
        let list = vec![
            (Id([1; 32]), snap("2024-01-01T00:00:00Z", "a", &[])),
            (Id([2; 32]), snap("2024-01-02T00:00:00Z", "a", &[])),
            (Id([3; 32]), snap("2024-01-01T00:00:00Z", "b", &[])),
        ];
        let p = KeepPolicy {
            last: 1,
            ..Default::default()
        };
        let g = apply(list.clone(), &p, GroupBy::default(), &utc(), now()).expect("policy");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key.host.as_deref(), Some("a"));
        assert_eq!(g[0].keep[0].id, Id([2; 32]));
        assert_eq!(g[1].keep[0].id, Id([3; 32]));
        assert_eq!(g[0].key.to_string(), "host a, paths /etc");
        let one = apply(list, &p, GroupBy::NONE, &utc(), now()).expect("policy");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].key.to_string(), "all snapshots");
        assert_eq!(one[0].keep.len(), 1);
    }

    #[test]
    fn empty_policy_is_refused_and_forget_all_is_explicit() {
        let list = entries(&["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]);
        let p = KeepPolicy {
            daily: 0,
            ..Default::default()
        };
        assert_eq!(
            apply(list.clone(), &p, GroupBy::default(), &utc(), now()),
            Err(EmptyPolicy)
        );
        let g = forget_all(list, GroupBy::default());
        assert_eq!(g[0].remove.len(), 2);
        assert!(g[0].keep.is_empty());
    }

    #[test]
    fn defaults_and_display() {
        let p = KeepPolicy {
            daily: 14,
            last: 1,
            ..Default::default()
        }
        .with_defaults();
        assert_eq!(p.to_string(), "keep 1 last, 14 daily, 4 weekly, 6 monthly");
        assert_eq!(
            KeepPolicy::defaults().to_string(),
            "keep 7 daily, 4 weekly, 6 monthly"
        );
        let p = KeepPolicy {
            yearly: UNLIMITED,
            ..Default::default()
        };
        assert_eq!(p.to_string(), "keep all yearly");
    }

    #[test]
    fn durations() {
        let w: Within = "1y2m".parse().expect("1y2m");
        assert_eq!((w.years, w.months), (1, 2));
        assert_eq!(w.to_string(), "1y2m");
        for s in ["36h", "7d", "2w", "1y2m3w4d5h"] {
            assert_eq!(
                s.parse::<Within>().map(|w| w.to_string()),
                Ok(s.to_string())
            );
        }
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "1d1d",
            "0d",
            "7 d",
            "-1d",
            "99999999999d",
            "30000y",
        ] {
            assert!(bad.parse::<Within>().is_err(), "{bad:?}");
        }
        // Calendar units on the wall clock, hours as elapsed time.
        let w: Within = "1m1h".parse().expect("1m1h");
        let r: Timestamp = "2024-03-31T12:00:00Z".parse().expect("t");
        assert_eq!(
            w.cutoff(r, &utc()).map(|t| t.to_string()),
            Some("2024-02-29T11:00:00Z".to_string())
        );
    }

    #[test]
    fn group_by_parsing() {
        assert_eq!("".parse::<GroupBy>(), Ok(GroupBy::NONE));
        assert_eq!("host,paths".parse::<GroupBy>(), Ok(GroupBy::default()));
        let all: GroupBy = "paths, tags,host".parse().expect("all");
        assert_eq!(all.to_string(), "host,tags,paths");
        assert!("hostname".parse::<GroupBy>().is_err());
    }

    fn arb_entries() -> impl Strategy<Value = Vec<(Id, Snapshot)>> {
        // Up to 60 snapshots over about three years, on two hosts, some tagged.
        proptest::collection::vec((0i64..100_000_000, 0u8..2, any::<bool>()), 0..60).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (secs, host, tagged))| {
                    let t = Timestamp::from_second(1_600_000_000 + secs).unwrap_or_default();
                    let mut s = snap("2020-01-01T00:00:00Z", ["a", "b"][host as usize], &[]);
                    s.time = t;
                    if tagged {
                        s.tags.push("x".into());
                    }
                    let mut id = [0u8; 32];
                    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    (Id(id), s)
                })
                .collect()
        })
    }

    fn arb_policy() -> impl Strategy<Value = KeepPolicy> {
        (
            proptest::collection::vec(0u32..5, 6),
            proptest::option::of((0u32..3, 0u32..30)),
            any::<bool>(),
        )
            .prop_map(|(c, within, tag)| KeepPolicy {
                last: c[0],
                hourly: c[1],
                daily: c[2],
                weekly: c[3],
                monthly: c[4],
                yearly: c[5],
                within: within
                    .filter(|(m, d)| m + d > 0)
                    .map(|(months, days)| Within {
                        months,
                        days,
                        ..Default::default()
                    }),
                tags: if tag { vec!["x".into()] } else { vec![] },
            })
    }

    fn ids(groups: &[Group], keep: bool) -> Vec<Id> {
        let mut v: Vec<Id> = groups
            .iter()
            .flat_map(|g| if keep { &g.keep } else { &g.remove })
            .map(|d| d.id)
            .collect();
        v.sort();
        v
    }

    proptest! {
        #[test]
        fn every_snapshot_is_kept_or_removed_once(list in arb_entries(), p in arb_policy()) {
            prop_assume!(!p.is_empty());
            let groups =
                apply(list.clone(), &p, GroupBy::default(), &utc(), now()).expect("policy");
            let mut all = ids(&groups, true);
            all.extend(ids(&groups, false));
            all.sort();
            let mut want: Vec<Id> = list.iter().map(|(id, _)| *id).collect();
            want.sort();
            prop_assert_eq!(all, want);
            for g in &groups {
                prop_assert!(g.keep.iter().all(|d| !d.reasons.is_empty()));
                prop_assert!(g.remove.iter().all(|d| d.reasons.is_empty()));
            }
        }

        #[test]
        fn keep_last_keeps_exactly_min_n(list in arb_entries(), n in 1u32..10) {
            let p = KeepPolicy { last: n, ..Default::default() };
            for g in apply(list, &p, GroupBy::default(), &utc(), now()).expect("policy") {
                let total = g.keep.len() + g.remove.len();
                prop_assert_eq!(g.keep.len(), total.min(n as usize));
                // And they are the newest ones.
                if let (Some(oldest_kept), Some(newest_removed)) =
                    (g.keep.first(), g.remove.last())
                {
                    prop_assert!(oldest_kept.snapshot.time >= newest_removed.snapshot.time);
                }
            }
        }

        #[test]
        fn newest_of_a_group_is_never_removed(list in arb_entries(), p in arb_policy()) {
            let counts = p.last + p.hourly + p.daily + p.weekly + p.monthly + p.yearly;
            prop_assume!(counts > 0 || p.within.is_some());
            for g in apply(list, &p, GroupBy::default(), &utc(), now()).expect("policy") {
                let newest = g.keep.iter().chain(&g.remove).map(|d| d.snapshot.time).max();
                prop_assert_eq!(g.keep.last().map(|d| d.snapshot.time), newest);
            }
        }

        #[test]
        fn applying_twice_removes_nothing_more(list in arb_entries(), p in arb_policy()) {
            prop_assume!(!p.is_empty());
            let first = apply(list.clone(), &p, GroupBy::default(), &utc(), now()).expect("policy");
            let kept = ids(&first, true);
            let rest: Vec<_> = list.into_iter().filter(|(id, _)| kept.contains(id)).collect();
            let second = apply(rest, &p, GroupBy::default(), &utc(), now()).expect("policy");
            prop_assert!(ids(&second, false).is_empty());
        }

        #[test]
        fn daily_matches_a_direct_model(list in arb_entries(), n in 1u32..6) {
            // The newest snapshot of each of the n most recent days that have one, plus the
            // oldest snapshot when there are fewer than n such days.
            let mut sorted = list.clone();
            sort_oldest_first(&mut sorted);
            let mut want: Vec<Id> = Vec::new();
            let mut days = Vec::new();
            for (id, s) in sorted.iter().rev() {
                let day = s.time.to_zoned(utc()).date();
                if !days.contains(&day) && days.len() < n as usize {
                    days.push(day);
                    want.push(*id);
                }
            }
            if days.len() < n as usize
                && let Some((oldest, _)) = sorted.first()
                && !want.contains(oldest)
            {
                want.push(*oldest);
            }
            want.sort();
            let p = KeepPolicy { daily: n, ..Default::default() };
            let got = apply(list, &p, GroupBy::NONE, &utc(), now()).expect("policy");
            prop_assert_eq!(ids(&got, true), want);
        }
    }
}
