//! The office's reports (考核), summed by the database: plays and minutes
//! on screen, hours on and off, per screen, item, day or region, and for
//! each warning which screens showed it and when first. The rows and
//! evidence are [`crate::core::report`]'s, so the office's CSV and JSON
//! read like a kiosk's own `estation report`, and a test holds the two
//! sums equal on the same records.
//!
//! Intervals are clipped to the window in SQL (`CASE`, which both engines
//! read alike: SQLite's two-argument `min`/`max` are PostgreSQL's
//! `LEAST`/`GREATEST`). By day, each local day is its own window, so an
//! interval over midnight counts on both days, as on the kiosk.
//!
//! Days rolled up ([`super::rollup`]) are counted from their sums when they
//! lie wholly inside the window (so before the roll-up's cut a report goes
//! by whole days); a record is in the raw table or in a day's sums, never
//! both, so the two parts add up.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use sqlx::Row as _;

use super::db::{Db, DbError};
use crate::core::proof::MAX_SPAN;
use crate::core::report::{days, evidence, By, Report, Row, Showing};

/// What a report covers.
#[derive(Debug, Clone)]
pub struct Ask {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: By,
    /// Only screens whose region starts with this (digits).
    pub region: Option<String>,
}

/// The part of `[start_at, end_at)` inside `[$1, $2)`, in ms.
const CLIP: &str = "((CASE WHEN p.end_at < $2 THEN p.end_at ELSE $2 END) - (CASE WHEN p.start_at > $1 THEN p.start_at ELSE $1 END))";

/// The records inside `[$1, $2)` of screens whose region is LIKE `$4`; `$3` is `$1`
/// less the longest record, so the index on `start_at` bounds the scan.
const INSIDE: &str = "p.start_at < $2 AND p.end_at > $1 AND p.start_at >= $3 AND p.end_at > p.start_at AND s.region LIKE $4";

fn minutes(ms: i64) -> f64 {
    ms as f64 / 60_000.0
}

/// The days rolled up (`proof_daily`, see [`super::rollup`]) that lie wholly
/// inside `[$1, $2)`, of screens whose region is LIKE `$3`: a rolled-up day is counted
/// whole or not at all.
const DAYS_INSIDE: &str = "d.day_start >= $1 AND d.day_end <= $2 AND s.region LIKE $3";

/// Evidence as it is gathered: per warning, per screen.
type Shown = BTreeMap<(String, String, DateTime<FixedOffset>), BTreeMap<String, Showing>>;

