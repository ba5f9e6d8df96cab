//! How alerts in force are presented: the one place that decides.
//!
//! Defaults: Extreme and Severe (urgency not Past) take the whole screen
//! with a chime; Moderate and Unknown get a banner over the playlist and a
//! ticker line; Minor the ticker only. A recognised Chinese signal colour
//! decides over CAP `<severity>` when both are present (the colour is what
//! the sender published; CMA's own messages carry it only in the text).
//! Everything takes `now` so the player only draws what this returns.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::cap::{Alert, Info, Scope, Severity, Status, Urgency};
use super::signal::{self, Signal};
use super::store::{Entry, Lifetimes, Store};
use super::target::Place;
pub use crate::core::trusted_time::Times;

/// How loudly an alert is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Treatment {
    Ticker,
    Banner,
    Takeover,
}

/// The screen's settings for alerts (from `[alerts]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Language of the blocks to show (`zh-CN`).
    pub language: String,
    pub place: Place,
    /// Show `Exercise` messages, marked 演练.
    pub show_exercise: bool,
    /// Show `Test` messages, marked 测试.
    pub show_test: bool,
    /// Lowest severity that takes over the screen.
    pub takeover_from: Severity,
    /// Lowest severity that gets a banner (below it: ticker only).
    pub banner_from: Severity,
    #[serde(skip)]
    pub lifetimes: Lifetimes,
    /// How long each alert stays on a takeover that cycles through several.
    #[serde(skip)]
    pub cycle: Duration,
    /// At most this many alerts take turns on the takeover.
    pub takeover_max: usize,
    /// The addresses this screen answers to: `Restricted` and `Private`
    /// messages are shown only where their `<addresses>` name one of these
    /// (a public screen has none, and shows neither).
    pub addresses: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            language: "zh-CN".into(),
            place: Place::default(),
            show_exercise: false,
            show_test: false,
            takeover_from: Severity::Severe,
            banner_from: Severity::Unknown,
            lifetimes: Lifetimes::default(),
            cycle: Duration::seconds(15),
            takeover_max: 3,
            addresses: Vec::new(),
        }
    }
}

/// One alert as the screen shows it: owned, in the screen's time zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    /// `sender,identifier,sent` — stable while the message is in force.
    pub key: String,
    /// CAP `<identifier>` and `<sender>` (the address, not the name shown),
    /// for the proof of what was on screen.
    pub identifier: String,
    pub cap_sender: String,
    pub treatment: Treatment,
    /// What the colour and ordering go by: the signal's, else CAP's.
    pub severity: Severity,
    pub urgency: Urgency,
    pub status: Status,
    pub signal: Option<Signal>,
    /// `暴雨红色预警` or the event text.
    pub title: String,
    pub event: String,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub areas: Vec<String>,
    /// senderName, else sender.
    pub sender: String,
    pub sent: DateTime<FixedOffset>,
    pub onset: Option<DateTime<FixedOffset>>,
    pub ends: DateTime<Utc>,
    /// Whether `<expires>` said so (else the default lifetime ended it).
    pub expires_given: bool,
    /// `Some("演练")` / `Some("测试")` for exercises and tests.
    pub mark: Option<&'static str>,
    /// Audio resources (URI or embedded), played after the chime.
    pub audio: Vec<AudioRef>,
    /// Where the message came from: `feed` or the upstream URL.
    pub source: String,
    /// It came over plain http: nothing vouches that it is what the
    /// source sent (shown all the same; `status` says so).
    pub over_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioRef {
    pub mime_type: String,
    pub uri: Option<String>,
    #[serde(skip)]
    pub deref: Option<String>,
    pub digest: Option<String>,
}

impl Shown {
    /// One line for the ticker: `【暴雨红色预警】长兴县气象台：headline`.
    pub fn ticker_line(&self) -> String {
        let mark = self.mark.map(|m| format!("〔{m}〕")).unwrap_or_default();
        let body = self.headline.clone().or_else(|| self.description.clone()).unwrap_or_else(|| self.event.clone());
        format!("{mark}【{}】{}：{}", self.title, self.sender, body)
    }
}

/// What the screen shows now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Presentation {
    /// Every alert in force for this screen, most urgent first.
    pub all: Vec<Shown>,
}

