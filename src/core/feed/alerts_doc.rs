//! The feed's warnings in their own small signed document, `alerts.json`
//! beside `manifest.json` (the way TUF keeps a small, often re-signed
//! document apart from the large one): publishing or cancelling a warning
//! re-signs only this one, so a kiosk fetches a few KB, however large the
//! feed's programme is. Signed by the feed key; its version only grows and
//! it expires, with the same rules as the manifest's ([`super::manifest`]).

use chrono::{DateTime, FixedOffset, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::envelope::{self, EnvelopeError};
use super::manifest::{Blob, ManifestError, MediaType};

/// Its name in the feed folder (and its URL under the feed URL).
pub const ALERTS_FILE: &str = "alerts.json";
pub const FORMAT: &str = "estation-alerts/1";
/// Larger than this is refused before parsing (1,000 messages are ~150 KB).
pub const MAX_ALERTS_BYTES: u64 = 1 << 20;
/// Most messages it may list.
pub const MAX_MESSAGES: usize = 5_000;
/// The largest CAP document it may list.
pub const MAX_CAP_BYTES: u64 = 1 << 20;

/// The signed part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsDoc {
    pub format: String,
    /// Grows with every publish; a kiosk never goes back.
    pub version: u64,
    pub created: DateTime<FixedOffset>,
    /// After this a kiosk refuses it as new (the one it has stays).
    pub expires: DateTime<FixedOffset>,
    /// The CAP messages, each a file of the feed named by its digest.
    pub alerts: Vec<Blob>,
}

impl AlertsDoc {
    /// Rules the JSON shape cannot express, naming the field at fault.
    pub fn check(&self) -> Result<(), ManifestError> {
        let bad = |field: String, message: String| Err(ManifestError::Field { field, message });
        if self.format != FORMAT {
            return bad("format".into(), format!("`{}` is not a format this kiosk reads (expected {FORMAT})", self.format));
        }
        if self.expires <= self.created {
            return bad("expires".into(), "is not after `created`".into());
        }
        if self.alerts.len() > MAX_MESSAGES {
            return bad("alerts".into(), format!("{} messages; at most {MAX_MESSAGES} are allowed", self.alerts.len()));
        }
        for (i, b) in self.alerts.iter().enumerate() {
            if b.media_type != MediaType::Cap {
                return bad(format!("alerts[{}].type", i + 1), format!("`{}` is not a CAP message", b.media_type.mime()));
            }
            if b.size == 0 || b.size > MAX_CAP_BYTES {
                return bad(format!("alerts[{}].size", i + 1), format!("{} bytes; a CAP message is 1 to {MAX_CAP_BYTES}", b.size));
            }
        }
        Ok(())
    }

    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        envelope::seal(self, key)
    }
}

/// A document whose signature checked out, with the bytes it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAlerts {
    pub doc: AlertsDoc,
    pub bytes: Vec<u8>,
}

/// Signature, key and shape only (what a kiosk checks of the one it has).
pub fn verify_signature(bytes: &[u8], key: &VerifyingKey) -> Result<VerifiedAlerts, ManifestError> {
    if bytes.len() as u64 > MAX_ALERTS_BYTES {
        return Err(ManifestError::TooLarge(bytes.len() as u64));
    }
    let signed = envelope::open(bytes, key).map_err(ManifestError::from)?;
    let doc: AlertsDoc = serde_json::from_str(signed).map_err(|e| ManifestError::Field { field: "signed".into(), message: e.to_string() })?;
    doc.check()?;
    Ok(VerifiedAlerts { doc, bytes: bytes.to_vec() })
}

/// Everything a new document from the network must pass: signature, key,
/// shape, expiry, and a version above the current one (and `highest`, the
/// highest ever taken, so a lost current one does not open a rollback).
/// `Ok(None)`: the one already here.
pub fn verify_new(bytes: &[u8], key: &VerifyingKey, now: DateTime<Utc>, current: Option<&VerifiedAlerts>, highest: u64) -> Result<Option<VerifiedAlerts>, ManifestError> {
    let v = verify_signature(bytes, key)?;
    let here = current.map(|c| (c.doc.version, c.bytes.as_slice()));
    super::manifest::check_newer((v.doc.version, &v.bytes), here, highest)?;
    if here.is_some_and(|(version, _)| version == v.doc.version) {
        return Ok(None);
    }
    if v.doc.expires <= now {
        return Err(ManifestError::Expired(v.doc.expires));
    }
    Ok(Some(v))
}

