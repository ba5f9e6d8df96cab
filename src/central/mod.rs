//! The county office's central service (`estation-central`, behind the
//! `central` feature, so the kiosk's build carries no database drivers):
//! it serves a feed folder exactly as `estation feed serve` does, and an
//! HTTP API for screens (heartbeats) and for the office (the fleet), with
//! its data in SQLite by default or PostgreSQL at scale ([`db`]).
//!
//! Several services may share one PostgreSQL behind a load balancer: they
//! keep nothing of their own but per-process rate counters.

pub mod api;
pub mod cli;
pub mod db;
pub mod fleet;
pub mod report;
pub mod rollup;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serves `feed` and the API on `listen` until Ctrl-C / SIGTERM (reports'
/// days in `tz`); calls `ready` with the bound address.
pub async fn serve(db: db::Db, tz: chrono_tz::Tz, feed: PathBuf, listen: SocketAddr, limits: crate::net::serve::Limits, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let service = Arc::new(api::Service::new(db, tz));
    let tidy = service.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            tidy.tidy();
        }
    });
    let app = api::router(service).merge(crate::net::serve::feed_router(&feed)?);
    crate::net::serve::serve_router(app, listen, limits, ready).await
}
