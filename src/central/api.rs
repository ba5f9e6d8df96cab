//! The service's HTTP API, beside the feed folder it serves.
//!
//! - `POST /api/v1/screens/{id}/heartbeat`: a screen's heartbeat
//!   ([`crate::core::heartbeat::Heartbeat`] as JSON), with
//!   `Authorization: Bearer <the screen's token>`.
//! - `POST /api/v1/screens/{id}/proof`: a batch of proof-of-play records
//!   ([`crate::core::proof::Batch`]), likewise; answered with
//!   [`crate::core::proof::Stored`].
//! - `POST /api/v1/screens/{id}/screenshot`: a screenshot (`image/jpeg`,
//!   taken at the `X-Estation-Taken` header's RFC 3339 time), likewise;
//!   the service keeps the newest few per screen.
//! - `GET /api/v1/fleet[?region=PREFIX]`: every screen's state and last
//!   heartbeat, with an operator's token (`estation-central operator add`).
//! - `GET /api/v1/screens/{id}/screenshot[?taken=TIME]`: the newest
//!   screenshot (or the one taken then) as `image/jpeg`;
//!   `GET /api/v1/screens/{id}/screenshots`: those kept, as JSON;
//!   `POST /api/v1/screens/{id}/screenshot/ask`: ask the screen for one at
//!   its next heartbeat. Operator's token.
//! - `GET /api/v1/report?from=DAY|TIME[&to=…][&by=screen|item|day|region]
//!   [&region=PREFIX][&tz=ZONE][&format=csv]`: the proof-of-play report
//!   ([`crate::core::report::Report`] as JSON, or the CSV that opens in
//!   Excel and WPS), with an operator's token.
//!
//! Everything that comes in is bounded (body size, heartbeats per screen
//! per minute), checked with the same types the kiosk writes, and refused
//! with a 4xx and a JSON `{"error": "…"}` naming the problem; a refused
//! request stores nothing.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::db::Db;
use super::token;
use crate::core::heartbeat::{self, Heartbeat};
use crate::core::proof;

/// Heartbeats a screen may send per minute (a restarting kiosk sends one at
/// each start), with this many at once.
const PER_MINUTE: u32 = 12;
const BURST: u32 = 6;
/// Proof-of-play uploads per screen per minute: a kiosk back from days
/// offline sends up to 20 batches after a heartbeat.
const PROOF_PER_MINUTE: u32 = 60;
const PROOF_BURST: u32 = 20;
/// Screenshots per screen per minute (one per heartbeat at most, normally).
const SCREENSHOTS_PER_MINUTE: u32 = 6;
const SCREENSHOT_BURST: u32 = 3;
/// The longest window one report covers (a year and a day).
const MAX_REPORT_DAYS: i64 = 367;

/// What every handler shares.
pub struct Service {
    pub db: Db,
    /// Where a report's days start and end (unless a request names a zone).
    tz: chrono_tz::Tz,
    limiter: DefaultKeyedRateLimiter<String>,
    proof_limiter: DefaultKeyedRateLimiter<String>,
    screenshot_limiter: DefaultKeyedRateLimiter<String>,
}

impl Service {
    pub fn new(db: Db, tz: chrono_tz::Tz) -> Service {
        let quota = |per_minute: u32, burst: u32| {
            Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN)).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        Service {
            db,
            tz,
            limiter: RateLimiter::keyed(quota(PER_MINUTE, BURST)),
            proof_limiter: RateLimiter::keyed(quota(PROOF_PER_MINUTE, PROOF_BURST)),
            screenshot_limiter: RateLimiter::keyed(quota(SCREENSHOTS_PER_MINUTE, SCREENSHOT_BURST)),
        }
    }

    /// Forgets the rate of screens not heard from lately (call now and then).
    pub fn tidy(&self) {
        self.limiter.retain_recent();
        self.proof_limiter.retain_recent();
        self.screenshot_limiter.retain_recent();
    }
}

/// The API's routes, under `/api/v1`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/v1/screens/{id}/heartbeat", post(heartbeat).layer(DefaultBodyLimit::max(heartbeat::MAX_BODY)))
        .route("/api/v1/screens/{id}/proof", post(upload_proof).layer(DefaultBodyLimit::max(proof::MAX_BODY)))
        .route(
            "/api/v1/screens/{id}/screenshot",
            post(upload_screenshot).get(get_screenshot).layer(DefaultBodyLimit::max(crate::store::screenshot::MAX_BYTES)),
        )
        .route("/api/v1/screens/{id}/screenshots", get(list_screenshots))
        .route("/api/v1/screens/{id}/screenshot/ask", post(ask_screenshot))
        .route("/api/v1/fleet", get(fleet))
        .route("/api/v1/report", get(report))
        .layer(axum::middleware::map_response(close_after_too_large))
        .with_state(service)
}

