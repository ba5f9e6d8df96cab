//! The network, behind the `net` feature: sync of the signed feed, upstream
//! CAP sources, and the feed server. Nothing in `core` may use it.

pub mod central;
pub mod heartbeat;
pub mod http;
pub mod push;
pub mod serve;
pub mod service;
pub mod sync;
