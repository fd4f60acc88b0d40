//! Reads the certificate, key and client CA files into the rustls server
//! configuration every `tls://` listener hands its clients.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::{ClientAuth, TlsSettings};

/// The server side of TLS as the settings describe it: TLS 1.2 and 1.3
/// with ring's cipher suites, ALPN `http/1.1`, and client certificates
/// verified against the client CA when one is set.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert, &settings.key) else {
        return Err("tls.cert and tls.key are both needed".into());
    };
    let chain = certificates(cert_file)?;
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("tls key {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match &settings.client_ca {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(ca_file)? {
                roots
                    .add(ca)
                    .map_err(|e| format!("tls client CA {}: {e}", ca_file.display()))?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = match settings.client_auth {
                ClientAuth::Required => builder,
                ClientAuth::Optional => builder.allow_unauthenticated(),
            };
            builder
                .build()
                .map_err(|e| format!("tls client CA {}: {e}", ca_file.display()))?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "tls certificate {} with key {}: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; none at all is an error.
fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", file.display()));
    }
    Ok(certs)
}
