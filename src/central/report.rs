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

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use sqlx::Row as _;

use super::db::{Db, DbError};
use crate::core::alert::policy::Treatment;
use crate::core::proof::MAX_SPAN;
use crate::core::report::{days, evidence, By, Evidence, Report, Row, Showing};

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

/// The records inside `[$1, $2)` of screens in region `$4%`; `$3` is `$1`
/// less the longest record, so the index on `start_at` bounds the scan.
const INSIDE: &str = "p.start_at < $2 AND p.end_at > $1 AND p.start_at >= $3 AND p.end_at > p.start_at AND s.region LIKE $4";

fn minutes(ms: i64) -> f64 {
    ms as f64 / 60_000.0
}

impl Db {
    /// The rows of `sql`, a query over [`INSIDE`] of `[from, to)` in `region`.
    async fn inside(&self, sql: &str, from: DateTime<Utc>, to: DateTime<Utc>, region: &str) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        Ok(sqlx::query(sql)
            .bind(from.timestamp_millis())
            .bind(to.timestamp_millis())
            .bind(from.timestamp_millis() - MAX_SPAN.num_milliseconds())
            .bind(format!("{region}%"))
            .fetch_all(self.pool())
            .await?)
    }

    /// The report `ask` asks for, days in `tz`.
    pub async fn report(&self, ask: &Ask, tz: Tz) -> Result<Report, DbError> {
        let region = ask.region.clone().unwrap_or_default();
        if !region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DbError::BadRegion(region));
        }
        let rows = match ask.by {
            By::Day => {
                let mut rows = Vec::new();
                for (day, from, to) in days(ask.from, ask.to, tz) {
                    rows.extend(self.report_rows(from, to, By::Day, &region).await?.into_iter().map(|r| Row { key: day.clone(), ..r }));
                }
                rows
            }
            by => {
                let mut rows = self.report_rows(ask.from, ask.to, by, &region).await?;
                // As the kiosk orders them (byte order; a database's collation may differ).
                rows.sort_by(|a, b| a.key.cmp(&b.key));
                rows
            }
        };
        let warnings = self.report_evidence(ask.from, ask.to, &region).await?;
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
        let found = self.inside(&sql, from, to, region).await?;
        let mut rows = Vec::new();
        for r in &found {
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

    /// For each warning shown in `[from, to)`, which screens showed it,
    /// first shown first.
    async fn report_evidence(&self, from: DateTime<Utc>, to: DateTime<Utc>, region: &str) -> Result<Vec<Evidence>, DbError> {
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
        let found = self.inside(&sql, from, to, region).await?;
        let mut warnings: BTreeMap<(String, String, DateTime<FixedOffset>), Vec<Showing>> = BTreeMap::new();
        for r in &found {
            let screen: String = r.try_get(3)?;
            let sent: String = r.try_get::<Option<String>, _>(2)?.unwrap_or_default();
            let sent = DateTime::parse_from_rfc3339(&sent).map_err(|e| DbError::Corrupt { screen: screen.clone(), why: format!("a warning's sent `{sent}`: {e}") })?;
            let treatment = match r.try_get::<i32, _>(8).map(i64::from).or_else(|_| r.try_get::<i64, _>(8))? {
                3 => Treatment::Takeover,
                2 => Treatment::Banner,
                _ => Treatment::Ticker,
            };
            let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH);
            let key = (r.try_get::<Option<String>, _>(0)?.unwrap_or_default(), r.try_get::<Option<String>, _>(1)?.unwrap_or_default(), sent);
            warnings.entry(key).or_default().push(Showing {
                region: r.try_get(4)?,
                first: at(r.try_get(5)?),
                last: at(r.try_get(6)?),
                minutes: minutes(r.try_get(7)?),
                treatment,
                screen,
            });
        }
        Ok(evidence(warnings))
    }
}
