//! The proof-of-play log on disk: what the player really showed
//! ([`crate::core::proof`]), kept until the central service has it and
//! for `estation report` (a screen with no network is read by USB).
//!
//! A folder beside the cache (`/var/lib/estation/proof`), written only by
//! the player, which holds its lock:
//! - `stream`: a random id made when the folder is first used. Records are
//!   numbered from 1 in it, so `(screen, stream, seq)` names each one for
//!   good, even after the folder is deleted and started afresh.
//! - `NNNNNNNNNNNNNNNNNNNN.log`: segments, named by the first number in them.
//!   A new one starts at [`SEGMENT_BYTES`] or after [`SEGMENT_AGE`]; the oldest
//!   go past [`KEEP_BYTES`] in all or [`KEEP_AGE`] of age, acknowledged or not
//!   (a kiosk's disk is never filled for a service that never answers).
//! - `acked.json`: the last number the service stored, written by the
//!   uploader.
//!
//! Each record is one frame: a magic that JSON text never contains (it has
//! a NUL), the length, a CRC-32 and the record as JSON, written with one
//! `write` and made durable with `fdatasync` before the next. So after
//! `kill -9` or a power cut the log reads back whole up to at most the
//! record being written; a torn tail is cut when the player opens the log
//! again, and a damaged frame inside (a bad block) is skipped, the frames
//! after it kept.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::proof::{Entry, Record};

/// Starts every frame.
const MAGIC: [u8; 4] = [0, b'E', b'P', 1];
/// Magic, length, CRC.
const HEADER: usize = 12;
/// Longest record (the ids in it are cut to 256 bytes each).
const MAX_RECORD: usize = 16 * 1024;
/// A segment this large is closed and a new one started.
pub const SEGMENT_BYTES: u64 = 1024 * 1024;
/// A segment whose first record is this old is closed likewise.
pub const SEGMENT_AGE: chrono::Duration = chrono::Duration::days(1);
/// The most the log keeps on disk.
pub const KEEP_BYTES: u64 = 64 * 1024 * 1024;
/// How long a segment is kept after its last record.
pub const KEEP_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

const STREAM_FILE: &str = "stream";
const ACKED_FILE: &str = "acked.json";
const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}: another player is writing this proof-of-play log")]
    Busy(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a stream id (32 hex digits); move the folder away to start a new log")]
    Stream(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

/// The log's folder for the cache at `cache_dir`: beside it.
pub fn dir_for(cache_dir: &Path) -> PathBuf {
    cache_dir.with_file_name("proof")
}

/// One record as a frame.
pub fn frame(record: &Record) -> Vec<u8> {
    // A record of strings, numbers and times always serializes.
    let body = serde_json::to_vec(record).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// What a segment's bytes hold.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Where the last whole frame ends: what follows is a torn tail.
    pub end: usize,
    /// Bytes of damaged frames skipped before `end`.
    pub skipped: usize,
}

/// The frame at `at`, and where it ends; None when there is no whole,
/// intact frame there.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let head = bytes.get(at..at + HEADER)?;
    if head[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[8..12].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let body = bytes.get(at + HEADER..at + HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((serde_json::from_slice(body).ok()?, at + HEADER + len))
}

/// Reads the frames of one segment, skipping damaged ones.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut at = 0;
    while at < bytes.len() {
        if let Some((r, next)) = frame_at(bytes, at) {
            d.records.push(r);
            at = next;
            d.end = next;
            continue;
        }
        // Damage or the tail: it is damage if an intact frame follows.
        let found = (at + 1..bytes.len()).filter(|&i| bytes[i] == MAGIC[0]).find_map(|i| frame_at(bytes, i).map(|f| (i, f)));
        match found {
            Some((i, (r, next))) => {
                d.skipped += i - at;
                d.records.push(r);
                at = next;
                d.end = next;
            }
            None => break,
        }
    }
    d
}

/// The segments in `dir`, oldest first, with the first number in each.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(LogError::Io { path: dir.to_path_buf(), source: e }),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(first) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse::<u64>().ok()) else { continue };
        out.push((first, e.path()));
    }
    out.sort();
    Ok(out)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// The log's stream id, None when the log was never started.
pub fn stream(dir: &Path) -> Result<Option<String>, LogError> {
    let path = dir.join(STREAM_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim().to_string();
            if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) { Ok(Some(s)) } else { Err(LogError::Stream(path)) }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::Io { path, source: e }),
    }
}

/// The player's writer of the log (holds its lock).
pub struct Log {
    dir: PathBuf,
    file: File,
    /// The first number in the open segment, its size, and its first
    /// record's time.
    first: u64,
    size: u64,
    opened: Option<DateTime<Utc>>,
    next: u64,
    _lock: File,
}

