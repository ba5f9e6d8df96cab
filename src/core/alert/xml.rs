//! A small owned element tree read with quick-xml, safe for untrusted input.
//!
//! CAP messages and their Atom/RSS indexes come from the network, so the
//! reader refuses what XML attacks are made of: a `<!DOCTYPE>` (the only way
//! to declare entities, hence XXE and "billion laughs") and any entity other
//! than the five predefined ones and character references. Nothing referenced
//! from inside a document is ever fetched. Depth and element count are capped.
//!
//! A tree (rather than streaming) keeps the CAP and Atom readers simple and
//! lets an Atom entry hand its embedded `<alert>` to the CAP reader as is.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Largest document accepted: a CAP message with an embedded (base64) audio
/// resource can be a few hundred KB; an index of many fat entries a few MB.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// Namespace URI, if the name is bound to one.
    pub ns: Option<String>,
    /// Local name (no prefix).
    pub name: String,
    /// Attributes by local name (prefixes dropped; CAP and Atom use none that clash).
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own text (character data and CDATA), entities resolved.
    pub text: String,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Children with this local name in namespace `ns`.
    pub fn children_named<'a, 'n>(&'a self, ns: &'n str, name: &'n str) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name && c.ns.as_deref() == Some(ns))
    }

    /// Trimmed text; `None` when empty (`<references/>` counts as absent).
    pub fn value(&self) -> Option<&str> {
        let t = self.text.trim();
        (!t.is_empty()).then_some(t)
    }

    /// Writes the element back as a standalone XML document (namespaces as
    /// default declarations). CAP has no mixed content, so text is written
    /// before children.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out, None);
        out
    }

    fn write(&self, out: &mut String, parent_ns: Option<&str>) {
        use quick_xml::escape::escape;
        out.push('<');
        out.push_str(&self.name);
        if self.ns.as_deref() != parent_ns {
            out.push_str(&format!(" xmlns=\"{}\"", escape(self.ns.as_deref().unwrap_or_default())));
        }
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        out.push('>');
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.write(out, self.ns.as_deref());
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// Depth-first search for the first element with this name in `ns`.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        if self.name == name && self.ns.as_deref() == Some(ns) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(ns, name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct XmlError {
    pub line: usize,
    pub message: String,
}

/// The document as UTF-8 text to store and read again: itself when it is
/// UTF-8 already, else its tree written out as UTF-8 (a stored ISO-8859-1
/// message would otherwise be read back through its old declaration).
pub fn utf8_text(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(200)];
    let utf8 = declared_encoding(head).is_none_or(|e| e.eq_ignore_ascii_case("utf-8") || e.eq_ignore_ascii_case("utf8"));
    match (utf8, std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))) {
        (true, Ok(s)) => s.to_string(),
        _ => parse(bytes).map(|root| root.to_xml()).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let at = |line: usize, message: String| XmlError { line, message };
    if bytes.len() > MAX_BYTES {
        return Err(at(1, format!("document is {} bytes; at most {MAX_BYTES} are accepted", bytes.len())));
    }
    let text = decode(bytes).map_err(|m| at(1, m))?;
    if text.trim().is_empty() {
        return Err(at(1, "empty document".into()));
    }
    let lines = LineIndex::new(&text);
    let mut reader = NsReader::from_str(&text);
    reader.config_mut().check_end_names = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position() as usize;
        let event = reader.read_resolved_event();
        let (ns, event) = match event {
            Ok(x) => x,
            Err(e) => return Err(at(lines.line(reader.error_position() as usize), format!("not well-formed XML: {e}"))),
        };
        let line = lines.line(pos);
        match event {
            Event::DocType(_) => {
                return Err(at(line, "<!DOCTYPE> is not allowed: DTDs and entity declarations are refused (XXE)".into()));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(at(line, "document too large or nested too deep".into()));
                }
                if root.is_some() && stack.is_empty() {
                    return Err(at(line, "more than one root element".into()));
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.into_inner()).into_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(at(line, format!("undeclared namespace prefix `{}`", String::from_utf8_lossy(&p))));
                    }
                };
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| at(line, format!("bad attribute: {e}")))?;
                    let key = String::from_utf8_lossy(a.key.local_name().into_inner()).into_owned();
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| at(line, format!("attribute `{key}`: {e}")))?;
                    attrs.push((key, value.into_owned()));
                }
                let el = Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().into_inner()).into_owned(),
                    attrs,
                    children: Vec::new(),
                    text: String::new(),
                    line,
                };
                if matches!(event, Event::Empty(_)) {
                    close(el, &mut stack, &mut root);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| at(line, "unexpected end tag".into()))?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| at(line, format!("text: {e}")))?;
                push_text(&mut stack, &s, line)?;
            }
            Event::CData(t) => {
                let s = t.xml10_content().map_err(|e| at(line, format!("CDATA: {e}")))?;
                push_text(&mut stack, &s, line)?;
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| at(line, format!("entity: {e}")))?;
                let resolved = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(at(line, format!("bad character reference `&{name};`"))),
                    }
                } else if let Some(v) = quick_xml::escape::resolve_predefined_entity(&name) {
                    v.to_string()
                } else {
                    return Err(at(line, format!("undefined entity `&{name};` (only the five XML entities are allowed)")));
                };
                push_text(&mut stack, &resolved, line)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(at(lines.line(text.len()), format!("document ends inside <{}> (truncated?)", open.name)));
    }
    root.ok_or_else(|| at(1, "no root element".into()))
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], s: &str, line: usize) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(XmlError { line, message: "text outside the root element".into() }),
    }
}

