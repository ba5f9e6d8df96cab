//! CAP 1.2 and 1.1 messages: the typed model, and a reader that checks the
//! rules of the OASIS spec that the XSD alone does not (closed polygons,
//! circles, references on Update/Cancel, identifier characters, time offsets).
//!
//! Elements are matched by namespace and local name, never by prefix, and
//! the reader is liberal where real producers differ harmlessly from the spec
//! (elements out of order, `Z` times in 1.2, case of enumeration words): those
//! are warnings. What would make a screen show the wrong thing (a missing
//! severity, a time without an offset, an open polygon) is an error.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::xml::{self, Element};
use crate::core::diag::{Diagnostic, Diagnostics};

pub const NS_12: &str = "urn:oasis:names:tc:emergency:cap:1.2";
pub const NS_11: &str = "urn:oasis:names:tc:emergency:cap:1.1";
const NS_10: &str = "http://www.incident.com/cap/1.0";
const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Real chains list a few to a dozen earlier messages; more is abuse.
const MAX_REFERENCES: usize = 256;

macro_rules! cap_enum {
    ($(#[$doc:meta])* $name:ident { $($v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $($v),+ }
        impl $name {
            pub const ALL: &[$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

cap_enum!(Status { Actual, Exercise, System, Test, Draft });
cap_enum!(MsgType { Alert, Update, Cancel, Ack, Error });
cap_enum!(Scope { Public, Restricted, Private });
cap_enum!(Category { Geo, Met, Safety, Security, Rescue, Fire, Health, Env, Transport, Infra, CBRNE, Other });
cap_enum!(ResponseType { Shelter, Evacuate, Prepare, Execute, Avoid, Monitor, Assess, AllClear, None });
cap_enum!(Urgency { Immediate, Expected, Future, Past, Unknown });
cap_enum!(
    /// Ordered by [`Severity::rank`], never by declaration order.
    Severity { Extreme, Severe, Moderate, Minor, Unknown }
);
cap_enum!(Certainty { Observed, Likely, Possible, Unlikely, Unknown });

impl Severity {
    /// How much attention the severity asks for. Unknown sits above Minor:
    /// the sender did not say, so it is never silently demoted to the lowest.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Extreme => 4,
            Severity::Severe => 3,
            Severity::Moderate => 2,
            Severity::Unknown => 1,
            Severity::Minor => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Version {
    #[serde(rename = "1.1")]
    Cap11,
    #[serde(rename = "1.2")]
    Cap12,
}

/// A `<valueName>`/`<value>` pair (eventCode, parameter, geocode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// One entry of `<references>`: the earlier message it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub sender: String,
    pub identifier: String,
    /// As written; producers put odd times here, so it is not relied upon.
    pub sent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// A closed ring of points, first == last, at least four.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Polygon(pub Vec<Point>);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Circle {
    pub center: Point,
    pub radius_km: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Area {
    pub desc: String,
    pub polygons: Vec<Polygon>,
    pub circles: Vec<Circle>,
    pub geocodes: Vec<NameValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub desc: String,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub uri: Option<String>,
    /// The resource itself, base64 (`derefUri`); not serialised (can be large).
    #[serde(skip)]
    pub deref: Option<String>,
    /// SHA-1 hex as CAP defines it.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    pub language: String,
    pub categories: Vec<Category>,
    pub event: String,
    pub response_types: Vec<ResponseType>,
    pub urgency: Urgency,
    pub severity: Severity,
    pub certainty: Certainty,
    pub audience: Option<String>,
    pub event_codes: Vec<NameValue>,
    pub effective: Option<DateTime<FixedOffset>>,
    pub onset: Option<DateTime<FixedOffset>>,
    pub expires: Option<DateTime<FixedOffset>>,
    pub sender_name: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub web: Option<String>,
    pub contact: Option<String>,
    pub parameters: Vec<NameValue>,
    pub resources: Vec<Resource>,
    pub areas: Vec<Area>,
}


#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub version: Version,
    pub identifier: String,
    pub sender: String,
    pub sent: DateTime<FixedOffset>,
    pub status: Status,
    pub msg_type: MsgType,
    pub source: Option<String>,
    pub scope: Scope,
    pub restriction: Option<String>,
    pub addresses: Option<String>,
    pub codes: Vec<String>,
    pub note: Option<String>,
    pub references: Vec<Reference>,
    pub incidents: Option<String>,
    pub infos: Vec<Info>,
    /// An enveloped XML signature is present (kept, not verified: feed
    /// alerts are covered by the feed's signature, upstream ones by TLS).
    pub signed: bool,
}

impl Alert {
    /// The info blocks to show for a screen whose language is `lang`: all
    /// blocks in the best language present: `lang` itself, then its base
    /// language, then Chinese, then English, then the first block's language.
    /// Several blocks in one language are different facets and all kept;
    /// the same warning in two languages is never shown twice.
    pub fn infos_for(&self, lang: &str) -> Vec<&Info> {
        let norm = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
        let base = |s: &str| norm(s).split('-').next().unwrap_or_default().to_string();
        let want = norm(lang);
        let langs: Vec<String> = self.infos.iter().map(|i| norm(&i.language)).collect();
        let pick = langs
            .iter()
            .find(|l| **l == want)
            .or_else(|| langs.iter().find(|l| base(l) == base(&want)))
            .or_else(|| langs.iter().find(|l| base(l) == "zh"))
            .or_else(|| langs.iter().find(|l| base(l) == "en"))
            .or(langs.first())
            .cloned();
        match pick {
            Some(p) => self.infos.iter().zip(&langs).filter(|(_, l)| **l == p).map(|(i, _)| i).collect(),
            None => Vec::new(),
        }
    }
}

/// A message that parsed, with what was tolerated on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub alert: Alert,
    pub warnings: Vec<Diagnostic>,
}

/// How strictly a message is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every rule of the spec (`alert check`, publishing): a bad polygon,
    /// circle or resource makes the message invalid.
    Strict,
    /// What a kiosk receives from agencies: a bad polygon, circle or
    /// resource is dropped with a warning (an unclosed polygon is closed), so
    /// one broken shape never hides a warning whose other areas are fine.
    Lenient,
}

/// Reads and checks one CAP document strictly. `file` names it in every problem.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Parsed, Diagnostics> {
    parse_with(file, bytes, Mode::Strict)
}

pub fn parse_with(file: &Path, bytes: &[u8], mode: Mode) -> Result<Parsed, Diagnostics> {
    let root = xml::parse(bytes).map_err(|e| Diagnostics(vec![diag(file, e.line, "document", e.message)]))?;
    from_element_with(file, &root, mode)
}

/// Reads a CAP `<alert>` element already parsed (e.g. embedded in an Atom entry).
pub fn from_element(file: &Path, root: &Element) -> Result<Parsed, Diagnostics> {
    from_element_with(file, root, Mode::Strict)
}

pub fn from_element_with(file: &Path, root: &Element, mode: Mode) -> Result<Parsed, Diagnostics> {
    let mut r = Reader { file, errors: Vec::new(), warnings: Vec::new(), version: Version::Cap12, ns: NS_12, mode };
    let alert = r.alert(root);
    match alert {
        Some(alert) if r.errors.is_empty() => Ok(Parsed { alert, warnings: r.warnings }),
        _ => Err(Diagnostics(r.errors)),
    }
}

fn diag(file: &Path, line: usize, field: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic { file: file.to_path_buf(), line, field: field.to_string(), message: message.into() }
}

struct Reader<'a> {
    file: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    version: Version,
    ns: &'static str,
    mode: Mode,
}

/// Path of an element for messages: `alert/info[2]/area[1]/polygon`.
fn path(parent: &str, name: &str, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("{parent}/{name}[{i}]"),
        None => format!("{parent}/{name}"),
    }
}

