//! TLS listeners: rustls terminates each client's TLS and hands the
//! plaintext to an ordinary connection. Only the certificate-name parser is
//! built without the `tls` cargo feature, since auth reads its result type.

pub mod cert_names;
#[cfg(feature = "tls")]
pub mod front;
#[cfg(feature = "tls")]
pub mod fronts;
#[cfg(feature = "tls")]
pub mod handshaker;
#[cfg(feature = "tls")]
pub mod keys;
#[cfg(all(test, feature = "tls"))]
mod test_pki;
