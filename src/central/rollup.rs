//! Rolling old proof of play up by day (`estation-central rollup`): one
//! record per item shown is what 考核 asks for, and at a province's 50,000
//! screens it is tens of GB a day (`scripts/bench-central`). Past a cut
//! (say 90 days back), each screen's records that ended before it are
//! summed per local day and per thing shown into `proof_daily` and deleted
//! from `proof`, in one transaction per screen. Reports read both: whole
//! days from the roll-up, everything else from the raw records.
//!
//! A raw record is in one table or the other, never both: the roll-up takes
//! records by deleting them (`DELETE … RETURNING`), so two services on one
//! PostgreSQL rolling up at once cannot both count a record, and a record
//! sent again later is refused by `proof_rolled`'s high-water mark.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::Row as _;

use super::db::{Db, DbError};
use crate::core::alert::policy::Treatment;
use crate::core::proof::{Entry, What};
use crate::core::report::{days, parse_bound};

/// Columns of one `proof_daily` row, and rows per INSERT (well under both
/// engines' limits on bound values).
const DAY_COLUMNS: usize = 15;
const DAY_ROWS_PER_INSERT: usize = 100;

/// One `proof_daily` row: a screen's day of one thing shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayKey {
    pub day_start: i64,
    pub day_end: i64,
    pub day: String,
    pub kind: &'static str,
    pub playlist: String,
    pub item: String,
    pub identifier: String,
    pub sender: String,
    pub sent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySum {
    pub treatment: i64,
    pub plays: i64,
    pub ms: i64,
    pub first_at: i64,
    pub last_at: i64,
}

/// What a roll-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rolled {
    pub screens: u64,
    pub records: u64,
    pub rows: u64,
}

/// The local midnight `days` days before `now`'s day in `tz`: records
/// that ended before it are rolled up.
pub fn cut(now: DateTime<Utc>, days: u32, tz: Tz) -> DateTime<Utc> {
    let day = now.with_timezone(&tz).date_naive() - chrono::Days::new(u64::from(days));
    parse_bound(&day.format("%Y-%m-%d").to_string(), tz, false).unwrap_or(now)
}

/// A warning's treatment as `proof_daily` ranks it.
pub fn rank(t: Treatment) -> i64 {
    match t {
        Treatment::Ticker => 1,
        Treatment::Banner => 2,
        Treatment::Takeover => 3,
    }
}

/// A rank read back (the loudest of a day's showings).
pub fn from_rank(rank: i64) -> Treatment {
    match rank {
        3 => Treatment::Takeover,
        2 => Treatment::Banner,
        _ => Treatment::Ticker,
    }
}

/// Sums entries per local day in `tz` and per thing shown, as the reports
/// count them: an interval over midnight on both days, a play on the day
/// it started (a continuation is time only), nothing for an empty interval.
pub fn by_day<'a>(entries: impl IntoIterator<Item = &'a Entry>, tz: Tz) -> BTreeMap<DayKey, DaySum> {
    let mut sums: BTreeMap<DayKey, DaySum> = BTreeMap::new();
    for e in entries {
        for (i, (day, start, end)) in days(e.start, e.end, tz).into_iter().enumerate() {
            let (Ok(day_start), Ok(day_end)) = (parse_bound(&day, tz, false), parse_bound(&day, tz, true)) else { continue };
            let (kind, playlist, item, identifier, sender, sent, treatment) = match &e.what {
                What::Play { playlist, item, .. } => ("play", playlist.clone(), item.clone(), String::new(), String::new(), String::new(), 0),
                What::Warning { identifier, sender, sent, treatment } => ("warning", String::new(), String::new(), identifier.clone(), sender.clone(), sent.to_rfc3339(), rank(*treatment)),
                What::On => ("on", String::new(), String::new(), String::new(), String::new(), String::new(), 0),
                What::Off => ("off", String::new(), String::new(), String::new(), String::new(), String::new(), 0),
            };
            let key = DayKey { day_start: day_start.timestamp_millis(), day_end: day_end.timestamp_millis(), day, kind, playlist, item, identifier, sender, sent };
            let plays = i64::from(kind == "play" && !e.cont && i == 0);
            let (start, end) = (start.timestamp_millis(), end.timestamp_millis());
            let sum = sums.entry(key).or_insert(DaySum { treatment, plays: 0, ms: 0, first_at: start, last_at: end });
            sum.plays += plays;
            sum.ms += end - start;
            sum.first_at = sum.first_at.min(start);
            sum.last_at = sum.last_at.max(end);
            sum.treatment = sum.treatment.max(treatment);
        }
    }
    sums
}

/// A raw `proof` row (`RETURNING` order) as an entry, with its stream and number.
fn entry(r: &sqlx::any::AnyRow, screen: &str) -> Result<(String, i64, Entry), DbError> {
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH);
    let text = |i: usize| r.try_get::<Option<String>, _>(i).map(Option::unwrap_or_default);
    let corrupt = |why: String| DbError::Corrupt { screen: screen.to_string(), why };
    let what = match text(2)?.as_str() {
        "play" => What::Play { playlist: text(6)?, item: text(7)?, feed_version: None },
        "warning" => What::Warning {
            identifier: text(8)?,
            sender: text(9)?,
            sent: DateTime::parse_from_rfc3339(&text(10)?).map_err(|e| corrupt(format!("a warning's sent: {e}")))?,
            treatment: super::db::treatment_from_name(&text(11)?),
        },
        "on" => What::On,
        "off" => What::Off,
        other => return Err(corrupt(format!("a proof-of-play record of kind `{other}`"))),
    };
    let cont: i32 = r.try_get::<i32, _>(5).or_else(|_| r.try_get::<i64, _>(5).map(|v| v as i32))?;
    Ok((text(0)?, r.try_get(1)?, Entry { start: at(r.try_get(3)?), end: at(r.try_get(4)?), cont: cont != 0, what }))
}