impl Log {
    /// Opens the log in `dir` (made if missing), cutting a torn tail.
    pub fn open(dir: &Path) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(LogError::Busy(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(source)) => return Err(LogError::Io { path: lock_path, source }),
        }
        if stream(dir)?.is_none() {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(|e| LogError::Io { path: dir.join(STREAM_FILE), source: std::io::Error::other(e.to_string()) })?;
            let path = dir.join(STREAM_FILE);
            crate::store::atomic::write(&path, format!("{}\n", hex::encode(id)).as_bytes()).map_err(io(&path))?;
        }
        let (first, path) = match segments(dir)?.pop() {
            Some(s) => s,
            None => (1, segment_path(dir, 1)),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::Io { path, source: e }),
        };
        let d = decode(&bytes);
        if d.end < bytes.len() {
            tracing::warn!("{}: cut a torn record of {} bytes at its end (written when the player stopped)", path.display(), bytes.len() - d.end);
        }
        if d.skipped > 0 {
            tracing::warn!("{}: skipped {} damaged bytes", path.display(), d.skipped);
        }
        let file = File::options().create(true).append(true).open(&path).map_err(io(&path))?;
        file.set_len(d.end as u64).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        crate::store::atomic::sync_dir(dir).map_err(io(dir))?;
        let next = d.records.last().map_or(first, |r| r.seq + 1);
        let opened = d.records.first().map(|r| r.entry.end);
        Ok(Log { dir: dir.to_path_buf(), file, first, size: d.end as u64, opened, next, _lock: lock })
    }

    /// The number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Appends `entry` durably and returns its number.
    pub fn append(&mut self, entry: Entry) -> Result<u64, LogError> {
        if self.size >= SEGMENT_BYTES || self.opened.is_some_and(|t| entry.end - t >= SEGMENT_AGE) {
            self.rotate()?;
        }
        let seq = self.next;
        let bytes = frame(&Record { seq, entry: entry.clone() });
        let path = segment_path(&self.dir, self.first);
        self.file.write_all(&bytes).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))?;
        self.next += 1;
        self.size += bytes.len() as u64;
        self.opened.get_or_insert(entry.end);
        Ok(seq)
    }

    /// Starts a new segment and lets the oldest go.
    fn rotate(&mut self) -> Result<(), LogError> {
        let path = segment_path(&self.dir, self.next);
        self.file = File::options().create(true).append(true).open(&path).map_err(io(&path))?;
        crate::store::atomic::sync_dir(&self.dir).map_err(io(&self.dir))?;
        (self.first, self.size, self.opened) = (self.next, 0, None);
        prune(&self.dir, self.first, SystemTime::now(), KEEP_BYTES, KEEP_AGE)
    }
}

/// Removes segments older than `keep_age`, then the oldest while the log
/// is larger than `keep_bytes`; never the open one (numbered `open`).
fn prune(dir: &Path, open: u64, now: SystemTime, keep_bytes: u64, keep_age: Duration) -> Result<(), LogError> {
    let mut all: Vec<(u64, PathBuf, u64, SystemTime)> = Vec::new();
    for (first, path) in segments(dir)? {
        let m = std::fs::metadata(&path).map_err(io(&path))?;
        all.push((first, path, m.len(), m.modified().unwrap_or(now)));
    }
    let mut total: u64 = all.iter().map(|s| s.2).sum();
    for (first, path, len, modified) in all {
        if first >= open {
            break;
        }
        let old = now.duration_since(modified).is_ok_and(|age| age > keep_age);
        if !old && total <= keep_bytes {
            break;
        }
        tracing::info!("proof of play: removing {} ({})", path.display(), if old { "past its age" } else { "the log is full" });
        std::fs::remove_file(&path).map_err(io(&path))?;
        total -= len;
    }
    Ok(())
}

