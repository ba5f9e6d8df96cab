//! What a sync will do, decided before it does it: the plan, and how long
//! to wait between tries. The network half is `net::sync`.

pub mod backoff;
pub mod plan;
