//! `connection.json`: what a client needs to reach this server. Its field names are a stable
//! interface (the CLI, the tests and users' scripts read it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

/// Written atomically (temp file + rename) so a reader polling for it never sees half a file.
pub fn write(data_dir: &Path, info: &ConnectionInfo) -> std::io::Result<()> {
    let target = path_in(data_dir);
    let temp = data_dir.join(".connection.json.tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?)?;
    restrict_permissions(&temp)?;
    std::fs::rename(temp, target)
}

/// The file holds a client secret: owner-only on Unix.
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}
