//! `connection.json`: what the server writes into its data directory so that clients can find it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the CLI looks for `connection.json` when neither `--connection` nor `GUESTLIST_CONNECTION` is given.
pub const DEFAULT_CONNECTION_PATH: &str = "./guestlist-data/connection.json";

/// The contents of `connection.json`.
///
/// ```json
/// {"tenantId": "<guid>", "tenantDomain": "contoso.onmicrosoft.com",
///  "graphUrl": "https://127.0.0.1:8443", "authorityUrl": "https://127.0.0.1:8443",
///  "clientId": "<guid>", "clientSecret": "<secret>", "caCertificate": "/abs/path/ca.pem"}
/// ```
///
/// `graphUrl` and `authorityUrl` are origins without a version segment. `caCertificate` is absent when the
/// server runs with `--plain-http`; a relative path in the file is taken relative to the file's directory.
/// Unknown members are ignored so that newer servers stay readable.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Tenant id (GUID) or domain: the path segment of the token endpoint.
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_domain: Option<String>,
    pub graph_url: String,
    pub authority_url: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<PathBuf>,
    /// The server's public client for `guestlist login` (absent from older servers' files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_client_id: Option<String>,
}

// The client secret must never reach a log line or an error message.
impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("tenant_id", &self.tenant_id)
            .field("tenant_domain", &self.tenant_domain)
            .field("graph_url", &self.graph_url)
            .field("authority_url", &self.authority_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("ca_certificate", &self.ca_certificate)
            .finish()
    }
}

/// A configuration problem on the caller's side (missing or unreadable connection file, bad URL, unreadable
/// CA certificate). The CLI exits with 2 for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Values that replace fields of `connection.json`, or stand in for the whole file when it is absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionOverrides {
    pub graph_url: Option<String>,
    pub authority_url: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

