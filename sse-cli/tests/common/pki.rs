//! Certificates for tests: a throwaway certificate authority and a
//! certificate it signed for `localhost`, as PEM files (for `SSL_CERT_FILE`,
//! `--tls-cert`/`--tls-key`) and as a rustls server configuration; and a
//! rustls client configuration trusting such an authority.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A certificate authority made for one test, and a certificate it signed
/// for `localhost`.
pub struct Pki {
    /// The authority's certificate as PEM, in a file of its own.
    pub ca_file: PathBuf,
    /// The server's certificate (PEM).
    pub cert_file: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub key_file: PathBuf,
    /// A rustls server configuration presenting the certificate.
    pub server: Arc<ServerConfig>,
    /// The authority's certificate.
    pub ca_der: CertificateDer<'static>,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Pki {
    /// A new authority and server certificate, written to a fresh
    /// temporary directory.
    pub fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: a leaf named as its issuer looks self-signed
        // to OpenSSL.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sse tests throwaway CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let dir =
            std::env::temp_dir().join(format!("sse-tests-pki-{}-{}", std::process::id(), next()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let cert_file = dir.join("cert.pem");
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        let key_file = dir.join("key.pem");
        std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
        Pki {
            ca_file,
            cert_file,
            key_file,
            server: Arc::new(server),
            ca_der: ca.der().clone(),
            _dir: TempDir(dir),
        }
    }

    /// A path inside the directory, for files a test writes.
    pub fn path(&self, name: &str) -> PathBuf {
        self._dir.0.join(name)
    }
}

/// A number different on every call in this process.
fn next() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A rustls client configuration (ring) that trusts `ca` alone and offers
/// `alpn` (none: the server picks HTTP/1.1).
pub fn client_config(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
