//! Where a setting's value came from. A screen that does something odd is
//! explained by one line of `estation config show`: a value in the file, an
//! environment variable left in a unit file, a flag, or nothing at all.

use std::fmt;
use std::path::PathBuf;

/// The source of one setting's value, as [`super::settings::resolve`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Origin {
    /// Built in (for folders: the platform's usual place). Also what a field
    /// whose value was refused ends up with; its problem is reported apart.
    Default,
    /// A line of the config file.
    File { path: PathBuf, line: usize },
    /// A line of the config's last good copy (see [`super::last_good`]),
    /// used because the file itself cannot be.
    LastGood { path: PathBuf, line: usize },
    /// An environment variable.
    Env { var: &'static str },
    /// A command-line flag.
    Flag { flag: &'static str },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::LastGood { path, line } => write!(f, "{}:{line} (last good copy)", path.display()),
            Origin::Env { var } => write!(f, "${var}"),
            Origin::Flag { flag } => f.write_str(flag),
        }
    }
}

/// The first layer that has a value, with its origin; `default` when none
/// has. Layers go highest first: command line, environment, config file.
///
/// ```
/// use estation::config::origin::{pick, Origin};
/// let flag = Origin::Flag { flag: "--x" };
/// assert_eq!(pick([None, Some((2, flag.clone()))], 0), (2, flag));
/// assert_eq!(pick([None::<(i32, Origin)>, None], 0), (0, Origin::Default));
/// ```
pub fn pick<T>(layers: impl IntoIterator<Item = Option<(T, Origin)>>, default: T) -> (T, Origin) {
    layers.into_iter().flatten().next().unwrap_or((default, Origin::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_over_env_over_file_over_default() {
        let flag = Some(("cli", Origin::Flag { flag: "--x" }));
        let env = Some(("env", Origin::Env { var: "X" }));
        let file = Some(("file", Origin::File { path: "c.toml".into(), line: 3 }));
        assert_eq!(pick([flag.clone(), env.clone(), file.clone()], "default").0, "cli");
        assert_eq!(pick([None, env.clone(), file.clone()], "default"), ("env", Origin::Env { var: "X" }));
        assert_eq!(pick([None, None, file.clone()], "default"), file.clone().unwrap());
        assert_eq!(pick([None, None, None], "default"), ("default", Origin::Default));
    }

    #[test]
    fn said_as_an_operator_reads_it() {
        assert_eq!(Origin::File { path: "/etc/estation/config.toml".into(), line: 12 }.to_string(), "/etc/estation/config.toml:12");
        assert_eq!(Origin::LastGood { path: "/c/config.last-good.toml".into(), line: 2 }.to_string(), "/c/config.last-good.toml:2 (last good copy)");
        assert_eq!(Origin::Env { var: "ESTATION_DATA_DIR" }.to_string(), "$ESTATION_DATA_DIR");
        assert_eq!(Origin::Flag { flag: "--config" }.to_string(), "--config");
        assert_eq!(
            serde_json::to_value(Origin::File { path: "c.toml".into(), line: 3 }).unwrap(),
            serde_json::json!({"from": "file", "path": "c.toml", "line": 3})
        );
        assert_eq!(serde_json::to_value(Origin::Env { var: "X" }).unwrap(), serde_json::json!({"from": "env", "var": "X"}));
    }
}
