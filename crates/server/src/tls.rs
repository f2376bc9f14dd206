//! TLS material: the development CA and server certificate, generated on first start into
//! `<data-dir>/tls/` and kept, or the operator's own certificate and key.

use std::path::{Path, PathBuf};

use anyhow::Context;
use guestlist_identity::devcert::{generate_dev_ca_and_server_cert, server_cert_from_ca};

pub struct TlsFiles {
    pub cert_chain: PathBuf,
    pub private_key: PathBuf,
    /// The CA clients should trust; `None` for an operator-supplied certificate.
    pub ca_certificate: Option<PathBuf>,
}

/// Reuses the CA across restarts so a client that trusts it once keeps trusting it; re-issues
/// the server certificate when it is missing.
pub fn ensure_dev_certificates(data_dir: &Path) -> anyhow::Result<TlsFiles> {
    let dir = data_dir.join("tls");
    crate::secret_files::create_private_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca, ca_key, cert, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"), dir.join("server.pem"), dir.join("server-key.pem"));
    if !(ca.exists() && ca_key.exists()) {
        let generated = generate_dev_ca_and_server_cert().context("generating the development certificates")?;
        write_private(&ca_key, &generated.ca_key_pem)?;
        std::fs::write(&ca, &generated.ca_cert_pem)?;
        write_private(&key, &generated.server_key_pem)?;
        std::fs::write(&cert, &generated.server_cert_pem)?;
    } else if !(cert.exists() && key.exists()) {
        let ca_pem = std::fs::read_to_string(&ca)?;
        let ca_key_pem = std::fs::read_to_string(&ca_key)?;
        let issued = server_cert_from_ca(&ca_pem, &ca_key_pem).context("issuing a server certificate from the development CA")?;
        write_private(&key, &issued.key_pem)?;
        std::fs::write(&cert, &issued.cert_pem)?;
    }
    let ca = std::fs::canonicalize(&ca)?;
    Ok(TlsFiles { cert_chain: cert, private_key: key, ca_certificate: Some(ca) })
}

/// A private key: owner-only from the first byte.
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    crate::secret_files::write_private_file(path, pem.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The rustls configuration: the certificate chain and key, with ALPN offering HTTP/2 first
/// (msgraph-sdk's httpx then speaks h2; MSAL and Node stay on HTTP/1.1).
pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let chain_pem = read(&files.cert_chain)?;
    let key_pem = read(&files.private_key)?;
    let chain = rustls_pemfile::certs(&mut chain_pem.as_slice()).collect::<Result<Vec<_>, _>>().context("parsing the certificate chain")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", files.cert_chain.display());
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .context("parsing the private key")?
        .with_context(|| format!("no private key in {}", files.private_key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
