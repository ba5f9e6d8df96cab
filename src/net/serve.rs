//! `estation feed serve`: the embedded default server for a feed folder.
//!
//! tower-http's `ServeDir` does the HTTP: ETag and If-None-Match (304),
//! Last-Modified, byte ranges (206). This adds what a feed needs on top:
//! content types from the blob's extension, cache lifetimes (blobs never
//! change; the manifest must be revalidated), no hidden or temporary files
//! and nothing outside the folder (judged on the path as `ServeDir` decodes
//! it, and after following symlinks), and an access log. The same folder can
//! be served unchanged by nginx, a CDN or an object store.
//!
//! It faces the network, so it has its own accept loop (axum::serve has no
//! knobs for this): a header read timeout, which also closes idle keep-alive
//! connections, and a connection limit, so half-open connections
//! (slowloris) are dropped instead of piling up until kiosks are starved of
//! file descriptors; at the limit, new connections wait in the kernel's
//! queue until one closes.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;

use crate::core::feed::manifest::{MediaType, MANIFEST_FILE};

/// Requests to a feed are GETs; a body is never read, and one larger than
/// this is refused (413) rather than received.
const MAX_BODY_BYTES: usize = 4096;
/// How long `serve` waits for requests under way after Ctrl-C / SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// What bounds the server's use of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's headers, counted from when the
    /// server starts waiting for them (so also the longest a kept-alive
    /// connection may sit idle).
    pub header_timeout: Duration,
    /// Most connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    /// A request line and headers are a few hundred bytes, sent at once even
    /// over a village's 2G link; 512 connections stay well under the usual
    /// limit of 1,024 open files.
    fn default() -> Limits {
        Limits { header_timeout: Duration::from_secs(10), max_connections: 512 }
    }
}

/// Binds `listen` and serves `feed` until Ctrl-C / SIGTERM. Calls `ready`
/// with the bound address (port 0 picks a free port).
pub async fn serve(feed: PathBuf, listen: SocketAddr, limits: Limits, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    serve_router(feed_router(&feed)?, listen, limits, ready).await
}

/// The feed folder as a router of its own (every path not routed before it
/// is a file of the feed), for `serve` and for the central service.
pub fn feed_router(feed: &Path) -> std::io::Result<Router> {
    // Symlinks are judged against the folder's real path.
    let root = std::fs::canonicalize(feed)?;
    Ok(Router::new()
        .fallback_service(ServeDir::new(&root).append_index_html_on_directories(false))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(Arc::new(root), feed_headers)))
}

/// Serves `app` on `listen` with the accept loop and limits above, until
/// Ctrl-C / SIGTERM.
pub async fn serve_router(app: Router, listen: SocketAddr, limits: Limits, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    ready(addr);
    let max = limits.max_connections.clamp(1, 1 << 20);
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = shutdown();
    tokio::pin!(stop);
    let mut full = false;
    loop {
        if permits.available_permits() == 0 && !full {
            tracing::warn!("{max} connections open (--max-connections); new ones wait until one closes");
        }
        full = permits.available_permits() == 0;
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, never exit.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let app = app.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let conn = http.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                // A header timeout, a malformed request, a client gone: the
                // connection's one line (a request that was answered has its
                // access line already).
                tracing::info!(target: "estation::access", "{peer} connection closed: {e}");
            }
        });
    }
    let _ = stop_tx.send(true);
    // Every open connection holds a permit: all back means all closed.
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(u32::try_from(max).unwrap_or(u32::MAX))).await;
    Ok(())
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
    let decoded = servable(&root, &path);
    let mut resp = match &decoded {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(rel) => match manifest_not_modified(&root, rel, &req) {
            Some(not_modified) => not_modified,
            None => next.run(req).await,
        },
    };
    let kind = decoded.as_deref().and_then(classify);
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
    if path != MANIFEST_FILE || !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
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

/// The manifest, or a blob with its content type from its extension
/// (`path` decoded and relative, as [`servable`] returns it).
fn classify(path: &str) -> Option<(Kind, Option<&'static str>)> {
    let p = path;
    if p == MANIFEST_FILE {
        return Some((Kind::Manifest, Some("application/json")));
    }
    let name = p.strip_prefix("blobs/")?;
    let ext = Path::new(name).extension()?.to_str()?;
    Some((Kind::Blob, MediaType::from_extension(ext).map(MediaType::mime)))
}

/// The request path decoded as `ServeDir` decodes it (percent-decoding,
/// then path components), relative to the feed root, when it may be served:
/// no segment is a dot file (temp files of a build in progress, the lock,
/// keys someone left there), no `.pem` file, nothing `ServeDir` would refuse
/// (`..`), and the file, symlinks followed, is inside `root` (canonical).
/// Checking the raw path would miss `/%2epublish.lock`.
fn servable(root: &Path, raw: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(raw.trim_start_matches('/')).decode_utf8().ok()?;
    let mut rel = PathBuf::new();
    for c in Path::new(&*decoded).components() {
        match c {
            Component::Normal(seg) if !seg.as_encoded_bytes().starts_with(b".") => rel.push(seg),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if rel.extension().is_some_and(|e| e.eq_ignore_ascii_case("pem")) {
        return None;
    }
    // A stat-sized call, like the manifest's fast path, on this thread.
    let real = std::fs::canonicalize(root.join(&rel)).ok()?;
    if !real.starts_with(root) {
        return None;
    }
    Some(rel.to_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_lifetimes_and_hidden_files() {
        assert_eq!(classify("manifest.json"), Some((Kind::Manifest, Some("application/json"))));
        assert_eq!(classify("blobs/ab.png"), Some((Kind::Blob, Some("image/png"))));
        assert_eq!(classify("blobs/ab.xml"), Some((Kind::Blob, Some("application/cap+xml"))));
        assert_eq!(classify("other"), None);

        let feed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(feed.path()).unwrap();
        std::fs::create_dir(root.join("blobs")).unwrap();
        for f in ["manifest.json", "blobs/ab.png", "blobs/.tmp-123", ".publish.lock", "feed-key.pem"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("blobs/link.png")).unwrap();
        std::os::unix::fs::symlink(root.join("blobs/ab.png"), root.join("blobs/inside.png")).unwrap();
        assert_eq!(servable(&root, "/manifest.json").as_deref(), Some("manifest.json"));
        assert_eq!(servable(&root, "/blobs/ab%2epng").as_deref(), Some("blobs/ab.png"));
        assert_eq!(servable(&root, "/blobs/inside.png").as_deref(), Some("blobs/inside.png"));
        for bad in ["/blobs/.tmp-123", "/blobs/%2etmp-123", "/%2epublish.lock", "/feed-key.pem", "/feed-key%2epem", "/FEED-KEY.PEM", "/blobs/../manifest.json", "/blobs/link.png", "/blobs/%ff", "/none"] {
            assert_eq!(servable(&root, bad), None, "{bad}");
        }
    }
}
