//! CAP documents and the Atom / RSS indexes that national services publish.
//!
//! An index lists one entry per warning, either linking to the CAP message
//! (NWS, HKO, Macau SMG, the WMO mirrors) or embedding it ("fat" feeds).
//! Each entry is read on its own: one bad entry is reported and skipped, the
//! others are kept.

use std::path::Path;

use super::cap::{self, Mode, NS_11, NS_12, Parsed};
use super::xml::{self, Element};
use crate::core::diag::{Diagnostic, Diagnostics};

const NS_ATOM: &str = "http://www.w3.org/2005/Atom";

/// What a fetched or checked file turned out to be.
#[derive(Debug)]
pub enum Document {
    Alert(Box<Parsed>),
    Index(Vec<Entry>),
}

#[derive(Debug)]
pub struct Entry {
    /// Atom `<id>` / RSS `<guid>`, else the link.
    pub id: String,
    pub title: Option<String>,
    /// Atom `<updated>` / RSS `<pubDate>`, as written.
    pub updated: Option<String>,
    pub content: Content,
}

#[derive(Debug)]
pub enum Content {
    /// The `<alert>` inside the entry, read (or why it could not be).
    Embedded(Box<Embedded>),
    /// A link to the CAP message, as written (may be relative).
    Link(String),
    /// Neither: the entry cannot be followed.
    Missing,
}

#[derive(Debug)]
pub struct Embedded {
    pub result: Result<Parsed, Diagnostics>,
    /// The message as a document of its own (for the alert store).
    pub xml: String,
}

/// Reads a CAP message, an Atom feed or an RSS 2.0 channel, strictly.
pub fn read(file: &Path, bytes: &[u8]) -> Result<Document, Diagnostics> {
    read_with(file, bytes, Mode::Strict)
}

/// Reads in the given [`Mode`] (kiosks read what agencies send leniently).
pub fn read_with(file: &Path, bytes: &[u8], mode: Mode) -> Result<Document, Diagnostics> {
    let root = xml::parse(bytes).map_err(|e| one(file, e.line, "document", e.message))?;
    match (root.ns.as_deref(), root.name.as_str()) {
        (_, "alert") => cap::from_element_with(file, &root, mode).map(|p| Document::Alert(Box::new(p))),
        (Some(NS_ATOM), "feed") => Ok(Document::Index(root.children_named(NS_ATOM, "entry").map(|e| atom_entry(file, e, mode)).collect())),
        (None, "rss") => {
            let channel = root.children.iter().find(|c| c.name == "channel" && c.ns.is_none());
            let items = channel.map(|c| c.children.iter().filter(|i| i.name == "item" && i.ns.is_none()).collect::<Vec<_>>()).unwrap_or_default();
            Ok(Document::Index(items.into_iter().map(|i| rss_item(file, i, mode)).collect()))
        }
        (_, other) => Err(one(file, root.line, "document", format!("<{other}> is neither a CAP alert nor an Atom or RSS feed"))),
    }
}

fn one(file: &Path, line: usize, field: &str, message: String) -> Diagnostics {
    Diagnostics(vec![Diagnostic { file: file.to_path_buf(), line, field: field.into(), message }])
}

fn embedded(file: &Path, el: &Element, mode: Mode) -> Option<Content> {
    if let Some(alert) = el.find(NS_12, "alert").or_else(|| el.find(NS_11, "alert")) {
        return Some(Content::Embedded(Box::new(Embedded { result: cap::from_element_with(file, alert, mode), xml: alert.to_xml() })));
    }
    // Some feeds escape the message into the content's text. Only a text
    // whose root is a CAP <alert> counts: HTML summaries ("<p>Weather
    // alert…") are not messages, and the entry's link is followed instead.
    let content = el.children.iter().find(|c| c.name == "content" || c.name == "description")?;
    let text = content.text.trim();
    let root = xml::parse(text.as_bytes()).ok().filter(|r| r.name == "alert" && matches!(r.ns.as_deref(), Some(NS_12 | NS_11)))?;
    Some(Content::Embedded(Box::new(Embedded { result: cap::from_element_with(file, &root, mode), xml: root.to_xml() })))
}