impl Reader<'_> {
    fn error(&mut self, line: usize, field: &str, msg: impl Into<String>) {
        self.errors.push(diag(self.file, line, field, msg));
    }
    fn warn(&mut self, line: usize, field: &str, msg: impl Into<String>) {
        self.warnings.push(diag(self.file, line, field, msg));
    }
    /// A broken shape or resource: an error when strict, else dropped.
    fn broken(&mut self, line: usize, field: &str, msg: impl Into<String>) {
        match self.mode {
            Mode::Strict => self.error(line, field, msg),
            Mode::Lenient => self.warn(line, field, format!("{}; ignored", msg.into())),
        }
    }

    /// Checks `el`'s CAP children against the schema's order and names;
    /// reports unknown ones (warning) and repeats of single ones (error).
    fn check_children(&mut self, el: &Element, at: &str, order: &[(&str, bool)]) {
        let mut last = 0usize;
        let mut seen: Vec<&str> = Vec::new();
        for c in &el.children {
            if c.ns.as_deref() == Some(NS_DSIG) && c.name == "Signature" && at == "alert" {
                continue;
            }
            if c.ns.as_deref() != Some(self.ns) {
                continue; // foreign extensions are ignored
            }
            match order.iter().position(|(n, _)| *n == c.name) {
                None => self.warn(c.line, &path(at, &c.name, None), format!("<{}> is not a CAP element here; ignored", c.name)),
                Some(i) => {
                    let (name, repeatable) = order[i];
                    if !repeatable && seen.contains(&name) {
                        self.error(c.line, &path(at, name, None), "appears more than once");
                    }
                    seen.push(name);
                    if i < last {
                        self.warn(c.line, &path(at, name, None), "out of the schema's order; read anyway");
                    }
                    last = last.max(i);
                }
            }
        }
    }

    fn child<'e>(&self, el: &'e Element, name: &str) -> Option<&'e Element> {
        el.children_named(self.ns, name).next()
    }

    fn text(&self, el: &Element, name: &str) -> Option<String> {
        self.child(el, name).and_then(Element::value).map(str::to_string)
    }

    fn required(&mut self, el: &Element, at: &str, name: &str) -> Option<String> {
        let t = self.text(el, name);
        if t.is_none() {
            let line = self.child(el, name).map_or(el.line, |c| c.line);
            let what = if self.child(el, name).is_some() { "is empty" } else { "is missing (required)" };
            self.error(line, &path(at, name, None), what);
        }
        t
    }

    fn enumerated<T: Copy + fmt::Display>(&mut self, el: &Element, at: &str, name: &str, all: &[T], value: &str) -> Option<T> {
        let line = self.child(el, name).map_or(el.line, |c| c.line);
        let field = path(at, name, None);
        if let Some(v) = all.iter().find(|v| v.to_string() == value) {
            return Some(*v);
        }
        if let Some(v) = all.iter().find(|v| v.to_string().eq_ignore_ascii_case(value)) {
            self.warn(line, &field, format!("`{value}` should be written `{v}`"));
            return Some(*v);
        }
        let allowed: Vec<String> = all.iter().map(ToString::to_string).collect();
        self.error(line, &field, format!("`{value}` is not one of {}", allowed.join(", ")));
        None
    }

    fn required_enum<T: Copy + fmt::Display>(&mut self, el: &Element, at: &str, name: &str, all: &[T]) -> Option<T> {
        let v = self.required(el, at, name)?;
        self.enumerated(el, at, name, all, &v)
    }

    fn time(&mut self, el: &Element, at: &str, name: &str) -> Option<DateTime<FixedOffset>> {
        let c = self.child(el, name)?;
        let v = c.value()?;
        let field = path(at, name, None);
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) => {
                let strict = v.len() == 25 && !v.contains('.') && !v.ends_with(['Z', 'z']);
                if self.version == Version::Cap12 && !strict {
                    self.warn(c.line, &field, format!("`{v}`: CAP 1.2 writes times as YYYY-MM-DDThh:mm:ss+hh:mm; read anyway"));
                }
                Some(t)
            }
            Err(_) => {
                let hint = if chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").is_ok() {
                    "has no time zone offset (write e.g. +08:00)"
                } else {
                    "is not a date-time like 2026-07-01T08:00:00+08:00"
                };
                self.error(c.line, &field, format!("`{v}` {hint}"));
                None
            }
        }
    }

    /// `identifier` and `sender` may not contain spaces, commas, `<` or `&`
    /// (they are written into `references` triples).
    fn token(&mut self, el: &Element, at: &str, name: &str) -> Option<String> {
        let v = self.required(el, at, name)?;
        if v.chars().any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&') {
            let line = self.child(el, name).map_or(el.line, |c| c.line);
            self.error(line, &path(at, name, None), format!("`{v}` contains a space, comma, `<` or `&`, which CAP forbids"));
        }
        Some(v)
    }

    fn alert(&mut self, root: &Element) -> Option<Alert> {
        let at = "alert";
        match (root.ns.as_deref(), root.name.as_str()) {
            (Some(NS_12), "alert") => {}
            (Some(NS_11), "alert") => {
                self.version = Version::Cap11;
                self.ns = NS_11;
            }
            (Some(NS_10), "alert") => {
                self.error(root.line, at, "CAP 1.0 is not supported; send CAP 1.1 or 1.2");
                return None;
            }
            (ns, "alert") => {
                let ns = ns.unwrap_or("no namespace");
                self.error(root.line, at, format!("namespace is `{ns}`; CAP 1.2 is {NS_12}"));
                return None;
            }
            (_, other) => {
                self.error(root.line, "document", format!("root element is <{other}>, not a CAP <alert>"));
                return None;
            }
        }
        self.check_children(
            root,
            at,
            &[
                ("identifier", false),
                ("sender", false),
                ("sent", false),
                ("status", false),
                ("msgType", false),
                ("source", false),
                ("scope", false),
                ("restriction", false),
                ("addresses", false),
                ("code", true),
                ("note", false),
                ("references", false),
                ("incidents", false),
                ("info", true),
            ],
        );
        let identifier = self.token(root, at, "identifier");
        let sender = self.token(root, at, "sender");
        let sent = self.time(root, at, "sent");
        if sent.is_none() && self.child(root, "sent").and_then(Element::value).is_none() {
            self.error(root.line, "alert/sent", "is missing (required)");
        }
        let status = self.required_enum(root, at, "status", Status::ALL);
        let msg_type = self.required_enum(root, at, "msgType", MsgType::ALL);
        let scope = self.required_enum(root, at, "scope", Scope::ALL);
        let restriction = self.text(root, "restriction");
        let addresses = self.text(root, "addresses");
        if scope == Some(Scope::Private) && addresses.is_none() {
            self.error(root.line, "alert/addresses", "is required when scope is Private");
        }
        if scope == Some(Scope::Restricted) && restriction.is_none() {
            self.warn(root.line, "alert/restriction", "should say the restriction when scope is Restricted");
        }
        let references = self.references(root);
        if matches!(msg_type, Some(MsgType::Update | MsgType::Cancel | MsgType::Ack | MsgType::Error)) && references.is_empty() {
            let mt = msg_type.map(MsgType::as_str).unwrap_or_default();
            self.error(root.line, "alert/references", format!("is required for msgType {mt} (which messages does it refer to?)"));
        }
        let mut infos = Vec::new();
        let info_els: Vec<&Element> = root.children_named(self.ns, "info").collect();
        let many = info_els.len() > 1;
        for (i, el) in info_els.iter().enumerate() {
            let at = path("alert", "info", many.then_some(i + 1));
            if let Some(info) = self.info(el, &at) {
                infos.push(info);
            }
        }
        let signed = root.children.iter().any(|c| c.ns.as_deref() == Some(NS_DSIG) && c.name == "Signature");
        Some(Alert {
            version: self.version,
            identifier: identifier?,
            sender: sender?,
            sent: sent?,
            status: status?,
            msg_type: msg_type?,
            source: self.text(root, "source"),
            scope: scope?,
            restriction,
            addresses,
            codes: root.children_named(self.ns, "code").filter_map(Element::value).map(str::to_string).collect(),
            note: self.text(root, "note"),
            references,
            incidents: self.text(root, "incidents"),
            infos,
            signed,
        })
    }

    fn references(&mut self, root: &Element) -> Vec<Reference> {
        let Some(el) = self.child(root, "references") else { return Vec::new() };
        let mut out = Vec::new();
        for triple in el.text.split_whitespace() {
            if out.len() == MAX_REFERENCES {
                self.warn(el.line, "alert/references", format!("more than {MAX_REFERENCES} references; the rest are ignored"));
                break;
            }
            let parts: Vec<&str> = triple.split(',').collect();
            match parts.as_slice() {
                [sender, identifier, sent] if !sender.is_empty() && !identifier.is_empty() && !sent.is_empty() => {
                    out.push(Reference { sender: sender.to_string(), identifier: identifier.to_string(), sent: sent.to_string() })
                }
                _ => self.error(el.line, "alert/references", format!("`{triple}` is not a sender,identifier,sent triple")),
            }
        }
        out
    }

    fn info(&mut self, el: &Element, at: &str) -> Option<Info> {
        self.check_children(
            el,
            at,
            &[
                ("language", false),
                ("category", true),
                ("event", false),
                ("responseType", true),
                ("urgency", false),
                ("severity", false),
                ("certainty", false),
                ("audience", false),
                ("eventCode", true),
                ("effective", false),
                ("onset", false),
                ("expires", false),
                ("senderName", false),
                ("headline", false),
                ("description", false),
                ("instruction", false),
                ("web", false),
                ("contact", false),
                ("parameter", true),
                ("resource", true),
                ("area", true),
            ],
        );
        let mut categories = Vec::new();
        for c in el.children_named(self.ns, "category").collect::<Vec<_>>() {
            match c.value() {
                Some(v) => categories.extend(self.enumerated(el, at, "category", Category::ALL, v)),
                None => self.error(c.line, &path(at, "category", None), "is empty"),
            }
        }
        if el.children_named(self.ns, "category").next().is_none() {
            self.error(el.line, &path(at, "category", None), "is missing (at least one is required)");
        }
        let mut response_types = Vec::new();
        for c in el.children_named(self.ns, "responseType").collect::<Vec<_>>() {
            if let Some(v) = c.value() {
                let rt = self.enumerated(el, at, "responseType", ResponseType::ALL, v);
                if self.version == Version::Cap11 && matches!(rt, Some(ResponseType::Avoid | ResponseType::AllClear)) {
                    self.warn(c.line, &path(at, "responseType", None), format!("`{v}` is a CAP 1.2 value; read anyway"));
                }
                response_types.extend(rt);
            }
        }
        let event = self.required(el, at, "event");
        let urgency = self.required_enum(el, at, "urgency", Urgency::ALL);
        let severity = self.required_enum(el, at, "severity", Severity::ALL);
        let certainty = match self.required(el, at, "certainty") {
            // CAP 1.0's "Very Likely" became "Likely".
            Some(v) if v.eq_ignore_ascii_case("very likely") => Some(Certainty::Likely),
            Some(v) => self.enumerated(el, at, "certainty", Certainty::ALL, &v),
            None => None,
        };
        let event_codes = self.pairs(el, at, "eventCode");
        let parameters = self.pairs(el, at, "parameter");
        let effective = self.time(el, at, "effective");
        let onset = self.time(el, at, "onset");
        let expires = self.time(el, at, "expires");
        if let (Some(from), Some(to)) = (effective.or(onset), expires)
            && to < from
        {
            self.warn(el.line, &path(at, "expires", None), "is before effective/onset; the block is already over");
        }
        let mut resources = Vec::new();
        let res_els: Vec<&Element> = el.children_named(self.ns, "resource").collect();
        for (i, r) in res_els.iter().enumerate() {
            resources.extend(self.resource(r, &path(at, "resource", (res_els.len() > 1).then_some(i + 1))));
        }
        let mut areas = Vec::new();
        let area_els: Vec<&Element> = el.children_named(self.ns, "area").collect();
        for (i, a) in area_els.iter().enumerate() {
            areas.extend(self.area(a, &path(at, "area", (area_els.len() > 1).then_some(i + 1))));
        }
        Some(Info {
            language: self.text(el, "language").unwrap_or_else(|| "en-US".into()),
            categories,
            event: event?,
            response_types,
            urgency: urgency?,
            severity: severity?,
            certainty: certainty?,
            audience: self.text(el, "audience"),
            event_codes,
            effective,
            onset,
            expires,
            sender_name: self.text(el, "senderName"),
            headline: self.text(el, "headline"),
            description: self.text(el, "description"),
            instruction: self.text(el, "instruction"),
            web: self.text(el, "web"),
            contact: self.text(el, "contact"),
            parameters,
            resources,
            areas,
        })
    }

    /// `valueName`/`value` pairs. A pair with an empty part is XSD-valid
    /// but says nothing (real NWS messages carry `SAME=`): skipped, warned.
    fn pairs(&mut self, el: &Element, at: &str, name: &str) -> Vec<NameValue> {
        let mut out = Vec::new();
        for c in el.children_named(self.ns, name).collect::<Vec<_>>() {
            let field = |part: &str| path(at, &format!("{name}/{part}"), None);
            let (n, v) = (self.child(c, "valueName"), self.child(c, "value"));
            match (n, v) {
                (None, _) => self.error(c.line, &field("valueName"), "is missing"),
                (_, None) => self.error(c.line, &field("value"), "is missing"),
                (Some(n), Some(v)) => match (n.value(), v.value()) {
                    (Some(n), Some(v)) => out.push(NameValue { name: n.to_string(), value: v.to_string() }),
                    _ => self.warn(c.line, &path(at, name, None), "has an empty valueName or value; ignored"),
                },
            }
        }
        out
    }

    fn resource(&mut self, el: &Element, at: &str) -> Option<Resource> {
        self.check_children(el, at, &[("resourceDesc", false), ("mimeType", false), ("size", false), ("uri", false), ("derefUri", false), ("digest", false)]);
        let desc = self.text(el, "resourceDesc");
        if desc.is_none() {
            self.broken(el.line, &path(at, "resourceDesc", None), "is missing (required)");
        }
        let mime_type = self.text(el, "mimeType");
        if mime_type.is_none() && self.version == Version::Cap12 {
            self.broken(el.line, &path(at, "mimeType", None), "is missing (required in CAP 1.2)");
        }
        let size = match self.text(el, "size") {
            Some(s) => match s.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.broken(el.line, &path(at, "size", None), format!("`{s}` is not a number of bytes"));
                    None
                }
            },
            None => None,
        };
        if self.mode == Mode::Lenient && (desc.is_none() || (mime_type.is_none() && self.version == Version::Cap12)) {
            return None;
        }
        Some(Resource {
            desc: desc?,
            mime_type,
            size,
            uri: self.text(el, "uri"),
            deref: self.text(el, "derefUri"),
            digest: self.text(el, "digest"),
        })
    }

    fn area(&mut self, el: &Element, at: &str) -> Option<Area> {
        self.check_children(el, at, &[("areaDesc", false), ("polygon", true), ("circle", true), ("geocode", true), ("altitude", false), ("ceiling", false)]);
        let desc = self.required(el, at, "areaDesc");
        let mut polygons = Vec::new();
        for (i, p) in el.children_named(self.ns, "polygon").enumerate() {
            let field = path(at, "polygon", Some(i + 1));
            match p.value() {
                None => self.warn(p.line, &field, "is empty; ignored"),
                Some(v) => match parse_polygon(v) {
                    Ok(poly) => polygons.push(poly),
                    Err(e) => {
                        // An unclosed ring is closed when reading leniently.
                        let closed = parse_polygon(&format!("{v} {}", v.split_whitespace().next().unwrap_or_default()));
                        match closed {
                            Ok(poly) if self.mode == Mode::Lenient && e.contains("not closed") => {
                                self.warn(p.line, &field, format!("{e}; closed"));
                                polygons.push(poly);
                            }
                            _ => self.broken(p.line, &field, e),
                        }
                    }
                },
            }
        }
        let mut circles = Vec::new();
        for (i, c) in el.children_named(self.ns, "circle").enumerate() {
            let field = path(at, "circle", Some(i + 1));
            match c.value() {
                None => self.warn(c.line, &field, "is empty; ignored"),
                Some(v) => match parse_circle(v) {
                    Ok(circle) => circles.push(circle),
                    Err(e) => self.broken(c.line, &field, e),
                },
            }
        }
        let geocodes = self.pairs(el, at, "geocode");
        if self.child(el, "ceiling").is_some() && self.child(el, "altitude").is_none() {
            self.warn(el.line, &path(at, "ceiling", None), "is only meaningful with altitude");
        }
        Some(Area { desc: desc?, polygons, circles, geocodes })
    }
}

