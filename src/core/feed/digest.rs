//! Content addresses: the sha256 of a file, the only name a blob ever has.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A sha256 digest. Parsed only from exactly 64 lowercase hex digits, so a
/// digest taken from the network is always safe to use as a file name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// Hashes a file as it streams, without holding it in memory.
    pub fn of_file(path: &Path) -> std::io::Result<(Digest, u64)> {
        let mut file = std::fs::File::open(path)?;
        Self::of_reader(&mut file)
    }

    pub fn of_reader(r: &mut impl Read) -> std::io::Result<(Digest, u64)> {
        Self::copy(r, &mut std::io::sink())
    }

    /// Copies `r` to `w`, hashing what passes.
    pub fn copy(r: &mut impl Read, w: &mut impl std::io::Write) -> std::io::Result<(Digest, u64)> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n])?;
            len += n as u64;
        }
        Ok((Digest(hasher.finalize().into()), len))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            let shown: String = s.chars().take(80).collect();
            return Err(format!("`{shown}` is not a sha256 digest (64 lowercase hex digits)"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}


/// A sha256 in progress that can be saved and resumed, so a file too big to
/// hash in one go (the cache's background scrub of a 2 GB video) is hashed
/// over several passes, across restarts.
#[derive(Clone, Default)]
pub struct Hashing(Sha256);

impl Hashing {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }

    /// The hash state as bytes, for [`Hashing::resume`].
    pub fn save(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState as _;
        self.0.serialize().to_vec()
    }

    /// The state [`Hashing::save`] wrote; None if `bytes` is not one.
    pub fn resume(bytes: &[u8]) -> Option<Hashing> {
        use sha2::digest::common::hazmat::SerializableState;
        let state = sha2::digest::common::array::Array::try_from(bytes).ok()?;
        <Sha256 as SerializableState>::deserialize(&state).ok().map(Hashing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_strict_parsing() {
        let d = Digest::of(b"abc");
        assert_eq!(d.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(d.hex().parse::<Digest>(), Ok(d));
        for bad in ["../../etc/passwd", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "abc", ""] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        let (d2, n) = Digest::of_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!((d2, n), (d, 3));
    }

    #[test]
    fn a_hash_saved_mid_file_resumes_to_the_same_digest() {
        let mut h = Hashing::default();
        h.update(b"ab");
        let saved = h.save();
        let mut resumed = Hashing::resume(&saved).unwrap();
        resumed.update(b"c");
        assert_eq!(resumed.finish(), Digest::of(b"abc"));
        assert!(Hashing::resume(b"not a state").is_none());
    }
}
