//! The pure core: what the kiosk decides, with no network and no Bevy.
//! Everything here takes `now` and its inputs as arguments, so tests state
//! an instant and a set of files and compare the answer.

pub mod alert;
pub mod clock_text;
pub mod color;
pub mod command;
pub mod diag;
pub mod feed;
pub mod first_frame;
pub mod heartbeat;
pub mod media;
pub mod playlist;
pub mod proof;
pub mod push;
pub mod qr;
pub mod report;
pub mod restart;
pub mod sync;
pub mod trusted_time;