/// A body refused for its size is not read to its end, so hyper closes the
/// connection after the answer. Saying so in the answer keeps a client from
/// sending its next request down that connection (a broken pipe).
async fn close_after_too_large(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// A refusal: the status and what was wrong.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> Refused {
    tracing::error!("central: {e}");
    Refused(StatusCode::INTERNAL_SERVER_ERROR, "the service could not store or read its data; see its log".into())
}

/// A database error of an office query: a region prefix that is not one
/// is the asker's (400), anything else the service's.
fn asked_wrong(e: super::db::DbError) -> Refused {
    match e {
        super::db::DbError::BadRegion(_) => Refused(StatusCode::BAD_REQUEST, e.to_string()),
        e => internal(e),
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, Refused> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| Refused(StatusCode::UNAUTHORIZED, "Authorization: Bearer <token> is missing".into()))
}

/// The screen `id` whose token `headers` carry, or the refusal: 401 for an
/// unknown screen or a wrong token (the same answer, so ids cannot be
/// probed), 403 for a revoked one.
async fn screen(service: &Service, id: &str, headers: &HeaderMap, what: &str) -> Result<(), Refused> {
    let token = bearer(headers)?;
    let creds = service.db.screen_credentials(id).await.map_err(internal)?;
    let known = creds.as_ref().is_some_and(|c| token::matches(token, &c.salt, &c.hash));
    if !known {
        tracing::warn!(target: "estation::access", "{what} for screen `{id}` refused: unknown screen or wrong token");
        return Err(Refused(StatusCode::UNAUTHORIZED, format!("unknown screen `{id}` or wrong token")));
    }
    if creds.as_ref().is_some_and(|c| c.revoked) {
        return Err(Refused(StatusCode::FORBIDDEN, format!("screen `{id}` is revoked")));
    }
    Ok(())
}

/// The body as `T`, or a 400 naming the field that does not read.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Refused> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        Refused(StatusCode::BAD_REQUEST, format!("{what}: {}: {}", if field == "." { "body" } else { &field }, e.inner()))
    })
}

