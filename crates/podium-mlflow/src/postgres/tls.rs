//! TLS to PostgreSQL through rustls (no system OpenSSL), with libpq's `sslmode` meanings:
//! `prefer`/`allow`/`require` encrypt without checking the certificate, `verify-ca` checks the
//! chain against the root certificates, `verify-full` also the host name.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::config::{PostgresSettings, RootCerts, SslMode};
use crate::error::MlflowError;

/// The largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The rustls configuration for `settings`, or None for `sslmode=disable`.
pub(crate) fn client_config(
    settings: &PostgresSettings,
) -> Result<Option<ClientConfig>, MlflowError> {
    if settings.sslmode == SslMode::Disable {
        return Ok(None);
    }
    let fail = |message: String| MlflowError::Postgres {
        database: settings.display(),
        message: format!("TLS set-up: {message}"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| fail(err.to_string()))?;
    let chain = match settings.sslmode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => None,
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = root_store(settings).map_err(fail)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|err| fail(err.to_string()))?;
            Some(webpki)
        }
    };
    let verifier = Arc::new(LibpqVerifier {
        chain,
        check_name: settings.sslmode == SslMode::VerifyFull,
        provider,
    });
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &settings.client_cert {
        Some((cert, key)) => {
            let chain = read_pem(cert)
                .and_then(|bytes| {
                    CertificateDer::pem_slice_iter(&bytes)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|err| format!("{}: {err}", cert.display()))
                })
                .map_err(fail)?;
            let key = read_pem(key)
                .and_then(|bytes| {
                    PrivateKeyDer::from_pem_slice(&bytes)
                        .map_err(|err| format!("{}: {err}", key.display()))
                })
                .map_err(fail)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| fail(format!("client certificate: {err}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Some(config))
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    podium_variants::fs::read_regular_file(path, MAX_PEM_BYTES)
        .map_err(|err| format!("reading {}: {err}", path.display()))
}

fn root_store(settings: &PostgresSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match &settings.root_certs {
        Some(RootCerts::System) => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(RootCerts::File(path)) => {
            let bytes = read_pem(path)?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|err| format!("{}: {err}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no certificate", path.display()));
            }
        }
        None => return Err("no root certificates".to_string()),
    }
    Ok(roots)
}

/// libpq's certificate rules: without `chain` (`prefer`/`require`) the connection is
/// encrypted and the handshake's signatures checked, but any certificate is accepted (libpq does
/// the same; `verify-full` authenticates the server); with it (`verify-ca`) the chain must lead
/// to a root certificate, and with `check_name` (`verify-full`) the certificate must also name
/// the host.
#[derive(Debug)]
struct LibpqVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
