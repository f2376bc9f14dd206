//! The delivery worker: claims due messages from the outbox through the database (a lease per
//! message, so replicas never send one twice), sends them over SMTP, and records the outcome.
//! A failed attempt is retried with exponential backoff and audited; the last one is too.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use guestlist_domain::mail::{activity, delivery_initiator, mail_audit, AfterFailure, MailRecord, OutgoingMail};
use guestlist_store::{MailFailure, Store};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::MailSettings;

/// Messages claimed at once; a full batch is followed by another claim straight away.
const BATCH: u32 = 16;
/// No single SMTP conversation may hold a message longer than this (well within the lease).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ERROR_TEXT: usize = 500;

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// A transport for lettre's URL format: `smtp://host:25`, `smtp://host:587?tls=required`,
/// `smtps://user:pass@host:465`.
pub fn transport(url: &str) -> Result<Transport, lettre::transport::smtp::Error> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.timeout(Some(SMTP_TIMEOUT)).build())
}

/// The running worker; [`MailWorker::stop`] ends it after the message it is sending.
pub struct MailWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MailWorker {
    /// Starts the worker when an SMTP URL is configured.
    pub fn spawn(store: Arc<dyn Store>, settings: MailSettings) -> Option<MailWorker> {
        let url = settings.smtp_url()?;
        let transport = match transport(url) {
            Ok(transport) => transport,
            Err(e) => {
                tracing::error!("mail delivery is off: the SMTP URL is not usable: {e}");
                return None;
            }
        };
        let (stop, stopped) = watch::channel(false);
        let worker = Worker { id: format!("worker-{}", uuid::Uuid::new_v4().simple()), store, settings, transport };
        let task = tokio::spawn(worker.run(stopped));
        Some(MailWorker { stop, task })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!("the mail worker ended abnormally: {e}");
        }
    }
}

struct Worker {
    id: String,
    store: Arc<dyn Store>,
    settings: MailSettings,
    transport: Transport,
}

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        tracing::info!(worker = %self.id, "mail delivery started");
        loop {
            if *stopped.borrow() {
                break;
            }
            let claimed = match self.deliver_due(&stopped).await {
                Ok(count) => count,
                Err(e) => {
                    tracing::warn!(worker = %self.id, "mail delivery: the outbox is unavailable: {e}");
                    0
                }
            };
            if claimed >= BATCH as usize {
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                _ = self.settings.wakeup.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::info!(worker = %self.id, "mail delivery stopped");
    }

    /// Claims one batch of due messages and delivers them; returns how many were claimed.
    async fn deliver_due(&self, stopped: &watch::Receiver<bool>) -> Result<usize, guestlist_store::StoreError> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5));
        let claimed = self.store.claim_mail(&self.id, now, now + lease, BATCH).await?;
        let count = claimed.len();
        for record in claimed {
            // Unsent claims go back to the pool when the lease runs out.
            if *stopped.borrow() {
                break;
            }
            self.deliver(record).await?;
        }
        Ok(count)
    }

    async fn deliver(&self, record: MailRecord) -> Result<(), guestlist_store::StoreError> {
        let mail = &record.mail;
        let outcome = match message(mail) {
            Ok(message) => self.transport.send(message).await.map(|_| ()).map_err(|e| (e.to_string(), false)),
            // A message that can't be built never will be: no retries.
            Err(e) => Err((e, true)),
        };
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                if !self.store.mark_mail_sent(mail.id, &self.id, now).await? {
                    tracing::warn!(mail = %mail.id, "mail sent after its lease ran out");
                }
                tracing::info!(mail = %mail.id, kind = mail.kind.as_str(), "mail delivered");
            }
            Err((error, permanent)) => {
                let error: String = error.chars().take(MAX_ERROR_TEXT).collect();
                let attempts = record.attempts + 1;
                let (failure, activity_name) = match self.settings.retry.after_failure(attempts, now) {
                    AfterFailure::RetryAt(next_attempt) if !permanent => {
                        (MailFailure::RetryAt { next_attempt, error: error.clone() }, activity::EMAIL_DELIVERY_FAILED)
                    }
                    _ => (MailFailure::GiveUp { error: error.clone() }, activity::EMAIL_DELIVERY_ABANDONED),
                };
                let audit =
                    mail_audit(mail.tenant_id, activity_name, "failure", delivery_initiator(), mail.id, mail.user_id, &mail.recipient, now);
                self.store.mark_mail_failed(mail.id, &self.id, &failure, &[audit]).await?;
                tracing::warn!(mail = %mail.id, attempts, "mail delivery failed: {error}");
            }
        }
        Ok(())
    }
}

/// The MIME message: plain text and HTML as alternatives, one CC at most.
fn message(mail: &OutgoingMail) -> Result<Message, String> {
    let mailbox = |name: Option<&str>, address: &str, role: &str| -> Result<Mailbox, String> {
        let address = address.parse().map_err(|e| format!("the {role} address is not usable: {e}"))?;
        Ok(Mailbox::new(name.map(str::to_string), address))
    };
    let mut builder = Message::builder()
        .from(mailbox(Some(&mail.sender_name), &mail.sender_address, "sender")?)
        .to(mailbox(None, &mail.recipient, "recipient")?)
        .subject(mail.subject.clone());
    if let Some(cc) = &mail.cc {
        builder = builder.cc(mailbox(None, cc, "CC")?);
    }
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(mailbox(None, reply_to, "Reply-To")?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(mail.text_body.clone(), mail.html_body.clone()))
        .map_err(|e| format!("the message could not be built: {e}"))
}
