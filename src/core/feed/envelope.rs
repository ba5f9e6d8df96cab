//! The signed envelope of a feed document (the manifest, a command):
//! `{"signed": {…}, "signatures": [{"keyid", "sig"}]}`. The signature covers
//! the exact bytes of the `signed` value as they appear in the file, so no
//! JSON canonicalisation is needed.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::keys::key_id;

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("not a signed document: {0}")]
    Syntax(String),
    #[error("not signed")]
    Unsigned,
    #[error("signed by another key ({found}); this kiosk trusts {trusted}")]
    OtherKey { found: String, trusted: String },
    #[error("signature does not match its content (tampered?)")]
    BadSignature,
}

/// One signature in the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureEntry {
    keyid: String,
    sig: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Vec<SignatureEntry>,
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    signed: &'a RawValue,
    signatures: Vec<SignatureEntry>,
}

/// The `signed` JSON text of `bytes` once its signature by `key` checks out.
pub fn open<'a>(bytes: &'a [u8], key: &VerifyingKey) -> Result<&'a str, EnvelopeError> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Syntax(e.to_string()))?;
    if env.signatures.is_empty() {
        return Err(EnvelopeError::Unsigned);
    }
    let trusted = key_id(key);
    let Some(entry) = env.signatures.iter().find(|s| s.keyid == trusted) else {
        let found = env.signatures.iter().map(|s| s.keyid.chars().take(64).collect::<String>()).collect::<Vec<_>>().join(", ");
        return Err(EnvelopeError::OtherKey { found, trusted });
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(entry.sig.as_bytes())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(EnvelopeError::BadSignature)?;
    key.verify_strict(env.signed.get().as_bytes(), &sig).map_err(|_| EnvelopeError::BadSignature)?;
    Ok(env.signed.get())
}

/// Serialises `value` and signs it into an envelope.
pub fn seal<T: Serialize>(value: &T, key: &SigningKey) -> Vec<u8> {
    // Serialising our own plain structs cannot fail.
    let signed = serde_json::to_string_pretty(value).unwrap_or_default();
    let sig = key.sign(signed.as_bytes());
    let raw = RawValue::from_string(signed).unwrap_or_else(|_| unreachable_raw());
    let env = EnvelopeOut {
        signed: &raw,
        signatures: vec![SignatureEntry {
            keyid: key_id(&key.verifying_key()),
            sig: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        }],
    };
    let mut out = serde_json::to_vec_pretty(&env).unwrap_or_default();
    out.push(b'\n');
    out
}

fn unreachable_raw() -> Box<RawValue> {
    // serde_json always produces valid JSON from a struct.
    RawValue::from_string("{}".into()).expect("`{}` is valid JSON")
}
