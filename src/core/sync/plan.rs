//! What a sync must fetch, and whether there is room for it. Pure.

use std::collections::BTreeMap;

use crate::core::feed::{Blob, Digest, Manifest};

/// Files to fetch for a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub fetch: Vec<Blob>,
    /// Bytes the new version needs in all.
    pub total: u64,
    /// Bytes still to fetch.
    pub to_fetch: u64,
}

/// Lists the files of `new` not yet in the cache.
pub fn plan(new: &Manifest, have: impl Fn(&Blob) -> bool) -> Plan {
    let blobs = new.blobs();
    let total = blobs.iter().map(|b| b.size).sum();
    let fetch: Vec<Blob> = blobs.into_iter().filter(|b| !have(b)).collect();
    let to_fetch = fetch.iter().map(|b| b.size).sum();
    Plan { fetch, total, to_fetch }
}

/// Why a version cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSpace {
    #[error("not enough space: version {version} needs {need} with the current version kept until the switch, over the cache budget of {budget}")]
    Budget { version: u64, need: bytesize::ByteSize, budget: bytesize::ByteSize },
    #[error("not enough disk: version {version} needs {need} more, the disk has {free} free")]
    Disk { version: u64, need: bytesize::ByteSize, free: bytesize::ByteSize },
}

/// The cache must hold the current version and the new one at the moment
/// of the switch; both must fit the budget and the download the disk.
pub fn check_space(current: Option<&Manifest>, new: &Manifest, plan: &Plan, budget: u64, free_disk: Option<u64>) -> Result<(), NoSpace> {
    let mut both: BTreeMap<Digest, u64> = BTreeMap::new();
    for b in current.map(Manifest::blobs).unwrap_or_default().into_iter().chain(new.blobs()) {
        both.insert(b.sha256, b.size);
    }
    let need: u64 = both.values().sum();
    if need > budget {
        return Err(NoSpace::Budget { version: new.version, need: bytesize::ByteSize(need), budget: bytesize::ByteSize(budget) });
    }
    if let Some(free) = free_disk
        && plan.to_fetch > free {
            return Err(NoSpace::Disk { version: new.version, need: bytesize::ByteSize(plan.to_fetch), free: bytesize::ByteSize(free) });
        }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::manifest::tests::sample;

    #[test]
    fn fetches_only_what_is_missing_and_checks_room() {
        let m = sample(5);
        let p = plan(&m, |b| b.size == 4);
        assert_eq!((p.fetch.len(), p.total, p.to_fetch), (1, 7, 3));
        assert_eq!(check_space(None, &m, &p, 7, Some(3)), Ok(()));
        assert!(matches!(check_space(None, &m, &p, 6, None), Err(NoSpace::Budget { .. })));
        assert!(matches!(check_space(None, &m, &p, 100, Some(2)), Err(NoSpace::Disk { .. })));
        let mut cur = sample(4);
        cur.media[0].sha256 = Digest::of(b"old");
        assert!(matches!(check_space(Some(&cur), &m, &p, 7, None), Err(NoSpace::Budget { .. })));
        assert_eq!(check_space(Some(&cur), &m, &p, 10, None), Ok(()));
    }
}
