//! `guestlist serve` configuration: flags, each with a `GUESTLIST_*` environment equivalent
//! (flags win). These names are a stable interface; a change gets a line in the README.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Clone, Args)]
pub struct ServeConfig {
    /// Where the SQLite database, the development certificates and connection.json live.
    #[arg(long, env = "GUESTLIST_DATA_DIR", default_value = "./guestlist-data")]
    pub data_dir: PathBuf,

    /// Address to listen on; port 0 picks a free port (connection.json then holds the real one).
    #[arg(long, env = "GUESTLIST_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// A `postgres://` URL selects PostgreSQL instead of the embedded SQLite database.
    #[arg(long, env = "GUESTLIST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Keep everything in memory: nothing survives a restart.
    #[arg(long, env = "GUESTLIST_IN_MEMORY")]
    pub in_memory: bool,

    /// Serve plain HTTP instead of TLS (MSAL and azure-identity refuse http authorities).
    #[arg(long, env = "GUESTLIST_PLAIN_HTTP")]
    pub plain_http: bool,

    /// PEM certificate chain to serve instead of the generated development certificate.
    #[arg(long, env = "GUESTLIST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "GUESTLIST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The origin clients use when it differs from the listen address (behind a proxy), e.g. `https://guests.example.com`.
    #[arg(long, env = "GUESTLIST_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Don't create the demo tenant's Global Administrator (`admin@<domain>`, password in connection.json).
    #[arg(long, env = "GUESTLIST_NO_DEMO_ADMIN")]
    pub no_demo_admin: bool,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub mail: MailConfig,

    #[command(flatten)]
    pub key_encryption: KeyEncryptionConfig,
}

/// Where the key that seals the signing keys comes from (see `crate::key_encryption`): the
/// variable, else the file, else `<data-dir>/key-encryption.key` (created on first start).
/// Replicas sharing a database must all be given the same key.
#[derive(Clone, Default, Args)]
pub struct KeyEncryptionConfig {
    /// The key-encryption key, base64 of 32 random bytes (`openssl rand -base64 32`).
    #[arg(long = "key-encryption-key", env = "GUESTLIST_KEY_ENCRYPTION_KEY", hide_env_values = true, hide = true)]
    pub key: Option<String>,

    /// A file holding the key-encryption key (base64 of 32 bytes); default `<data-dir>/key-encryption.key`.
    #[arg(long = "key-encryption-key-file", env = "GUESTLIST_KEY_ENCRYPTION_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// Who a request counts against, and how much password hashing runs at once.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitsConfig {
    /// Proxies (IP addresses, comma-separated) whose `X-Forwarded-For` names the client address
    /// for the per-address sign-in limit; from any other peer the header is ignored.
    #[arg(long, env = "GUESTLIST_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Argon2 hashes that run at once (default: the number of cores).
    #[arg(long, env = "GUESTLIST_HASH_WORKERS", hide = true)]
    pub hash_workers: Option<usize>,

    /// Argon2 hashes that may wait for a worker before more are refused as busy (default: 8 per worker).
    #[arg(long, env = "GUESTLIST_HASH_QUEUE", hide = true)]
    pub hash_queue: Option<usize>,
}

/// Mail delivery. Without `--smtp-url` no mail is sent: messages are recorded as `notConfigured`
/// and the `inviteRedeemUrl` of the API response is the only channel.
#[derive(Clone, Default, Args)]
pub struct MailConfig {
    /// SMTP server in lettre's URL format: `smtp://127.0.0.1:2525` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (implicit TLS, with login).
    #[arg(long, env = "GUESTLIST_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of all mail, e.g. `Guest invitations <invites@example.com>`. Default: per tenant,
    /// `<tenant name> invitations <invites@<tenant initial domain>>`.
    #[arg(long, env = "GUESTLIST_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Wait after the first failed delivery, doubling after each further one (default 5000).
    #[arg(long, env = "GUESTLIST_MAIL_RETRY_FIRST_DELAY_MS", hide = true)]
    pub mail_retry_first_delay_ms: Option<u64>,

    /// The longest wait between delivery attempts (default 600000).
    #[arg(long, env = "GUESTLIST_MAIL_RETRY_MAX_DELAY_MS", hide = true)]
    pub mail_retry_max_delay_ms: Option<u64>,

    /// Delivery attempts before a message is given up as `failed` (default 40).
    #[arg(long, env = "GUESTLIST_MAIL_MAX_ATTEMPTS", hide = true)]
    pub mail_max_attempts: Option<u32>,

