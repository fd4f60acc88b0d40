//! The test PKI in `tests/tls` as rustls configurations, for the unit
//! tests of the TLS modules.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::config::{ClientAuth, TlsSettings};

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

/// The server's configuration: its certificate, and client certificates
/// from the test CA optional.
pub fn server_config() -> Arc<rustls::ServerConfig> {
    crate::tls::keys::server_config(&TlsSettings {
        cert: Some(file("server.pem")),
        key: Some(file("server.key")),
        client_ca: Some(file("ca.pem")),
        client_auth: ClientAuth::Optional,
        handshake_timeout: Duration::from_secs(10),
        max_handshakes: 4,
    })
    .unwrap()
}

/// A client of `localhost` trusting the test CA, showing the test client
/// certificate if `with_cert`.
pub fn client(with_cert: bool) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(file("ca.pem")).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = vec![CertificateDer::from_pem_file(file("client.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(file("client.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
}
