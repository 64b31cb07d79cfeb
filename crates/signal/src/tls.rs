//! TLS for `wss://`: server certificates from PEM files or made on the spot (self-signed), and the
//! client's trust choices (public CAs, an extra CA, or one pinned certificate).
//!
//! Everything uses rustls with the `ring` provider, so no C crypto library is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds no valid PEM.
    #[error("cannot read PEM from {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// PEM text given in memory is not valid.
    #[error("invalid PEM: {0}")]
    PemText(rustls::pki_types::pem::Error),
    /// The certificate file holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate, key or CA.
    #[error("rustls refused the configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// rcgen could not make the self-signed certificate.
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A certificate fingerprint is not 32 bytes of hex (colons allowed).
    #[error("a SHA-256 fingerprint is 64 hex digits, optionally separated by colons")]
    BadFingerprint,
}

/// The crypto provider every rustls config here uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 fingerprint of a DER certificate, as colon-separated upper-case hex (the form
/// browsers and `openssl x509 -fingerprint -sha256` show).
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses a fingerprint in the form [`fingerprint`] prints (case and colons do not matter).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], TlsError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(digits.trim()).map_err(|_| TlsError::BadFingerprint)?;
    bytes.try_into().map_err(|_| TlsError::BadFingerprint)
}

/// A server's certificate chain and key, ready for [`ServerConfig`](crate::server::ServerConfig).
#[derive(Clone)]
pub struct ServerTls {
    /// The rustls configuration the server accepts with.
    pub config: Arc<rustls::ServerConfig>,
    /// The end-entity certificate, so its fingerprint can be shown.
    pub cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads a PEM certificate chain (end-entity first) and a PEM private key.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let pem_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Pem { path, source }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
            .map_err(pem_error(cert_path))?
            .collect::<Result<_, _>>()
            .map_err(pem_error(cert_path))?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(pem_error(key_path))?;
        let cert_der = chain
            .first()
            .cloned()
            .ok_or_else(|| TlsError::NoCertificate(cert_path.to_path_buf()))?;
        Self::from_der(chain, key, cert_der)
    }

    /// Makes a self-signed certificate for these names (DNS names or IP addresses), for tests and
    /// LAN use. Clients trust it by its [`fingerprint`](Self::fingerprint)
    /// ([`TlsOptions::pinned`]) or as a CA ([`cert_pem`](Self::cert_pem) with
    /// [`TlsOptions::with_ca_pem`]).
    pub fn self_signed(names: &[String]) -> Result<Self, TlsError> {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names.to_vec())?;
        let cert_der = cert.der().clone();
        let key = PrivateKeyDer::try_from(signing_key.serialize_der())
            .map_err(|_| TlsError::Rustls(rustls::Error::General("bad generated key".into())))?;
        Self::from_der(vec![cert_der.clone()], key, cert_der)
    }

    fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_der: CertificateDer<'static>,
    ) -> Result<Self, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Self {
            config: Arc::new(config),
            cert_der,
        })
    }

    /// The SHA-256 fingerprint of the end-entity certificate (see [`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// The end-entity certificate as PEM, to hand to clients as an extra CA.
    pub fn cert_pem(&self) -> String {
        let body = base64_lines(&self.cert_der);
        format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    for line in encoded.as_bytes().chunks(64) {
        lines.push_str(&String::from_utf8_lossy(line));
        lines.push('\n');
    }
    lines
}

/// Whom a [`SignalClient`](crate::client::SignalClient) trusts for `wss://`.
///
/// The default trusts the public web PKI (Mozilla's roots from `webpki-roots`, no system
/// dependency). Plain `ws://` ignores it.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CAs trusted in addition to the public ones (a company CA, or a self-signed server cert).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint, whatever its name or
    /// issuer: for a `--self-signed` server whose fingerprint was read out of band.
    pub pinned_sha256: Option<[u8; 32]>,
}

impl TlsOptions {
    /// Trusts the CA certificates in this PEM text besides the public ones.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let extra_roots = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(TlsError::PemText)?;
        Ok(Self {
            extra_roots,
            pinned_sha256: None,
        })
    }

    /// Trusts only the certificate with this fingerprint (as [`fingerprint`] prints it).
    pub fn pinned(fingerprint: &str) -> Result<Self, TlsError> {
        Ok(Self {
            extra_roots: Vec::new(),
            pinned_sha256: Some(parse_fingerprint(fingerprint)?),
        })
    }

    /// The rustls client configuration these options describe.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let config = if let Some(pin) = self.pinned_sha256 {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                    sha256: pin,
                    provider: provider(),
                }))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for cert in &self.extra_roots {
                roots.add(cert.clone())?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Arc::new(config))
    }
}

/// Accepts exactly one certificate, by fingerprint; signatures are still checked, so the server
/// must hold the certificate's key.
#[derive(Debug)]
struct PinnedCertificate {
    sha256: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_with_or_without_colons() {
        let printed = fingerprint(b"certificate");
        assert_eq!(printed.len(), 32 * 3 - 1);
        let pin = parse_fingerprint(&printed).unwrap();
        assert_eq!(
            parse_fingerprint(&printed.replace(':', "").to_lowercase()).unwrap(),
            pin
        );
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }

    #[test]
    fn a_self_signed_certificate_reads_back_from_its_pem() {
        let tls = ServerTls::self_signed(&["localhost".into()]).unwrap();
        let options = TlsOptions::with_ca_pem(tls.cert_pem().as_bytes()).unwrap();
        assert_eq!(options.extra_roots, vec![tls.cert_der.clone()]);
        options.client_config().unwrap();
        TlsOptions::pinned(&tls.fingerprint())
            .unwrap()
            .client_config()
            .unwrap();
    }

    #[test]
    fn pem_files_load_and_a_missing_key_is_named() {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("rtcdesk-signal-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        let tls = ServerTls::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(tls.fingerprint(), fingerprint(cert.der()));
        let missing = dir.join("missing.pem");
        match ServerTls::from_pem_files(&cert_path, &missing) {
            Err(TlsError::Pem { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
