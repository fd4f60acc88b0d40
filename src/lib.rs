//! dockermand: an authenticated, zero-copy gateway between Docker clients
//! and dockerd's socket, built for routers.
//!
//! The modules follow the data path: `listener` accepts, `admission` decides
//! who gets a connection slot, `connection` runs each client's state machine,
//! `request` parses and checks its head, `upstream` reaches dockerd,
//! `response` reads the reply head, `relay` (with `chunked` and `pool`) moves
//! the bytes, `local` answers what we answer ourselves, and `server` is the
//! event loop that ties them together.

pub mod admission;
pub mod auth;
pub mod base64;
pub mod chunked;
pub mod config;
pub mod connection;
pub mod console;
pub mod digest;
pub mod gate;
pub mod http;
pub mod listener;
pub mod local;
pub mod logger;
pub mod login;
pub mod looptime;
pub mod policy;
pub mod pool;
pub mod reaper;
pub mod relay;
pub mod request;
pub mod response;
pub mod route;
pub mod rpcd;
pub mod selftest;
pub mod server;
pub mod sha1;
pub mod signals;
pub mod upstream;
pub mod websocket;
