//! Problems found in an input file, reported as `file:line: field: message`
//! (`file: field: message` when the problem is the whole file).
//!
//! Playlists and the config are TOML written by hand by operators, so every
//! problem names where it is. Serde errors only carry a byte span, so the
//! dotted field path is recovered from the source text around that span.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A problem with the whole file has no line: `file: field: message`.
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        write!(f, ": {}: {}", self.field, self.message)
    }
}

/// All problems found in one or more files, as one error value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Maps byte offsets of one TOML source to lines and field paths.
pub(crate) struct SourceMap<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        SourceMap { file, text }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn diag(&self, offset: usize, field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line: self.line_of(offset),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Turns a TOML/serde error into a diagnostic at its span.
    pub fn toml_error(&self, e: &toml::de::Error) -> Diagnostic {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_string();
        let field = unknown_field_name(&message)
            .map(|name| {
                let table = self.table_path_at(offset);
                if table.is_empty() { name } else { format!("{table}.{name}") }
            })
            .unwrap_or_else(|| self.field_at(offset));
        Diagnostic {
            file: self.file.to_path_buf(),
            line: if e.span().is_some() { self.line_of(offset) } else { 0 },
            field,
            message,
        }
    }

    /// The dotted path of the table header in force at `offset`, with array
    /// tables numbered from 1 the way people count (`items[3]`).
    pub fn table_path_at(&self, offset: usize) -> String {
        let mut path = String::new();
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut pos = 0;
        for line in self.text.split_inclusive('\n') {
            if pos > offset {
                break;
            }
            let t = line.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                let name = name.trim().to_string();
                let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((name.clone(), 1));
                        1
                    }
                };
                path = format!("{name}[{n}]");
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                let name = name.trim();
                // `[items.validity]`-style sub-tables of the last array entry.
                path = match counts.iter().find(|(k, _)| name.starts_with(&format!("{k}."))) {
                    Some((k, n)) => format!("{k}[{n}]{}", &name[k.len()..]),
                    None => name.to_string(),
                };
            }
            pos += line.len();
        }
        path
    }

    /// The dotted path of the key on the line containing `offset`.
    pub fn field_at(&self, offset: usize) -> String {
        let table = self.table_path_at(offset);
        let line_start = self.text[..offset.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next().unwrap_or("");
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        match (table.is_empty(), key) {
            (true, Some(k)) => k,
            (false, Some(k)) => format!("{table}.{k}"),
            (false, None) => table,
            (true, None) => "(file)".into(),
        }
    }
}

/// Serde's message for `deny_unknown_fields` is "unknown field `x`, expected …".
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name = \"x\"\n\n[schedule]\npriority = 3\n\n[[items]]\nkind = \"text\"\n\n[[items]]\nkind = \"qr\"\nduration = 5\n";

    #[test]
    fn lines_and_fields_follow_table_headers() {
        let map = SourceMap::new(Path::new("a.toml"), SRC);
        let at = |needle: &str| SRC.find(needle).unwrap();
        assert_eq!(map.line_of(at("priority")), 4);
        assert_eq!(map.field_at(at("priority")), "schedule.priority");
        assert_eq!(map.field_at(at("duration")), "items[2].duration");
        assert_eq!(map.field_at(at("name")), "name");
        assert_eq!(map.field_at(at("\"text\"")), "items[1].kind");
    }

    #[test]
    fn display_is_file_line_field_message() {
        let d = Diagnostic {
            file: "p.toml".into(),
            line: 7,
            field: "items[1].duration".into(),
            message: "must be at least 1s".into(),
        };
        assert_eq!(d.to_string(), "p.toml:7: items[1].duration: must be at least 1s");
    }
}
