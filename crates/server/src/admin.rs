//! Offline administration of a data directory or database: app registrations and tenant
//! settings, for operators and tests (these have no Graph equivalent guestlist serves yet).

use guestlist_domain::permissions::AppPermission;
use guestlist_domain::tenant::{InvitationThrottle, UpnOnReset};
use guestlist_domain::Tenant;
use guestlist_store::Store;
use std::sync::Arc;

use crate::config::{sqlite_path, ConfigurationError, KeyEncryptionConfig, StoreConfig};
use crate::key_encryption::{self, KeySource};
use crate::services::Services;

async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(guestlist_store::connect(config.database_url.as_deref(), Some(&sqlite_path(&config.data_dir)), false).await?)
}

async fn pick_tenant(store: &Arc<dyn Store>, key: Option<String>) -> anyhow::Result<Tenant> {
    match key {
        Some(key) => store.tenant(&key).await?.ok_or_else(|| anyhow::anyhow!("no tenant '{key}'")),
        None => {
            store.tenants().await?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no tenant yet: start `guestlist serve` once first"))
        }
    }
}

pub async fn add_app(
    config: StoreConfig,
    name: String,
    permissions: Vec<String>,
    tenant: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let permissions = permissions
        .iter()
        .map(|p| {
            AppPermission::parse(p)
                .ok_or_else(|| anyhow::anyhow!("unknown permission '{p}'; known: {}", AppPermission::ALL.map(|k| k.as_str()).join(", ")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = guestlist_store::connect(config.database_url.as_deref(), Some(&sqlite_path(&config.data_dir)), false).await?;
    let services = Services::new(store.clone(), String::new());
    let tenant = match tenant {
        Some(key) => store.tenant(&key).await?.ok_or_else(|| anyhow::anyhow!("no tenant '{key}'"))?,
        None => {
            store.tenants().await?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no tenant yet: start `guestlist serve` once first"))?
        }
    };
    let created = services.add_application(&tenant, &name, permissions.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({"tenantId": tenant.id.to_string(), "clientId": created.app.app_id.to_string(), "clientSecret": created.client_secret, "permissions": names})
        );
    } else {
        println!(
            "Registered app '{name}' in {}\n  client id:     {}\n  client secret: {}\n  permissions:   {}",
            tenant.initial_domain,
            created.app.app_id,
            created.client_secret,
            names.join(", ")
        );
    }
    Ok(())
}

fn tenant_json(tenant: &Tenant) -> serde_json::Value {
    serde_json::json!({
        "id": tenant.id.to_string(),
        "displayName": tenant.display_name,
        "initialDomain": tenant.initial_domain,
        "upnOnReset": tenant.upn_on_reset.as_str(),
        "invitationLifetimeDays": tenant.invitation_lifetime_days,
        "invitationThrottle": tenant.invitation_throttle.map(|t| format!("{}/{}", t.requests, t.window_seconds)),
    })
}

fn print_tenant(tenant: &Tenant, json: bool) {
    if json {
        println!("{}", tenant_json(tenant));
    } else {
        let lifetime = tenant.invitation_lifetime_days.map_or("never expire".to_string(), |d| format!("{d} days"));
        let throttle =
            tenant.invitation_throttle.map_or("off".to_string(), |t| format!("{} requests per {} s", t.requests, t.window_seconds));
        println!(
            "{} ({})\n  id:               {}\n  UPN on reset:     {}\n  redeem links:     {lifetime}\n  invite throttle:  {throttle}",
            tenant.display_name,
            tenant.initial_domain,
            tenant.id,
            tenant.upn_on_reset.as_str()
        );
    }
}

pub async fn show_tenant(config: StoreConfig, tenant: Option<String>, json: bool) -> anyhow::Result<()> {
    let store = open(&config).await?;
    print_tenant(&pick_tenant(&store, tenant).await?, json);
    Ok(())
}

/// The settings `guestlist tenant set` changes, as typed on the command line.
pub struct TenantChanges {
    pub upn_on_reset: Option<String>,
    pub invitation_lifetime_days: Option<String>,
    pub invitation_throttle: Option<String>,
    /// `any`, `allow:a.com,b.com` or `block:x.com`: the invitation domain list (contract §5.2).
    pub invitation_domains: Option<String>,
}

pub async fn set_tenant(config: StoreConfig, tenant: Option<String>, changes: TenantChanges, json: bool) -> anyhow::Result<()> {
    let store = open(&config).await?;
    let mut tenant = pick_tenant(&store, tenant).await?;
    // Parsed before anything is written, so a bad value changes nothing.
    let domains = match changes.invitation_domains {
        Some(text) => Some(
            guestlist_domain::policy::InvitationDomainPolicy::parse_cli(&text)
                .map_err(|e| anyhow::anyhow!("--invitation-domains takes any, allow:DOMAIN,... or block:DOMAIN,...: {e}"))?,
        ),
        None => None,
    };
    if let Some(text) = changes.invitation_throttle {
        tenant.invitation_throttle = match text.as_str() {
            "off" | "none" => None,
            "graph" => Some(InvitationThrottle::GRAPH),
            limit => Some(InvitationThrottle::parse(limit).ok_or_else(|| {
                anyhow::anyhow!("--invitation-throttle takes graph, off, or REQUESTS/SECONDS (e.g. 150/5), not '{limit}'")
            })?),
        };
    }
    let (upn_on_reset, lifetime) = (changes.upn_on_reset, changes.invitation_lifetime_days);
    if let Some(text) = upn_on_reset {
        tenant.upn_on_reset =
            UpnOnReset::parse(&text).ok_or_else(|| anyhow::anyhow!("--upn-on-reset takes followNewEmail or keep, not '{text}'"))?;
    }
    if let Some(text) = lifetime {
        tenant.invitation_lifetime_days = match text.as_str() {
            "none" | "never" => None,
            days => Some(
                days.parse::<u32>()
                    .ok()
                    .filter(|d| (1..=3650).contains(d))
                    .ok_or_else(|| anyhow::anyhow!("--invitation-lifetime-days takes 1 to 3650 or none, not '{days}'"))?,
            ),
        };
    }
    store.update_tenant(&tenant).await?;
    if let Some(policy) = domains {
        let initiator = guestlist_domain::audit::Initiator::App {
            app_id: guestlist_domain::ids::ObjectId::from(uuid::Uuid::nil()).to_string(),
            display_name: "guestlist tenant set".into(),
            service_principal_id: guestlist_domain::ids::ObjectId::from(uuid::Uuid::nil()).to_string(),
        };
        Services::new(store.clone(), String::new()).write_invitation_domain_policy(&tenant, &policy, initiator).await?;
        if !json {
            println!("  invitation domains: {}", policy.describe());
        }
    }
    print_tenant(&tenant, json);
    Ok(())
}

/// `guestlist keys rotate-encryption-key`: opens every signing key with the current
/// key-encryption key and seals it under the new one, in one transaction; tokens stay
/// verifiable since the signing keys themselves do not change. The new key is written before
/// the database changes, so it is never lost: with the data-directory key it goes to
/// `key-encryption.key.new` first and replaces `key-encryption.key` after the commit.
pub async fn rotate_key_encryption_key(
    config: StoreConfig,
    current: KeyEncryptionConfig,
    new_key_file: Option<std::path::PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let (current_key, source) = key_encryption::load(&current, &config.data_dir, false)?;
    let (new_key, staged, location) = match (&new_key_file, &source) {
        (Some(path), _) => {
            if !path.exists() {
                let generated = guestlist_identity::KeyEncryptionKey::generate();
                crate::secret_files::create_private_file(path, format!("{}\n", generated.to_base64()).as_bytes())?;
            }
            (key_encryption::read_key_file(path)?, None, path.display().to_string())
        }
        (None, KeySource::DataDirectory(path)) => {
            let generated = guestlist_identity::KeyEncryptionKey::generate();
            let staged = path.with_file_name(format!("{}.new", key_encryption::KEY_FILE_NAME));
            crate::secret_files::write_private_file(&staged, format!("{}\n", generated.to_base64()).as_bytes())?;
            (generated, Some((staged, path.clone())), path.display().to_string())
        }
        (None, _) => {
            return Err(ConfigurationError(format!(
                "the key-encryption key comes from {}: give --new-key-file PATH (an existing key file, or where to write a new one), \
                 then start every server with GUESTLIST_KEY_ENCRYPTION_KEY_FILE=PATH",
                source.describe()
            ))
            .into())
        }
    };
    if new_key.id() == current_key.id() {
        return Err(ConfigurationError("the new key-encryption key is the current one".into()).into());
    }
    let store = open(&config).await?;
    let services = Services::new(store, String::new());
    let resealed = services.reseal_signing_keys(&current_key, &new_key).await.map_err(|e| anyhow::anyhow!("re-encrypting: {e}"))?;
    if let Some((staged, target)) = &staged {
        std::fs::rename(staged, target)?;
    }
    if json {
        println!("{}", serde_json::json!({"resealedKeys": resealed, "keyEncryptionKeyId": new_key.id(), "keyFile": location}));
    } else {
        println!("Re-encrypted {resealed} signing key(s) under key-encryption key {} ({location}).", new_key.id());
        if new_key_file.is_some() {
            println!(
                "Start every server with GUESTLIST_KEY_ENCRYPTION_KEY_FILE={location} (or its content in GUESTLIST_KEY_ENCRYPTION_KEY)."
            );
        } else {
            println!("Restart running servers on this data directory so they load the new key.");
        }
    }
    Ok(())
}