    /// How often the delivery worker looks for due messages (default 2000).
    #[arg(long, env = "GUESTLIST_MAIL_POLL_INTERVAL_MS", hide = true)]
    pub mail_poll_interval_ms: Option<u64>,
}

/// Where the store lives, shared by `serve` and the offline admin commands.
#[derive(Clone, Args)]
pub struct StoreConfig {
    #[arg(long, env = "GUESTLIST_DATA_DIR", default_value = "./guestlist-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "GUESTLIST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

pub fn sqlite_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("guestlist.db")
}

/// A start-up refusal caused by the operator's configuration (a bad flag, a wrong key): the
/// binary exits with status 2 and prints the message, as for a usage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigurationError(pub String);

/// `--public-url` as the origin tokens and links use: an absolute `http`/`https` URL with a
/// host, no credentials, query or fragment; returned without a trailing slash.
pub fn validate_public_url(text: &str) -> Result<String, ConfigurationError> {
    let refuse = |why: &str| {
        ConfigurationError(format!(
            "--public-url (GUESTLIST_PUBLIC_URL) must be an absolute http or https URL such as https://guests.example.com, {why}: '{text}'"
        ))
    };
    let url = url::Url::parse(text.trim()).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("without a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("without user or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("without a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A URL for logs and `Debug`: its password (if any) replaced by `[redacted]`; text that does
/// not parse is redacted whole, since where a password sits in it is unknown.
pub fn redact_url_password(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else { return "[redacted]".to_string() };
    if url.password().is_none() {
        return url.to_string();
    }
    const MARK: &str = "REDACTEDPASSWORD";
    if url.set_password(Some(MARK)).is_err() {
        return "[redacted]".to_string();
    }
    url.to_string().replacen(MARK, "[redacted]", 1)
}

fn redacted_url(url: &Option<String>) -> Option<String> {
    url.as_deref().map(redact_url_password)
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("database_url", &redacted_url(&self.database_url))
            .field("in_memory", &self.in_memory)
            .field("plain_http", &self.plain_http)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("public_url", &self.public_url)
            .field("no_demo_admin", &self.no_demo_admin)
            .field("mail", &self.mail)
            .field("key_encryption", &self.key_encryption)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_url", &redacted_url(&self.smtp_url))
            .field("mail_from", &self.mail_from)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig").field("data_dir", &self.data_dir).field("database_url", &redacted_url(&self.database_url)).finish()
    }
}

impl fmt::Debug for KeyEncryptionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEncryptionConfig")
            .field("key", &guestlist_identity::redacted_option(&self.key))
            .field("key_file", &self.key_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }

    #[test]
    fn public_urls_must_be_absolute_http_origins() {
        for (given, origin) in [
            ("https://guests.example.com", "https://guests.example.com"),
            ("https://guests.example.com/", "https://guests.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://example.com/guestlist/", "https://example.com/guestlist"),
        ] {
            assert_eq!(validate_public_url(given).unwrap(), origin, "{given}");
        }
        for bad in [
            "guests.example.com",
            "/relative",
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com",
            "https://example.com/?a=b",
            "https://example.com/#top",
            "",
        ] {
            let error = validate_public_url(bad).unwrap_err().to_string();
            assert!(error.starts_with("--public-url (GUESTLIST_PUBLIC_URL) must be an absolute http or https URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn debug_of_the_configuration_redacts_passwords_and_keys() {
        let serve = Serve::parse_from([
            "serve",
            "--database-url",
            "postgres://guestlist:db-pass-123@db.example.com:5432/guestlist",
            "--smtp-url",
            "smtps://mailer:smtp-pass-456@mail.example.com:465",
            "--key-encryption-key",
            "a2V5LWVuY3J5cHRpb24ta2V5LW9mLTMyLWJ5dGVzISE=",
        ]);
        let shown = format!("{:?}", serve.config);
        for secret in ["db-pass-123", "smtp-pass-456", "a2V5LWVuY3J5cHRpb24ta2V5LW9mLTMyLWJ5dGVzISE="] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("postgres://guestlist:[redacted]@db.example.com:5432/guestlist"), "{shown}");
        assert!(shown.contains("smtps://mailer:[redacted]@mail.example.com:465"), "{shown}");
        assert!(shown.contains("key: Some([redacted])"), "{shown}");
        let store = StoreConfig { data_dir: "d".into(), database_url: Some("postgres://u:pw@h/db".into()) };
        assert!(!format!("{store:?}").contains(":pw@"), "{store:?}");
        assert_eq!(redact_url_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url_password("not a url with pw"), "[redacted]");
    }
}