async fn heartbeat(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Response, Refused> {
    screen(&service, &id, &headers, "heartbeat").await?;
    if service.limiter.check_key(&id).is_err() {
        return Err(Refused(StatusCode::TOO_MANY_REQUESTS, format!("screen `{id}`: more than {PER_MINUTE} heartbeats a minute")));
    }
    let hb: Heartbeat = parse(&body, "heartbeat")?;
    hb.validate().map_err(|e| Refused(StatusCode::UNPROCESSABLE_ENTITY, format!("heartbeat: {e}")))?;
    let now = Utc::now();
    let stored = serde_json::to_string(&hb).map_err(internal)?;
    service.db.put_heartbeat(&id, now, &stored).await.map_err(internal)?;
    tracing::info!(target: "estation::access", "heartbeat from `{id}` ({})", hb.software);
    let screenshot = service.db.screenshot_asked(&id).await.map_err(internal)?;
    Ok(Json(serde_json::json!({ "received_at": now, "screenshot": screenshot })).into_response())
}

/// A batch of proof-of-play records: stored in one transaction, each
/// record once, and answered with the last number stored, which the kiosk
/// takes as its acknowledgement.
async fn upload_proof(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Response, Refused> {
    screen(&service, &id, &headers, "proof of play").await?;
    if service.proof_limiter.check_key(&id).is_err() {
        return Err(Refused(StatusCode::TOO_MANY_REQUESTS, format!("screen `{id}`: more than {PROOF_PER_MINUTE} proof-of-play uploads a minute")));
    }
    let batch: proof::Batch = parse(&body, "proof")?;
    let now = Utc::now();
    batch.validate(now).map_err(|e| Refused(StatusCode::UNPROCESSABLE_ENTITY, format!("proof: {e}")))?;
    let new = service.db.put_proof(&id, &batch, now).await.map_err(internal)?;
    let through = batch.records.last().map_or(0, |r| r.seq);
    tracing::info!(target: "estation::access", "proof of play from `{id}`: {} record(s), {new} new, through {through}", batch.records.len());
    Ok(Json(proof::Stored { through, new }).into_response())
}

#[derive(serde::Deserialize)]
struct FleetQuery {
    region: Option<String>,
}

/// Checks that `headers` carry an operator's token.
async fn operator(service: &Service, headers: &HeaderMap) -> Result<(), Refused> {
    let token = bearer(headers)?;
    let operators = service.db.operator_credentials().await.map_err(internal)?;
    if !operators.iter().any(|c| token::matches(token, &c.salt, &c.hash)) {
        return Err(Refused(StatusCode::UNAUTHORIZED, "not an operator's token (estation-central operator add)".into()));
    }
    Ok(())
}

async fn fleet(State(service): State<Arc<Service>>, headers: HeaderMap, Query(q): Query<FleetQuery>) -> Result<Response, Refused> {
    operator(&service, &headers).await?;
    let rows = service.db.screens(q.region.as_deref()).await.map_err(asked_wrong)?;
    Ok(Json(super::fleet::view(rows, Utc::now())).into_response())
}

/// A screenshot from a screen: a JPEG of a sensible size, taken at a time
/// no later than a day from now; kept with the newest few.
async fn upload_screenshot(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Response, Refused> {
    screen(&service, &id, &headers, "screenshot").await?;
    if service.screenshot_limiter.check_key(&id).is_err() {
        return Err(Refused(StatusCode::TOO_MANY_REQUESTS, format!("screen `{id}`: more than {SCREENSHOTS_PER_MINUTE} screenshots a minute")));
    }
    let taken = headers
        .get(crate::net::central::TAKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Refused(StatusCode::BAD_REQUEST, format!("screenshot: the {} header (RFC 3339) is missing", crate::net::central::TAKEN_HEADER)))?;
    let taken = chrono::DateTime::parse_from_rfc3339(taken)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("screenshot: {}: `{taken}`: {e}", crate::net::central::TAKEN_HEADER)))?
        .with_timezone(&Utc);
    let now = Utc::now();
    if taken > now + chrono::Duration::days(1) || taken.timestamp() < 0 {
        return Err(Refused(StatusCode::UNPROCESSABLE_ENTITY, format!("screenshot: {}: {taken} is not a time it can have been taken", crate::net::central::TAKEN_HEADER)));
    }
    let (w, h) = crate::store::screenshot::check(&body).map_err(|e| Refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let kept = service.db.put_screenshot(&id, taken, now, &body).await.map_err(internal)?;
    tracing::info!(target: "estation::access", "screenshot from `{id}`: {w}×{h}, {} bytes, taken {taken}", body.len());
    Ok(Json(crate::net::central::ScreenshotStored { taken_at: taken, kept: kept.max(0) as u64 }).into_response())
}

#[derive(serde::Deserialize)]
struct ScreenshotQuery {
    taken: Option<chrono::DateTime<Utc>>,
}

async fn get_screenshot(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap, Query(q): Query<ScreenshotQuery>) -> Result<Response, Refused> {
    operator(&service, &headers).await?;
    match service.db.screenshot(&id, q.taken).await.map_err(internal)? {
        Some((taken, jpeg)) => Ok(([(header::CONTENT_TYPE, "image/jpeg".to_string()), (header::HeaderName::from_static(crate::net::central::TAKEN_HEADER), taken.to_rfc3339())], jpeg).into_response()),
        None => Err(Refused(StatusCode::NOT_FOUND, format!("no screenshot of screen `{id}`{}", q.taken.map_or(String::new(), |t| format!(" taken at {t}"))))),
    }
}

async fn list_screenshots(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Refused> {
    operator(&service, &headers).await?;
    Ok(Json(service.db.screenshots(&id).await.map_err(internal)?).into_response())
}

async fn ask_screenshot(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, Refused> {
    operator(&service, &headers).await?;
    if !service.db.ask_screenshot(&id, Utc::now()).await.map_err(internal)? {
        return Err(Refused(StatusCode::NOT_FOUND, format!("no screen `{id}`")));
    }
    Ok(Json(serde_json::json!({ "asked": true })).into_response())
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    from: String,
    to: Option<String>,
    by: Option<String>,
    region: Option<String>,
    tz: Option<String>,
    format: Option<String>,
}

/// The report over `[from, to)`, summed by the database.
async fn report(State(service): State<Arc<Service>>, headers: HeaderMap, Query(q): Query<ReportQuery>) -> Result<Response, Refused> {
    operator(&service, &headers).await?;
    let bad = |what: &str, e: &dyn std::fmt::Display| Refused(StatusCode::BAD_REQUEST, format!("report: {what}: {e}"));
    let tz: chrono_tz::Tz = match &q.tz {
        Some(z) => z.parse().map_err(|e: chrono_tz::ParseError| bad("tz", &e))?,
        None => service.tz,
    };
    let by = match q.by.as_deref() {
        None => crate::core::report::By::Screen,
        Some(b) => <crate::core::report::By as clap::ValueEnum>::from_str(b, true).map_err(|_| bad("by", &format!("`{b}`: use screen, item, day or region")))?,
    };
    let from = crate::core::report::parse_bound(&q.from, tz, false).map_err(|e| bad("from", &e))?;
    let to = match &q.to {
        Some(t) => crate::core::report::parse_bound(t, tz, true).map_err(|e| bad("to", &e))?,
        None => Utc::now(),
    };
    if to <= from {
        return Err(bad("to", &"not after from"));
    }
    if to - from > chrono::Duration::days(MAX_REPORT_DAYS) {
        return Err(bad("to", &format!("a report covers at most {MAX_REPORT_DAYS} days")));
    }
    let ask = super::report::Ask { from, to, by, region: q.region };
    let report = service.db.report(&ask, tz).await.map_err(asked_wrong)?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => {
            let csv = report.to_csv(tz).map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"estation-report.csv\"")], csv).into_response())
        }
        Some(f) => Err(bad("format", &format!("`{f}`: use json or csv"))),
    }
}
