//! TLS listeners (cargo feature `tls`): rustls terminates each client's TLS
//! and hands the plaintext to an ordinary connection.

pub mod cert_names;
