//! A real HTTP server on 127.0.0.1:0 serving a feed folder, with knobs to
//! fail, delay, cut, truncate and corrupt its answers, and a log of every
//! request it saw. It honours If-None-Match and `Range: bytes=N-` the way
//! a static server does, so resume and 304 are tested against real HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// What the server does to the next answers. Counters count down per
/// matching request.
#[derive(Debug, Default, Clone)]
pub struct Knobs {
    /// Answer this status to the next N requests.
    pub fail: Option<(u16, usize)>,
    /// Answer this status to the next N requests for this path only.
    pub fail_path: Option<(String, u16, usize)>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Send only this many body bytes of the next N blob answers, then cut
    /// the connection (Content-Length still says the whole size).
    pub cut_after: Option<(u64, usize)>,
    /// Flip a byte in the next N blob answers.
    pub corrupt: usize,
    /// Send the next N blob answers short, with a matching Content-Length.
    pub truncate: usize,
    /// Send bodies at about this many bytes per second.
    pub rate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_none_match: Option<String>,
    pub status: u16,
    /// Bytes of the request line and headers plus the response headers and body, approximately.
    pub bytes: u64,
}

struct Shared {
    root: PathBuf,
    knobs: Mutex<Knobs>,
    seen: Mutex<Vec<Seen>>,
}

pub struct FeedServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl FeedServer {
    pub fn start(root: PathBuf) -> FeedServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let shared = Arc::new(Shared { root, knobs: Mutex::new(Knobs::default()), seen: Mutex::new(Vec::new()) });
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer { addr, shared, _rt: rt }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.shared.knobs.lock().expect("knobs"));
    }

    /// The requests seen so far (a copy; they are kept).
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen").clone()
    }

    /// The requests seen so far, and forget them.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().expect("seen"))
    }
}

fn etag_of(bytes: &[u8]) -> String {
    // Any strong validator will do; the length and a cheap checksum.
    let sum = bytes.iter().fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("\"{:x}-{:x}\"", bytes.len(), sum)
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    // Take what is needed and let the request go: its body is not `Sync`,
    // so it must not live across an await.
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let req_bytes: u64 = req.uri().to_string().len() as u64
        + 16
        + headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum::<u64>();
    drop(req);
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let range = get(header::RANGE);
    let inm = get(header::IF_NONE_MATCH);
    let knobs = s.knobs.lock().expect("knobs").clone();
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    let is_blob = path.starts_with("/blobs/");
    let mut seen = Seen { path: path.clone(), range: range.clone(), if_none_match: inm.clone(), status: 0, bytes: req_bytes };

    let resp = 'resp: {
        if let Some((code, n)) = knobs.fail
            && n > 0 {
                s.knobs.lock().expect("knobs").fail = if n > 1 { Some((code, n - 1)) } else { None };
                break 'resp status(code);
            }
        if let Some((p, code, n)) = &knobs.fail_path
            && *p == path
            && *n > 0
        {
            s.knobs.lock().expect("knobs").fail_path = if *n > 1 { Some((p.clone(), *code, n - 1)) } else { None };
            break 'resp status(*code);
        }
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|seg| seg == ".." || seg.starts_with('.')) {
            break 'resp status(404);
        }
        let Ok(mut bytes) = tokio::fs::read(s.root.join(rel)).await else { break 'resp status(404) };
        let etag = etag_of(&bytes);
        if inm.as_deref() == Some(etag.as_str()) {
            let mut r = status(304);
            r.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("etag"));
            break 'resp r;
        }
        let full = bytes.len() as u64;
        let mut code = StatusCode::OK;
        let mut content_range = None;
        if let Some(start) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<u64>().ok()) {
            if start >= full {
                break 'resp status(416);
            }
            bytes.drain(..start as usize);
            code = StatusCode::PARTIAL_CONTENT;
            content_range = Some(format!("bytes {start}-{}/{full}", full - 1));
        }
        let mut k = s.knobs.lock().expect("knobs");
        let mut cut = None;
        if is_blob {
            // One fault per answer, and only where it bites.
            if k.corrupt > 0 && !bytes.is_empty() {
                k.corrupt -= 1;
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
            } else if k.truncate > 0 && bytes.len() > 1 {
                k.truncate -= 1;
                bytes.truncate(bytes.len() / 2);
            } else if let Some((n, left)) = k.cut_after
                && left > 0 && n < bytes.len() as u64 {
                    k.cut_after = if left > 1 { Some((n, left - 1)) } else { None };
                    cut = Some(n as usize);
                }
        }
        let rate = k.rate;
        drop(k);
        let len = bytes.len();
        let body = body_of(bytes, cut, rate);
        let mut r = Response::builder()
            .status(code)
            .header(header::CONTENT_LENGTH, len)
            .header(header::ETAG, etag)
            .header(header::ACCEPT_RANGES, "bytes")
            .body(body)
            .expect("response");
        if let Some(cr) = content_range {
            r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&cr).expect("range"));
        }
        seen.bytes += len as u64;
        r
    };
    seen.status = resp.status().as_u16();
    seen.bytes += 17 + resp.headers().iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum::<u64>();
    s.seen.lock().expect("seen").push(seen);
    resp
}

fn status(code: u16) -> Response {
    Response::builder().status(code).body(Body::empty()).expect("response")
}

/// The body as a stream: whole, slowed to `rate`, or cut after `cut` bytes
/// (the stream then fails, and hyper drops the connection mid-body).
fn body_of(bytes: Vec<u8>, cut: Option<usize>, rate: Option<u64>) -> Body {
    let chunk = 16 * 1024;
    let stream = async_stream(bytes, cut, rate, chunk);
    Body::from_stream(stream)
}

fn async_stream(
    bytes: Vec<u8>,
    cut: Option<usize>,
    rate: Option<u64>,
    chunk: usize,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let limit = cut.unwrap_or(bytes.len());
    futures_util::stream::unfold((bytes, 0usize, false), move |(bytes, at, done)| async move {
        if done {
            return None;
        }
        if at >= limit {
            if cut.is_some() {
                // Let hyper put the bytes sent so far on the wire first: an
                // error drops the connection with whatever is still buffered.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Some((Err(std::io::Error::other("cut by the test server")), (bytes, at, true)));
            }
            return None;
        }
        let end = (at + chunk).min(limit);
        if let Some(r) = rate {
            tokio::time::sleep(Duration::from_secs_f64((end - at) as f64 / r.max(1) as f64)).await;
        }
        let part = bytes[at..end].to_vec();
        Some((Ok(part), (bytes, end, false)))
    })
}