fn atom_entry(file: &Path, e: &Element, mode: Mode) -> Entry {
    let text = |name: &str| e.children_named(NS_ATOM, name).next().and_then(Element::value).map(str::to_string);
    let links: Vec<&Element> = e.children_named(NS_ATOM, "link").collect();
    // Prefer a link typed as CAP, then an alternate, then any other that is
    // not the entry's own (self/edit) link.
    let own = |l: &&&Element| l.attr("rel").is_some_and(|r| r == "self" || r == "edit");
    let link = links
        .iter()
        .find(|l| l.attr("type").is_some_and(|t| t.contains("cap")))
        .or_else(|| links.iter().filter(|l| !own(l)).find(|l| l.attr("rel").is_none_or(|r| r == "alternate")))
        .or_else(|| links.iter().find(|l| !own(l)))
        .and_then(|l| l.attr("href"))
        .map(str::to_string);
    let content = embedded(file, e, mode).or_else(|| link.clone().map(Content::Link)).unwrap_or(Content::Missing);
    Entry {
        id: text("id").or_else(|| link.clone()).unwrap_or_else(|| format!("line {}", e.line)),
        title: text("title"),
        updated: text("updated").or_else(|| text("published")),
        content,
    }
}

fn rss_item(file: &Path, i: &Element, mode: Mode) -> Entry {
    let text = |name: &str| i.children.iter().find(|c| c.name == name && c.ns.is_none()).and_then(Element::value).map(str::to_string);
    let link = text("link");
    let content = embedded(file, i, mode).or_else(|| link.clone().map(Content::Link)).unwrap_or(Content::Missing);
    Entry {
        id: text("guid").or_else(|| link.clone()).unwrap_or_else(|| format!("line {}", i.line)),
        title: text("title"),
        updated: text("pubDate"),
        content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>a1</identifier><sender>s</sender>\
        <sent>2026-07-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope></alert>";

    #[test]
    fn atom_links_and_embedded_alerts_with_one_bad_entry() {
        let bad = ALERT.replace("Actual", "Real").replace("a1", "a2");
        let feed = format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><id>f</id>\
             <entry><id>e1</id><title>t1</title><link rel=\"self\" href=\"feed.xml\"/><link href=\"a.xml\" type=\"application/cap+xml\"/></entry>\
             <entry><id>e2</id><content type=\"text/xml\">{ALERT}</content></entry>\
             <entry><id>e3</id><content type=\"text/xml\">{bad}</content></entry>\
             <entry><id>e4</id><content type=\"text\">{}</content></entry>\
             <entry><id>e5</id></entry>\
             <entry><id>e6</id><content type=\"html\">&lt;p&gt;Weather alert&lt;/p&gt;</content><link rel=\"self\" href=\"e6.atom\"/><link href=\"e6.xml\"/></entry></feed>",
            ALERT.replace('<', "&lt;").replace('>', "&gt;")
        );
        let Document::Index(entries) = read(Path::new("f.xml"), feed.as_bytes()).unwrap() else { panic!() };
        assert_eq!(entries.len(), 6);
        assert!(matches!(&entries[5].content, Content::Link(l) if l == "e6.xml"), "HTML content: the link, not self: {:?}", entries[5].content);
        assert!(matches!(&entries[0].content, Content::Link(l) if l == "a.xml"));
        assert!(matches!(&entries[1].content, Content::Embedded(e) if e.result.as_ref().is_ok_and(|p| p.alert.identifier == "a1")));
        assert!(matches!(&entries[2].content, Content::Embedded(e) if e.result.is_err()));
        assert!(matches!(&entries[3].content, Content::Embedded(e) if e.result.is_ok()), "escaped CAP in text content");
        // The embedded message stands on its own for the store.
        let Content::Embedded(e) = &entries[1].content else { panic!() };
        assert_eq!(cap::parse(Path::new("x"), e.xml.as_bytes()).unwrap().alert.identifier, "a1");
        assert!(matches!(entries[4].content, Content::Missing));
    }

    #[test]
    fn rss_items_and_plain_alerts() {
        let rss = "<rss version=\"2.0\"><channel><title>c</title><item><title>t</title><link>https://x/a.xml</link><guid>g</guid></item></channel></rss>";
        let Document::Index(e) = read(Path::new("r.xml"), rss.as_bytes()).unwrap() else { panic!() };
        assert_eq!(e[0].id, "g");
        assert!(matches!(&e[0].content, Content::Link(l) if l == "https://x/a.xml"));
        assert!(matches!(read(Path::new("a.xml"), ALERT.as_bytes()).unwrap(), Document::Alert(_)));
        assert!(read(Path::new("x.xml"), b"<html/>").unwrap_err().to_string().contains("neither a CAP alert"));
    }
}
