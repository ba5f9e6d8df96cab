//! The office's database: SQLite by default (one file, nothing to install),
//! PostgreSQL when given a `postgres://` URL, through sqlx's `Any` driver,
//! so both run the same queries and the same migrations
//! (`migrations/*.sql`, portable SQL). Placeholders are written `$1`, which
//! both accept.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::Row;

use super::token::Sealed;
use crate::core::alert::policy::Treatment;
use crate::core::proof::{Batch, What};

/// A treatment as stored: `takeover`, `banner`, `ticker`.
fn treatment_name(t: Treatment) -> &'static str {
    match t {
        Treatment::Takeover => "takeover",
        Treatment::Banner => "banner",
        Treatment::Ticker => "ticker",
    }
}

/// A stored treatment's name read back (an unknown one as the quietest).
pub(super) fn treatment_from_name(name: &str) -> Treatment {
    match name {
        "takeover" => Treatment::Takeover,
        "banner" => Treatment::Banner,
        _ => Treatment::Ticker,
    }
}

/// The schema, in order; each file runs once, in a transaction.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "screens", include_str!("../../migrations/0001_screens.sql")),
    (2, "proof", include_str!("../../migrations/0002_proof.sql")),
    (3, "screenshots", include_str!("../../migrations/0003_screenshots.sql")),
    (4, "proof_daily", include_str!("../../migrations/0004_proof_daily.sql")),
];

/// Screenshots kept per screen (the newest).
pub const KEEP_SCREENSHOTS: i64 = 3;

/// Columns of one `proof` row.
const PROOF_COLUMNS: usize = 15;
/// Rows per INSERT: well under both engines' limits on bound values
/// (SQLite 32766, PostgreSQL 65535).
const PROOF_ROWS_PER_INSERT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("screen `{0}` is enrolled already (revoke it first, or pick another id)")]
    Duplicate(String),
    #[error("operator `{0}` exists already (pick another name)")]
    DuplicateOperator(String),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("region `{0}`: a region prefix is digits only (e.g. 4401)")]
    BadRegion(String),
    #[error("database: a stored heartbeat of `{screen}` does not read back: {why}")]
    Corrupt { screen: String, why: String },
}

/// Which engine the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// An open database with its schema up to date.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    pub engine: Engine,
}

/// A screen's credentials, for checking its token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub salt: String,
    pub hash: String,
    pub revoked: bool,
}

/// A screen as the fleet view lists it.
#[derive(Debug, Clone)]
pub struct ScreenRow {
    pub id: String,
    pub name: String,
    pub region: String,
    pub added_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the last heartbeat came, and what it said.
    pub last: Option<(DateTime<Utc>, crate::core::heartbeat::Heartbeat)>,
    /// When the newest screenshot kept was taken.
    pub last_screenshot: Option<DateTime<Utc>>,
}

/// One kept screenshot, without its bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScreenshotInfo {
    pub taken_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub bytes: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