impl Db {
    /// Rolls up every screen's records that ended before `cut` (a local
    /// midnight in `tz`, so no day is left half raw).
    pub async fn roll_up(&self, cut: DateTime<Utc>, tz: Tz) -> Result<Rolled, DbError> {
        let screens: Vec<String> = sqlx::query("SELECT DISTINCT screen_id FROM proof WHERE start_at <= $1 AND end_at <= $1")
            .bind(cut.timestamp_millis())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut rolled = Rolled::default();
        for screen in screens {
            let (records, rows) = self.roll_up_screen(&screen, cut, tz).await?;
            rolled.screens += 1;
            rolled.records += records;
            rolled.rows += rows;
        }
        Ok(rolled)
    }

    async fn roll_up_screen(&self, screen: &str, cut: DateTime<Utc>, tz: Tz) -> Result<(u64, u64), DbError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(
            "DELETE FROM proof WHERE screen_id = $1 AND end_at <= $2 \
             RETURNING stream, seq, kind, start_at, end_at, cont, playlist, item, identifier, sender, sent, treatment",
        )
        .bind(screen)
        .bind(cut.timestamp_millis())
        .fetch_all(&mut *tx)
        .await?;
        let mut entries = Vec::with_capacity(taken.len());
        let mut through: BTreeMap<String, i64> = BTreeMap::new();
        for r in &taken {
            let (stream, seq, e) = entry(r, screen)?;
            let t = through.entry(stream).or_insert(seq);
            *t = (*t).max(seq);
            entries.push(e);
        }
        let sums = by_day(&entries, tz);
        let sums: Vec<(&DayKey, &DaySum)> = sums.iter().collect();
        for chunk in sums.chunks(DAY_ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO proof_daily (screen_id, day_start, day_end, day, kind, playlist, item, identifier, sender, sent, treatment, plays, ms, first_at, last_at) VALUES ",
            );
            sql.push_str(&super::db::placeholders(chunk.len(), DAY_COLUMNS));
            sql.push_str(
                " ON CONFLICT (screen_id, day_start, kind, playlist, item, identifier, sender, sent) DO UPDATE SET \
                 plays = proof_daily.plays + excluded.plays, ms = proof_daily.ms + excluded.ms, \
                 first_at = CASE WHEN excluded.first_at < proof_daily.first_at THEN excluded.first_at ELSE proof_daily.first_at END, \
                 last_at = CASE WHEN excluded.last_at > proof_daily.last_at THEN excluded.last_at ELSE proof_daily.last_at END, \
                 treatment = CASE WHEN excluded.treatment > proof_daily.treatment THEN excluded.treatment ELSE proof_daily.treatment END",
            );
            let mut q = sqlx::query(&sql);
            // Each key once per statement (PostgreSQL refuses to update a row twice in one).
            for (k, s) in chunk {
                q = q
                    .bind(screen.to_string())
                    .bind(k.day_start)
                    .bind(k.day_end)
                    .bind(k.day.clone())
                    .bind(k.kind)
                    .bind(k.playlist.clone())
                    .bind(k.item.clone())
                    .bind(k.identifier.clone())
                    .bind(k.sender.clone())
                    .bind(k.sent.clone())
                    .bind(s.treatment as i32)
                    .bind(s.plays)
                    .bind(s.ms)
                    .bind(s.first_at)
                    .bind(s.last_at);
            }
            q.execute(&mut *tx).await?;
        }
        for (stream, seq) in &through {
            sqlx::query(
                "INSERT INTO proof_rolled (screen_id, stream, through_seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (screen_id, stream) DO UPDATE SET through_seq = CASE WHEN excluded.through_seq > proof_rolled.through_seq THEN excluded.through_seq ELSE proof_rolled.through_seq END",
            )
            .bind(screen)
            .bind(stream)
            .bind(*seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((taken.len() as u64, sums.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_sums_what_the_report_would_count() {
        let sh = chrono_tz::Asia::Shanghai;
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let play = What::Play { playlist: "main".into(), item: "a".into(), feed_version: Some(1) };
        let entries = [
            Entry { start: t("2026-07-01T23:50:00+08:00"), end: t("2026-07-02T00:10:00+08:00"), cont: false, what: play.clone() },
            Entry { start: t("2026-07-02T08:00:00+08:00"), end: t("2026-07-02T08:01:00+08:00"), cont: true, what: play.clone() },
            Entry { start: t("2026-07-02T09:00:00+08:00"), end: t("2026-07-02T09:00:00+08:00"), cont: false, what: play },
        ];
        let sums: Vec<(String, DaySum)> = by_day(&entries, sh).into_iter().map(|(k, s)| (k.day, s)).collect();
        assert_eq!(sums.len(), 2, "{sums:?}");
        assert_eq!(sums[0].0, "2026-07-01");
        assert_eq!((sums[0].1.plays, sums[0].1.ms), (1, 10 * 60_000), "counted where it started");
        assert_eq!(sums[1].0, "2026-07-02");
        assert_eq!((sums[1].1.plays, sums[1].1.ms), (0, 11 * 60_000), "the rest of it and a continuation: time, no play; an empty one: nothing");
        assert_eq!(sums[1].1.first_at, t("2026-07-02T00:00:00+08:00").timestamp_millis());
        assert_eq!(cut(t("2026-07-10T01:00:00+08:00"), 3, sh), t("2026-07-07T00:00:00+08:00"));
    }
}
