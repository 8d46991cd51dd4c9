//! https for the hub (feature `tls`): the certificate chain and key read
//! from PEM files into a rustls server configuration offering `h2` and
//! `http/1.1`, and the handshake of each accepted connection.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The ALPN name of HTTP/2.
pub(crate) const H2: &[u8] = b"h2";

/// The server configuration for `cert` (a PEM chain, leaf first) and
/// `key` (its PEM private key): the `ring` provider, its safe default
/// versions, ALPN `h2` then `http/1.1`.
///
/// # Errors
/// One sentence naming the file and what is wrong with it.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let shown = |path: &Path| path.display().to_string();
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: cannot read it: {e}", shown(cert)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "--tls-cert {}: not a PEM certificate chain: {e}",
                shown(cert)
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it (want PEM `BEGIN CERTIFICATE` blocks, the \
             server's first)",
            shown(cert)
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "--tls-key {}: no usable PEM private key in it (PKCS#8, PKCS#1 or SEC1): {e}",
            shown(key)
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot start: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "--tls-key {} does not fit --tls-cert {}: {e}",
                shown(key),
                shown(cert)
            )
        })?;
    config.alpn_protocols = vec![H2.to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
