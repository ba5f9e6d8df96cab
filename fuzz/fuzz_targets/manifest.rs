//! Any bytes into the manifest checks a kiosk runs on what the network
//! hands it: `verify_signature`, and `verify_new` with and without a
//! current version. Random bytes rarely carry a valid signature, so JSON
//! input is also signed here with the trusted key (its `signed` member
//! when it has one, else the whole value) to reach the shape, expiry and
//! version rules behind the signature. Must never panic; a manifest that
//! verifies must verify again, equal, after `sign` writes it out.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use estation::core::feed::keys::key_id;
use estation::core::feed::manifest::{self, ManifestError, Verified};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]));

/// Version 5, built 2026-11-23, expiring 2026-12-07: what the kiosk has.
const CURRENT: &str = r#"{"format":"estation-feed/1","version":5,"created":"2026-11-23T08:00:00+08:00","expires":"2026-12-07T08:00:00+08:00","playlists":[{"name":"demo.toml","sha256":"6e1a0e8f4c7b8a1f2e2d0f1f7f3c2b9a0d4e5f6a7b8c9d0e1f2a3b4c5d6e7f80","size":4}],"media":[],"alerts":[]}"#;

static CURRENT_V: LazyLock<Verified> = LazyLock::new(|| {
    manifest::verify_signature(&envelope(CURRENT, &KEY), &KEY.verifying_key())
        .expect("the fixed current manifest verifies")
});

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_478_400, 0).unwrap_or_default() // 2026-11-24
}

/// The envelope `sign` writes, around `signed` exactly as given (the
/// signature covers those bytes).
fn envelope(signed: &str, key: &SigningKey) -> Vec<u8> {
    let sig =
        base64::engine::general_purpose::STANDARD.encode(key.sign(signed.as_bytes()).to_bytes());
    format!(
        "{{\"signed\": {signed}, \"signatures\": [{{\"keyid\": \"{}\", \"sig\": \"{sig}\"}}]}}",
        key_id(&key.verifying_key())
    )
    .into_bytes()
}

fn exercise(bytes: &[u8], key: &VerifyingKey) -> Result<Verified, ManifestError> {
    let plain = manifest::verify_signature(bytes, key);
    let fresh = manifest::verify_new(bytes, key, now(), None);
    let cur = &*CURRENT_V;
    let against = manifest::verify_new(bytes, key, now(), Some(cur));
    match (&plain, &fresh, &against) {
        (Ok(v), _, _) => {
            let _ = (
                v.manifest.blobs(),
                v.manifest.total_bytes(),
                v.manifest
                    .is_frozen(now(), std::time::Duration::from_secs(86_400)),
            );
            // What `feed build` writes must read back as the same manifest.
            let again = manifest::verify_signature(
                &manifest::sign(&v.manifest, &KEY),
                &KEY.verifying_key(),
            );
            assert_eq!(
                again.as_ref().map(|a| &a.manifest),
                Ok(&v.manifest),
                "a verified manifest must survive sign + verify"
            );
            assert_eq!(
                fresh.as_ref().err(),
                v.manifest
                    .is_expired(now())
                    .then_some(&ManifestError::Expired(v.manifest.expires))
            );
            match &against {
                Ok(None) => {
                    assert!(v.manifest.version == cur.manifest.version && v.bytes == cur.bytes)
                }
                Ok(Some(n)) => assert!(
                    n.manifest.version > cur.manifest.version && !n.manifest.is_expired(now())
                ),
                Err(ManifestError::Rollback { new, current }) => assert!(new < current),
                Err(ManifestError::SameVersionDifferent(n)) => {
                    assert!(*n == cur.manifest.version && v.bytes != cur.bytes)
                }
                Err(ManifestError::Expired(_)) => assert!(
                    v.manifest.is_expired(now()) && v.manifest.version > cur.manifest.version
                ),
                Err(e) => panic!("verified alone but refused against the current version for {e}"),
            }
        }
        (Err(e), Err(f), Err(g)) => assert!(
            e == f && e == g,
            "the same bytes refused for different reasons: {e} / {f} / {g}"
        ),
        _ => panic!("verify_new took what verify_signature refused: {plain:?}"),
    }
    plain
}

fuzz_target!(|data: &[u8]| {
    let key = KEY.verifying_key();
    let _ = exercise(data, &key);
    let Ok(raw) = serde_json::from_slice::<&RawValue>(data) else {
        return;
    };
    let signed = match serde_json::from_str::<BTreeMap<&str, &RawValue>>(raw.get()) {
        Ok(members) => members.get("signed").copied().unwrap_or(raw),
        Err(_) => raw,
    };
    let bytes = envelope(signed.get(), &KEY);
    match exercise(&bytes, &key) {
        Ok(_) | Err(ManifestError::Field { .. } | ManifestError::Expired(_)) => {}
        // The envelope adds a level of nesting: serde_json's depth limit may trip.
        Err(ManifestError::Syntax(m)) if m.contains("recursion limit") => {}
        Err(e) => {
            panic!("a correctly signed manifest refused before its content was looked at: {e}")
        }
    }
});
