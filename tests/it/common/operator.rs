//! An operator's folder for the whole-flow tests: keys, playlists, the feed
//! built from them, and the kiosk configs that trust that key.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{estation, stderr, stdout};

pub struct Operator {
    pub dir: tempfile::TempDir,
    /// `public_key = "ed25519:…"` as `feed keygen` printed it.
    pub key_line: String,
}

impl Operator {
    /// Keys in `keys/`, an empty `playlists/`, and the operator's own
    /// `config.toml` (time zone and language of `alert new`).
    pub fn new() -> Operator {
        let dir = tempfile::tempdir().unwrap();
        let out = estation(&dir.path().join("none.toml")).args(["feed", "keygen", "--out"]).arg(dir.path().join("keys")).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let key_line = stdout(&out).trim().to_string();
        assert!(key_line.starts_with("public_key = \"ed25519:"), "{key_line}");
        std::fs::create_dir_all(dir.path().join("playlists")).unwrap();
        super::write_config(dir.path(), "");
        Operator { dir, key_line }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs an `estation` command in the operator's folder; must succeed.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(out.status.success(), "estation {args:?}: {}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    pub fn try_run(&self, args: &[&str]) -> Output {
        estation(&self.path("config.toml")).current_dir(self.dir.path()).args(args).output().unwrap()
    }

    /// A playlist of one full-screen text card in `bg`, a second per turn.
    pub fn card(&self, title: &str, bg: &str) {
        std::fs::write(
            self.path("playlists/main.toml"),
            format!("id = \"main\"\n[defaults]\nduration = \"1s\"\ntransition = \"0s\"\n[[items]]\nkind = \"text\"\ntitle = \"{title}\"\nbackground = \"{bg}\"\n"),
        )
        .unwrap();
    }

    pub fn build(&self) -> Output {
        self.build_from(&self.path("playlists"), &[])
    }

    /// `estation feed build` of `playlists` into this operator's `feed/`.
    pub fn build_from(&self, playlists: &Path, extra: &[&str]) -> Output {
        estation(&self.path("config.toml"))
            .args(["feed", "build"])
            .args(extra)
            .arg("--playlists")
            .arg(playlists)
            .arg("--key")
            .arg(self.path("keys/feed-key.pem"))
            .arg("--out")
            .arg(self.path("feed"))
            .output()
            .unwrap()
    }

    /// A kiosk config in `dir` trusting this operator's key, with its cache in
    /// `dir/cache`: `screen` lines go under `[screen]`, `feed` lines under
    /// `[feed]`, `extra` at the end.
    pub fn kiosk_with(&self, dir: &Path, screen: &str, feed: &str, extra: &str) -> PathBuf {
        super::write_config(dir, &format!("{screen}[feed]\n{feed}{}\n[cache]\ndir = \"{}\"\n{extra}", self.key_line, dir.join("cache").display()))
    }

    /// A kiosk config syncing from `url` (None: no network sync).
    pub fn kiosk(&self, dir: &Path, url: Option<&str>) -> PathBuf {
        self.kiosk_with(dir, "", &url.map(|u| format!("url = \"{u}\"\n")).unwrap_or_default(), "")
    }
}

/// `estation status --json` of a kiosk.
pub fn status_json(config: &Path) -> serde_json::Value {
    let out = estation(config).args(["status", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}
