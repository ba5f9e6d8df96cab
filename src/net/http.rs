//! The one HTTP client setup of the process, its redirect rule, bounded
//! body reads, the one retry loop, and errors that keep their cause.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::core::sync::backoff;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Why a request got nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{}", describe(.0))]
    Transport(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(StatusCode),
    #[error("more than {max} bytes (at least {got}); refused")]
    TooLarge { got: u64, max: u64 },
}

/// An HTTP client builder with rustls' ring provider installed (reqwest is
/// built without a default provider, to keep aws-lc and cmake out of the
/// build) and the redirect rule. Every client in the process comes from it.
pub fn client_builder() -> reqwest::ClientBuilder {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().redirect(redirect_policy()).user_agent(concat!("estation/", env!("CARGO_PKG_VERSION")))
}

/// Redirects are followed at most [`MAX_REDIRECTS`] times, each logged, and
/// never from `https://` down to plain `http://`: what TLS vouched for must
/// not be handed to a server nobody vouches for.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(from) = attempt.previous().last().cloned() else { return attempt.follow() };
        match redirect_refusal(attempt.previous(), attempt.url()) {
            Some(why) => {
                tracing::warn!("{from}: {why}");
                attempt.error(why)
            }
            None => {
                tracing::info!("{from}: redirected ({}) to {}", attempt.status(), attempt.url());
                attempt.follow()
            }
        }
    })
}

/// Why a redirect to `next` after `previous` (the URLs so far, first the
/// one asked for) is not followed.
fn redirect_refusal(previous: &[Url], next: &Url) -> Option<String> {
    if previous.len() > MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects; not followed"));
    }
    (previous.iter().any(|u| u.scheme() == "https") && next.scheme() != "https")
        .then(|| format!("redirect to {next} refused: https is never followed down to {}", next.scheme()))
}

/// Reads a body, refusing it beyond `max` bytes.
pub async fn read_limited(mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, HttpError> {
    if let Some(n) = resp.content_length().filter(|n| *n > max) {
        return Err(HttpError::TooLarge { got: n, max });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() as u64 + chunk.len() as u64 > max {
            return Err(HttpError::TooLarge { got: out.len() as u64 + chunk.len() as u64, max });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A GET of a document: conditional when validators are given (an
/// unchanged one costs a 304 and no body), its body bounded.
#[derive(Debug, Clone, Copy)]
pub struct Get<'a> {
    pub url: &'a Url,
    /// The `Accept` header, for servers that negotiate the format.
    pub accept: Option<&'a str>,
    /// What the last answer said of itself: its `ETag`, else its
    /// `Last-Modified` (sent as `If-None-Match`, else `If-Modified-Since`).
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    /// Longest the whole request may take, however slowly it trickles.
    pub deadline: Option<Duration>,
    /// Largest body taken.
    pub max: u64,
}

/// What a [`Get`] brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    /// None: not modified (304).
    pub body: Option<Vec<u8>>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The server's `Date`.
    pub date: Option<chrono::DateTime<chrono::Utc>>,
}

impl Get<'_> {
    pub async fn send(self, client: &reqwest::Client) -> Result<Got, HttpError> {
        use reqwest::header::{ACCEPT, DATE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
        let mut req = client.get(self.url.clone());
        if let Some(a) = self.accept {
            req = req.header(ACCEPT, a);
        }
        if let Some(d) = self.deadline {
            req = req.timeout(d);
        }
        if let Some(e) = self.etag {
            req = req.header(IF_NONE_MATCH, e);
        } else if let Some(lm) = self.last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm);
        }
        let resp = req.send().await?;
        let header = |h| resp.headers().get(h).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
        let date = header(DATE).and_then(|d| httpdate::parse_http_date(&d).ok()).map(chrono::DateTime::<chrono::Utc>::from);
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(Got { body: None, etag, last_modified, date });
        }
        let body = body(resp, self.max).await?;
        Ok(Got { body: Some(body), etag, last_modified, date })
    }
}

/// The answer's body when it is a success, else [`HttpError::Status`].
pub async fn body(resp: reqwest::Response, max: u64) -> Result<Vec<u8>, HttpError> {
    if !resp.status().is_success() {
        return Err(HttpError::Status(resp.status()));
    }
    read_limited(resp, max).await
}

/// How a step is tried again: up to `attempts` times, waiting a jittered
/// exponential back-off between `base` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Retry {
    /// Runs `step` until it succeeds or the attempts are spent; each retry
    /// is logged with `what`.
    pub async fn run<T, E: Display, Fut: Future<Output = Result<T, E>>>(&self, what: &(dyn Display + Sync), mut step: impl FnMut() -> Fut) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            match step().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt + 1 >= self.attempts => return Err(e),
                Err(e) => {
                    let wait = backoff::delay(attempt, self.base, self.max, fastrand::f64());
                    tracing::info!("{what}: {e}; retrying in {wait:.1?}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// reqwest's errors with their causes: "error sending request" alone says
/// nothing to an operator.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_limited_and_never_leave_https() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(redirect_refusal(&[u("http://a/")], &u("http://b/")), None);
        assert_eq!(redirect_refusal(&[u("http://a/")], &u("https://b/")), None);
        assert!(redirect_refusal(&[u("https://a/")], &u("http://a/")).unwrap().contains("https is never followed down"));
        assert!(redirect_refusal(&[u("https://a/"), u("https://b/")], &u("http://c/")).is_some(), "anywhere in the chain");
        let six: Vec<_> = (0..=MAX_REDIRECTS).map(|i| u(&format!("http://a/{i}"))).collect();
        assert!(redirect_refusal(&six, &u("http://a/x")).unwrap().contains("more than 5 redirects"));
        assert_eq!(redirect_refusal(&six[..MAX_REDIRECTS], &u("http://a/x")), None);
    }

    #[test]
    fn retries_until_success_or_the_attempts_are_spent() {
        let r = Retry { attempts: 3, base: Duration::ZERO, max: Duration::ZERO };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tries = std::cell::Cell::new(0);
        let got: Result<u32, String> = rt.block_on(r.run(&"x", || {
            let n = tries.get();
            tries.set(n + 1);
            async move { if n < 2 { Err(format!("fail {n}")) } else { Ok(n) } }
        }));
        assert_eq!((got, tries.get()), (Ok(2), 3));
        tries.set(0);
        let got: Result<u32, String> = rt.block_on(r.run(&"x", || {
            let n = tries.get();
            tries.set(n + 1);
            async move { Err(format!("fail {n}")) }
        }));
        assert_eq!((got, tries.get()), (Err("fail 2".into()), 3), "three tries in all");
    }
}
