//! What an operator writes: a feed folder built from playlists and signed
//! ([`build`]), CAP messages put into it ([`alerts`]), one writer at a time
//! ([`lock`]). The kiosk side of the same files is `core::feed`.

pub mod alerts;
pub mod build;
pub mod lock;