/// UTF-8 (with or without BOM), or ISO-8859-1 when the declaration says so
/// (some CAP producers still declare it). Anything else is refused by name.
fn decode(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err("UTF-16 documents are not supported; CAP must be UTF-8".into());
    }
    let head = &bytes[..bytes.len().min(200)];
    let encoding = declared_encoding(head).unwrap_or_else(|| "utf-8".into());
    match encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes.to_vec()).map_err(|e| format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to())),
        "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => Err(format!("encoding `{encoding}` is not supported; use UTF-8")),
    }
}

fn declared_encoding(head: &[u8]) -> Option<String> {
    let head = std::str::from_utf8(head).ok().or_else(|| std::str::from_utf8(&head[..head.iter().position(|&b| b >= 0x80)?]).ok())?;
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Byte offset → 1-based line number.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect())
    }
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_text_and_entities() {
        let doc = "<?xml version='1.0'?>\n<cap:alert xmlns:cap='urn:x'>\n <cap:note>a &amp; b &#x4E2D;<![CDATA[<c>]]></cap:note><x k=\"v&lt;\"/></cap:alert>";
        let root = parse(doc.as_bytes()).unwrap();
        assert_eq!((root.ns.as_deref(), root.name.as_str()), (Some("urn:x"), "alert"));
        let note = root.children_named("urn:x", "note").next().unwrap();
        assert_eq!(note.value(), Some("a & b 中<c>"));
        assert_eq!(note.line, 3);
        assert_eq!(root.children[1].attr("k"), Some("v<"));
        assert_eq!(root.children[1].ns, None);
        // Written back and read again: the same tree (lines aside).
        let again = parse(root.to_xml().as_bytes()).unwrap();
        assert_eq!(again.children[0].value(), note.value());
        assert_eq!((again.ns.as_deref(), again.children[1].ns.as_deref()), (Some("urn:x"), None));
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let xxe = "<?xml version='1.0'?>\n<!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n<a>&x;</a>";
        let e = parse(xxe.as_bytes()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("DOCTYPE"), "{e}");
        let e = parse(b"<a>&x;</a>").unwrap_err();
        assert!(e.message.contains("undefined entity `&x;`"), "{e}");
    }

    #[test]
    fn truncated_empty_and_foreign_encodings_are_named() {
        assert!(parse(b"<a><b>text").unwrap_err().message.contains("ends inside <b>"));
        assert_eq!(parse(b"").unwrap_err().message, "empty document");
        assert!(parse(b"<a></b>").is_err());
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>S\xE3o Paulo</a>";
        assert_eq!(parse(latin).unwrap().text, "São Paulo");
        // Stored as UTF-8, it reads the same again.
        assert_eq!(parse(utf8_text(latin).as_bytes()).unwrap().text, "São Paulo");
        let gbk = b"<?xml version=\"1.0\" encoding=\"GBK\"?><a/>";
        assert!(parse(gbk).unwrap_err().message.contains("`GBK` is not supported"));
        assert_eq!(parse(b"\xEF\xBB\xBF<a>x</a>").unwrap().text, "x");
    }
}
