//! Who may change what: the one rule for which source's message may update,
//! cancel or supersede a message that came from another source.
//!
//! CAP identifies a message by `sender,identifier,sent`, and all three are
//! public (feed CAP files are served to anyone; agencies publish theirs).
//! Matching on them alone would let any source end any warning: an unsigned
//! upstream Cancel naming a signed feed warning, or a later `sent` with the
//! same identifier downgrading an Extreme to Minor. So, as Google Public
//! Alerts does for its feeds (a message is only ever matched against the
//! feed it came from) and TUF does for delegated roles (a role signs only
//! for the targets delegated to it):
//!
//! - a message acts on messages that came from **its own source** (the
//!   signed feed is one source; each upstream URL is one);
//! - the **signed feed**, which the office controls, may act on any;
//! - the config may name an upstream source as the **authority for given
//!   senders** (`[[alerts.source]] authority_for = ["…"]`), so a county that
//!   re-broadcasts CMA warnings through its feed lets CMA's own source end
//!   them.
//!
//! A tombstone (what a Cancel or Update ended) is kept with the source that
//! made it and keeps off only what that source could have ended.

use serde::Serialize;

/// The source name of the signed feed (upstream sources are named by URL).
pub const FEED: &str = "feed";

/// The grants the config makes: upstream source → senders it speaks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Authority {
    grants: Vec<(String, Vec<String>)>,
}

impl Authority {
    /// No grants: every source acts on its own messages; the feed on all.
    pub fn none() -> Authority {
        Authority::default()
    }

    /// Lets `source` act on messages of `senders`, wherever they came from.
    pub fn grant(mut self, source: &str, senders: impl IntoIterator<Item = String>) -> Authority {
        let senders: Vec<String> = senders.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if !senders.is_empty() {
            self.grants.push((source.to_string(), senders));
        }
        self
    }

    /// Whether a message from `actor` may update, cancel or supersede a
    /// message from `sender` that came from `target_source`.
    ///
    /// ```
    /// use estation::core::alert::authority::{Authority, FEED};
    /// let a = Authority::none().grant("https://cma.example/cap.xml", ["12379@cma".to_string()]);
    /// assert!(a.may_act(FEED, "https://other.example/", "anyone"));
    /// assert!(!a.may_act("https://other.example/", FEED, "county@qx"));
    /// assert!(a.may_act("https://cma.example/cap.xml", FEED, "12379@cma"));
    /// assert!(!a.may_act("https://cma.example/cap.xml", FEED, "county@qx"));
    /// ```
    pub fn may_act(&self, actor: &str, target_source: &str, sender: &str) -> bool {
        actor == target_source
            || actor == FEED
            || self.grants.iter().any(|(source, senders)| source == actor && senders.iter().any(|s| s == sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://a.example/cap.atom";
    const B: &str = "https://b.example/cap.xml";

    #[test]
    fn every_pair_of_sources() {
        let none = Authority::none();
        // feed → feed, feed → upstream: the office's signed feed may act on any.
        assert!(none.may_act(FEED, FEED, "s"));
        assert!(none.may_act(FEED, A, "s"));
        // upstream → feed: never by default.
        assert!(!none.may_act(A, FEED, "s"));
        // upstream A → upstream B: never; A → A: its own.
        assert!(!none.may_act(A, B, "s"));
        assert!(none.may_act(A, A, "s"));
    }

    #[test]
    fn a_grant_covers_only_its_senders_and_its_source() {
        let a = Authority::none().grant(A, ["cma".to_string(), " ".to_string()]);
        assert!(a.may_act(A, FEED, "cma"));
        assert!(a.may_act(A, B, "cma"));
        assert!(!a.may_act(A, FEED, "county"), "another sender");
        assert!(!a.may_act(B, FEED, "cma"), "another source");
        assert!(!a.may_act(A, FEED, ""), "blank senders are not granted");
    }
}
