//! What a sync will do, decided before it does anything: a list of
//! [`Op`]s that tests compare for equality, carried out by `net::sync`
//! through the cache's writer. Pure: it sees the cache only as a [`Local`]
//! snapshot.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::feed::{Blob, Digest, Manifest};

/// The cache as a plan sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Local {
    /// The version on screen.
    pub current: Option<Manifest>,
    /// The verified files held (digest → size).
    pub blobs: BTreeMap<Digest, u64>,
    /// The partial downloads held (digest → bytes so far).
    pub partial: BTreeMap<Digest, u64>,
    /// Bytes held besides them (the alert store and its audio), which count
    /// against the budget too.
    pub other_bytes: u64,
    /// Free bytes on the disk (None: unknown).
    pub free: Option<u64>,
    /// Files another sync is downloading meanwhile (a USB import beside an
    /// HTTP download): never collected, and no collection after the switch
    /// (that sync collects after its own). None: no other download.
    pub downloading: Option<BTreeSet<Digest>>,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Remove every file of `blobs/` and `partial/` not named in `keep`
    /// (to make room before a download).
    Collect { keep: BTreeSet<Digest> },
    /// After the switch: remove the files neither the current version nor
    /// the one before it lists, as the cache names them at that moment (a
    /// USB import may have switched meanwhile), unless another sync is
    /// downloading then (it collects after its own switch).
    CollectOld,
    /// Bring this file into the cache, verified against its digest.
    Fetch(Blob),
    /// Make this version current (the cache refuses unless every file is in).
    Commit { version: u64 },
}

/// Why a version cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSpace {
    #[error("not enough space: version {version} needs {need} with the current version kept until the switch, over the cache budget of {budget}")]
    Budget { version: u64, need: bytesize::ByteSize, budget: bytesize::ByteSize },
    #[error("not enough disk: version {version} needs {need} more, the disk has {free} free")]
    Disk { version: u64, need: bytesize::ByteSize, free: bytesize::ByteSize },
}

impl Local {
    fn has(&self, b: &Blob) -> bool {
        self.blobs.get(&b.sha256) == Some(&b.size)
    }

    fn used(&self) -> u64 {
        self.blobs.values().sum::<u64>() + self.partial.values().sum::<u64>() + self.other_bytes
    }
}

/// The steps that bring the cache to `new` (a verified manifest newer than
/// the current one), or with `new` None, that fetch again what the current
/// version lost (its files found damaged and removed). Empty: nothing to do.
///
/// Room comes first: when the new files do not fit the budget or the disk,
/// the files of versions other than the current and the new one go before
/// any download (the player reads only the current one). After the switch
/// the cache keeps two versions, the new and the one before it.
pub fn plan(local: &Local, new: Option<&Manifest>, budget: u64) -> Result<Vec<Op>, NoSpace> {
    let Some(target) = new.or(local.current.as_ref()) else { return Ok(Vec::new()) };
    let fetch: Vec<Blob> = target.blobs().into_iter().filter(|b| !local.has(b)).collect();
    if new.is_none() && fetch.is_empty() {
        return Ok(Vec::new());
    }
    let to_fetch: u64 = fetch.iter().map(|b| b.size).sum();
    let current = local.current.as_ref();
    let mut ops = Vec::new();
    let mut free = local.free;
    if check_space(current, target, to_fetch, budget, free).is_err() || local.used() + to_fetch > budget {
        let mut keep = versions(current, target);
        keep.extend(local.downloading.iter().flatten());
        let freed: u64 = local.blobs.iter().chain(&local.partial).filter(|(d, _)| !keep.contains(d)).map(|(_, n)| n).sum();
        free = free.map(|f| f.saturating_add(freed));
        ops.push(Op::Collect { keep });
    }
    check_space(current, target, to_fetch, budget, free)?;
    ops.extend(fetch.into_iter().map(Op::Fetch));
    if let Some(new) = new {
        ops.push(Op::Commit { version: new.version });
        if local.downloading.is_none() {
            ops.push(Op::CollectOld);
        }
    }
    Ok(ops)
}

/// The digests of both versions' files.
fn versions(a: Option<&Manifest>, b: &Manifest) -> BTreeSet<Digest> {
    a.into_iter().chain([b]).flat_map(Manifest::blobs).map(|b| b.sha256).collect()
}

