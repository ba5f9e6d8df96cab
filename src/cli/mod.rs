//! The `estation` command line: the player and the operator tools.

mod alert_cmd;
mod backoff_cmd;
mod command_cmd;
mod config_cmd;
mod doctor;
mod feed_cmd;
mod playlist_cmd;
mod push_args;
mod report_cmd;
mod status_cmd;
#[cfg(feature = "net")]
mod sync_cmd;
mod xsession_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, Settings};
use crate::config::settings::{Env, Flags};

/// estation: science-popularization kiosk player and operator tools.
#[derive(Debug, Parser)]
#[command(name = "estation", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: $ESTATION_CONFIG, ~/.config/estation/config.toml,
    /// then /etc/estation/config.toml).
    #[arg(long, global = false, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play full-screen (the default when no command is given).
    Play(PlayArgs),
    /// Check playlists and see what plays when.
    #[command(subcommand)]
    Playlist(PlaylistCommand),
    /// Check or show the config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Publish content: keys, build and sign a feed, verify it, serve it.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Weather and disaster warnings (CAP): write, check, publish, cancel.
    #[command(subcommand)]
    Alert(alert_cmd::AlertCommand),
    /// Send a signed command to one screen or a region over push, e.g.
    /// `command sync --region 330500 --key keys/feed-key.pem --push mqtts://…`.
    #[command(name = "command")]
    Remote(command_cmd::CommandArgs),
    /// Bring the offline cache up to the feed's newest version.
    #[cfg(feature = "net")]
    Sync {
        /// One sync, then exit (default: keep syncing every feed.interval).
        #[arg(long)]
        once: bool,
        /// Load a feed folder (a USB stick) instead of the feed URL; implies --once.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
    },
    /// The feed version in the cache, the last sync, downloads pending, the
    /// playing item.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Check the offline cache as the player trusts it.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// What this screen showed (proof of play, 考核): plays and minutes per
    /// item or per day, hours on, and each warning's first and last time
    /// on screen, from the player's own log.
    Report(report_cmd::ReportArgs),
    /// Checks this machine as a kiosk and says how to fix what is wrong:
    /// renderer (GPU, driver), display session, fonts, video decoders,
    /// sound device, config, cache and disk, the feed (reachable, key,
    /// clock), and the kiosk unit. Exits 1 when something needs fixing.
    Doctor,
    /// Before the kiosk unit starts the player: records the start and, when
    /// the last starts came quickly (a crash loop), waits 5 s, 10 s, 20 s …
    /// up to 2 min. Run by the unit's ExecStartPre.
    #[command(hide = true)]
    Backoff {
        /// Where the starts are kept (the unit's StateDirectory).
        #[arg(long, env = "STATE_DIRECTORY", default_value = "/var/lib/estation")]
        state: PathBuf,
    },
    /// The X11 kiosk session (the estation-x11 package's unit): an X server
    /// of its own on TTY, as this user, with only the player in it, no
    /// cursor, and a fresh cookie so no other user can connect.
    #[command(hide = true)]
    Xsession {
        /// The unit's virtual terminal, e.g. tty1.
        tty: String,
        /// Print the command instead of running it.
        #[arg(long)]
        dry_run: bool,
        /// More options for `estation play` (after `--`).
        #[arg(last = true, value_name = "PLAY_OPTIONS")]
        play: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Check the cached version: the signature of current.json, the digest of
    /// every file it lists, and that its playlists load. Changes nothing.
    /// Exit 0 when all is good (or no version is cached yet), 1 otherwise.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Make an ed25519 key pair: DIR/feed-key.pem (private, mode 0600) and
    /// DIR/feed-key.pub; prints the line for the kiosks' config.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Build (or update) a signed, content-addressed feed from playlists.
    Build {
        /// A playlist file or a folder of them; their pictures come along.
        #[arg(long, value_name = "PATH")]
        playlists: PathBuf,
        /// A folder of CAP alert documents (*.xml) to publish with them.
        #[arg(long, value_name = "DIR")]
        alerts: Option<PathBuf>,
        /// The private key (feed-key.pem).
        #[arg(long, value_name = "PRIVATE")]
        key: PathBuf,
        /// The feed folder to write (created; an existing feed is updated).
        #[arg(long, value_name = "FEED")]
        out: PathBuf,
        /// How long kiosks accept this build as new, e.g. 14d, 36h.
        #[arg(long, value_name = "DURATION", default_value = "14d", value_parser = parse_duration)]
        expires: Duration,
        #[command(flatten)]
        push: crate::config::push_args::PushArgs,
    },
    /// Check a feed folder: signature and every file's hash.
    Verify {
        feed: PathBuf,
        /// `ed25519:…`, or a file holding it (feed-key.pub).
        #[arg(long, value_name = "KEY")]
        public_key: String,
    },
    /// Serve a feed folder over HTTP (ETag/304, ranges, access log).
    #[cfg(feature = "net")]
    Serve {
        feed: PathBuf,
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
        /// Time a client has to send its request headers (and the longest a
        /// kept-alive connection may sit idle).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        header_timeout: Duration,
        /// Most connections open at once; more wait until one closes.
        #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
        max_connections: u32,
    },
}