/// Records of the log in `dir` numbered after `after`, in order, at most
/// `limit`: what is left to upload, or (from 0) everything for a report.
/// Reads while the player writes: a frame being written is not yet there.
pub fn read_after(dir: &Path, after: u64, limit: usize) -> Result<Vec<Record>, LogError> {
    let segs = segments(dir)?;
    let mut out = Vec::new();
    for (i, (_, path)) in segs.iter().enumerate() {
        // A segment whose successor starts at or before `after` holds nothing new.
        if segs.get(i + 1).is_some_and(|(next, _)| *next <= after + 1) {
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            // Pruned while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LogError::Io { path: path.clone(), source: e }),
        };
        for r in decode(&bytes).records.into_iter().filter(|r| r.seq > after) {
            if out.len() == limit {
                return Ok(out);
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// What the service has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub stream: String,
    pub through: u64,
}

/// The last number the service stored of `stream` (0: none yet).
pub fn acked(dir: &Path, stream: &str) -> u64 {
    std::fs::read(dir.join(ACKED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Acked>(&b).ok())
        .filter(|a| a.stream == stream)
        .map_or(0, |a| a.through)
}

/// Records that the service stored `stream` up to `through` (atomically).
pub fn set_acked(dir: &Path, stream: &str, through: u64) -> Result<(), LogError> {
    let path = dir.join(ACKED_FILE);
    let bytes = serde_json::to_vec(&Acked { stream: stream.to_string(), through }).unwrap_or_default();
    crate::store::atomic::write(&path, &bytes).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::proof::What;

    fn entry(min: i64) -> Entry {
        let t = DateTime::parse_from_rfc3339("2026-07-01T08:00:00+08:00").unwrap().with_timezone(&Utc) + chrono::Duration::minutes(min);
        Entry { start: t, end: t + chrono::Duration::seconds(30), cont: false, what: What::Play { playlist: "主".into(), item: format!("item-{min}"), feed_version: Some(3) } }
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn records_read_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.append(entry(0)).unwrap(), 1);
        assert_eq!(log.append(entry(1)).unwrap(), 2);
        assert!(matches!(Log::open(dir.path()), Err(LogError::Busy(_))), "one writer at a time");
        drop(log);
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.append(entry(2)).unwrap(), 3);
        let all = read_after(dir.path(), 0, usize::MAX).unwrap();
        assert_eq!(seqs(&all), [1, 2, 3]);
        assert_eq!(all[1].entry, entry(1));
        assert_eq!(seqs(&read_after(dir.path(), 1, 1).unwrap()), [2]);
    }

    #[test]
    fn a_tail_torn_at_any_byte_loses_only_that_record_and_is_cut_on_open() {
        let mut bytes = Vec::new();
        for i in 0..3 {
            bytes.extend(frame(&Record { seq: i + 1, entry: entry(i as i64) }));
        }
        let whole = bytes.len();
        let last = frame(&Record { seq: 4, entry: entry(3) });
        bytes.extend(&last);
        for cut in whole..bytes.len() {
            let d = decode(&bytes[..cut]);
            assert_eq!((seqs(&d.records), d.end, d.skipped), (vec![1, 2, 3], whole, 0), "cut at {cut}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(segment_path(dir.path(), 1), &bytes[..whole + 5]).unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(segment_path(dir.path(), 1)).unwrap().len(), whole as u64);
        assert_eq!(log.append(entry(9)).unwrap(), 4);
        assert_eq!(seqs(&read_after(dir.path(), 0, usize::MAX).unwrap()), [1, 2, 3, 4]);
    }

    #[test]
    fn a_damaged_frame_inside_is_skipped_and_the_frames_after_it_kept() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(&Record { seq: i + 1, entry: entry(i as i64) })).collect();
        for damage in [HEADER + 3, 2, 6] {
            let mut bytes = frames.concat();
            let at = frames[0].len() + damage;
            bytes[at] ^= 0x5a;
            let d = decode(&bytes);
            assert_eq!(seqs(&d.records), [1, 3, 4], "byte {damage} of the second frame");
            assert_eq!(d.end, bytes.len());
            assert_eq!(d.skipped, frames[1].len());
        }
        // Zeros where a power cut left a block unwritten.
        let mut bytes = frames.concat();
        let start = frames[0].len();
        bytes[start..start + frames[1].len()].fill(0);
        assert_eq!(seqs(&decode(&bytes).records), [1, 3, 4]);
    }

    #[test]
    fn segments_rotate_by_size_and_age_and_the_oldest_go_past_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        log.append(entry(0)).unwrap();
        // A day later: a new segment.
        log.append(entry(24 * 60)).unwrap();
        assert_eq!(segments(dir.path()).unwrap().iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
        log.size = SEGMENT_BYTES;
        log.append(entry(24 * 60 + 1)).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 3);
        assert_eq!(seqs(&read_after(dir.path(), 0, usize::MAX).unwrap()), [1, 2, 3]);
        assert_eq!(seqs(&read_after(dir.path(), 2, usize::MAX).unwrap()), [3]);
        // Too large: the oldest go, never the open one.
        prune(dir.path(), 3, SystemTime::now(), 1, KEEP_AGE).unwrap();
        assert_eq!(segments(dir.path()).unwrap().iter().map(|s| s.0).collect::<Vec<_>>(), [3]);
        drop(log);
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.append(entry(24 * 60 + 2)).unwrap(), 4);
        // Too old.
        log.size = SEGMENT_BYTES;
        log.append(entry(24 * 60 + 3)).unwrap();
        prune(dir.path(), 5, SystemTime::now() + KEEP_AGE + Duration::from_secs(60), KEEP_BYTES, KEEP_AGE).unwrap();
        assert_eq!(seqs(&read_after(dir.path(), 0, usize::MAX).unwrap()), [5]);
    }

    #[test]
    fn the_acknowledged_number_belongs_to_its_stream() {
        let dir = tempfile::tempdir().unwrap();
        drop(Log::open(dir.path()).unwrap());
        let s = stream(dir.path()).unwrap().unwrap();
        assert_eq!(acked(dir.path(), &s), 0);
        set_acked(dir.path(), &s, 7).unwrap();
        assert_eq!(acked(dir.path(), &s), 7);
        assert_eq!(acked(dir.path(), "another"), 0);
        std::fs::write(dir.path().join(STREAM_FILE), "nope").unwrap();
        assert!(matches!(Log::open(dir.path()), Err(LogError::Stream(_))));
    }
}
