//! The TLS client configuration for outgoing connections: Mozilla's root
//! certificates (compiled in through `webpki-roots`), the `ring` provider,
//! TLS 1.2 and 1.3, certificate and hostname verification always on.
//!
//! Domain-free and protocol-free: it knows nothing of SMTP, so an HTTPS
//! client (OAuth2 token exchange) can share [`tls_client_config`]. It must
//! never offer a way to switch verification off; the only knob is adding
//! trust (a private CA), never removing it.

use std::sync::{Arc, OnceLock};

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The shared configuration with Mozilla's roots. Built once and shared, so
/// connections to the same server can resume TLS sessions.
pub fn tls_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    static SHARED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = SHARED.get() {
        return Ok(Arc::clone(config));
    }
    let config = build_config(mozilla_roots())?;
    // A racing thread may have set it first; either value is equivalent.
    Ok(Arc::clone(SHARED.get_or_init(|| config)))
}

/// Mozilla's roots plus every certificate in `extra_roots_pem` (one or more
/// `-----BEGIN CERTIFICATE-----` blocks): for servers behind a private CA or
/// with a self-signed certificate. Not cached; such setups are rare.
pub fn tls_client_config_with_roots(
    extra_roots_pem: &str,
) -> Result<Arc<ClientConfig>, TrustError> {
    let mut roots = mozilla_roots();
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(extra_roots_pem.as_bytes()) {
        let certificate = certificate.map_err(|e| TrustError(format!("unreadable PEM: {e}")))?;
        roots
            .add(certificate)
            .map_err(|e| TrustError(format!("unusable root certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(TrustError("no PEM certificate found".into()));
    }
    build_config(roots).map_err(|e| TrustError(e.to_string()))
}

/// Why extra trusted certificates could not be used.
#[derive(Debug)]
pub struct TrustError(pub String);

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TrustError {}

fn mozilla_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The provider is named explicitly rather than taken from the process
/// default, so a second rustls user enabling another provider cannot make
/// this panic at run time.
fn build_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_config_trusts_mozillas_roots_and_is_built_once() {
        let first = tls_client_config().unwrap();
        let second = tls_client_config().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }

    #[test]
    fn extra_roots_must_be_real_pem_certificates() {
        for bad in [
            "",
            "not pem",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            assert!(tls_client_config_with_roots(bad).is_err(), "{bad:?}");
        }
        let certificate = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert;
        let two = format!("{}{}", certificate.pem(), certificate.pem());
        assert!(tls_client_config_with_roots(&two).is_ok());
    }
}