impl Db {
    /// The rows of `sql`, a query over [`INSIDE`] of `[from, to)` in
    /// `region` (a pattern from [`super::db::region_like`]).
    async fn inside(&self, sql: &str, from: DateTime<Utc>, to: DateTime<Utc>, region: &str) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        Ok(sqlx::query(sql)
            .bind(from.timestamp_millis())
            .bind(to.timestamp_millis())
            .bind(from.timestamp_millis() - MAX_SPAN.num_milliseconds())
            .bind(region.to_string())
            .fetch_all(self.pool())
            .await?)
    }

    /// The rows of `sql`, a query over [`DAYS_INSIDE`].
    async fn days_inside(&self, sql: &str, from: DateTime<Utc>, to: DateTime<Utc>, region: &str) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        Ok(sqlx::query(sql).bind(from.timestamp_millis()).bind(to.timestamp_millis()).bind(region.to_string()).fetch_all(self.pool()).await?)
    }

    /// The report `ask` asks for, days in `tz`: the raw records clipped to
    /// the window, and the days rolled up that lie wholly inside it.
    pub async fn report(&self, ask: &Ask, tz: Tz) -> Result<Report, DbError> {
        // The LIKE pattern of the region asked for, passed on as `region`.
        let region = super::db::region_like(ask.region.as_deref())?;
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut add = |found: Vec<Row>| {
            for r in found {
                let row = rows.entry(r.key.clone()).or_insert_with(|| Row { key: r.key.clone(), ..Row::default() });
                row.plays += r.plays;
                row.play_minutes += r.play_minutes;
                row.on_hours += r.on_hours;
                row.off_hours += r.off_hours;
                row.warning_minutes += r.warning_minutes;
            }
        };
        if ask.by == By::Day {
            for (day, from, to) in days(ask.from, ask.to, tz) {
                add(self.report_rows(from, to, By::Day, &region).await?.into_iter().map(|r| Row { key: day.clone(), ..r }).collect());
            }
        } else {
            add(self.report_rows(ask.from, ask.to, ask.by, &region).await?);
        }
        add(self.rolled_rows(ask.from, ask.to, ask.by, &region).await?);
        // In byte order, as the kiosk's report (a database's collation may differ).
        let rows = rows.into_values().collect();
        let mut shown = Shown::new();
        self.report_evidence(ask.from, ask.to, &region, &mut shown).await?;
        self.rolled_evidence(ask.from, ask.to, &region, &mut shown).await?;
        let warnings = evidence(shown.into_iter().map(|(k, screens)| (k, screens.into_values().collect())));
        Ok(Report { from: ask.from, to: ask.to, by: ask.by, rows, warnings })
    }

    /// The rows over `[from, to)` by `by` (by day: one row for the whole
    /// window, with an empty key, or none when nothing was on screen).
    async fn report_rows(&self, from: DateTime<Utc>, to: DateTime<Utc>, by: By, region: &str) -> Result<Vec<Row>, DbError> {
        let (key, only) = match by {
            By::Screen => ("p.screen_id", ""),
            By::Region => ("s.region", ""),
            // By item, time on and off and warnings belong to no item.
            By::Item => ("p.playlist || '/' || p.item", " AND p.kind = 'play'"),
            By::Day => ("NULL", ""),
        };
        // By day, the whole window is one row (PostgreSQL groups by no constant).
        let group = if by == By::Day { String::new() } else { format!(" GROUP BY {key}") };
        let sum = |kind: &str| format!("CAST(SUM(CASE WHEN p.kind = '{kind}' THEN {CLIP} ELSE 0 END) AS BIGINT)");
        let sql = format!(
            "SELECT {key}, \
             CAST(SUM(CASE WHEN p.kind = 'play' AND p.cont = 0 AND p.start_at >= $1 THEN 1 ELSE 0 END) AS BIGINT), \
             {}, {}, {}, {}, COUNT(*) \
             FROM proof p JOIN screens s ON s.id = p.screen_id \
             WHERE {INSIDE}{only}{group}",
            sum("play"),
            sum("on"),
            sum("off"),
            sum("warning"),
        );
        read_rows(&self.inside(&sql, from, to, region).await?)
    }

    /// The rolled-up days wholly inside `[from, to)`, by `by`.
    async fn rolled_rows(&self, from: DateTime<Utc>, to: DateTime<Utc>, by: By, region: &str) -> Result<Vec<Row>, DbError> {
        let (key, only) = match by {
            By::Screen => ("d.screen_id", ""),
            By::Region => ("s.region", ""),
            By::Item => ("d.playlist || '/' || d.item", " AND d.kind = 'play'"),
            By::Day => ("d.day", ""),
        };
        let sum = |kind: &str| format!("CAST(SUM(CASE WHEN d.kind = '{kind}' THEN d.ms ELSE 0 END) AS BIGINT)");
        let sql = format!(
            "SELECT {key}, CAST(SUM(d.plays) AS BIGINT), {}, {}, {}, {}, COUNT(*) \
             FROM proof_daily d JOIN screens s ON s.id = d.screen_id \
             WHERE {DAYS_INSIDE}{only} GROUP BY {key}",
            sum("play"),
            sum("on"),
            sum("off"),
            sum("warning"),
        );
        read_rows(&self.days_inside(&sql, from, to, region).await?)
    }

    /// For each warning shown in `[from, to)`, which screens showed it.
    async fn report_evidence(&self, from: DateTime<Utc>, to: DateTime<Utc>, region: &str, shown: &mut Shown) -> Result<(), DbError> {
        let sql = format!(
            "SELECT p.identifier, p.sender, p.sent, p.screen_id, s.region, \
             MIN(CASE WHEN p.start_at > $1 THEN p.start_at ELSE $1 END), \
             MAX(CASE WHEN p.end_at < $2 THEN p.end_at ELSE $2 END), \
             CAST(SUM({CLIP}) AS BIGINT), \
             MAX(CASE p.treatment WHEN 'takeover' THEN 3 WHEN 'banner' THEN 2 ELSE 1 END) \
             FROM proof p JOIN screens s ON s.id = p.screen_id \
             WHERE {INSIDE} AND p.kind = 'warning' \
             GROUP BY p.identifier, p.sender, p.sent, p.screen_id, s.region"
        );
        read_evidence(&self.inside(&sql, from, to, region).await?, shown)
    }

    /// Likewise from the rolled-up days wholly inside `[from, to)`.
    async fn rolled_evidence(&self, from: DateTime<Utc>, to: DateTime<Utc>, region: &str, shown: &mut Shown) -> Result<(), DbError> {
        let sql = format!(
            "SELECT d.identifier, d.sender, d.sent, d.screen_id, s.region, MIN(d.first_at), MAX(d.last_at), CAST(SUM(d.ms) AS BIGINT), MAX(d.treatment) \
             FROM proof_daily d JOIN screens s ON s.id = d.screen_id \
             WHERE {DAYS_INSIDE} AND d.kind = 'warning' \
             GROUP BY d.identifier, d.sender, d.sent, d.screen_id, s.region"
        );
        read_evidence(&self.days_inside(&sql, from, to, region).await?, shown)
    }
}

