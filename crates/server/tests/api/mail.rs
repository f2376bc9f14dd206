//! Mail delivery against a real SMTP server: aiosmtpd (PyPI) from the compat venv, run as a
//! subprocess writing a Maildir. Tests read the messages it received and follow their links.
//! Without aiosmtpd these cases are skipped with a note, unless `GUESTLIST_REQUIRE_SMTP=1`
//! (scripts/test.sh sets it and installs aiosmtpd first).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guestlist::config::MailConfig;
use guestlist::http::server::start;
use guestlist_domain::permissions::AppPermission;
use mail_parser::{MessageParser, MimeHeaders};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{app_token, fresh_postgres_database, https_client, postgres_base_url, TestServer};

/// Long enough for any delivery on a loaded 2-core machine; polls end as soon as the condition holds.
const DEADLINE: Duration = Duration::from_secs(60);

/// The Python that has aiosmtpd, or `None` (with a note) when the tests can't run one.
fn smtp_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("GUESTLIST_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/python/.venv/bin/python"));
    let usable = Command::new(&candidate)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(candidate);
    }
    assert!(
        std::env::var("GUESTLIST_REQUIRE_SMTP").as_deref() != Ok("1"),
        "GUESTLIST_REQUIRE_SMTP=1 but {} can't import aiosmtpd",
        candidate.display()
    );
    eprintln!("skipping mail delivery cases: no Python with aiosmtpd (scripts/test.sh installs it into compat/python/.venv)");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A real SMTP server on a fixed port that can be stopped and started again.
struct SmtpServer {
    python: PathBuf,
    port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    /// Reserves a port without listening on it yet.
    fn stopped(python: PathBuf) -> SmtpServer {
        SmtpServer { python, port: free_port(), maildir: tempfile::tempdir().expect("maildir"), child: None }
    }

    async fn running(python: PathBuf) -> SmtpServer {
        let mut server = Self::stopped(python);
        server.start().await;
        server
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = Command::new(&self.python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port), "-c", "aiosmtpd.handlers.Mailbox"])
            // aiosmtpd creates the Maildir only where nothing exists yet.
            .arg(self.maildir.path().join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        self.child = Some(child);
        let port = self.port;
        poll("the SMTP server to listen", || async move { std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() }).await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, parsed.
    fn messages(&self) -> Vec<Received> {
        let new = self.maildir.path().join("box").join("new");
        let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).filter_map(|e| std::fs::read(e.path()).ok()).map(|raw| Received::parse(&raw)).collect()
    }

    /// Waits until `count` messages arrived and returns them.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(start.elapsed() < DEADLINE, "{} of {count} messages arrived within {DEADLINE:?}", messages.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug, Clone)]
struct Received {
    to: String,
    cc: Vec<String>,
    reply_to: Option<String>,
    from: String,
    subject: String,
    text: String,
    html: String,
    content_type: String,
}

impl Received {
    fn parse(raw: &[u8]) -> Received {
        let message = MessageParser::default().parse(raw).expect("a MIME message");
        let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
            list.map(|a| a.iter().filter_map(|addr| addr.address().map(str::to_string)).collect()).unwrap_or_default()
        };
        Received {
            to: addresses(message.to()).join(","),
            cc: addresses(message.cc()),
            reply_to: addresses(message.reply_to()).first().cloned(),
            from: message
                .from()
                .and_then(|f| f.first())
                .map(|a| format!("{} <{}>", a.name().unwrap_or(""), a.address().unwrap_or("")))
                .unwrap_or_default(),
            subject: message.subject().unwrap_or_default().to_string(),
            text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            content_type: message.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())).unwrap_or_default(),
        }
    }

    /// The first line of the text part that starts with `prefix`.
    fn link(&self, prefix: &str) -> String {
        self.text
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} link in:\n{}", self.text))
            .to_string()
    }
}