/// Options of `estation play`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PlayArgs {
    /// Playlist file or folder of playlists (default: the config's
    /// `player.playlist`, else the bundled demo).
    #[arg(long, value_name = "PATH")]
    pub playlist: Option<PathBuf>,
    /// Open a window of this size instead of going full screen, e.g. 1280x720.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub window: Option<(u32, u32)>,
    /// Save what is on screen to this PNG file (see --screenshot-at). With
    /// several times, `-1`, `-2`… is added before the extension.
    #[arg(long, value_name = "PATH")]
    pub screenshot: Option<PathBuf>,
    /// When to take the screenshot(s), after the first frame: e.g. 5s, or
    /// 9s,9.3s,9.6s for several.
    #[arg(long, value_name = "DURATION[,…]", value_delimiter = ',', value_parser = parse_duration, requires = "screenshot")]
    pub screenshot_at: Vec<Duration>,
    /// Quit after this long, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub exit_after: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum PlaylistCommand {
    /// Validate playlist files (or folders of them). Exit 0 when all are
    /// good; otherwise print `file:line: field: message` per problem, exit 1.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Which playlist and item play at a time, which rule chose them, and
    /// when the next change is.
    At {
        /// A playlist file or a folder of them.
        path: PathBuf,
        /// The instant, RFC 3339 with offset, e.g. 2026-11-23T08:00:00+08:00.
        #[arg(long, value_parser = parse_time)]
        time: chrono::DateTime<chrono::FixedOffset>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config; exit 1 with `file:line: field: message` lines.
    Check,
    /// Print the effective settings and where they came from.
    Show {
        #[arg(long)]
        json: bool,
    },
}

