//! Weather and disaster warnings in CAP 1.2 / 1.1: reading, targeting,
//! lifecycle and presentation policy — all pure, all taking `now`.
//!
//! ```text
//! xml      safe element tree (no DTDs, no entities, size caps)
//! cap      the CAP model and its validating reader
//! index    Atom / RSS indexes that link to or embed CAP
//! signal   Chinese warning signals (暴雨 红色 …) from text or codes
//! target   does an area concern this screen (区划代码, polygon, circle)
//! store    the persisted set of messages in force (Alert/Update/Cancel)
//! policy   takeover / banner / ticker, ordering, the chime
//! view     what a takeover or banner shows: colours, title, footer lines
//! author   writing CAP 1.2 for `estation alert new`
//! ```

pub mod author;
pub mod authority;
pub mod cap;
pub mod index;
pub mod policy;
pub mod signal;
pub mod store;
pub mod target;
pub mod view;
pub mod xml;

pub use cap::{Alert, Parsed};
pub use policy::{Policy, Presentation, Shown, Treatment};
pub use store::Store;
