//! dockermand: an authenticated, zero-copy gateway between Docker clients
//! and dockerd's socket, built for routers.
//!
//! The modules follow the data path: `net` accepts clients and reaches
//! dockerd, `conn` runs each client's state machine (one file per phase),
//! `http` parses heads and encodes replies, `access` decides who may do what,
//! `relay` moves the bytes, `console` bridges browser terminals, `local`
//! answers our own endpoints, `ui` serves the web UI, and `server` is the
//! event loop that ties them together. `sys` is the only home of `unsafe`.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod access;
pub mod config;
pub mod conn;
pub mod console;
pub mod crypto;
pub mod deadlines;
pub mod http;
pub mod local;
pub mod logger;
pub mod looptime;
pub mod net;
pub mod relay;
pub mod selftest;
pub mod server;
pub mod stats;
pub mod sys;
pub mod tls;
pub mod ui;