impl Presentation {
    /// The alert on the takeover now (they take turns every `cycle`).
    pub fn takeover(&self, policy: &Policy, now: DateTime<Utc>) -> Option<&Shown> {
        let tops: Vec<&Shown> = self.all.iter().filter(|s| s.treatment == Treatment::Takeover).take(policy.takeover_max.max(1)).collect();
        if tops.is_empty() {
            return None;
        }
        let step = policy.cycle.num_milliseconds().max(1000);
        let i = (now.timestamp_millis().div_euclid(step) as usize) % tops.len();
        Some(tops[i])
    }

    /// How many alerts take turns on the takeover.
    pub fn takeover_count(&self, policy: &Policy) -> usize {
        self.all.iter().filter(|s| s.treatment == Treatment::Takeover).count().min(policy.takeover_max.max(1))
    }

    /// The banner: the most urgent banner-level alert.
    pub fn banner(&self) -> Option<&Shown> {
        self.all.iter().find(|s| s.treatment == Treatment::Banner)
    }

    /// The alerts really on screen, for the proof of play: the takeovers
    /// taking turns while there are any (they cover the banner and the
    /// ticker), else the banner and every ticker line.
    pub fn on_screen(&self, policy: &Policy) -> Vec<&Shown> {
        let takeovers: Vec<&Shown> = self.all.iter().filter(|s| s.treatment == Treatment::Takeover).take(policy.takeover_max.max(1)).collect();
        if !takeovers.is_empty() {
            return takeovers;
        }
        self.all.iter().filter(|s| s.treatment < Treatment::Takeover).collect()
    }

    /// Ticker lines: every alert below takeover, most urgent first.
    pub fn ticker(&self) -> Vec<String> {
        self.all.iter().filter(|s| s.treatment < Treatment::Takeover).map(Shown::ticker_line).collect()
    }

}

impl Policy {
    /// CAP `scope`: Public is for everyone; Restricted and Private only for
    /// the screens their `<addresses>` name.
    pub fn may_show(&self, alert: &Alert) -> bool {
        alert.scope == Scope::Public
            || alert.addresses.as_deref().is_some_and(|list| addressees(list).any(|a| self.addresses.iter().any(|mine| mine == a)))
    }
}

/// CAP `<addresses>`: space-delimited, an address with spaces in quotes.
fn addressees(list: &str) -> impl Iterator<Item = &str> {
    list.split('"').enumerate().flat_map(|(i, part)| if i % 2 == 1 { vec![part.trim()] } else { part.split_whitespace().collect() }).filter(|a| !a.is_empty())
}

/// Works out what to show at `now` from the store. `now` is one instant,
/// or [`Times`] that judge starts and ends apart (see `crate::core::trusted_time`:
/// a warning is never held back by a slow clock, nor ended early on the word
/// of an unsigned header).
pub fn present(store: &Store, policy: &Policy, now: impl Into<Times>) -> Presentation {
    let times: Times = now.into();
    let mut all: Vec<(Shown, DateTime<Utc>)> = Vec::new();
    for entry in store.entries() {
        let alert = &entry.alert;
        let mark = match alert.status {
            Status::Actual => None,
            Status::Exercise if policy.show_exercise => Some("演练"),
            Status::Test if policy.show_test => Some("测试"),
            _ => continue,
        };
        if !policy.may_show(alert) {
            continue;
        }
        let signal = signal::of_alert(alert);
        let infos = alert.infos_for(&policy.language);
        for (i, info) in infos.iter().enumerate() {
            // Producers repeat a block word for word; it is one warning.
            if info.is_all_clear() || !policy.place.is_targeted_by(info) || infos[..i].contains(info) {
                continue;
            }
            let (start, end) = policy.lifetimes.window(alert, info, entry.received);
            if times.starts < start || times.ends >= end {
                continue;
            }
            let shown = shown(entry, info, signal, mark, end, policy);
            all.push((shown, info.onset.map_or(start, |o| o.with_timezone(&Utc))));
        }
    }
    all.sort_by(|(a, ao), (b, bo)| {
        b.treatment
            .cmp(&a.treatment)
            .then(b.severity.rank().cmp(&a.severity.rank()))
            .then(urgency_rank(b.urgency).cmp(&urgency_rank(a.urgency)))
            .then(ao.cmp(bo))
            .then(b.sent.cmp(&a.sent))
            .then(a.key.cmp(&b.key))
    });
    Presentation { all: all.into_iter().map(|(s, _)| s).collect() }
}

