//! The kiosk's files on disk. Every write is atomic ([`atomic`]); the
//! offline cache ([`cache`]) owns every path under its folder, and only its
//! writer (handed out by its lock) changes them.

pub mod atomic;
pub mod cache;
pub mod content;
pub mod feed_alerts;
pub mod inbox;
pub mod proof;
pub mod requests;
pub mod screenshot;
pub mod status;