fn parse_point(s: &str) -> Result<Point, String> {
    let (lat, lon) = s.split_once(',').ok_or_else(|| format!("`{s}` is not a lat,lon pair"))?;
    let num = |v: &str| v.trim().trim_start_matches('+').parse::<f64>().ok().filter(|x| x.is_finite());
    let (Some(lat), Some(lon)) = (num(lat), num(lon)) else {
        return Err(format!("`{s}` is not a lat,lon pair of numbers"));
    };
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} in `{s}` is outside -90..90 (CAP writes latitude first)"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} in `{s}` is outside -180..180"));
    }
    Ok(Point { lat, lon })
}

/// `lat,lon lat,lon …`, any XML whitespace between pairs; ≥ 4 pairs, closed.
pub fn parse_polygon(s: &str) -> Result<Polygon, String> {
    let points = s.split_whitespace().map(parse_point).collect::<Result<Vec<_>, _>>()?;
    if points.len() < 4 {
        return Err(format!("has {} point(s); a polygon needs at least 4 lat,lon pairs", points.len()));
    }
    if points.first() != points.last() {
        return Err("is not closed: the first and last lat,lon pairs must be the same".into());
    }
    Ok(Polygon(points))
}

/// `lat,lon radius` with the radius in kilometres (0 = a point).
pub fn parse_circle(s: &str) -> Result<Circle, String> {
    let mut parts = s.split_whitespace();
    let (Some(center), Some(radius), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`{s}` is not `lat,lon radius_km`"));
    };
    let center = parse_point(center)?;
    match radius.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(Circle { center, radius_km: r }),
        _ => Err(format!("radius `{radius}` is not a non-negative number of kilometres")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"{NS_12}\">\n{body}\n</alert>")
    }

    const HEAD: &str = "<identifier>33052241600000_20260701080000</identifier>
