//! `connection.json`: what a client needs to reach this server. Its field names are a stable
//! interface (the CLI, the tests and users' scripts read it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    pub tenant_id: String,
    pub tenant_domain: String,
    /// Origin of the Graph API, without a version segment.
    pub graph_url: String,
    /// Origin of the token service; the authority is `{authorityUrl}/{tenantId}`.
    pub authority_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Path of the development CA's PEM file; absent with plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Client id of the "guestlist CLI" public client, for `guestlist login` (device code flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_client_id: Option<String>,
    /// The admin console's address (`{origin}/console`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// The demo tenant's Global Administrator and its password, for the console and `guestlist login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
}

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("connection.json")
}

pub fn read(data_dir: &Path) -> Option<ConnectionInfo> {
    let text = std::fs::read_to_string(path_in(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Written atomically and owner-only from the first byte (it holds the client secret and the
/// admin password), so a reader polling for it never sees half a file.
pub fn write(data_dir: &Path, info: &ConnectionInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    crate::secret_files::write_private_file(&path_in(data_dir), &json)
}

impl std::fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("tenant_id", &self.tenant_id)
            .field("tenant_domain", &self.tenant_domain)
            .field("graph_url", &self.graph_url)
            .field("authority_url", &self.authority_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &guestlist_identity::REDACTED)
            .field("ca_certificate", &self.ca_certificate)
            .field("cli_client_id", &self.cli_client_id)
            .field("console_url", &self.console_url)
            .field("admin_user_principal_name", &self.admin_user_principal_name)
            .field("admin_password", &guestlist_identity::redacted_option(&self.admin_password))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret_and_the_password() {
        let info = ConnectionInfo {
            tenant_id: "t".into(),
            tenant_domain: "contoso.onmicrosoft.com".into(),
            graph_url: "https://127.0.0.1:8443".into(),
            authority_url: "https://127.0.0.1:8443".into(),
            client_id: "client-1".into(),
            client_secret: "Abc1~client-secret".into(),
            ca_certificate: None,
            cli_client_id: None,
            console_url: None,
            admin_user_principal_name: Some("admin@contoso.onmicrosoft.com".into()),
            admin_password: Some("Admin-password-1".into()),
        };
        let shown = format!("{info:?}");
        assert!(!shown.contains("Abc1~client-secret") && !shown.contains("Admin-password-1"), "{shown}");
        assert!(shown.contains("client-1") && shown.contains("admin_password: Some([redacted])"), "{shown}");
    }
}
