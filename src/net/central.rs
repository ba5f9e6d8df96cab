//! The kiosk's side of the central service: sending a heartbeat and reading
//! the answer (and the service's clock, from its `Date`), and uploading the
//! proof of play.

use chrono::{DateTime, Utc};
use reqwest::Url;

use super::http::{self, HttpError};
use crate::core::heartbeat::Heartbeat;
use crate::core::proof::{Batch, Stored};

/// Largest answer read.
const MAX_ANSWER: u64 = 16 * 1024;

/// What the service said to a heartbeat.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Answer {
    pub received_at: DateTime<Utc>,
    /// The service asks for a screenshot.
    #[serde(default)]
    pub screenshot: bool,
    /// The service's clock (`Date`), for the next heartbeat's clock offset.
    #[serde(skip)]
    pub server_date: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("{url}: {source}")]
    Http { url: String, source: HttpError },
    /// The service refused the request and said why.
    #[error("{url}: HTTP {status}: {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("{url}: the answer does not read: {why}")]
    BadAnswer { url: String, why: String },
    #[error("{0}: not a URL the screen's path can be added to")]
    BadUrl(String),
}

/// The endpoint `what` of screen `screen` under `base` (the service's URL).
fn screen_url(base: &Url, screen: &str, what: &str) -> Result<Url, CentralError> {
    let mut url = base.clone();
    url.path_segments_mut().map_err(|()| CentralError::BadUrl(base.to_string()))?.pop_if_empty().extend(["api", "v1", "screens", screen, what]);
    Ok(url)
}

/// The heartbeat endpoint of screen `screen` under `base`.
pub fn heartbeat_url(base: &Url, screen: &str) -> Result<Url, CentralError> {
    screen_url(base, screen, "heartbeat")
}

/// Posts `body` as JSON with the screen's token; the answer's JSON and the
/// service's `Date`. A refusal is an error carrying the service's reason.
async fn post<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: Url, token: &str, body: &impl serde::Serialize) -> Result<(T, Option<DateTime<Utc>>), CentralError> {
    let body = serde_json::to_vec(body).map_err(|e| CentralError::BadAnswer { url: url.to_string(), why: e.to_string() })?;
    send(client.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json").body(body), &url, token).await
}

/// Sends `req` to `url` with the screen's token, as [`post`] does.
async fn send<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder, url: &Url, token: &str) -> Result<(T, Option<DateTime<Utc>>), CentralError> {
    let shown = url.to_string();
    let resp = req
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| CentralError::Http { url: shown.clone(), source: e.into() })?;
    let status = resp.status();
    let server_date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .map(DateTime::<Utc>::from);
    let bytes = http::read_limited(resp, MAX_ANSWER).await.map_err(|source| CentralError::Http { url: shown.clone(), source })?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(CentralError::Refused { url: shown, status: status.as_u16(), message });
    }
    let answer = serde_json::from_slice(&bytes).map_err(|e| CentralError::BadAnswer { url: shown, why: e.to_string() })?;
    Ok((answer, server_date))
}

/// Sends one heartbeat.
pub async fn heartbeat(client: &reqwest::Client, base: &Url, screen: &str, token: &str, hb: &Heartbeat) -> Result<Answer, CentralError> {
    let (mut answer, server_date): (Answer, _) = post(client, heartbeat_url(base, screen)?, token, hb).await?;
    answer.server_date = server_date;
    Ok(answer)
}

/// Uploads one batch of proof-of-play records; the service stores each
/// record once however often it is sent.
pub async fn upload_proof(client: &reqwest::Client, base: &Url, screen: &str, token: &str, batch: &Batch) -> Result<Stored, CentralError> {
    Ok(post(client, screen_url(base, screen, "proof")?, token, batch).await?.0)
}

/// The header that carries when a screenshot was taken (RFC 3339).
pub const TAKEN_HEADER: &str = "x-estation-taken";

/// What the service said to a screenshot.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ScreenshotStored {
    pub taken_at: DateTime<Utc>,
    /// Screenshots it keeps of this screen, the newest first.
    pub kept: u64,
}

/// Uploads one screenshot (JPEG) taken at `taken`.
pub async fn upload_screenshot(client: &reqwest::Client, base: &Url, screen: &str, token: &str, jpeg: Vec<u8>, taken: DateTime<Utc>) -> Result<ScreenshotStored, CentralError> {
    let url = screen_url(base, screen, "screenshot")?;
    let req = client.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "image/jpeg").header(TAKEN_HEADER, taken.to_rfc3339()).body(jpeg);
    Ok(send(req, &url, token).await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_id_is_one_path_segment_under_the_service_url() {
        let base = Url::parse("https://central.example/estation/").unwrap();
        assert_eq!(heartbeat_url(&base, "k-1").unwrap().as_str(), "https://central.example/estation/api/v1/screens/k-1/heartbeat");
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(heartbeat_url(&base, "a/b c").unwrap().as_str(), "http://127.0.0.1:8080/api/v1/screens/a%2Fb%20c/heartbeat");
    }
}