impl From<EnvelopeError> for ManifestError {
    fn from(e: EnvelopeError) -> ManifestError {
        match e {
            EnvelopeError::Syntax(m) => ManifestError::Syntax(m),
            EnvelopeError::Unsigned => ManifestError::Unsigned,
            EnvelopeError::OtherKey { found, trusted } => ManifestError::OtherKey { found, trusted },
            EnvelopeError::BadSignature => ManifestError::BadSignature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::feed::Digest;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn doc(version: u64) -> AlertsDoc {
        AlertsDoc {
            format: FORMAT.into(),
            version,
            created: "2026-12-01T08:00:00+08:00".parse().unwrap(),
            expires: "2026-12-15T08:00:00+08:00".parse().unwrap(),
            alerts: vec![Blob { sha256: Digest::of(b"<alert/>"), size: 8, media_type: MediaType::Cap }],
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-02T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_new_document_is_taken_once_and_never_an_older_one() {
        let k = key(1);
        let vk = k.verifying_key();
        let five = verify_new(&doc(5).sign(&k), &vk, now(), None, 0).unwrap().unwrap();
        assert_eq!(five.doc, doc(5));
        assert_eq!(verify_new(&five.bytes, &vk, now(), Some(&five), 5), Ok(None));
        assert_eq!(verify_new(&doc(4).sign(&k), &vk, now(), Some(&five), 5), Err(ManifestError::Rollback { new: 4, current: 5 }));
        // The current one lost: the highest ever taken still refuses it.
        assert_eq!(verify_new(&doc(4).sign(&k), &vk, now(), None, 5), Err(ManifestError::Rollback { new: 4, current: 5 }));
        let mut other = doc(5);
        other.alerts.clear();
        assert_eq!(verify_new(&other.sign(&k), &vk, now(), Some(&five), 5), Err(ManifestError::SameVersionDifferent(5)));
        assert!(verify_new(&doc(6).sign(&k), &vk, now(), Some(&five), 5).unwrap().is_some());
        // The one here stays whatever its age; a new one must not be expired.
        let late: DateTime<Utc> = "2026-12-20T00:00:00Z".parse().unwrap();
        assert_eq!(verify_new(&five.bytes, &vk, late, Some(&five), 5), Ok(None));
        assert!(matches!(verify_new(&doc(6).sign(&k), &vk, late, Some(&five), 5), Err(ManifestError::Expired(_))));
    }

    #[test]
    fn forged_and_malformed_documents_are_refused_naming_the_field() {
        let k = key(1);
        let vk = k.verifying_key();
        assert!(matches!(verify_new(&doc(5).sign(&key(2)), &vk, now(), None, 0), Err(ManifestError::OtherKey { .. })));
        let text = String::from_utf8(doc(5).sign(&k)).unwrap();
        assert_eq!(verify_new(text.replace("\"size\": 8", "\"size\": 9").as_bytes(), &vk, now(), None, 0), Err(ManifestError::BadSignature));
        let mut png = doc(5);
        png.alerts[0].media_type = MediaType::Png;
        assert_eq!(verify_new(&png.sign(&k), &vk, now(), None, 0).unwrap_err().to_string(), "alerts[1].type: `image/png` is not a CAP message");
        let mut huge = doc(5);
        huge.alerts[0].size = 1 << 30;
        assert!(verify_new(&huge.sign(&k), &vk, now(), None, 0).unwrap_err().to_string().starts_with("alerts[1].size: "));
        let mut v = serde_json::to_value(doc(5)).unwrap();
        v["headline"] = "x".into();
        assert!(verify_new(&envelope::seal(&v, &k), &vk, now(), None, 0).unwrap_err().to_string().contains("unknown field `headline`"));
        assert!(matches!(verify_new(&vec![b' '; MAX_ALERTS_BYTES as usize + 1], &vk, now(), None, 0), Err(ManifestError::TooLarge(_))));
    }
}