/// The next instant after `now` at which [`present`] may answer differently
/// from `shown` (its answer at `now`) with no new message: a block starting
/// or ending, or the takeover's turn passing to the next alert. The player
/// sleeps until then.
///
/// With [`Times`], the answer is in the time base of `ends` (the one the
/// player keeps its clock in): a start `s` comes when `starts` reaches it.
pub fn next_change(store: &Store, policy: &Policy, shown: &Presentation, now: impl Into<Times>) -> Option<DateTime<Utc>> {
    let times: Times = now.into();
    let now = times.ends;
    let mut next: Option<DateTime<Utc>> = None;
    let mut consider = |t: DateTime<Utc>| {
        if t > now {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    for entry in store.entries() {
        for info in &entry.alert.infos {
            let (start, end) = policy.lifetimes.window(&entry.alert, info, entry.received);
            if start > times.starts {
                consider(now + (start - times.starts));
            }
            consider(end);
        }
    }
    if shown.takeover_count(policy) > 1 {
        let step = policy.cycle.num_milliseconds().max(1000);
        let into = now.timestamp_millis().rem_euclid(step);
        consider(now + Duration::milliseconds(step - into));
    }
    next
}

fn urgency_rank(u: Urgency) -> u8 {
    match u {
        Urgency::Immediate => 4,
        Urgency::Expected => 3,
        Urgency::Future => 2,
        Urgency::Unknown => 1,
        Urgency::Past => 0,
    }
}

/// The treatment for a severity and urgency under the policy's thresholds.
pub fn treatment(policy: &Policy, severity: Severity, urgency: Urgency) -> Treatment {
    let at_least = |s: Severity, from: Severity| s.rank() >= from.rank();
    if at_least(severity, policy.takeover_from) && urgency != Urgency::Past {
        Treatment::Takeover
    } else if at_least(severity, policy.banner_from) {
        Treatment::Banner
    } else {
        Treatment::Ticker
    }
}

fn shown(entry: &Entry, info: &Info, signal: Option<Signal>, mark: Option<&'static str>, ends: DateTime<Utc>, policy: &Policy) -> Shown {
    let alert: &Alert = &entry.alert;
    let severity = signal.map_or(info.severity, |s| s.level.severity());
    let title = match signal {
        Some(s) => s.name_zh(&info.event),
        None => info.event.clone(),
    };
    let audio = info
        .resources
        .iter()
        .filter(|r| r.mime_type.as_deref().is_some_and(|m| m.starts_with("audio/")))
        .map(|r| AudioRef { mime_type: r.mime_type.clone().unwrap_or_default(), uri: r.uri.clone(), deref: r.deref.clone(), digest: r.digest.clone() })
        .collect();
    let mut areas: Vec<String> = Vec::new();
    for a in &info.areas {
        if (policy.place.shows_everything() || policy.place.in_area(a)) && !areas.contains(&a.desc) {
            areas.push(a.desc.clone());
        }
    }
    Shown {
        key: entry.key(),
        identifier: alert.identifier.clone(),
        cap_sender: alert.sender.clone(),
        treatment: treatment(policy, severity, info.urgency),
        severity,
        urgency: info.urgency,
        status: alert.status,
        signal,
        title,
        event: info.event.clone(),
        headline: info.headline.clone(),
        description: info.description.clone(),
        instruction: info.instruction.clone(),
        areas,
        sender: info.sender_name.clone().unwrap_or_else(|| alert.sender.clone()),
        sent: alert.sent,
        onset: info.onset,
        ends,
        expires_given: info.expires.is_some(),
        mark,
        audio,
        over_http: entry.source.starts_with("http://"),
        source: entry.source.clone(),
    }
}

/// When to sound the chime: as soon as an alert not heard before reaches
/// the takeover, and again every `interval` while any takeover is up.
#[derive(Debug, Clone, Default)]
pub struct Chime {
    heard: Vec<String>,
    last: Option<DateTime<Utc>>,
}

impl Chime {
    /// Whether to chime now, given the takeover keys in force.
    pub fn due(&mut self, takeover_keys: &[&str], now: DateTime<Utc>, interval: Duration) -> bool {
        if takeover_keys.is_empty() {
            self.heard.clear();
            self.last = None;
            return false;
        }
        let new = takeover_keys.iter().any(|k| !self.heard.iter().any(|h| h == k));
        self.heard = takeover_keys.iter().map(|k| k.to_string()).collect();
        let repeat = interval > Duration::zero() && self.last.is_some_and(|l| now - l >= interval);
        if new || repeat {
            self.last = Some(now);
            return true;
        }
        false
    }

    /// When the chime repeats next, if a takeover is up.
    pub fn next_due(&self, interval: Duration) -> Option<DateTime<Utc>> {
        (interval > Duration::zero() && !self.heard.is_empty()).then_some(self.last? + interval)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::cap;
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn store_with(msgs: &[(&str, &str, &str, &str)]) -> Store {
        let mut s = Store::default();
        for (id, status, event, severity) in msgs {
            let xml = format!(
                "<alert xmlns=\"{}\"><identifier>{id}</identifier><sender>qxt</sender><sent>2026-07-01T08:00:00+08:00</sent>\
                 <status>{status}</status><msgType>Alert</msgType><scope>Public</scope>\
                 <info><category>Met</category><event>{event}</event><urgency>Immediate</urgency>\
                 <severity>{severity}</severity><certainty>Likely</certainty>\
                 <expires>2026-07-01T20:00:00+08:00</expires><senderName>长兴县气象台</senderName><headline>{event}标题</headline>\
                 <area><areaDesc>长兴县</areaDesc><geocode><valueName>CPEAS Geographic Code</valueName><value>330522000000</value></geocode></area>\
                 </info></alert>",
                cap::NS_12
            );
            let a = cap::parse(Path::new("t"), xml.as_bytes()).unwrap().alert;
            s.apply(a, xml, crate::core::alert::authority::FEED, at("2026-07-01T08:00:00+08:00"), &crate::core::alert::authority::Authority::none());
        }
        s
    }

    const NOON: &str = "2026-07-01T12:00:00+08:00";

    #[test]
    fn the_policy_table() {
        let p = Policy::default();
        use Severity::*;
        use Treatment::*;
        for (sev, urg, want) in [
            (Extreme, Urgency::Immediate, Takeover),
            (Severe, Urgency::Expected, Takeover),
            (Extreme, Urgency::Past, Banner),
            (Moderate, Urgency::Immediate, Banner),
            (Unknown, Urgency::Unknown, Banner),
            (Minor, Urgency::Immediate, Ticker),
        ] {
            assert_eq!(treatment(&p, sev, urg), want, "{sev:?} {urg:?}");
        }
        let strict = Policy { takeover_from: Extreme, banner_from: Severe, ..Policy::default() };
        assert_eq!(treatment(&strict, Severe, Urgency::Immediate), Banner);
        assert_eq!(treatment(&strict, Moderate, Urgency::Immediate), Ticker);
    }

    #[test]
    fn signal_colour_decides_over_severity_and_orders_the_screen() {
        let s = store_with(&[
            ("y", "Actual", "高温黄色预警", "Moderate"),
            ("r", "Actual", "暴雨红色预警", "Moderate"), // colour says red
            ("b", "Actual", "大风蓝色预警", "Minor"),
            ("o", "Actual", "台风橙色预警", "Severe"),
        ]);
        let p = Policy { place: Place { region: Some("330522".into()), ..Place::default() }, ..Policy::default() };
        let now = at(NOON);
        let shown = present(&s, &p, now);
        let titles: Vec<&str> = shown.all.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["暴雨红色预警", "台风橙色预警", "高温黄色预警", "大风蓝色预警"]);
        assert_eq!(shown.all[0].treatment, Treatment::Takeover);
        assert_eq!(shown.takeover_count(&p), 2);
        assert_eq!(shown.banner().unwrap().title, "高温黄色预警");
        assert_eq!(shown.ticker(), ["【高温黄色预警】长兴县气象台：高温黄色预警标题", "【大风蓝色预警】长兴县气象台：大风蓝色预警标题"]);
        // The takeover cycles through the top ones.
        let a = shown.takeover(&p, at("2026-07-01T12:00:00+08:00")).unwrap().title.clone();
        let b = shown.takeover(&p, at("2026-07-01T12:00:15+08:00")).unwrap().title.clone();
        assert_ne!(a, b);
        assert_eq!(shown.takeover(&p, at("2026-07-01T12:00:30+08:00")).unwrap().title, a);
    }

    #[test]
    fn status_and_place_filter() {
        let s = store_with(&[("e", "Exercise", "暴雨红色预警", "Extreme"), ("t", "Test", "暴雨红色预警", "Extreme")]);
        let here = Place { region: Some("330522".into()), ..Place::default() };
        let p = Policy { place: here.clone(), ..Policy::default() };
        assert!(present(&s, &p, at(NOON)).all.is_empty(), "exercises and tests are off by default");
        let p = Policy { show_exercise: true, ..p };
        let shown = present(&s, &p, at(NOON));
        assert_eq!(shown.all.len(), 1);
        assert_eq!(shown.all[0].mark, Some("演练"));
        assert!(shown.all[0].ticker_line().starts_with("〔演练〕"));
        let elsewhere = Policy { place: Place { region: Some("110101".into()), ..Place::default() }, ..p.clone() };
        assert!(present(&s, &elsewhere, at(NOON)).all.is_empty());
        assert!(present(&s, &p, at("2026-07-01T20:00:00+08:00")).all.is_empty(), "expired");
        assert!(present(&s, &p, at("2026-07-01T07:59:00+08:00")).all.is_empty(), "before it is effective");
    }

    #[test]
    fn restricted_and_private_messages_are_not_shown_on_public_screens() {
        let mut s = store_with(&[("r", "Actual", "暴雨红色预警", "Extreme")]);
        let scoped = |id: &str, scope: &str, addresses: &str| {
            let xml = format!(
                "<alert xmlns=\"{}\"><identifier>{id}</identifier><sender>qxt</sender><sent>2026-07-01T08:00:00+08:00</sent>\
                 <status>Actual</status><msgType>Alert</msgType><scope>{scope}</scope>{addresses}\
                 <info><category>Met</category><event>暴雨红色预警</event><urgency>Immediate</urgency>\
                 <severity>Extreme</severity><certainty>Likely</certainty><expires>2026-07-01T20:00:00+08:00</expires></info></alert>",
                cap::NS_12
            );
            (cap::parse(Path::new("t"), xml.as_bytes()).unwrap().alert, xml)
        };
        for (id, scope, addr) in [
            ("restricted", "Restricted", "<restriction>staff only</restriction>"),
            ("private", "Private", "<addresses>duty-officer \"county office 1\"</addresses>"),
        ] {
            let (a, xml) = scoped(id, scope, addr);
            s.apply(a, xml, crate::core::alert::authority::FEED, at("2026-07-01T08:00:00+08:00"), &crate::core::alert::authority::Authority::none());
        }
        let public = Policy::default();
        let keys = |p: &Policy| present(&s, p, at(NOON)).all.iter().map(|s| s.key.split(',').nth(1).unwrap_or_default().to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&public), ["r"], "a public screen shows only the public message");
        let addressed = Policy { addresses: vec!["county office 1".into()], ..Policy::default() };
        assert_eq!(keys(&addressed).len(), 2, "a screen named in <addresses> shows the private one too");
        assert!(!keys(&addressed).contains(&"restricted".to_string()), "a restricted message without addresses names no screen");
    }

    #[test]
    fn chime_on_new_takeovers_and_at_the_interval() {
        let mut c = Chime::default();
        let t = at(NOON);
        let iv = Duration::minutes(5);
        assert!(c.due(&["a"], t, iv));
        assert!(!c.due(&["a"], t + Duration::minutes(4), iv));
        assert!(c.due(&["a"], t + Duration::minutes(5), iv));
        assert!(c.due(&["a", "b"], t + Duration::minutes(6), iv), "a new one chimes at once");
        assert!(!c.due(&["b"], t + Duration::minutes(7), iv), "one ending is no news");
        assert!(!c.due(&[], t + Duration::minutes(8), iv));
        assert!(c.due(&["b"], t + Duration::minutes(9), iv), "back after a gap");
        assert_eq!(c.next_due(iv), Some(t + Duration::minutes(14)));
    }

    #[test]
    fn the_player_wakes_only_when_the_answer_can_change() {
        let s = store_with(&[("r", "Actual", "暴雨红色预警", "Extreme"), ("o", "Actual", "台风橙色预警", "Severe")]);
        let p = Policy { place: Place { region: Some("330522".into()), ..Place::default() }, ..Policy::default() };
        let next = |s: &Store, t: &str| next_change(s, &p, &present(s, &p, at(t)), at(t));
        // Two takeovers: the next turn, 15 s steps.
        assert_eq!(next(&s, "2026-07-01T12:00:05+08:00"), Some(at("2026-07-01T12:00:15+08:00")));
        // Before they start: their start; after the last turn-taking: their end.
        assert_eq!(next(&s, "2026-07-01T07:00:00+08:00"), Some(at("2026-07-01T08:00:00+08:00")));
        let one = store_with(&[("r", "Actual", "暴雨红色预警", "Extreme")]);
        assert_eq!(next(&one, "2026-07-01T12:00:05+08:00"), Some(at("2026-07-01T20:00:00+08:00")));
        assert_eq!(next(&one, "2026-07-01T21:00:00+08:00"), None);
    }
}
