//! Any bytes into what a kiosk reads off the push broker and beside the
//! manifest: a notice (`Notice::parse`), a command (`command::accept`) and
//! the warnings document (`alerts_doc::verify_new`). Random bytes rarely
//! carry a valid signature, so JSON input is also signed here with the
//! trusted key (its `signed` member when it has one, else the whole value)
//! to reach the rules behind the signature. Must never panic; a command
//! taken once is refused as a replay the second time; a notice and a
//! warnings document that read must read back equal once written out.
#![no_main]

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use estation::core::command::{self, CommandError, Me, Used};
use estation::core::feed::alerts_doc;
use estation::core::feed::envelope;
use estation::core::push::Notice;
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]));

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_478_400, 0).unwrap_or_default() // 2026-11-24
}

const ME: Me = Me { id: "kiosk-1", region: Some("330522") };

fn exercise(bytes: &[u8]) {
    let key = KEY.verifying_key();
    if let Ok(n) = Notice::parse(bytes) {
        assert_eq!(Notice::parse(&n.to_bytes()).as_ref(), Ok(&n), "a notice reads back as written");
    }
    let mut used = Used::default();
    if command::accept(bytes, &key, ME, now(), &mut used).is_ok() {
        assert!(matches!(command::accept(bytes, &key, ME, now(), &mut used), Err(CommandError::Replayed(_))), "a command acts once");
    }
    if let Ok(Some(v)) = alerts_doc::verify_new(bytes, &key, now(), None, 0) {
        let again = alerts_doc::verify_signature(&v.doc.sign(&KEY), &key).expect("a document we signed verifies");
        assert_eq!(again.doc, v.doc);
        // The one here is never new again, nor older than itself.
        assert_eq!(alerts_doc::verify_new(&v.bytes, &key, now(), Some(&v), v.doc.version), Ok(None));
    }
}

fuzz_target!(|bytes: &[u8]| {
    exercise(bytes);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let signed = value.get("signed").cloned().unwrap_or(value);
        exercise(&envelope::seal(&signed, &KEY));
    }
});