<sender>changxing_qxt</sender>
<sent>2026-07-01T08:00:00+08:00</sent>
<status>Actual</status>
<msgType>Alert</msgType>
<scope>Public</scope>";

    const INFO_ZH: &str = "<info><language>zh-CN</language><category>Met</category><event>暴雨</event>
<urgency>Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty>
<expires>2026-07-01T20:00:00+08:00</expires><headline>暴雨红色预警</headline>
<area><areaDesc>长兴县</areaDesc><polygon>31.0,119.8 31.1,119.9 30.9,120.0 31.0,119.8</polygon>
<circle>31.0,119.9 10</circle><geocode><valueName>CPEAS Geographic Code</valueName><value>330522000000</value></geocode></area></info>";

    const INFO_EN: &str = "<info><category>Met</category><event>Rainstorm</event>
<urgency>Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty></info>";

    fn check(text: &str) -> Result<Parsed, Diagnostics> {
        parse(Path::new("t.xml"), text.as_bytes())
    }

    fn errors(text: &str) -> String {
        check(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_message_reads_into_the_model() {
        let p = check(&doc(&format!("{HEAD}\n{INFO_EN}\n{INFO_ZH}"))).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let a = p.alert;
        assert_eq!((a.version, a.status, a.msg_type, a.scope), (Version::Cap12, Status::Actual, MsgType::Alert, Scope::Public));
        assert_eq!(a.sent.to_rfc3339(), "2026-07-01T08:00:00+08:00");
        assert_eq!(a.infos.len(), 2);
        assert_eq!(a.infos[0].language, "en-US", "language defaults to en-US");
        let zh = &a.infos[1];
        assert_eq!(zh.areas[0].polygons[0].0.len(), 4);
        assert_eq!(zh.areas[0].circles[0].radius_km, 10.0);
        assert_eq!(zh.areas[0].geocodes[0].value, "330522000000");
    }

    #[test]
    fn language_choice_prefers_the_screen_then_chinese_then_english_then_first() {
        let a = check(&doc(&format!("{HEAD}\n{INFO_EN}\n{INFO_ZH}"))).unwrap().alert;
        assert_eq!(a.infos_for("zh-CN")[0].event, "暴雨");
        assert_eq!(a.infos_for("zh-TW")[0].event, "暴雨", "same base language");
        assert_eq!(a.infos_for("en")[0].event, "Rainstorm");
        assert_eq!(a.infos_for("fr")[0].event, "暴雨", "then Chinese");
        let pt = INFO_EN.replace("<category>", "<language>pt-PT</language><category>");
        let a = check(&doc(&format!("{HEAD}\n{pt}\n{INFO_EN}"))).unwrap().alert;
        assert_eq!(a.infos_for("de")[0].language, "en-US", "then English");
        let a = check(&doc(&format!("{HEAD}\n{pt}"))).unwrap().alert;
        assert_eq!(a.infos_for("zh-CN")[0].language, "pt-PT", "then the first");
        let a = check(&doc(&format!("{HEAD}\n{INFO_ZH}\n{INFO_ZH}"))).unwrap().alert;
        assert_eq!(a.infos_for("zh-CN").len(), 2, "two facets in one language are both kept");
    }

    #[test]
    fn prefixed_elements_and_cap_11_read_the_same() {
        let prefixed = doc(&format!("{HEAD}\n{INFO_ZH}"))
            .replace(&format!("<alert xmlns=\"{NS_12}\">"), &format!("<cap:alert xmlns:cap=\"{NS_12}\">"))
            .replace("</alert>", "</cap:alert>");
        let prefixed = regex_like_prefix(&prefixed);
        assert_eq!(check(&prefixed).unwrap().alert.infos[0].event, "暴雨");
        let v11 = doc(&format!("{HEAD}\n{INFO_ZH}")).replace(NS_12, NS_11).replace("08:00:00+08:00</sent>", "00:00:00Z</sent>");
        let p = check(&v11).unwrap();
        assert_eq!(p.alert.version, Version::Cap11);
        assert!(p.warnings.is_empty(), "Z is fine in 1.1: {:?}", p.warnings);
    }

    /// Prefixes every element name inside the root with `cap:`.
    fn regex_like_prefix(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            let close = rest.starts_with('/');
            if close {
                out.push('/');
                rest = &rest[1..];
            }
            if !rest.starts_with('?') && !rest.starts_with("cap:") {
                out.push_str("cap:");
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn each_rule_is_named_with_line_and_element() {
        let no_id = doc(&format!("{HEAD}\n{INFO_ZH}").replace("<identifier>33052241600000_20260701080000</identifier>", ""));
        assert!(errors(&no_id).contains("t.xml:2: alert/identifier: is missing (required)"), "{}", errors(&no_id));
        let status = doc(&format!("{HEAD}\n{INFO_ZH}").replace(">Actual<", ">Real<"));
        assert!(errors(&status).contains("t.xml:6: alert/status: `Real` is not one of Actual, Exercise, System, Test, Draft"), "{}", errors(&status));
        let sev = doc(&format!("{HEAD}\n{INFO_ZH}").replace(">Extreme<", ">Catastrophic<"));
        assert!(errors(&sev).contains("alert/info/severity: `Catastrophic`"));
        let naive = doc(&format!("{HEAD}\n{INFO_ZH}").replace("08:00:00+08:00</sent>", "08:00:00</sent>"));
        assert!(errors(&naive).contains("alert/sent: `2026-07-01T08:00:00` has no time zone offset"));
        let open = doc(&format!("{HEAD}\n{INFO_ZH}").replace("30.9,120.0 31.0,119.8", "30.9,120.0 31.0,119.7"));
        assert!(errors(&open).contains("alert/info/area/polygon[1]: is not closed"));
        let short = doc(&format!("{HEAD}\n{INFO_ZH}").replace("31.1,119.9 30.9,120.0 ", "31.1,119.9 "));
        assert!(errors(&short).contains("has 3 point(s)"));
        let circle = doc(&format!("{HEAD}\n{INFO_ZH}").replace("31.0,119.9 10", "31.0,119.9"));
        assert!(errors(&circle).contains("alert/info/area/circle[1]: `31.0,119.9` is not `lat,lon radius_km`"));
        let lat = doc(&format!("{HEAD}\n{INFO_ZH}").replace("31.1,119.9", "123,119.9"));
        assert!(errors(&lat).contains("latitude 123"));
        let cancel = doc(&HEAD.replace(">Alert<", ">Cancel<"));
        assert!(errors(&cancel).contains("alert/references: is required for msgType Cancel"));
        let space = doc(&format!("{HEAD}\n{INFO_ZH}").replace("changxing_qxt", "changxing qxt"));
        assert!(errors(&space).contains("alert/sender: `changxing qxt` contains a space"));
        let refs = doc(&format!("{HEAD}<references>a,b</references>"));
        assert!(errors(&refs).contains("`a,b` is not a sender,identifier,sent triple"));
        let ns = doc(HEAD).replace(NS_12, "urn:example");
        assert!(errors(&ns).contains("namespace is `urn:example`"));
        assert!(errors("<feed/>").contains("root element is <feed>"));
    }

    #[test]
    fn tolerated_differences_are_warnings() {
        let text = doc(&format!("{HEAD}\n{INFO_ZH}"))
            .replace(">Actual<", ">actual<")
            .replace("08:00:00+08:00</sent>", "00:00:00Z</sent>")
            .replace("<references/>", "");
        let p = check(&text.replace("<scope>Public</scope>", "<scope>Public</scope><references/><fancy>x</fancy>")).unwrap();
        let w: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert!(w.iter().any(|w| w.contains("`actual` should be written `Actual`")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("CAP 1.2 writes times")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("<fancy> is not a CAP element")), "{w:?}");
        assert!(p.alert.references.is_empty(), "an empty <references/> is absent");
    }

    #[test]
    fn lenient_reading_drops_broken_shapes_and_keeps_the_warning() {
        let open = doc(&format!("{HEAD}\n{INFO_ZH}").replace("30.9,120.0 31.0,119.8", "30.9,120.0 31.0,119.7"));
        let swapped = doc(&format!("{HEAD}\n{INFO_ZH}").replace("31.0,119.9 10", "119.9,31.0 10"));
        for text in [open, swapped] {
            assert!(check(&text).is_err(), "strict: invalid");
            let p = parse_with(Path::new("t.xml"), text.as_bytes(), Mode::Lenient).unwrap();
            let area = &p.alert.infos[0].areas[0];
            assert_eq!(area.geocodes[0].value, "330522000000", "the area's code still targets");
            assert!(!p.warnings.is_empty());
        }
    }

    #[test]
    fn geometry_parsers() {
        let p = parse_polygon("31.0,119.8\n\t31.1,+119.9  30.9,120.0 31.0,119.8").unwrap();
        assert_eq!(p.0[1], Point { lat: 31.1, lon: 119.9 });
        assert_eq!(parse_circle("32.9525,-115.5527 0").unwrap().radius_km, 0.0);
        assert!(parse_circle("1,2 -3").is_err());
        assert!(parse_polygon("1,2 3,4 5,6 1,x").is_err());
    }
}