impl Db {
    /// Opens `url` (`sqlite://PATH` or `postgres://…`), creating an SQLite
    /// file that is not there yet, and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("postgres://") || url.starts_with("postgresql://") { Engine::Postgres } else { Engine::Sqlite };
        let connect = match engine {
            // rwc: create the file if missing.
            Engine::Sqlite if !url.contains('?') => Cow::Owned(format!("{url}?mode=rwc")),
            _ => Cow::Borrowed(url),
        };
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time; more connections only wait on its lock.
            .max_connections(match engine {
                Engine::Sqlite => 4,
                Engine::Postgres => 16,
            })
            .connect(&connect)
            .await
            .map_err(|source| DbError::Open { url: redact(url), source })?;
        if engine == Engine::Sqlite {
            // Readers do not block the writer; survives a power cut (the
            // default synchronous=FULL stays).
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        let db = Db { pool, engine };
        db.migrate().await?;
        Ok(db)
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`): a transaction that reads first and writes
    /// later fails at once, without waiting, when another wrote in between
    /// (WAL's busy snapshot).
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false))
            .collect();
        let migrator = Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub async fn add_screen(&self, id: &str, name: &str, region: &str, token: &Sealed, now: DateTime<Utc>) -> Result<(), DbError> {
        let done = sqlx::query("INSERT INTO screens (id, name, region, token_salt, token_hash, added_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(name)
            .bind(region)
            .bind(&token.salt)
            .bind(&token.hash)
            .bind(ms(now))
            .execute(&self.pool)
            .await;
        inserted(done, || DbError::Duplicate(id.to_string()))
    }

    /// Revokes a screen's token; false when there is no such screen.
    pub async fn revoke_screen(&self, id: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE screens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL").bind(ms(now)).bind(id).execute(&self.pool).await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        Ok(sqlx::query("SELECT id FROM screens WHERE id = $1").bind(id).fetch_optional(&self.pool).await?.is_some())
    }

    pub async fn screen_credentials(&self, id: &str) -> Result<Option<Credentials>, DbError> {
        let row = sqlx::query("SELECT token_salt, token_hash, revoked_at FROM screens WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(match row {
            None => None,
            Some(r) => Some(Credentials { salt: r.try_get(0)?, hash: r.try_get(1)?, revoked: r.try_get::<Option<i64>, _>(2)?.is_some() }),
        })
    }

    pub async fn add_operator(&self, name: &str, token: &Sealed, now: DateTime<Utc>) -> Result<(), DbError> {
        let done = sqlx::query("INSERT INTO operators (name, token_salt, token_hash, added_at) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(&token.salt)
            .bind(&token.hash)
            .bind(ms(now))
            .execute(&self.pool)
            .await;
        inserted(done, || DbError::DuplicateOperator(name.to_string()))
    }

    /// Every operator token that is not revoked (few: one per office).
    pub async fn operator_credentials(&self) -> Result<Vec<Credentials>, DbError> {
        let rows = sqlx::query("SELECT token_salt, token_hash FROM operators WHERE revoked_at IS NULL").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(Credentials { salt: r.try_get(0)?, hash: r.try_get(1)?, revoked: false })).collect()
    }

    /// Replaces the screen's last heartbeat.
    pub async fn put_heartbeat(&self, id: &str, received: DateTime<Utc>, body: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO heartbeats (screen_id, received_at, body) VALUES ($1, $2, $3) \
             ON CONFLICT (screen_id) DO UPDATE SET received_at = excluded.received_at, body = excluded.body",
        )
        .bind(id)
        .bind(ms(received))
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a batch of proof-of-play records of screen `id`, in one
    /// transaction, each at most once; returns how many were new.
    pub async fn put_proof(&self, id: &str, batch: &Batch, received: DateTime<Utc>) -> Result<u64, DbError> {
        let mut tx = self.begin_write().await?;
        let mut new = 0;
        // What was rolled up (and so deleted from `proof`) is not stored again.
        let rolled: Option<i64> = sqlx::query("SELECT through_seq FROM proof_rolled WHERE screen_id = $1 AND stream = $2")
            .bind(id)
            .bind(&batch.stream)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let fresh: Vec<_> = batch.records.iter().filter(|r| rolled.is_none_or(|t| r.seq as i64 > t)).collect();
        for chunk in fresh.chunks(PROOF_ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO proof (screen_id, stream, seq, kind, start_at, end_at, cont, playlist, item, feed_version, identifier, sender, sent, treatment, received_at) VALUES ",
            );
            sql.push_str(&placeholders(chunk.len(), PROOF_COLUMNS));
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let e = &r.entry;
                let (kind, playlist, item, feed_version, identifier, sender, sent, treatment) = match &e.what {
                    What::Play { playlist, item, feed_version } => ("play", Some(playlist.clone()), Some(item.clone()), feed_version.map(|v| v as i64), None, None, None, None),
                    What::Warning { identifier, sender, sent, treatment } => {
                        ("warning", None, None, None, Some(identifier.clone()), Some(sender.clone()), Some(sent.to_rfc3339()), Some(treatment_name(*treatment)))
                    }
                    What::On => ("on", None, None, None, None, None, None, None),
                    What::Off => ("off", None, None, None, None, None, None, None),
                };
                q = q
                    .bind(id.to_string())
                    .bind(batch.stream.clone())
                    .bind(r.seq as i64)
                    .bind(kind)
                    .bind(ms(e.start))
                    .bind(ms(e.end))
                    .bind(i32::from(e.cont))
                    .bind(playlist)
                    .bind(item)
                    .bind(feed_version)
                    .bind(identifier)
                    .bind(sender)
                    .bind(sent)
                    .bind(treatment)
                    .bind(ms(received));
            }
            new += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(new)
    }

    /// How many proof-of-play records screen `id` has stored, and the
    /// highest number among them (one stream: equal when none is missing).
    pub async fn proof_extent(&self, id: &str) -> Result<(i64, i64), DbError> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM proof WHERE screen_id = $1").bind(id).fetch_one(&self.pool).await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Every screen with its last heartbeat, by id; only those whose region
    /// starts with `region` (digits only: a 行政区划代码 prefix).
    pub async fn screens(&self, region: Option<&str>) -> Result<Vec<ScreenRow>, DbError> {
        let pattern = region_like(region)?;
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.region, s.added_at, s.revoked_at, h.received_at, h.body, \
             (SELECT MAX(taken_at) FROM screenshots p WHERE p.screen_id = s.id) \
             FROM screens s LEFT JOIN heartbeats h ON h.screen_id = s.id WHERE s.region LIKE $1 ORDER BY s.id",
        )
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                let last = match (r.try_get::<Option<i64>, _>(5)?, r.try_get::<Option<String>, _>(6)?) {
                    (Some(t), Some(body)) => {
                        let hb = serde_json::from_str(&body).map_err(|e| DbError::Corrupt { screen: id.clone(), why: e.to_string() })?;
                        Some((at(t), hb))
                    }
                    _ => None,
                };
                Ok(ScreenRow {
                    name: r.try_get(1)?,
                    region: r.try_get(2)?,
                    added_at: at(r.try_get(3)?),
                    revoked_at: r.try_get::<Option<i64>, _>(4)?.map(at),
                    last,
                    last_screenshot: r.try_get::<Option<i64>, _>(7)?.map(at),
                    id,
                })
            })
            .collect()
    }

    /// Keeps a screenshot of screen `id` (one per time taken) and drops all
    /// but the newest [`KEEP_SCREENSHOTS`], in one transaction; answers a
    /// pending request. Returns how many are kept.
    pub async fn put_screenshot(&self, id: &str, taken: DateTime<Utc>, received: DateTime<Utc>, jpeg: &[u8]) -> Result<i64, DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO screenshots (screen_id, taken_at, received_at, jpeg) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(ms(taken))
            .bind(ms(received))
            .bind(jpeg.to_vec())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM screenshots WHERE screen_id = $1 AND taken_at NOT IN \
             (SELECT taken_at FROM screenshots WHERE screen_id = $2 ORDER BY taken_at DESC LIMIT $3)",
        )
        .bind(id)
        .bind(id)
        .bind(KEEP_SCREENSHOTS)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE screens SET screenshot_asked_at = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let kept: i64 = sqlx::query("SELECT COUNT(*) FROM screenshots WHERE screen_id = $1").bind(id).fetch_one(&mut *tx).await?.try_get(0)?;
        tx.commit().await?;
        Ok(kept)
    }

    /// The screenshots kept of screen `id`, the newest first.
    pub async fn screenshots(&self, id: &str) -> Result<Vec<ScreenshotInfo>, DbError> {
        let rows = sqlx::query("SELECT taken_at, received_at, LENGTH(jpeg) FROM screenshots WHERE screen_id = $1 ORDER BY taken_at DESC").bind(id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(ScreenshotInfo { taken_at: at(r.try_get(0)?), received_at: at(r.try_get(1)?), bytes: r.try_get::<i32, _>(2).map(i64::from).or_else(|_| r.try_get(2))? }))
            .collect()
    }

    /// A screenshot of screen `id`: the one taken at `taken`, or the newest.
    pub async fn screenshot(&self, id: &str, taken: Option<DateTime<Utc>>) -> Result<Option<(DateTime<Utc>, Vec<u8>)>, DbError> {
        let row = match taken {
            Some(t) => sqlx::query("SELECT taken_at, jpeg FROM screenshots WHERE screen_id = $1 AND taken_at = $2").bind(id).bind(ms(t)).fetch_optional(&self.pool).await?,
            None => sqlx::query("SELECT taken_at, jpeg FROM screenshots WHERE screen_id = $1 ORDER BY taken_at DESC LIMIT 1").bind(id).fetch_optional(&self.pool).await?,
        };
        Ok(match row {
            Some(r) => Some((at(r.try_get(0)?), r.try_get(1)?)),
            None => None,
        })
    }

    /// Asks screen `id` for a screenshot (its next heartbeat's answer says
    /// so); false when there is no such screen.
    pub async fn ask_screenshot(&self, id: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        Ok(sqlx::query("UPDATE screens SET screenshot_asked_at = $1 WHERE id = $2").bind(ms(now)).bind(id).execute(&self.pool).await?.rows_affected() > 0)
    }

    /// Whether the office is waiting for a screenshot of screen `id`.
    pub async fn screenshot_asked(&self, id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT screenshot_asked_at FROM screens WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>(0)?.is_some(),
            None => false,
        })
    }
}

/// The `LIKE` pattern of screens whose region starts with `region`
/// (everything when None); a prefix of anything but digits is refused, so
/// it can hold no `%` or `_`.
pub(super) fn region_like(region: Option<&str>) -> Result<String, DbError> {
    let prefix = region.unwrap_or("");
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DbError::BadRegion(prefix.to_string()));
    }
    Ok(format!("{prefix}%"))
}

/// `($1, $2, …), ($n+1, …)`: `rows` rows of `columns` placeholders for a
/// multi-row INSERT, numbered by hand (sqlx's `QueryBuilder` writes `?` for
/// `Any`, which PostgreSQL refuses).
pub(super) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", (1..=columns).map(|c| format!("${}", i * columns + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An insert's outcome, with a taken key as `taken`'s error.
fn inserted(done: Result<sqlx::any::AnyQueryResult, sqlx::Error>, taken: impl FnOnce() -> DbError) -> Result<(), DbError> {
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders(1, 1), "($1)");
    }
}
