//! dockermand: an authenticated, zero-copy gateway between Docker clients
//! and dockerd's socket, built for routers.
//!
//! The modules follow the data path: `listener` accepts, `connection` runs
//! each client's state machine, `request` parses and checks its head,
//! `upstream` reaches dockerd, `response` reads the reply head, `relay` (with
//! `chunked` and `pool`) moves the bytes, `local` answers what we answer
//! ourselves, and `server` is the event loop that ties them together.

pub mod chunked;
pub mod config;
pub mod connection;
pub mod http;
pub mod listener;
pub mod local;
pub mod logger;
pub mod pool;
pub mod relay;
pub mod request;
pub mod response;
pub mod server;
pub mod signals;
pub mod upstream;
