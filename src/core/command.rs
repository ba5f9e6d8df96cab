//! Commands to one screen or a region, sent by push: signed by the key the
//! kiosks trust for commands (the feed key unless `[push] command_key`
//! names another), addressed inside the signed part, short-lived and used
//! once. A push message is never trusted by itself: a kiosk acts on a
//! command only when [`accept`] says so.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::alert::target::code_prefix;
use super::feed::envelope::{self, EnvelopeError};

pub const FORMAT: &str = "estation-command/1";
/// A command larger than this is not one.
pub const MAX_BYTES: usize = 4096;

/// The longest a command may live: its nonce is remembered that long.
pub fn max_life() -> Duration {
    Duration::days(1)
}

/// How far ahead of the kiosk's clock a command's `issued` may be.
pub fn clock_skew() -> Duration {
    Duration::minutes(5)
}

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Sync the feed now.
    Sync,
    /// Take a screenshot now (sent to the central service with the next heartbeat).
    Screenshot,
    /// Restart the player (it quits; the kiosk unit starts it again).
    Restart,
    /// Show the status overlay for a minute (for someone at the screen).
    Overlay,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Sync => "sync",
            Action::Screenshot => "screenshot",
            Action::Restart => "restart",
            Action::Overlay => "overlay",
        }
    }
}

/// Whom a command is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Target {
    /// One screen, by its `[screen] id`.
    Screen(String),
    /// Every screen in an area: an area code (`330500`: the city's).
    Region(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Screen(id) => write!(f, "screen {id}"),
            Target::Region(code) => write!(f, "region {code}"),
        }
    }
}

/// The signed part of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub format: String,
    pub action: Action,
    pub to: Target,
    /// Random, 32 hex digits: a kiosk acts on each nonce once.
    pub nonce: String,
    pub issued: DateTime<FixedOffset>,
    pub expires: DateTime<FixedOffset>,
}

impl Command {
    /// A new command, valid from `now` for `life` (at most [`max_life`]).
    pub fn new(action: Action, to: Target, now: DateTime<FixedOffset>, life: Duration, nonce: [u8; 16]) -> Command {
        let life = life.min(max_life());
        Command { format: FORMAT.into(), action, to, nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(), issued: now, expires: now + life }
    }

    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        envelope::seal(self, key)
    }
}

/// Why a command was refused; each names what was wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("{0} bytes; a command is at most {MAX_BYTES}")]
    TooLarge(usize),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("signed: {0}")]
    Field(String),
    #[error("format `{0}` is not one this kiosk reads (expected {FORMAT})")]
    Format(String),
    #[error("nonce: `{0}` is not 32 hex digits")]
    Nonce(String),
    #[error("expires: {0} is past (refused)")]
    Expired(DateTime<FixedOffset>),
    #[error("issued: {0} is ahead of this kiosk's clock (refused)")]
    NotYet(DateTime<FixedOffset>),
    #[error("expires: more than a day after `issued` (refused)")]
    TooLong,
    #[error("to: for {0}, not this screen")]
    NotForMe(Target),
    #[error("nonce {0}: already used (a replay; refused)")]
    Replayed(String),
}

/// The screen a command must be addressed to.
#[derive(Debug, Clone, Copy)]
pub struct Me<'a> {
    pub id: &'a str,
    pub region: Option<&'a str>,
}

impl Me<'_> {
    fn is(&self, target: &Target) -> bool {
        match target {
            Target::Screen(id) => id == self.id,
            Target::Region(code) => match (code_prefix(code), self.region) {
                (Some(theirs), Some(mine)) => super::push::region_levels(mine).iter().any(|l| l == theirs),
                _ => false,
            },
        }
    }
}

/// The nonces of the commands acted on, each until its command expires
/// (after that the expiry refuses a replay by itself).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Used {
    nonces: BTreeMap<String, DateTime<Utc>>,
}

impl Used {
    pub fn len(&self) -> usize {
        self.nonces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nonces.is_empty()
    }

    fn forget_expired(&mut self, now: DateTime<Utc>) {
        self.nonces.retain(|_, expires| *expires > now);
    }
}

