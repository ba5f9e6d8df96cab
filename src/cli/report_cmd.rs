//! `estation report`: the kiosk's own proof of play, from its log, for a
//! screen with no network (the log is collected by USB) or a look on site.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use crate::config::Config;
use crate::core::report::{self, parse_bound, By};

/// Options of `estation report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD, in the screen's time zone) or an RFC 3339 time.
    #[arg(long, value_name = "DAY|TIME")]
    pub from: String,
    /// Last day, included (YYYY-MM-DD), or an RFC 3339 time, excluded
    /// (default: now).
    #[arg(long, value_name = "DAY|TIME")]
    pub to: Option<String>,
    /// What the rows are: item or day (a kiosk is one screen).
    #[arg(long, value_enum, default_value = "item")]
    pub by: By,
    /// The log's folder (default: `proof` beside the cache); a copy
    /// brought on a USB stick, say.
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,
    /// CSV for Excel and WPS (UTF-8 with BOM).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn report(config: &Config, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if matches!(args.by, By::Screen | By::Region) {
        anyhow::bail!("--by {}: a kiosk's log is one screen; ask the central service (`estation-central report`)", if args.by == By::Screen { "screen" } else { "region" });
    }
    let tz = config.timezone;
    let from = parse_bound(&args.from, tz, false).context("--from")?;
    let to = match &args.to {
        Some(s) => parse_bound(s, tz, true).context("--to")?,
        None => Utc::now(),
    };
    if to <= from {
        anyhow::bail!("--to is not after --from");
    }
    let dir = match &args.log {
        Some(d) => d.clone(),
        None => crate::store::proof::dir_for(&config.cache.dir().context("no cache folder: set [cache] dir in the config, or give --log")?),
    };
    if crate::store::proof::stream(&dir)?.is_none() {
        anyhow::bail!("{}: no proof-of-play log here (the player writes it once something is on screen)", dir.display());
    }
    let records = crate::store::proof::read_after(&dir, 0, usize::MAX)?;
    let region = config.region.clone().unwrap_or_default();
    let seen = records.iter().map(|r| report::Seen { screen: &config.screen_id, region: &region, entry: &r.entry });
    let r = report::build(seen, from, to, args.by, tz);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if args.csv {
        use std::io::Write;
        std::io::stdout().write_all(&r.to_csv(tz)?)?;
    } else {
        print!("{}", r.to_text(tz));
    }
    Ok(ExitCode::SUCCESS)
}