/// Rows of (key, plays, play ms, on ms, off ms, warning ms, count).
fn read_rows(found: &[sqlx::any::AnyRow]) -> Result<Vec<Row>, DbError> {
    let mut rows = Vec::new();
    for r in found {
        // Without GROUP BY an empty window is one row of NULLs.
        if r.try_get::<i64, _>(6)? == 0 {
            continue;
        }
        let ms = |i: usize| r.try_get::<Option<i64>, _>(i).map(Option::unwrap_or_default);
        rows.push(Row {
            key: r.try_get::<Option<String>, _>(0)?.unwrap_or_default(),
            plays: ms(1)?.max(0) as u64,
            play_minutes: minutes(ms(2)?),
            on_hours: minutes(ms(3)?) / 60.0,
            off_hours: minutes(ms(4)?) / 60.0,
            warning_minutes: minutes(ms(5)?),
        });
    }
    Ok(rows)
}

/// Rows of (identifier, sender, sent, screen, region, first, last, ms,
/// treatment rank) into `shown`, each screen's showings of a warning merged.
fn read_evidence(found: &[sqlx::any::AnyRow], shown: &mut Shown) -> Result<(), DbError> {
    for r in found {
        let screen: String = r.try_get(3)?;
        let sent: String = r.try_get::<Option<String>, _>(2)?.unwrap_or_default();
        let sent = DateTime::parse_from_rfc3339(&sent).map_err(|e| DbError::Corrupt { screen: screen.clone(), why: format!("a warning's sent `{sent}`: {e}") })?;
        let treatment = super::rollup::from_rank(r.try_get::<i32, _>(8).map(i64::from).or_else(|_| r.try_get::<i64, _>(8))?);
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH);
        let key = (r.try_get::<Option<String>, _>(0)?.unwrap_or_default(), r.try_get::<Option<String>, _>(1)?.unwrap_or_default(), sent);
        let one = Showing { region: r.try_get(4)?, first: at(r.try_get(5)?), last: at(r.try_get(6)?), minutes: minutes(r.try_get(7)?), treatment, screen: screen.clone() };
        let showing = shown.entry(key).or_default().entry(screen).or_insert_with(|| Showing { minutes: 0.0, ..one.clone() });
        showing.first = showing.first.min(one.first);
        showing.last = showing.last.max(one.last);
        showing.minutes += one.minutes;
        showing.treatment = showing.treatment.max(one.treatment);
    }
    Ok(())
}