/// Checks a command as it came off the network and, if it is good, records
/// its nonce in `used`: signature by `key`, shape, format, time window (at
/// most a day long), addressed to `me`, and not used before.
pub fn accept(bytes: &[u8], key: &VerifyingKey, me: Me, now: DateTime<Utc>, used: &mut Used) -> Result<Command, CommandError> {
    if bytes.len() > MAX_BYTES {
        return Err(CommandError::TooLarge(bytes.len()));
    }
    let signed = envelope::open(bytes, key)?;
    let c: Command = serde_json::from_str(signed).map_err(|e| CommandError::Field(e.to_string()))?;
    if c.format != FORMAT {
        return Err(CommandError::Format(c.format.chars().take(40).collect()));
    }
    if c.nonce.len() != 32 || !c.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CommandError::Nonce(c.nonce.chars().take(40).collect()));
    }
    if c.expires <= now {
        return Err(CommandError::Expired(c.expires));
    }
    if c.issued > now + clock_skew() {
        return Err(CommandError::NotYet(c.issued));
    }
    if c.expires - c.issued > max_life() {
        return Err(CommandError::TooLong);
    }
    if !me.is(&c.to) {
        return Err(CommandError::NotForMe(c.to));
    }
    used.forget_expired(now);
    let nonce = c.nonce.to_ascii_lowercase();
    if used.nonces.contains_key(&nonce) {
        return Err(CommandError::Replayed(nonce));
    }
    used.nonces.insert(nonce, c.expires.with_timezone(&Utc));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn now() -> DateTime<Utc> {
        "2026-12-02T08:00:00Z".parse().unwrap()
    }

    fn command(to: Target, nonce: u8) -> Command {
        Command::new(Action::Sync, to, now().fixed_offset(), Duration::minutes(10), [nonce; 16])
    }

    const ME: Me = Me { id: "kiosk-1", region: Some("330522") };

    #[test]
    fn a_signed_command_for_this_screen_is_taken_once() {
        let k = key(1);
        let mut used = Used::default();
        let bytes = command(Target::Screen("kiosk-1".into()), 1).sign(&k);
        let c = accept(&bytes, &k.verifying_key(), ME, now(), &mut used).unwrap();
        assert_eq!(c.action, Action::Sync);
        assert_eq!(accept(&bytes, &k.verifying_key(), ME, now(), &mut used), Err(CommandError::Replayed("01".repeat(16))));
        // The city's and the province's commands are this county screen's too.
        for (i, code) in ["330500", "330000", "330522"].into_iter().enumerate() {
            assert!(accept(&command(Target::Region(code.into()), 2 + i as u8).sign(&k), &k.verifying_key(), ME, now(), &mut used).is_ok(), "{code}");
        }
        assert_eq!(used.len(), 4);
        // Once expired, the nonce is forgotten: the expiry refuses it.
        let later = now() + Duration::minutes(11);
        assert!(matches!(accept(&bytes, &k.verifying_key(), ME, later, &mut used), Err(CommandError::Expired(_))));
        assert!(accept(&command(Target::Screen("kiosk-1".into()), 9).sign(&k), &k.verifying_key(), ME, later - Duration::minutes(2), &mut used).is_ok());
    }

    #[test]
    fn forged_unsigned_stale_and_misaddressed_commands_are_refused() {
        let k = key(1);
        let vk = k.verifying_key();
        let mut used = Used::default();
        let mine = command(Target::Screen("kiosk-1".into()), 1);
        let err = |bytes: &[u8], used: &mut Used| accept(bytes, &vk, ME, now(), used).unwrap_err();
        assert!(matches!(err(&mine.sign(&key(2)), &mut used), CommandError::Envelope(EnvelopeError::OtherKey { .. })));
        let text = String::from_utf8(mine.sign(&k)).unwrap();
        assert_eq!(err(text.replace("kiosk-1", "kiosk-9").as_bytes(), &mut used), CommandError::Envelope(EnvelopeError::BadSignature));
        let start = text.find("\"signatures\"").unwrap();
        assert_eq!(err(format!("{}\"signatures\": []\n}}", &text[..start]).as_bytes(), &mut used), CommandError::Envelope(EnvelopeError::Unsigned));
        assert!(matches!(err(b"{\"action\":\"sync\"}", &mut used), CommandError::Envelope(EnvelopeError::Syntax(_))));
        assert!(matches!(err(&vec![b' '; MAX_BYTES + 1], &mut used), CommandError::TooLarge(_)));
        assert_eq!(err(&command(Target::Screen("kiosk-2".into()), 1).sign(&k), &mut used), CommandError::NotForMe(Target::Screen("kiosk-2".into())));
        assert_eq!(err(&command(Target::Region("330100".into()), 1).sign(&k), &mut used), CommandError::NotForMe(Target::Region("330100".into())));
        assert!(matches!(err(&command(Target::Region("33x".into()), 1).sign(&k), &mut used), CommandError::NotForMe(_)));
        let old = Command::new(Action::Sync, Target::Screen("kiosk-1".into()), (now() - Duration::minutes(20)).fixed_offset(), Duration::minutes(10), [1; 16]);
        assert!(matches!(err(&old.sign(&k), &mut used), CommandError::Expired(_)));
        let mut ahead = mine.clone();
        ahead.issued = (now() + Duration::hours(1)).fixed_offset();
        ahead.expires = ahead.issued + Duration::minutes(10);
        assert!(matches!(err(&ahead.sign(&k), &mut used), CommandError::NotYet(_)));
        let mut long = mine.clone();
        long.expires = long.issued + Duration::days(30);
        assert_eq!(err(&long.sign(&k), &mut used), CommandError::TooLong);
        let mut nonce = mine.clone();
        nonce.nonce = "1".into();
        assert!(matches!(err(&nonce.sign(&k), &mut used), CommandError::Nonce(_)));
        // An action this kiosk does not know is refused, naming it.
        let unknown = String::from_utf8(mine.sign(&k)).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&unknown).unwrap();
        v["signed"] = serde_json::from_str(v["signed"].to_string().replace("\"sync\"", "\"format-disk\"").as_str()).unwrap();
        let resealed = envelope::seal(&v["signed"], &k);
        assert!(err(&resealed, &mut used).to_string().contains("unknown variant `format-disk`"));
        assert!(used.is_empty(), "nothing refused is remembered");
    }
}
