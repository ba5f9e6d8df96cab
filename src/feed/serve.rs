//! `estation feed serve`: the embedded default server for a feed folder.
//!
//! tower-http's `ServeDir` does the HTTP: ETag and If-None-Match (304),
//! Last-Modified, byte ranges (206). This adds what a feed needs on top:
//! content types from the blob's extension, cache lifetimes (blobs never
//! change; the manifest must be revalidated), no hidden or temporary files,
//! and an access log. The same folder can be served unchanged by nginx, a
//! CDN or an object store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::services::ServeDir;

use super::manifest::{MediaType, MANIFEST_FILE};

/// Binds `listen` and serves `feed` until Ctrl-C / SIGTERM. Calls `ready`
/// with the bound address (port 0 picks a free port).
pub async fn serve(feed: PathBuf, listen: SocketAddr, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    ready(addr);
    let app = Router::new()
        .fallback_service(ServeDir::new(&feed).append_index_html_on_directories(false))
        .layer(middleware::from_fn_with_state(Arc::new(feed.clone()), feed_headers));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn feed_headers(State(root): State<Arc<PathBuf>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_else(|| "-".into());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = if hidden(&path) {
        StatusCode::NOT_FOUND.into_response()
    } else if let Some(not_modified) = manifest_not_modified(&root, &path, &req) {
        not_modified
    } else {
        next.run(req).await
    };
    let kind = classify(&path);
    if let Some(mime) = kind.and_then(|k| k.1)
        && resp_is_content(resp.status()) {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
        }
    let cache_control = match kind.map(|k| k.0) {
        Some(Kind::Manifest) => Some("no-cache"),
        Some(Kind::Blob) => Some("public, max-age=31536000, immutable"),
        None => None,
    };
    if let Some(cc) = cache_control {
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    }
    let bytes = resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    tracing::info!(target: "estation::access", "{peer} \"{method} {path}\" {} {bytes} {:.1}ms", resp.status().as_u16(), start.elapsed().as_secs_f64() * 1000.0);
    resp
}

/// The fast path for the request every kiosk makes every minute: a
/// conditional GET of an unchanged manifest, answered from one `stat` on
/// this thread instead of a trip through the blocking pool to open the
/// file. The ETag is computed exactly as `ServeDir` computes it (a test
/// holds the two together); anything else falls through to `ServeDir`.
fn manifest_not_modified(root: &Path, path: &str, req: &Request) -> Option<Response> {
    if path.strip_prefix('/') != Some(MANIFEST_FILE) || !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return None;
    }
    let inm = req.headers().get(header::IF_NONE_MATCH)?.as_bytes();
    let meta = std::fs::metadata(root.join(MANIFEST_FILE)).ok()?;
    let modified = meta.modified().ok()?;
    let etag = etag(meta.len(), modified)?;
    let matches = inm.split(|&b| b == b',').map(|t| t.trim_ascii()).any(|t| t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == etag.as_bytes());
    if !matches {
        return None;
    }
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    let h = resp.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).ok()?);
    h.insert(header::LAST_MODIFIED, HeaderValue::from_str(&httpdate::fmt_http_date(modified)).ok()?);
    Some(resp)
}

/// tower-http `ServeDir`'s ETag: `"<secs hex>.<nanos hex, 8 digits>-<size hex>"`.
pub fn etag(size: u64, modified: SystemTime) -> Option<String> {
    let d = modified.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some(format!("\"{:x}.{:08x}-{:x}\"", d.as_secs(), d.subsec_nanos(), size))
}

fn resp_is_content(s: StatusCode) -> bool {
    s == StatusCode::OK || s == StatusCode::PARTIAL_CONTENT
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Manifest,
    Blob,
}

/// The manifest, or a blob with its content type from its extension.
fn classify(path: &str) -> Option<(Kind, Option<&'static str>)> {
    let p = path.trim_start_matches('/');
    if p == MANIFEST_FILE {
        return Some((Kind::Manifest, Some("application/json")));
    }
    let name = p.strip_prefix("blobs/")?;
    let ext = Path::new(name).extension()?.to_str()?;
    Some((Kind::Blob, MediaType::from_extension(ext).map(MediaType::mime)))
}

/// Dot files (temp files of a build in progress, keys someone left there)
/// are never served.
fn hidden(path: &str) -> bool {
    path.split('/').any(|seg| seg.starts_with('.') && !seg.is_empty()) || path.ends_with(".pem")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_lifetimes_and_hidden_files() {
        assert_eq!(classify("/manifest.json"), Some((Kind::Manifest, Some("application/json"))));
        assert_eq!(classify("/blobs/ab.png"), Some((Kind::Blob, Some("image/png"))));
        assert_eq!(classify("/blobs/ab.xml"), Some((Kind::Blob, Some("application/cap+xml"))));
        assert_eq!(classify("/other"), None);
        assert!(hidden("/blobs/.tmp-123"));
        assert!(hidden("/feed-key.pem"));
        assert!(!hidden("/blobs/ab.png"));
    }
}
