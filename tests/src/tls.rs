//! A throw-away certificate authority for TLS registries.
//!
//! Why: the mirror must talk to registries that use certificates from a private
//! CA, so the test bed makes one per registry (with rcgen, no `openssl` call)
//! and hands its `ca.pem` to whoever needs to trust it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Where the PEM files of one generated CA and server certificate live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate that clients must trust.
    pub ca: PathBuf,
    /// The server certificate (for `127.0.0.1` and `localhost`), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// Generates a CA and a server certificate for `127.0.0.1` and `localhost`
/// and writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mirror-tests CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA certificate")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .context("server certificate parameters")?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params.use_authority_key_identifier_extension = true;
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    write(&files.ca, &ca_cert.pem())?;
    write(&files.cert, &server_cert.pem())?;
    write(&files.key, &server_key.serialize_pem())?;
    Ok(files)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