/// The longest duration any option takes. Every one ends up added to a
/// clock (an expiry, a screenshot time); beyond this, a sum could overflow
/// the time types, and no kiosk option means it anyway.
const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// A duration option: seconds (`1.5`) or humantime (`5s`, `1m30s`, `14d`),
/// at most [`MAX_DURATION`].
///
/// ```text
/// 90s, 1.5, 14d  → ok
/// soon, 1e30, 300000y → refused with a message
/// ```
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        // from_secs_f64 panics on what does not fit; try_ refuses it.
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` seconds is too long; at most 100 years"))?,
        Ok(_) => return Err(format!("`{s}` is not a duration; write e.g. 5s, 1m30s")),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 5s, 1m30s"))?,
    };
    if d > MAX_DURATION {
        return Err(format!("`{s}` is too long; at most 100 years"));
    }
    Ok(d)
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a window size; write WIDTHxHEIGHT, e.g. 1280x720");
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?);
    if !(160..=7680).contains(&w) || !(160..=7680).contains(&h) {
        return Err(format!("`{s}`: width and height must be between 160 and 7680"));
    }
    Ok((w, h))
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e}); write e.g. 2026-11-23T08:00:00+08:00"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_cli_logging() {
    init_cli_logging_at("warn");
}

/// Logs to stderr at `level` unless `RUST_LOG` says otherwise.
fn init_cli_logging_at(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn locate_config(cli_path: Option<&Path>) -> config::Location {
    config::locate(cli_path, Env::from_process().config, config::user_config_dir())
}

/// The settings as the kiosk resolves them ([`config::resolve`]): a field
/// with a bad value has its default; a file that cannot be used at all gives
/// way to its last good copy (`config::last_good`).
fn load_settings(cli_path: Option<&Path>) -> anyhow::Result<Settings> {
    Ok(config::resolve(&Flags { config: cli_path.map(Path::to_path_buf), ..Flags::default() }, &Env::from_process())?)
}

/// Logs why the config in use is not the file's (an error; needs logging set
/// up), and prints each bad field as a warning.
fn report_config(loaded: &config::Loaded) {
    if let Some(why) = &loaded.fallback {
        tracing::error!("config: {why}");
    }
    for p in &loaded.problems.0 {
        eprintln!("warning: {p}");
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Play(PlayArgs::default())) {
        Command::Play(args) => {
            let flags = Flags { config: cli.config, playlist: args.playlist.clone(), window: args.window };
            play(config::resolve(&flags, &Env::from_process())?, args)
        }
        Command::Playlist(cmd) => {
            init_cli_logging();
            match cmd {
                PlaylistCommand::Check { files } => Ok(playlist_cmd::check(&files)),
                PlaylistCommand::At { path, time, json } => {
                    let settings = load_settings(cli.config.as_deref())?;
                    report_config(&settings.loaded);
                    playlist_cmd::at(&path, time, settings.config.timezone, json)
                }
            }
        }
        Command::Feed(cmd) => {
            init_cli_logging_at("info");
            match cmd {
                FeedCommand::Keygen { out } => feed_cmd::keygen(&out),
                FeedCommand::Build { playlists, alerts, key, out, expires, push } => {
                    feed_cmd::build_cmd(&playlists, alerts.as_deref(), &key, &out, expires, &push)
                }
                FeedCommand::Verify { feed, public_key } => feed_cmd::verify(&feed, &public_key),
                #[cfg(feature = "net")]
                FeedCommand::Serve { feed, listen, header_timeout, max_connections } => {
                    let limits = crate::net::serve::Limits { header_timeout, max_connections: max_connections as usize };
                    feed_cmd::serve(&feed, listen, limits)
                }
            }
        }
        Command::Remote(args) => {
            init_cli_logging();
            command_cmd::run(args)
        }
        Command::Alert(cmd) => {
            init_cli_logging();
            let settings = load_settings(cli.config.as_deref())?;
            report_config(&settings.loaded);
            alert_cmd::run(cmd, &settings.config)
        }
        #[cfg(feature = "net")]
        Command::Sync { once, from } => {
            init_cli_logging_at("info");
            let settings = load_settings(cli.config.as_deref())?;
            report_config(&settings.loaded);
            match config::last_good::keep_note(&settings.loaded, chrono::Utc::now()) {
                Ok(Some(note)) => tracing::info!("config: {note}"),
                Ok(None) => {}
                Err(e) => tracing::warn!("config: {e}"),
            }
            sync_cmd::sync(&settings.config, once, from.as_deref())
        }
        Command::Backoff { state } => backoff_cmd::run(&state),
        Command::Xsession { tty, dry_run, play } => xsession_cmd::run(&tty, &play, dry_run),
        Command::Doctor => {
            init_cli_logging();
            let settings = load_settings(cli.config.as_deref())?;
            #[cfg(feature = "player")]
            let assets = crate::kiosk::bundled_assets(settings.data_dir.as_deref());
            #[cfg(not(feature = "player"))]
            let assets: Option<PathBuf> = None;
            doctor::run(&settings, assets.as_deref())
        }
        Command::Status { json } => {
            init_cli_logging();
            let settings = load_settings(cli.config.as_deref())?;
            report_config(&settings.loaded);
            status_cmd::status(&settings.config, settings.loaded.fallback.as_deref(), json)
        }
        Command::Report(args) => {
            init_cli_logging();
            let settings = load_settings(cli.config.as_deref())?;
            report_config(&settings.loaded);
            report_cmd::report(&settings.config, &args)
        }
        Command::Cache(CacheCommand::Verify) => {
            init_cli_logging();
            let settings = load_settings(cli.config.as_deref())?;
            for p in &settings.loaded.problems.0 {
                eprintln!("warning: {p}");
            }
            status_cmd::verify_cache(&settings.config)
        }
        Command::Config(cmd) => {
            init_cli_logging();
            match cmd {
                ConfigCommand::Check => config_cmd::check(&locate_config(cli.config.as_deref())),
                ConfigCommand::Show { json } => {
                    let settings = load_settings(cli.config.as_deref())?;
                    report_config(&settings.loaded);
                    config_cmd::show(&settings, json)
                }
            }
        }
    }
}

/// `estation play`: the kiosk, started by [`crate::kiosk`]. `--playlist`
/// and `--window` are in `settings`; the rest of `args` is about this run.
#[cfg(feature = "player")]
fn play(settings: Settings, args: PlayArgs) -> anyhow::Result<ExitCode> {
    let launch = crate::kiosk::Launch { screenshot: args.screenshot, screenshot_at: args.screenshot_at, exit_after: args.exit_after };
    crate::kiosk::start(settings, launch)
}

#[cfg(not(feature = "player"))]
fn play(_: Settings, _: PlayArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this estation was built without the `player` feature; rebuild with default features to play")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn argument_parsers() {
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert!(parse_size("1920").is_err());
        assert!(parse_size("10x10").is_err());
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        for huge in ["1e30", "300000y", "101y", "inf", "-1"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86400)));
        assert!(parse_time("2026-11-23 08:00").is_err());
    }

    #[test]
    fn several_screenshot_times() {
        let cli = Cli::try_parse_from([
            "estation", "play", "--screenshot", "s.png", "--screenshot-at", "1s,1.5s,2s",
        ])
        .unwrap();
        let Some(Command::Play(p)) = cli.command else { panic!() };
        assert_eq!(p.screenshot_at.len(), 3);
    }
}
