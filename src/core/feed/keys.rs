//! Signing keys: ed25519, private key as a PKCS#8 PEM file (the format
//! `openssl pkey` reads), public key as one line for the kiosk config:
//! `ed25519:<base64 of the 32 key bytes>`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::Digest as _;

pub const PRIVATE_FILE: &str = "feed-key.pem";
pub const PUBLIC_FILE: &str = "feed-key.pub";
const PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: already exists; refusing to overwrite a key")]
    Exists(PathBuf),
    #[error("{path}: not an ed25519 private key in PKCS#8 PEM form ({why})")]
    BadPrivate { path: PathBuf, why: String },
    #[error("`{0}` is not a public key; write ed25519:<base64>, as `estation feed keygen` prints it")]
    BadPublic(String),
    #[error("cannot get randomness from the system: {0}")]
    Random(String),
}

/// The short id a signature names its key by: the first 16 hex digits of
/// the sha256 of the public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
}

pub fn public_key_string(key: &VerifyingKey) -> String {
    format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key.as_bytes()))
}

/// Parses `ed25519:<base64>`.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, KeyError> {
    let bad = || KeyError::BadPublic(s.chars().take(100).collect());
    let b64 = s.trim().strip_prefix(PREFIX).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad())?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    VerifyingKey::from_bytes(&arr).map_err(|_| bad())
}

/// A new key from the operating system's randomness.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Writes `feed-key.pem` (mode 0600, never overwriting) and `feed-key.pub`
/// into `dir`. Returns the two paths.
pub fn write_pair(key: &SigningKey, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let private = dir.join(PRIVATE_FILE);
    let public = dir.join(PUBLIC_FILE);
    for p in [&private, &public] {
        if p.exists() {
            return Err(KeyError::Exists(p.clone()));
        }
    }
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| KeyError::BadPrivate { path: private.clone(), why: e.to_string() })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&private).map_err(io(&private))?;
    f.write_all(pem.as_bytes()).and_then(|()| f.sync_all()).map_err(io(&private))?;
    std::fs::write(&public, format!("{}\n", public_key_string(&key.verifying_key()))).map_err(io(&public))?;
    Ok((private, public))
}

pub fn read_private(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::BadPrivate { path: path.to_path_buf(), why: e.to_string() })
}

/// A public key given on the command line: the `ed25519:…` text itself, or
/// a file holding it (such as `feed-key.pub`).
pub fn public_key_arg(arg: &str) -> Result<VerifyingKey, KeyError> {
    if arg.trim().starts_with(PREFIX) {
        return parse_public_key(arg);
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
    parse_public_key(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let (private, public) = write_pair(&key, dir.path()).unwrap();
        assert_eq!(read_private(&private).unwrap().to_bytes(), key.to_bytes());
        let text = std::fs::read_to_string(&public).unwrap();
        assert_eq!(parse_public_key(&text).unwrap(), key.verifying_key());
        assert_eq!(public_key_arg(public.to_str().unwrap()).unwrap(), key.verifying_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(write_pair(&key, dir.path()), Err(KeyError::Exists(_))));
        assert!(std::fs::read_to_string(&private).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn bad_public_keys_are_refused() {
        for bad in ["", "ed25519:", "ed25519:AAAA", "rsa:AAAA", "ed25519:!!!!"] {
            assert!(matches!(parse_public_key(bad), Err(KeyError::BadPublic(_))), "{bad}");
        }
    }
}
