//! The small amount of cryptography dockermand needs, written out so that no
//! crypto crate is needed: SHA-1 for WebSocket handshakes, SHA-256 with HMAC
//! and PBKDF2 for tokens and passwords, Base64, and kernel randomness.

pub mod base64;
pub mod random;
pub mod sha1;
pub mod sha256;
