//! `estation alert …`: write, check, publish and cancel CAP warnings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};
use clap::Subcommand;
use serde::Serialize;

use crate::core::alert::author::{self, NewAlert};
use crate::core::alert::cap::{self, Alert, Severity, Status, Urgency};
use crate::core::alert::index::{self, Content, Document};
use crate::core::alert::signal::{self, Level};
use crate::config::Config;
use crate::core::diag::Diagnostic;
use crate::core::feed::keys;
use crate::publish::alerts as publish;

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Write a CAP 1.2 warning, e.g.
    /// `alert new --event 暴雨 --level red --area 330522 --expires 6h --out w.xml`.
    New(Box<NewArgs>),
    /// Check CAP files (or Atom/RSS indexes of them): one line per problem,
    /// naming the element; exit 0 only if all are valid.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the normalised alerts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a CAP message to a built feed and re-sign its manifest.
    Publish {
        file: PathBuf,
        #[arg(long, value_name = "FEED")]
        feed: PathBuf,
        /// The feed's private key (feed-key.pem).
        #[arg(long, value_name = "PRIVATE")]
        key: PathBuf,
        #[command(flatten)]
        push: crate::config::push_args::PushArgs,
    },
    /// Publish a Cancel for the alert with this identifier (and its updates).
    Cancel {
        id: String,
        #[arg(long, value_name = "FEED")]
        feed: PathBuf,
        #[arg(long, value_name = "PRIVATE")]
        key: PathBuf,
        #[command(flatten)]
        push: crate::config::push_args::PushArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The hazard: 暴雨, 台风, 高温 … (or rainstorm, typhoon …), or any text.
    #[arg(long)]
    event: String,
    /// Signal colour: blue|yellow|orange|red (蓝|黄|橙|红).
    #[arg(long, value_parser = parse_level)]
    level: Option<Level>,
    /// 行政区划代码, 6 or 12 digits; repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    area: Vec<String>,
    /// Name of the area, e.g. 长兴县 (default: the codes).
    #[arg(long)]
    area_desc: Option<String>,
    /// A polygon: "lat,lon lat,lon …", closed, at least 4 pairs.
    #[arg(long, value_parser = parse_polygon)]
    polygon: Vec<cap::Polygon>,
    /// A circle: "lat,lon radius_km".
    #[arg(long, value_parser = parse_circle)]
    circle: Vec<cap::Circle>,
    #[arg(long)]
    headline: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    instruction: Option<String>,
    /// How long the warning is in force, e.g. 6h, 90m.
    #[arg(long, default_value = "6h", value_parser = super::parse_duration)]
    expires: Duration,
    /// actual, exercise or test.
    #[arg(long, default_value = "actual", value_parser = parse_status)]
    status: Status,
    /// Override the severity the colour stands for.
    #[arg(long, value_parser = parse_severity)]
    severity: Option<Severity>,
    #[arg(long, default_value = "immediate", value_parser = parse_urgency)]
    urgency: Urgency,
    /// The issuing office's id (no spaces), e.g. changxing-qxt.
    #[arg(long, default_value = "estation")]
    sender: String,
    /// The issuing office's name, e.g. 长兴县气象台.
    #[arg(long)]
    sender_name: Option<String>,
    /// Default: SENDER_TIME_RANDOM.
    #[arg(long)]
    identifier: Option<String>,
    /// Language of the text (default: the config's).
    #[arg(long)]
    language: Option<String>,
    /// `sender,identifier,sent` of a message this one updates (repeatable).
    #[arg(long = "updates", value_name = "TRIPLE")]
    references: Vec<String>,
    /// Where to write (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| format!("`{s}` is not a signal colour: blue, yellow, orange or red"))
}

fn parse_polygon(s: &str) -> Result<cap::Polygon, String> {
    cap::parse_polygon(s).map_err(|e| format!("polygon {e}"))
}

fn parse_circle(s: &str) -> Result<cap::Circle, String> {
    cap::parse_circle(s)
}

fn enum_arg<T: Copy + std::fmt::Display>(all: &[T], s: &str, what: &str) -> Result<T, String> {
    all.iter().copied().find(|v| v.to_string().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(|v| v.to_string().to_lowercase()).collect();
        format!("`{s}` is not a {what}: {}", names.join(", "))
    })
}

fn parse_status(s: &str) -> Result<Status, String> {
    enum_arg(&[Status::Actual, Status::Exercise, Status::Test], s, "status")
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    enum_arg(Severity::ALL, s, "severity")
}

fn parse_urgency(s: &str) -> Result<Urgency, String> {
    enum_arg(Urgency::ALL, s, "urgency")
}

fn now_in(config: &Config) -> DateTime<FixedOffset> {
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    now.with_timezone(&config.timezone).fixed_offset()
}

