//! `estation config check` (the file as it is) and `estation config show`
//! (the settings in force, each with where it came from).

use std::process::ExitCode;

use crate::config::{self, Settings};

/// The file as it is; what the kiosk would use instead goes to stderr.
pub fn check(location: &config::Location) -> anyhow::Result<ExitCode> {
    let loaded = config::load(location)?;
    let problems = loaded.diagnostics();
    if problems.0.is_empty() {
        println!("ok: {}", loaded.note);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{problems}");
    if loaded.unusable.is_some()
        && let Some(why) = config::load_or_last_good(location)?.fallback
    {
        eprintln!("the player and sync cannot use this file: {why}");
    }
    Ok(ExitCode::FAILURE)
}

/// `--json`: the settings as before (`screen_name`, `feed.public_key`…)
/// plus `data_dir` and `origins`, each setting's origin by its name in the
/// file. Text: one `name = value  # origin` line per setting.
pub fn show(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&show_json(settings)?)?);
    } else {
        print!("{}", show_text(settings));
    }
    Ok(ExitCode::SUCCESS)
}

fn show_json(settings: &Settings) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(&settings.config)?;
    let entries = settings.entries();
    let origins: serde_json::Map<String, serde_json::Value> =
        entries.iter().map(|e| Ok((e.key.to_string(), serde_json::to_value(&e.origin)?))).collect::<serde_json::Result<_>>()?;
    if let Some(map) = v.as_object_mut() {
        map.insert("data_dir".into(), settings.data_dir.as_ref().map(|d| d.display().to_string()).into());
        map.insert("origins".into(), origins.into());
    }
    Ok(v)
}

fn show_text(settings: &Settings) -> String {
    let lines: Vec<(String, String)> = settings.entries().into_iter().map(|e| (format!("{} = {}", e.key, e.value), e.origin.to_string())).collect();
    // Origins line up unless a value is long (a list of sources).
    let width = lines.iter().map(|(l, _)| l.chars().count()).filter(|n| *n <= 60).max().unwrap_or(0);
    let mut out = format!("# {}\n", settings.loaded.note);
    for (line, origin) in lines {
        out.push_str(&format!("{line:<width$}  # {origin}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::{Env, Flags, merge};

    #[test]
    fn each_line_says_where_its_value_came_from() {
        let loaded = config::parse(std::path::Path::new("/k/config.toml"), "[screen]\nid = \"cx-1\"\n");
        let env = Env { config: Some("/k/config.toml".into()), data_dir: Some("/opt/e".into()) };
        let s = merge(&Flags::default(), &env, loaded);
        let text = show_text(&s);
        let line = |key: &str| text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("{key}: {text}")).to_string();
        assert_eq!(text.lines().next(), Some("# config from /k/config.toml"));
        assert!(line("config").ends_with("  # $ESTATION_CONFIG"), "{text}");
        assert!(line("screen.id").starts_with("screen.id = \"cx-1\" ") && line("screen.id").ends_with("  # /k/config.toml:2"), "{text}");
        assert!(line("screen.name").starts_with("screen.name = \"科普e站\"") && line("screen.name").ends_with("  # default"), "{text}");
        assert!(line("data_dir").starts_with("data_dir = \"/opt/e\"") && line("data_dir").ends_with("# $ESTATION_DATA_DIR"), "{text}");

        let v = show_json(&s).unwrap();
        assert_eq!(v["screen_id"], "cx-1", "the settings as before");
        assert_eq!(v["data_dir"], "/opt/e");
        assert_eq!(v["origins"]["screen.id"], serde_json::json!({"from": "file", "path": "/k/config.toml", "line": 2}));
        assert_eq!(v["origins"]["screen.name"], serde_json::json!({"from": "default"}));
        assert_eq!(v["origins"]["config"], serde_json::json!({"from": "env", "var": "ESTATION_CONFIG"}));
    }
}