/// The cache must hold the current version and the new one at the moment
/// of the switch; both must fit the budget, and what is still to fetch
/// (`to_fetch` bytes) the disk.
pub fn check_space(current: Option<&Manifest>, new: &Manifest, to_fetch: u64, budget: u64, free_disk: Option<u64>) -> Result<(), NoSpace> {
    let mut both: BTreeMap<Digest, u64> = BTreeMap::new();
    for b in current.map(Manifest::blobs).unwrap_or_default().into_iter().chain(new.blobs()) {
        both.insert(b.sha256, b.size);
    }
    let need: u64 = both.values().sum();
    if need > budget {
        return Err(NoSpace::Budget { version: new.version, need: bytesize::ByteSize(need), budget: bytesize::ByteSize(budget) });
    }
    if let Some(free) = free_disk
        && to_fetch > free
    {
        return Err(NoSpace::Disk { version: new.version, need: bytesize::ByteSize(to_fetch), free: bytesize::ByteSize(free) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::manifest::tests::sample;

    /// A cache holding `m`'s files (whole) and `extra` other blobs.
    fn holding(m: Option<&Manifest>, extra: &[(&[u8], u64)]) -> Local {
        let mut blobs: BTreeMap<Digest, u64> = m.into_iter().flat_map(Manifest::blobs).map(|b| (b.sha256, b.size)).collect();
        blobs.extend(extra.iter().map(|(name, n)| (Digest::of(name), *n)));
        Local { current: m.cloned(), blobs, ..Local::default() }
    }

    fn keep(ms: &[&Manifest]) -> BTreeSet<Digest> {
        ms.iter().flat_map(|m| m.blobs()).map(|b| b.sha256).collect()
    }

    #[test]
    fn nothing_new_and_nothing_lost_is_nothing_to_do() {
        let m = sample(5);
        assert_eq!(plan(&holding(Some(&m), &[]), None, 100), Ok(vec![]));
        assert_eq!(plan(&Local::default(), None, 100), Ok(vec![]), "no version at all");
    }

    #[test]
    fn a_new_version_fetches_what_is_missing_then_switches_and_keeps_two_versions() {
        let (v5, mut v6) = (sample(5), sample(6));
        v6.media[0].sha256 = Digest::of(b"new picture");
        let local = holding(Some(&v5), &[(b"stray", 1)]);
        let ops = plan(&local, Some(&v6), 100).unwrap();
        let new_picture = v6.blobs().into_iter().find(|b| b.sha256 == Digest::of(b"new picture")).unwrap();
        assert_eq!(ops, vec![Op::Fetch(new_picture), Op::Commit { version: 6 }, Op::CollectOld]);
    }

    #[test]
    fn a_lost_file_of_the_current_version_is_fetched_again_without_a_switch() {
        let v5 = sample(5);
        let mut local = holding(Some(&v5), &[]);
        let lost = v5.blobs()[0].clone();
        local.blobs.remove(&lost.sha256);
        assert_eq!(plan(&local, None, 100), Ok(vec![Op::Fetch(lost.clone())]));
        // A file of the right name but the wrong size is not had either.
        local.blobs.insert(lost.sha256, lost.size + 1);
        assert_eq!(plan(&local, None, 100), Ok(vec![Op::Fetch(lost)]));
    }

    #[test]
    fn room_is_made_before_the_download_and_never_from_either_version() {
        let (v5, mut v6) = (sample(5), sample(6));
        v6.media[0].sha256 = Digest::of(b"new picture");
        // v5 (7 bytes) + v6's new 3 bytes = 10 fit a budget of 10, but not
        // beside 5 bytes of an older version.
        let local = holding(Some(&v5), &[(b"old", 5)]);
        let ops = plan(&local, Some(&v6), 10).unwrap();
        assert_eq!(ops[0], Op::Collect { keep: keep(&[&v5, &v6]) });
        assert!(matches!(ops[1], Op::Fetch(_)));
        // Nothing to take: both versions alone are over the budget.
        assert!(matches!(plan(&local, Some(&v6), 9), Err(NoSpace::Budget { version: 6, .. })));
        // The disk: what collecting frees counts.
        let tight = Local { free: Some(1), ..local.clone() };
        assert!(matches!(plan(&tight, Some(&v6), 100), Ok(ref ops) if ops[0] == Op::Collect { keep: keep(&[&v5, &v6]) }), "5 freed make room for 3");
        let full = Local { free: Some(0), blobs: holding(Some(&v5), &[]).blobs, ..local };
        assert!(matches!(plan(&full, Some(&v6), 100), Err(NoSpace::Disk { version: 6, .. })));
    }

    #[test]
    fn partial_downloads_count_against_the_budget_and_collecting_frees_them() {
        let (v5, mut v6) = (sample(5), sample(6));
        v6.media[0].sha256 = Digest::of(b"new picture");
        let mut local = holding(Some(&v5), &[]);
        local.partial.insert(Digest::of(b"abandoned"), 5);
        local.free = Some(4);
        // 7 + 5 held, 3 to fetch: over a budget of 10 until the abandoned
        // download goes; and the disk has room only once it has.
        let ops = plan(&local, Some(&v6), 10).unwrap();
        assert_eq!(ops[0], Op::Collect { keep: keep(&[&v5, &v6]) });
        local.free = Some(0);
        assert!(matches!(plan(&local, Some(&v6), 10), Ok(ref ops) if ops[0] == Op::Collect { keep: keep(&[&v5, &v6]) }), "its 5 bytes make room for 3");
    }

    #[test]
    fn an_import_beside_another_download_keeps_its_files_and_leaves_collecting_to_it() {
        let (v5, mut v6) = (sample(5), sample(6));
        v6.media[0].sha256 = Digest::of(b"new picture");
        let theirs: BTreeSet<Digest> = [Digest::of(b"theirs")].into();
        let local = Local { downloading: Some(theirs.clone()), ..holding(Some(&v5), &[(b"theirs", 5)]) };
        let ops = plan(&local, Some(&v6), 10).unwrap();
        let mut kept = keep(&[&v5, &v6]);
        kept.extend(theirs);
        assert_eq!(ops.first(), Some(&Op::Collect { keep: kept }));
        assert_eq!(ops.last(), Some(&Op::Commit { version: 6 }), "no collection after the switch");
    }

    #[test]
    fn room_checks() {
        let m = sample(5);
        assert_eq!(check_space(None, &m, 3, 7, Some(3)), Ok(()));
        assert!(matches!(check_space(None, &m, 3, 6, None), Err(NoSpace::Budget { .. })));
        assert!(matches!(check_space(None, &m, 3, 100, Some(2)), Err(NoSpace::Disk { .. })));
        let mut cur = sample(4);
        cur.media[0].sha256 = Digest::of(b"old");
        assert!(matches!(check_space(Some(&cur), &m, 3, 7, None), Err(NoSpace::Budget { .. })));
        assert_eq!(check_space(Some(&cur), &m, 3, 10, None), Ok(()));
    }
}