pub fn run(cmd: AlertCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertCommand::New(a) => new(*a, config),
        AlertCommand::Check { files, json } => check(&files, json, config),
        AlertCommand::Publish { file, feed, key, push } => {
            let key = keys::read_private(&key)?;
            let published = publish::read_alert(&file).and_then(|bytes| publish::publish(&feed, &key, &file, &bytes, Utc::now()).map(|p| (p, bytes)));
            match published {
                Ok((p, bytes)) => {
                    report(&feed, &p);
                    // Parsed once more for its areas: it was just published, so it parses.
                    let alert = crate::core::alert::cap::parse(&file, &bytes).ok().map(|parsed| parsed.alert);
                    push.notify(&feed, crate::core::feed::alerts_doc::ALERTS_FILE, p.version, |t| alert.map_or_else(|| vec![t.all()], |a| t.for_alert(&a)));
                    Ok(ExitCode::SUCCESS)
                }
                Err(publish::PublishError::Invalid(problems)) => {
                    println!("{problems}");
                    eprintln!("not published: fix the alert above (the feed is unchanged)");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Ok(refused("not published", &e)),
            }
        }
        AlertCommand::Cancel { id, feed, key, push } => {
            let key = keys::read_private(&key)?;
            match publish::cancel(&feed, &key, &id, now_in(config)) {
                Ok((p, _)) => {
                    report(&feed, &p);
                    push.notify(&feed, crate::core::feed::alerts_doc::ALERTS_FILE, p.version, |t| vec![t.all()]);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refused("not cancelled", &e)),
            }
        }
    }
}

/// One line for a refused publish: each message already carries its cause
/// (anyhow's chain would repeat it).
fn refused(what: &str, e: &publish::PublishError) -> ExitCode {
    eprintln!("error: {what}: {e}");
    ExitCode::FAILURE
}

fn report(feed: &Path, p: &publish::Published) {
    println!("published {} to {} as version {} ({} alert message(s) in the feed)", p.key, feed.display(), p.version, p.alerts);
    for d in &p.dropped {
        println!("  dropped from the feed (expired): {d}");
    }
}

