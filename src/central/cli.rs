//! `estation-central`: the service and the office's commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Parser, Subcommand};

use super::db::Db;
use super::{fleet, token};

/// estation-central: the county office's service for its screens.
#[derive(Debug, Parser)]
#[command(name = "estation-central", version, about)]
pub struct Cli {
    /// The database: `sqlite://PATH` or `postgres://USER@HOST/DB` (default:
    /// central.db in the user's data folder, e.g. ~/.local/share/estation-central).
    #[arg(long, env = "ESTATION_CENTRAL_DB", value_name = "URL")]
    pub db: Option<String>,
    /// The time zone of reports' days and times.
    #[arg(long, env = "ESTATION_CENTRAL_TZ", value_name = "ZONE", default_value = "Asia/Shanghai")]
    pub tz: chrono_tz::Tz,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a feed folder (as `estation feed serve`) and the API for screens and the office.
    Serve {
        /// The feed folder (`estation feed build --out`).
        #[arg(long, value_name = "FEED")]
        feed: PathBuf,
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
        /// Roll proof of play older than DAYS up by day, once an hour (see `rollup`).
        #[arg(long, value_name = "DAYS")]
        roll_up_after: Option<u32>,
        /// With --push: a notice to the screens whenever the feed's manifest
        /// or warnings document changes, whoever wrote it.
        #[command(flatten)]
        push: crate::config::push_args::PushArgs,
    },
    /// Sum old proof-of-play records per screen, day and item (or warning)
    /// and delete them: reports still count those days, by whole days.
    Rollup {
        /// Roll up the days before the one DAYS ago (in --tz).
        #[arg(long, value_name = "DAYS", conflicts_with = "before", required_unless_present = "before")]
        keep_days: Option<u32>,
        /// Roll up the days before DAY (YYYY-MM-DD, in --tz).
        #[arg(long, value_name = "DAY")]
        before: Option<String>,
    },
    /// Enrol, revoke or list screens.
    #[command(subcommand)]
    Screen(ScreenCommand),
    /// Tokens for the office's own programs (the JSON API).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Every screen: online, stale or offline by its last heartbeat, with
    /// its versions, warnings on screen and last error.
    Fleet {
        /// Only screens whose region code starts with this (e.g. 4401 for 广州).
        #[arg(long, value_name = "PREFIX")]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Proof of play (考核): plays and minutes on screen, hours on, and for
    /// each warning which screens showed it and when first.
    Report {
        /// First day (YYYY-MM-DD, in --tz) or an RFC 3339 time.
        #[arg(long, value_name = "DAY|TIME")]
        from: String,
        /// Last day, included, or an RFC 3339 time, excluded (default: now).
        #[arg(long, value_name = "DAY|TIME")]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "screen")]
        by: crate::core::report::By,
        /// Only screens whose region code starts with this.
        #[arg(long, value_name = "PREFIX")]
        region: Option<String>,
        /// CSV for Excel and WPS (UTF-8 with BOM).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[arg(long)]
        json: bool,
    },
    /// A screen's screenshots: save the newest (`--out`), list those kept,
    /// or ask the screen for a fresh one at its next heartbeat (`--ask`).
    Screenshot {
        id: String,
        /// Write the newest screenshot (JPEG) to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Ask the screen for a screenshot now.
        #[arg(long)]
        ask: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScreenCommand {
    /// Enrol a screen; prints its token once (put it in the kiosk's
    /// `[central] token`). Only a salted hash of it is kept.
    Add {
        /// The screen's id (its config's `[screen] id`).
        id: String,
        #[arg(long)]
        name: String,
        /// 行政区划代码 of where it stands (6 or 12 digits).
        #[arg(long)]
        region: String,
    },
    /// Refuse the screen's token from now on.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Make an API token for NAME; prints it once.
    Add { name: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .try_init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_db() -> anyhow::Result<String> {
    let dirs = directories::ProjectDirs::from("", "", "estation-central").context("no home folder for the default database; pass --db")?;
    let dir = dirs.data_dir();
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("central.db").display()))
}

/// A screen id or region as the kiosk's config allows them: printable, no
/// spaces, at most 64 characters (they go into URLs and file names).
fn check_id(what: &str, id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty() && id.chars().count() <= 64 && id.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c));
    anyhow::ensure!(ok, "{what} `{id}`: use letters, digits, `-`, `_` or `.`, at most 64");
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let url = match cli.db {
        Some(u) => u,
        None => default_db()?,
    };
    let tz = cli.tz;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let db = Db::open(&url).await?;
        match cli.command {
            Command::Serve { feed, listen, roll_up_after, push } => {
                let limits = crate::net::serve::Limits::default();
                if let Some(url) = &push.push {
                    let (broker, topics) = (push.broker(&push.checked_url(url).map_err(anyhow::Error::msg)?)?, push.topics().map_err(anyhow::Error::msg)?);
                    let feed = feed.clone();
                    tracing::info!("central: notices of {} go to {}", feed.display(), broker.url());
                    tokio::spawn(async move { crate::net::push::watch_feed(&feed, &broker, &topics).await });
                }
                if let Some(days) = roll_up_after {
                    let db = db.clone();
                    tokio::spawn(async move {
                        loop {
                            match db.roll_up(super::rollup::cut(Utc::now(), days, tz), tz).await {
                                Ok(r) if r.records > 0 => tracing::info!("central: rolled up {} proof-of-play record(s) of {} screen(s) into {} day row(s)", r.records, r.screens, r.rows),
                                Ok(_) => {}
                                Err(e) => tracing::error!("central: roll-up: {e}"),
                            }
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        }
                    });
                }
                super::serve(db, tz, feed, listen, limits, |addr| {
                    // The tests read this line for the port.
                    println!("listening on http://{addr}");
                })
                .await?;
            }
            Command::Screen(ScreenCommand::Add { id, name, region }) => {
                check_id("screen id", &id)?;
                anyhow::ensure!(region.len() == 6 || region.len() == 12, "region `{region}`: a 行政区划代码 has 6 or 12 digits");
                anyhow::ensure!(region.bytes().all(|b| b.is_ascii_digit()), "region `{region}`: digits only");
                let secret = token::generate()?;
                db.add_screen(&id, &name, &region, &token::seal(&secret)?, Utc::now()).await?;
                eprintln!("screen `{id}` enrolled; its token (shown once, put it in the kiosk's config):");
                println!("[central]\ntoken = \"{secret}\"");
            }
            Command::Screen(ScreenCommand::Revoke { id }) => {
                if !db.revoke_screen(&id, Utc::now()).await? {
                    anyhow::bail!("no screen `{id}`");
                }
                eprintln!("screen `{id}` revoked: its token is refused from now on");
            }
            Command::Operator(OperatorCommand::Add { name }) => {
                check_id("operator", &name)?;
                let secret = token::generate()?;
                db.add_operator(&name, &token::seal(&secret)?, Utc::now()).await?;
                eprintln!("operator `{name}` added; its API token (shown once):");
                println!("{secret}");
            }
            Command::Fleet { region, json } => {
                let screens = fleet::view(db.screens(region.as_deref()).await?, Utc::now());
                if json {
                    println!("{}", serde_json::to_string_pretty(&screens)?);
                } else {
                    print!("{}", fleet::table(&screens));
                }
            }
            Command::Rollup { keep_days, before } => {
                let cut = match (before, keep_days) {
                    (Some(day), _) => {
                        anyhow::ensure!(!day.contains('T'), "--before {day}: a day (YYYY-MM-DD); days are rolled up whole");
                        crate::core::report::parse_bound(&day, tz, false).context("--before")?
                    }
                    (None, Some(days)) => super::rollup::cut(Utc::now(), days, tz),
                    (None, None) => anyhow::bail!("give --keep-days or --before"),
                };
                let r = db.roll_up(cut, tz).await?;
                eprintln!("rolled up {} proof-of-play record(s) of {} screen(s) that ended before {} into {} day row(s)", r.records, r.screens, cut.with_timezone(&tz), r.rows);
            }
            Command::Report { from, to, by, region, csv, json } => {
                let from = crate::core::report::parse_bound(&from, tz, false).context("--from")?;
                let to = match to {
                    Some(t) => crate::core::report::parse_bound(&t, tz, true).context("--to")?,
                    None => Utc::now(),
                };
                anyhow::ensure!(to > from, "--to is not after --from");
                let report = db.report(&super::report::Ask { from, to, by, region }, tz).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else if csv {
                    use std::io::Write;
                    std::io::stdout().write_all(&report.to_csv(tz)?)?;
                } else {
                    print!("{}", report.to_text(tz));
                }
            }
            Command::Screenshot { id, out, ask } => {
                if ask {
                    anyhow::ensure!(db.ask_screenshot(&id, Utc::now()).await?, "no screen `{id}`");
                    eprintln!("screen `{id}` is asked for a screenshot; it sends one after its next heartbeat");
                }
                if let Some(out) = out {
                    let (taken, jpeg) = db.screenshot(&id, None).await?.with_context(|| format!("no screenshot of screen `{id}` yet"))?;
                    crate::store::atomic::write(&out, &jpeg).with_context(|| format!("{}", out.display()))?;
                    eprintln!("{}: screenshot of `{id}` taken {taken}", out.display());
                }
                if !ask {
                    for s in db.screenshots(&id).await? {
                        println!("{}  {} bytes  (received {})", s.taken_at.to_rfc3339(), s.bytes, s.received_at.to_rfc3339());
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
