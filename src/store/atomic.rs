//! Crash-safe file writes: a temp file in the same folder, fsync, rename,
//! fsync the folder. After a power cut a reader sees the old file or the
//! new one, never a mix.

use std::io::{Read, Write};

use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Copies `from` to `to` atomically if what was copied hashes to `expected`,
/// hashing as it copies into the temp file; returns the digest and length of
/// what was read. On a different digest the temp file is removed and `to`
/// is left as it was (content-addressed files are named by their digest, so
/// a wrong one must never appear under the name, even for a moment).
pub fn copy_verified(from: &mut impl Read, to: &Path, expected: &crate::core::feed::Digest) -> std::io::Result<(crate::core::feed::Digest, u64)> {
    let dir = parent(to);
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    let (digest, len) = crate::core::feed::Digest::copy(from, &mut tmp)?;
    if digest != *expected {
        return Ok((digest, len));
    }
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok((digest, len))
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use crate::core::feed::Digest;

    #[test]
    fn a_copy_with_the_wrong_digest_never_lands_under_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, b"old").unwrap();
        let (d, n) = super::copy_verified(&mut &b"new"[..], &p, &Digest::of(b"other")).unwrap();
        assert_eq!((d, n), (Digest::of(b"new"), 3));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temp file is gone");
        super::copy_verified(&mut &b"new"[..], &p, &Digest::of(b"new")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