fn new(a: NewArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let spec = NewAlert {
        sender: a.sender,
        sender_name: a.sender_name,
        identifier: a.identifier,
        sent: now_in(config),
        status: a.status,
        event: a.event,
        level: a.level,
        severity: a.severity,
        urgency: a.urgency,
        headline: a.headline,
        description: a.description,
        instruction: a.instruction,
        expires: chrono::Duration::from_std(a.expires).context("--expires is too long")?,
        area_desc: a.area_desc,
        codes: a.area,
        polygons: a.polygon,
        circles: a.circle,
        language: a.language.unwrap_or_else(|| config.alert_policy().language),
        references: a.references,
    };
    let (xml, alert) = author::new_alert(&spec)?;
    match &a.out {
        Some(path) => {
            crate::store::atomic::write(path, xml.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} ({})", path.display(), crate::core::alert::store::key(&alert));
        }
        None => print!("{xml}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `alert check --json` prints for each message.
#[derive(Debug, Serialize)]
struct Checked {
    file: String,
    /// The Atom/RSS entry id, for messages inside an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<String>,
    valid: bool,
    problems: Vec<String>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<Summary>,
    /// A linked message that was not followed (not a local file).
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// The normalised alert: what the screen goes by.
#[derive(Debug, Serialize)]
struct Summary {
    version: cap::Version,
    identifier: String,
    sender: String,
    sent: DateTime<FixedOffset>,
    status: Status,
    msg_type: cap::MsgType,
    references: Vec<cap::Reference>,
    language: Option<String>,
    severity: Option<Severity>,
    urgency: Option<Urgency>,
    event: Option<String>,
    headline: Option<String>,
    signal: Option<signal::Signal>,
    /// The signal's name, e.g. 暴雨红色预警.
    signal_name: Option<String>,
    expires: Option<DateTime<FixedOffset>>,
    areas: Vec<AreaSummary>,
    info_languages: Vec<String>,
    signed: bool,
}

#[derive(Debug, Serialize)]
struct AreaSummary {
    desc: String,
    geocodes: Vec<String>,
    polygons: usize,
    circles: Vec<String>,
}

fn summary(a: &Alert, lang: &str) -> Summary {
    let infos = a.infos_for(lang);
    let info = infos.first();
    let sig = signal::of_alert(a);
    Summary {
        version: a.version,
        identifier: a.identifier.clone(),
        sender: a.sender.clone(),
        sent: a.sent,
        status: a.status,
        msg_type: a.msg_type,
        references: a.references.clone(),
        language: info.map(|i| i.language.clone()),
        severity: info.map(|i| sig.map_or(i.severity, |s| s.level.severity())),
        urgency: info.map(|i| i.urgency),
        event: info.map(|i| i.event.clone()),
        headline: info.and_then(|i| i.headline.clone()),
        signal: sig,
        signal_name: sig.zip(info).map(|(s, i)| s.name_zh(&i.event)),
        expires: info.and_then(|i| i.expires),
        areas: infos
            .iter()
            .flat_map(|i| &i.areas)
            .map(|ar| AreaSummary {
                desc: ar.desc.clone(),
                geocodes: ar.geocodes.iter().map(|g| format!("{}={}", g.name, g.value)).collect(),
                polygons: ar.polygons.len(),
                circles: ar.circles.iter().map(|c| format!("{},{} {}", c.center.lat, c.center.lon, c.radius_km)).collect(),
            })
            .collect(),
        info_languages: a.infos.iter().map(|i| i.language.clone()).collect(),
        signed: a.signed,
    }
}

impl Checked {
    /// A valid entry with nothing to say yet; callers fill in the rest.
    fn new(file: &Path, entry: Option<String>) -> Checked {
        Checked { file: file.display().to_string(), entry, valid: true, problems: Vec::new(), warnings: Vec::new(), alert: None, link: None }
    }

    fn invalid(file: &Path, entry: Option<String>, problem: String) -> Checked {
        Checked { valid: false, problems: vec![problem], ..Checked::new(file, entry) }
    }
}

fn checked(file: &Path, entry: Option<String>, result: Result<cap::Parsed, crate::core::diag::Diagnostics>, lang: &str) -> Checked {
    let lines = |d: &[Diagnostic]| d.iter().map(ToString::to_string).collect::<Vec<_>>();
    match result {
        Ok(p) => Checked { warnings: lines(&p.warnings), alert: Some(summary(&p.alert, lang)), ..Checked::new(file, entry) },
        Err(e) => Checked { valid: false, problems: lines(&e.0), ..Checked::new(file, entry) },
    }
}

/// Checks each file; entries of an index are checked one by one, and a
/// relative link to a local file is followed (nothing is ever fetched).
fn check(files: &[PathBuf], json: bool, config: &Config) -> anyhow::Result<ExitCode> {
    let lang = config.alert_policy().language;
    let mut out: Vec<Checked> = Vec::new();
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                out.push(Checked::invalid(file, None, format!("{}: cannot read: {e}", file.display())));
                continue;
            }
        };
        match index::read(file, &bytes) {
            Ok(Document::Alert(p)) => out.push(checked(file, None, Ok(*p), &lang)),
            Err(e) => out.push(checked(file, None, Err(e), &lang)),
            Ok(Document::Index(entries)) => {
                if entries.is_empty() {
                    out.push(Checked { warnings: vec![format!("{}: index: has no entries", file.display())], ..Checked::new(file, None) });
                }
                for e in entries {
                    let id = Some(e.id.clone());
                    match e.content {
                        Content::Embedded(emb) => out.push(checked(file, id, emb.result, &lang)),
                        Content::Link(link) => {
                            let local = (!link.contains("://")).then(|| file.parent().unwrap_or(Path::new(".")).join(&link)).filter(|p| p.is_file());
                            match local {
                                Some(p) => {
                                    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                                    out.push(checked(&p, id, cap::parse(&p, &bytes), &lang));
                                }
                                None => out.push(Checked { link: Some(link), ..Checked::new(file, id) }),
                            }
                        }
                        Content::Missing => {
                            out.push(Checked::invalid(file, id, format!("{}: entry {}: neither links to nor embeds a CAP message", file.display(), e.id)))
                        }
                    }
                }
            }
        }
    }
    let all_valid = out.iter().all(|c| c.valid);
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in &out {
            let name = match &c.entry {
                Some(e) => format!("{} [entry {e}]", c.file),
                None => c.file.clone(),
            };
            if let Some(a) = &c.alert {
                let what = a.signal_name.clone().or_else(|| a.event.clone()).unwrap_or_else(|| "no info".into());
                let sev = a.severity.map(|s| format!(", {s}")).unwrap_or_default();
                let exp = a.expires.map(|e| format!(", expires {}", e.format("%Y-%m-%d %H:%M %:z"))).unwrap_or_default();
                println!("{name}: valid CAP {} {} ({}) {}: {what}{sev}{exp}", ver(a.version), a.msg_type, a.status, a.identifier);
            } else if let Some(l) = &c.link {
                println!("{name}: links to {l} (not fetched)");
            } else if c.valid {
                println!("{name}: valid");
            } else {
                println!("{name}: INVALID");
            }
            for p in &c.problems {
                println!("  {p}");
            }
            for w in &c.warnings {
                println!("  warning: {w}");
            }
        }
    }
    Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn ver(v: cap::Version) -> &'static str {
    match v {
        cap::Version::Cap11 => "1.1",
        cap::Version::Cap12 => "1.2",
    }
}