impl fmt::Debug for ConnectionOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionOverrides")
            .field("graph_url", &self.graph_url)
            .field("authority_url", &self.authority_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| format_args!("[redacted]")))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl Connection {
    /// Parses `connection.json` text. A relative `caCertificate` stays as written; see [`Connection::load`].
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError(format!("connection file is not valid: {e}")))
    }

    /// Reads `connection.json`. A relative `caCertificate` is resolved against the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read connection file {}: {e}", path.display())))?;
        let mut conn = Self::from_json(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        if let Some(ca) = &conn.ca_certificate {
            if ca.is_relative() {
                let dir = path.parent().unwrap_or_else(|| Path::new("."));
                conn.ca_certificate = Some(dir.join(ca));
            }
        }
        Ok(conn)
    }

    /// Applies the set fields of `overrides` on top of `self`.
    pub fn with_overrides(mut self, overrides: &ConnectionOverrides) -> Self {
        let o = overrides.clone();
        if let Some(v) = o.graph_url {
            self.graph_url = v;
        }
        if let Some(v) = o.authority_url {
            self.authority_url = v;
        }
        if let Some(v) = o.tenant {
            self.tenant_id = v;
        }
        if let Some(v) = o.client_id {
            self.client_id = v;
        }
        if let Some(v) = o.client_secret {
            self.client_secret = v;
        }
        if let Some(v) = o.ca_cert {
            self.ca_certificate = Some(v);
        }
        self
    }

    /// Builds a connection from overrides alone (no file). `authorityUrl` defaults to `graphUrl`, as the
    /// server serves both on one origin. Returns the names of the missing flags otherwise.
    pub fn from_overrides(o: &ConnectionOverrides) -> Result<Self, Vec<&'static str>> {
        let mut missing = Vec::new();
        if o.graph_url.is_none() {
            missing.push("--graph-url");
        }
        if o.tenant.is_none() {
            missing.push("--tenant");
        }
        if o.client_id.is_none() {
            missing.push("--client-id");
        }
        if o.client_secret.is_none() {
            missing.push("--client-secret");
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let graph_url = o.graph_url.clone().unwrap_or_default();
        Ok(Connection {
            tenant_id: o.tenant.clone().unwrap_or_default(),
            tenant_domain: None,
            authority_url: o.authority_url.clone().unwrap_or_else(|| graph_url.clone()),
            graph_url,
            client_id: o.client_id.clone().unwrap_or_default(),
            client_secret: o.client_secret.clone().unwrap_or_default(),
            ca_certificate: o.ca_cert.clone(),
            cli_client_id: None,
        })
    }

    /// The CLI's rule: the file at `path` with `overrides` on top; without the file, the overrides alone,
    /// which then must name the graph URL, tenant, client id and secret.
    pub fn resolve(path: &Path, overrides: &ConnectionOverrides) -> Result<Self, ConfigError> {
        if path.exists() {
            return Ok(Self::load(path)?.with_overrides(overrides));
        }
        Self::from_overrides(overrides).map_err(|missing| {
            ConfigError(format!(
                "no connection file at {} (missing {}).\n\
                 Start the server first (`guestlist serve`); it writes connection.json into its data directory \
                 (default ./guestlist-data). Or point --connection / GUESTLIST_CONNECTION at that file, \
                 or pass --graph-url, --tenant, --client-id and --client-secret.",
                path.display(),
                missing.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_overrides_and_client_args_hides_the_secret() {
        let overrides = ConnectionOverrides { client_secret: Some("Abc1~override-secret".into()), ..ConnectionOverrides::default() };
        let args = crate::cli::ClientArgs { client_secret: Some("Abc1~flag-secret".into()), ..crate::cli::ClientArgs::default() };
        let shown = format!("{overrides:?} {args:?}");
        assert!(!shown.contains("override-secret") && !shown.contains("flag-secret"), "{shown}");
        assert!(shown.contains("client_secret: Some([redacted])"), "{shown}");
    }

    const WITH_CA: &str = r#"{"tenantId": "7d2c1b7e-1111-4222-8333-944445555666", "tenantDomain": "contoso.onmicrosoft.com",
        "graphUrl": "https://127.0.0.1:8443", "authorityUrl": "https://127.0.0.1:8443",
        "clientId": "0f0e0d0c-aaaa-4bbb-8ccc-dddddddddddd", "clientSecret": "s3cret",
        "caCertificate": "/srv/guestlist-data/tls/ca.pem", "someFutureField": 1}"#;

    const PLAIN: &str = r#"{"tenantId": "t", "graphUrl": "http://127.0.0.1:8080", "authorityUrl": "http://127.0.0.1:8080",
        "clientId": "c", "clientSecret": "s"}"#;

    #[test]
    fn parses_file_with_ca_certificate_and_ignores_unknown_fields() {
        let c = Connection::from_json(WITH_CA).unwrap();
        assert_eq!(c.tenant_id, "7d2c1b7e-1111-4222-8333-944445555666");
        assert_eq!(c.tenant_domain.as_deref(), Some("contoso.onmicrosoft.com"));
        assert_eq!(c.graph_url, "https://127.0.0.1:8443");
        assert_eq!(c.client_secret, "s3cret");
        assert_eq!(c.ca_certificate, Some(PathBuf::from("/srv/guestlist-data/tls/ca.pem")));
    }

    #[test]
    fn parses_plain_http_file_without_ca_certificate() {
        let c = Connection::from_json(PLAIN).unwrap();
        assert_eq!(c.ca_certificate, None);
        assert_eq!(c.tenant_domain, None);
        assert_eq!(c.authority_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn rejects_file_missing_required_member() {
        let err = Connection::from_json(r#"{"tenantId": "t"}"#).unwrap_err();
        assert!(err.0.contains("graphUrl"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Connection::from_json(WITH_CA).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn overrides_replace_only_given_fields() {
        let o = ConnectionOverrides {
            graph_url: Some("https://localhost:9443".into()),
            client_secret: Some("other".into()),
            ca_cert: Some("/tmp/ca.pem".into()),
            ..Default::default()
        };
        let c = Connection::from_json(PLAIN).unwrap().with_overrides(&o);
        assert_eq!(c.graph_url, "https://localhost:9443");
        assert_eq!(c.authority_url, "http://127.0.0.1:8080");
        assert_eq!(c.client_secret, "other");
        assert_eq!(c.client_id, "c");
        assert_eq!(c.ca_certificate, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn load_resolves_relative_ca_against_file_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connection.json");
        std::fs::write(&path, PLAIN.replace(r#""clientSecret": "s""#, r#""clientSecret": "s", "caCertificate": "tls/ca.pem""#)).unwrap();
        let c = Connection::load(&path).unwrap();
        assert_eq!(c.ca_certificate, Some(dir.path().join("tls/ca.pem")));
    }

    #[test]
    fn resolve_uses_file_plus_overrides_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connection.json");
        std::fs::write(&path, WITH_CA).unwrap();
        let o = ConnectionOverrides { tenant: Some("contoso.onmicrosoft.com".into()), ..Default::default() };
        let c = Connection::resolve(&path, &o).unwrap();
        assert_eq!(c.tenant_id, "contoso.onmicrosoft.com");
        assert_eq!(c.client_secret, "s3cret");
    }

    #[test]
    fn resolve_without_file_needs_complete_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let err = Connection::resolve(&path, &ConnectionOverrides { tenant: Some("t".into()), ..Default::default() }).unwrap_err();
        assert!(err.0.contains(&path.display().to_string()), "{err}");
        assert!(err.0.contains("guestlist serve"), "{err}");
        assert!(err.0.contains("(missing --graph-url, --client-id, --client-secret)"), "{err}");

        let o = ConnectionOverrides {
            graph_url: Some("http://127.0.0.1:8080".into()),
            tenant: Some("t".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..Default::default()
        };
        let c = Connection::resolve(&path, &o).unwrap();
        assert_eq!(c.authority_url, "http://127.0.0.1:8080");
        assert_eq!(c.ca_certificate, None);
    }
}
