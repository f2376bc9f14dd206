//! Mail: the templates, the settings from `--smtp-url`/`--mail-from`, and the worker that
//! delivers the outbox over SMTP with lettre.

pub mod templates;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use guestlist_domain::mail::RetryPolicy;
use guestlist_domain::Tenant;
use lettre::message::Mailbox;

use crate::config::MailConfig;

/// How this server sends mail. Without an SMTP URL, messages are recorded as `notConfigured`
/// and never sent: the redeem URL in the API response is then the only channel.
#[derive(Clone)]
pub struct MailSettings {
    /// The SMTP URL; kept out of `Debug` since it may carry a password.
    smtp_url: Option<Arc<str>>,
    /// `--mail-from`; without it each tenant sends as `<name> invitations <invites@<initial domain>>`.
    pub from: Option<Mailbox>,
    pub retry: RetryPolicy,
    /// How long a worker holds a claimed message; another may take it over afterwards.
    pub lease: Duration,
    /// How often the worker looks for due messages when nothing woke it.
    pub poll_interval: Duration,
    /// Wakes the local worker when a message was enqueued.
    pub wakeup: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(crate::config::redact_url_password))
            .field("from", &self.from)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_url: None,
            from: None,
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            wakeup: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl MailSettings {
    /// Checks the flags: a URL lettre can use, a valid sender address.
    pub fn from_config(config: &MailConfig) -> anyhow::Result<Self> {
        let smtp_url = config.smtp_url.as_deref().map(str::trim).filter(|url| !url.is_empty());
        if let Some(url) = smtp_url {
            // Never echo the URL: it may hold the SMTP password.
            worker::transport(url).map_err(|e| anyhow::anyhow!("--smtp-url is not a usable SMTP URL: {e}"))?;
        }
        let from = config
            .mail_from
            .as_deref()
            .map(|text| text.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("--mail-from {text:?} is not a mail address: {e}")))
            .transpose()?;
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            first_delay: config.mail_retry_first_delay_ms.map(Duration::from_millis).unwrap_or(defaults.first_delay),
            max_delay: config.mail_retry_max_delay_ms.map(Duration::from_millis).unwrap_or(defaults.max_delay),
            max_attempts: config.mail_max_attempts.unwrap_or(defaults.max_attempts).max(1),
        };
        let mut settings = MailSettings { smtp_url: smtp_url.map(Arc::from), from, retry, ..MailSettings::default() };
        if let Some(ms) = config.mail_poll_interval_ms {
            settings.poll_interval = Duration::from_millis(ms.max(10));
        }
        Ok(settings)
    }

    pub fn is_configured(&self) -> bool {
        self.smtp_url.is_some()
    }

    pub(crate) fn smtp_url(&self) -> Option<&str> {
        self.smtp_url.as_deref()
    }

    /// The sender of a tenant's mail: `--mail-from`, or `<tenant> invitations <invites@<initial domain>>`
    /// (Graph sends as "Microsoft Invitations on behalf of <tenant>", contract §4.1).
    pub fn sender_for(&self, tenant: &Tenant) -> (String, String) {
        if let Some(from) = &self.from {
            let name = from.name.clone().unwrap_or_else(|| format!("{} invitations", tenant.display_name));
            return (name, from.email.to_string());
        }
        (format!("{} invitations", tenant.display_name), format!("invites@{}", tenant.initial_domain))
    }
}