/// HTML text with the entities the templates write decoded (in attributes, browsers decode them).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
async fn poll<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server whose mail goes to `smtp_url`, retrying fast.
async fn server_with_mail(database_url: Option<String>, smtp_url: &str, max_attempts: Option<u32>) -> TestServer {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = TestServer::config(data_dir.path(), database_url.clone());
    // Replicas of one database share the key that seals its signing keys (README "Secrets at rest").
    config.key_encryption.key = Some("Z3Vlc3RsaXN0LW1haWwtdGVzdC1yZXBsaWNhcy1rZXk=".to_string());
    config.mail = MailConfig {
        smtp_url: Some(smtp_url.to_string()),
        mail_from: None,
        mail_retry_first_delay_ms: Some(100),
        mail_retry_max_delay_ms: Some(400),
        mail_max_attempts: max_attempts,
        mail_poll_interval_ms: Some(50),
    };
    let running = start(config).await.expect("server starts");
    let connection = running.connection.clone();
    let http = https_client(&connection);
    let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
    TestServer { running: Some(running), connection, data_dir, http, token, database_url }
}

/// Declares `<name>::sqlite` and `<name>::postgres`, each with a running SMTP server.
macro_rules! with_smtp {
    ($(async fn $name:ident($server:ident: TestServer, $smtp:ident: SmtpServer) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn case($server: TestServer, $smtp: SmtpServer) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let Some(python) = smtp_python() else { return };
                    let smtp = SmtpServer::running(python).await;
                    let server = server_with_mail(None, &smtp.url(), None).await;
                    case(server, smtp).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(base) = postgres_base_url() else { return };
                    let Some(python) = smtp_python() else { return };
                    let smtp = SmtpServer::running(python).await;
                    let server = server_with_mail(Some(fresh_postgres_database(&base).await), &smtp.url(), None).await;
                    case(server, smtp).await;
                }
            }
        )*
    };
}

fn invitation(email: &str, message: Value) -> Value {
    json!({
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": "https://myapps.microsoft.com/?tenant=x",
        "sendInvitationMessage": true,
        "invitedUserMessageInfo": message,
    })
}

