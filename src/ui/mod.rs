//! The embedded web UI.

pub mod inflate;
