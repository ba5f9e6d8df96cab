//! Tokens that screens (and the office's API clients) present. The service
//! keeps only a salted hash of each, so a copied database lets nobody pose
//! as a screen. A token is 32 random bytes: guessing one is hopeless, so a
//! fast salted SHA-256 is the right hash (a slow password hash buys nothing
//! against 256 bits, and would cost every heartbeat).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What starts every token, so one pasted in the wrong place is recognised.
pub const PREFIX: &str = "est1_";

/// A fresh token, printed once and never stored.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(format!("{PREFIX}{}", hex::encode(secret)))
}

/// What the service stores for a token: a fresh salt and the hash, both hex.
pub fn seal(token: &str) -> Result<Sealed, getrandom::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let salt = hex::encode(salt);
    let hash = hash(&salt, token);
    Ok(Sealed { salt, hash })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub salt: String,
    pub hash: String,
}

/// Whether `token` is the one `salt` and `hash` were made from, in constant
/// time.
pub fn matches(token: &str, salt: &str, hash: &str) -> bool {
    self::hash(salt, token).as_bytes().ct_eq(hash.as_bytes()).into()
}

fn hash(salt: &str, token: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_matches_itself_only_and_two_seals_differ() {
        let token = generate().unwrap();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        let sealed = seal(&token).unwrap();
        assert!(matches(&token, &sealed.salt, &sealed.hash));
        assert!(!matches(&generate().unwrap(), &sealed.salt, &sealed.hash));
        assert!(!matches("", &sealed.salt, &sealed.hash));
        let again = seal(&token).unwrap();
        assert_ne!(again, sealed, "a fresh salt each time");
        assert!(!sealed.hash.contains(&token[PREFIX.len()..]));
    }
}