async fn invite(server: &TestServer, body: Value) -> Value {
    let (status, body) = server.post("/v1.0/invitations", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn to(messages: &[Received], address: &str) -> Vec<Received> {
    messages.iter().filter(|m| m.to.eq_ignore_ascii_case(address)).cloned().collect()
}

async fn audit_names(server: &TestServer) -> Vec<String> {
    let (status, body) = server.get("/v1.0/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().iter().map(|a| a["activityDisplayName"].as_str().unwrap_or_default().to_string()).collect()
}

async fn pending(server: &TestServer) -> Vec<Value> {
    let (status, body) = server.get("/guestlist/v1/invitations?state=pending").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().expect("value").clone()
}

with_smtp! {
    async fn invitation_mail_has_both_parts_the_escaped_message_one_cc_and_the_language(server: TestServer, smtp: SmtpServer) {
        let message = json!({
            "messageLanguage": "de-DE",
            "customizedMessageBody": "<b>Willkommen</b> & <script>alert(1)</script>",
            "ccRecipients": [
                {"emailAddress": {"address": "boss@contoso.example", "name": "Boss"}},
                {"emailAddress": {"address": "ignored@contoso.example"}}
            ]
        });
        let german = invite(&server, invitation("anna@fabrikam.example", message)).await;
        let english = invite(&server, invitation("ben@fabrikam.example", json!({}))).await;
        let unknown = invite(&server, invitation("cleo@fabrikam.example", json!({"messageLanguage": "xx-YY"}))).await;
        let (status, silent) = server
            .post("/v1.0/invitations", json!({"invitedUserEmailAddress": "dan@fabrikam.example", "inviteRedirectUrl": "https://myapps.microsoft.com"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{silent}");
        let messages = smtp.wait_for(3).await;

        let anna = to(&messages, "anna@fabrikam.example");
        assert_eq!(anna.len(), 1, "{messages:#?}");
        let anna = &anna[0];
        assert_eq!(anna.content_type, "multipart/alternative");
        assert_eq!(anna.cc, vec!["boss@contoso.example".to_string()], "exactly one CC (DECISIONS 15)");
        assert_eq!(anna.reply_to, None, "an app inviter has no Reply-To");
        let tenant = &server.connection.tenant_domain;
        assert!(anna.from.ends_with(&format!("invitations <invites@{tenant}>")), "{}", anna.from);
        assert!(anna.subject.ends_with("hat Sie eingeladen, auf Anwendungen in der eigenen Organisation zuzugreifen"), "{}", anna.subject);
        assert!(anna.text.contains("<b>Willkommen</b> & <script>alert(1)</script>"), "plain text keeps the message as written");
        assert!(anna.html.contains("&lt;b&gt;Willkommen&lt;&#x2f;b&gt; &amp; &lt;script&gt;"), "{}", anna.html);
        assert!(!anna.html.contains("<script>") && !anna.html.contains("<b>Willkommen"), "the message is never HTML");
        let redeem = anna.link("https://");
        assert_eq!(redeem, german["inviteRedeemUrl"].as_str().unwrap(), "the Accept link is the inviteRedeemUrl");
        assert!(unescape(&anna.html).contains(&format!("href=\"{redeem}\"")), "the HTML part links it too");
        assert!(anna.text.contains("https://myapps.microsoft.com/?tenant=x"), "where the guest will be taken");
        assert!(anna.text.contains(tenant), "the inviting organisation's domain");
        let unsubscribe = anna.link(&format!("{}/unsubscribe?token=", server.connection.graph_url));
        assert!(unescape(&anna.html).contains(&format!("href=\"{unsubscribe}\"")), "the HTML part has the Block future invitations link");

        for (address, body) in [("ben@fabrikam.example", &english), ("cleo@fabrikam.example", &unknown)] {
            let mail = to(&messages, address);
            assert_eq!(mail.len(), 1, "{address}");
            assert_eq!(mail[0].subject.split(" invited you to access applications within their organization").count(), 2, "{}", mail[0].subject);
            assert!(mail[0].text.contains("Please only act on this email if you trust"), "the phishing warning");
            assert_eq!(mail[0].link("https://"), body["inviteRedeemUrl"].as_str().unwrap());
            assert!(mail[0].cc.is_empty());
        }

        // sendInvitationMessage false: no message, and the pending list says so.
        let listed = pending(&server).await;
        let dan = listed.iter().find(|p| p["invitedUserEmailAddress"] == "dan@fabrikam.example").expect("dan's invitation is pending");
        assert_eq!(dan["mailDelivery"], Value::Null);
        poll("the three mails to be marked sent", || async {
            pending(&server).await.iter().filter(|p| p["mailDelivery"]["state"] == "sent").count() == 3
        })
        .await;
        assert!(to(&smtp.messages(), "dan@fabrikam.example").is_empty());
        assert_eq!(smtp.messages().len(), 3);
    }

    async fn reset_with_a_message_mails_the_new_address(server: TestServer, smtp: SmtpServer) {
        let first = invite(&server, invitation("old@fabrikam.example", json!({}))).await;
        let id = first["invitedUser"]["id"].as_str().unwrap().to_string();
        let (status, body) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["new@newco.example"]})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let reset = invite(
            &server,
            json!({
                "invitedUserEmailAddress": "new@newco.example", "inviteRedirectUrl": "https://myapps.microsoft.com",
                "sendInvitationMessage": true, "resetRedemption": true, "invitedUser": {"id": id},
            }),
        )
        .await;
        let messages = smtp.wait_for(2).await;
        let new = to(&messages, "new@newco.example");
        assert_eq!(new.len(), 1, "{messages:#?}");
        assert_eq!(new[0].link("https://"), reset["inviteRedeemUrl"].as_str().unwrap());
        assert_eq!(to(&messages, "old@fabrikam.example").len(), 1);
    }

    async fn unsubscribe_asks_then_blocks_later_invitation_mail(server: TestServer, smtp: SmtpServer) {
        invite(&server, invitation("eve@fabrikam.example", json!({}))).await;
        let mail = smtp.wait_for(1).await.remove(0);
        let link = mail.link(&format!("{}/unsubscribe?token=", server.connection.graph_url));

        // A mail scanner following the link changes nothing.
        let page = server.http.get(&link).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page.headers().get("set-cookie").and_then(|c| c.to_str().ok()).expect("CSRF cookie").split(';').next().unwrap().to_string();
        let csp = page.headers().get("content-security-policy").and_then(|c| c.to_str().ok()).unwrap_or_default().to_string();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains("eve@fabrikam.example") && html.contains("Block future invitations"), "{html}");
        let field = |name: &str| {
            let marker = format!("name=\"{name}\" value=\"");
            let start = html.find(&marker).unwrap_or_else(|| panic!("{name} field")) + marker.len();
            html[start..].split('"').next().unwrap().to_string()
        };
        let (token, csrf) = (field("token"), field("csrf_token"));
        assert!(!audit_names(&server).await.iter().any(|a| a == "Email unsubscribed"), "GET changes nothing");

        // A post without the page's CSRF token is refused and changes nothing.
        let forged = server.http.post(format!("{}/unsubscribe", server.connection.graph_url)).form(&[("token", token.as_str())]).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(!audit_names(&server).await.iter().any(|a| a == "Email unsubscribed"));

        let confirmed = server
            .http
            .post(format!("{}/unsubscribe", server.connection.graph_url))
            .header("cookie", &cookie)
            .form(&[("token", token.as_str()), ("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), StatusCode::OK);
        assert!(confirmed.text().await.unwrap().contains("You won"));
        assert_eq!(audit_names(&server).await.iter().filter(|a| *a == "Email unsubscribed").count(), 1);

        // A later invitation to that address is made, but not mailed; the audit log says why.
        let again = invite(&server, invitation("EVE@fabrikam.example", json!({}))).await;
        assert!(again["inviteRedeemUrl"].is_string());
        invite(&server, invitation("fay@fabrikam.example", json!({}))).await;
        smtp.wait_for(2).await;
        assert_eq!(to(&smtp.messages(), "eve@fabrikam.example").len(), 1, "no second mail to eve");
        assert!(audit_names(&server).await.iter().any(|a| a == "Email not sent, user unsubscribed"));
    }

    async fn pending_invitations_list_delivery_and_resend_revokes_the_old_link(server: TestServer, smtp: SmtpServer) {
        let first = invite(&server, invitation("gus@fabrikam.example", json!({"messageLanguage": "de"}))).await;
        smtp.wait_for(1).await;
        let listed = pending(&server).await;
        assert_eq!(listed.len(), 1);
        let entry = &listed[0];
        assert_eq!(entry["invitedUserId"], first["invitedUser"]["id"]);
        assert_eq!(entry["invitedUserEmailAddress"], "gus@fabrikam.example");
        assert_eq!(entry["state"], "pending");
        assert!(entry["createdDateTime"].is_string());
        let old_id = entry["id"].as_str().unwrap().to_string();

        let (status, resent) = server.call(Method::POST, &format!("/guestlist/v1/invitations/{old_id}/resend"), None).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        let new_url = resent["inviteRedeemUrl"].as_str().unwrap().to_string();
        assert_ne!(new_url, first["inviteRedeemUrl"].as_str().unwrap());
        let messages = smtp.wait_for(2).await;
        let links: Vec<String> = to(&messages, "gus@fabrikam.example").iter().map(|m| m.link("https://")).collect();
        assert!(links.contains(&new_url), "the new link is mailed: {links:?}");
        assert!(to(&messages, "gus@fabrikam.example").iter().all(|m| m.subject.contains("eingeladen")), "in the language of the last mail");

        let listed = pending(&server).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["id"], resent["id"]);
        assert_ne!(listed[0]["id"].as_str().unwrap(), old_id, "the old invitation is revoked");
        let (status, body) = server.call(Method::POST, &format!("/guestlist/v1/invitations/{old_id}/resend"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _) = server.call(Method::POST, "/guestlist/v1/invitations/not-an-id/resend", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = server.get("/guestlist/v1/invitations?state=accepted").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // An app that may only read users may not see or resend invitations.
        let reader = server.token_with(&[AppPermission::UserReadAll]).await;
        let (status, _) = server.call_as(&reader, Method::GET, "/guestlist/v1/invitations?state=pending", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = server.call_as(&reader, Method::POST, &format!("/guestlist/v1/invitations/{}/resend", resent["id"].as_str().unwrap()), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// The mail server is down while invitations are acknowledged; once it is up, every mail
/// arrives, exactly once.
async fn outage_then_recovery(database_url: Option<String>) {
    let Some(python) = smtp_python() else { return };
    let mut smtp = SmtpServer::stopped(python);
    let server = server_with_mail(database_url, &smtp.url(), None).await;
    let addresses: Vec<String> = (0..6).map(|n| format!("guest{n}@fabrikam.example")).collect();
    for address in &addresses {
        invite(&server, invitation(address, json!({}))).await;
    }
    poll("a failed attempt for every mail", || async {
        pending(&server).await.iter().all(|p| p["mailDelivery"]["attempts"].as_u64().unwrap_or(0) >= 1)
    })
    .await;
    assert!(audit_names(&server).await.iter().any(|a| a == "Email delivery failed"));
    assert!(smtp.messages().is_empty());

    smtp.start().await;
    smtp.wait_for(addresses.len()).await;
    poll("every mail to be marked sent", || async { pending(&server).await.iter().all(|p| p["mailDelivery"]["state"] == "sent") }).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), addresses.len(), "exactly once each");
    for address in &addresses {
        assert_eq!(to(&messages, address).len(), 1, "{address}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_survives_an_smtp_outage_sqlite() {
    outage_then_recovery(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_survives_an_smtp_outage_postgres() {
    let Some(base) = postgres_base_url() else { return };
    outage_then_recovery(Some(fresh_postgres_database(&base).await)).await;
}

/// A mail server that never answers: a few attempts, each audited, then `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_mail_is_given_up_after_its_attempts() {
    let unreachable = format!("smtp://127.0.0.1:{}", free_port());
    let server = server_with_mail(None, &unreachable, Some(3)).await;
    invite(&server, invitation("hal@fabrikam.example", json!({}))).await;
    poll("the mail to fail for good", || async { pending(&server).await[0]["mailDelivery"]["state"] == "failed" }).await;
    let delivery = &pending(&server).await[0]["mailDelivery"];
    assert_eq!(delivery["attempts"], 3);
    assert!(delivery["lastError"].as_str().is_some_and(|e| !e.is_empty()));
    let names = audit_names(&server).await;
    assert_eq!(names.iter().filter(|a| *a == "Email delivery failed").count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|a| *a == "Email delivery abandoned").count(), 1, "{names:?}");
    server.stop().await;
}

/// Two replicas on one PostgreSQL database deliver the outbox together and never send a message twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_send_a_message_twice() {
    let Some(base) = postgres_base_url() else { return };
    let Some(python) = smtp_python() else { return };
    let smtp = SmtpServer::running(python).await;
    let database = fresh_postgres_database(&base).await;
    let first = server_with_mail(Some(database.clone()), &smtp.url(), None).await;
    let second = server_with_mail(Some(database), &smtp.url(), None).await;
    let count = 24;
    for n in 0..count {
        let server = if n % 2 == 0 { &first } else { &second };
        invite(server, invitation(&format!("r{n}@fabrikam.example"), json!({}))).await;
    }
    smtp.wait_for(count).await;
    poll("every mail to be marked sent", || async { pending(&first).await.iter().all(|p| p["mailDelivery"]["state"] == "sent") }).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), count, "no message was sent twice");
    for n in 0..count {
        assert_eq!(to(&messages, &format!("r{n}@fabrikam.example")).len(), 1);
    }
    first.stop().await;
    second.stop().await;
}
