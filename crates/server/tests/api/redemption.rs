//! The guest's redemption flow (issue 4), driven over HTTPS like a browser (cookies kept, no
//! redirects followed), with the invitation and the one-time passcode read from the mail a real
//! SMTP server received. Every case runs on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use guestlist::http::server::start;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::ticket::TicketState;
use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, Notify};

use crate::browser::{Browser, Page};
use crate::harness::{app_token, fresh_postgres_database, https_client, postgres_base_url, TestServer};

const REDIRECT: &str = "https://apps.example.net/welcome";

/// Like `both_engines!`, with the server's mail going to a [`Mailbox`] of the test's own.
macro_rules! both_engines_with_mail {
    ($(async fn $name:ident($server:ident: TestServer, $mail:ident: Mailbox) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn case($server: TestServer, $mail: Mailbox) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let mailbox = Mailbox::start().await;
                    let server = start_with_mail(None, &mailbox).await;
                    case(server, mailbox).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(base) = postgres_base_url() else { return };
                    let mailbox = Mailbox::start().await;
                    let server = start_with_mail(Some(fresh_postgres_database(&base).await), &mailbox).await;
                    case(server, mailbox).await;
                }
            }
        )*
    };
}

async fn start_with_mail(database_url: Option<String>, mailbox: &Mailbox) -> TestServer {
    start_with_mail_and(database_url, mailbox, |_| {}).await
}

async fn start_with_mail_and(
    database_url: Option<String>,
    mailbox: &Mailbox,
    adjust: impl FnOnce(&mut guestlist::config::ServeConfig),
) -> TestServer {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = TestServer::config(data_dir.path(), database_url.clone());
    adjust(&mut config);
    config.mail.smtp_url = Some(mailbox.url.clone());
    config.mail.mail_poll_interval_ms = Some(100);
    config.mail.mail_retry_first_delay_ms = Some(100);
    let running = start(config).await.expect("server starts");
    let connection = running.connection.clone();
    let http = https_client(&connection);
    let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
    TestServer { running: Some(running), connection, data_dir, http, token, database_url }
}

// ---- a real SMTP server ---------------------------------------------------------------------

/// A minimal SMTP server on loopback that keeps every message it receives.
struct Mailbox {
    url: String,
    messages: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

#[derive(Debug, Clone)]
struct Received {
    recipients: Vec<String>,
    raw: String,
}

impl Mailbox {
    async fn start() -> Mailbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let messages = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (store, notify) = (messages.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (store, notify) = (store.clone(), notify.clone());
                tokio::spawn(async move {
                    let _ = smtp_session(socket, store, notify).await;
                });
            }
        });
        Mailbox { url, messages, arrived }
    }

    /// The messages to `address` so far, oldest first.
    async fn to(&self, address: &str) -> Vec<Received> {
        let messages = self.messages.lock().await;
        messages.iter().filter(|m| m.recipients.iter().any(|r| r.eq_ignore_ascii_case(address))).cloned().collect()
    }

    /// Waits for the `n`th message (1-based) to `address`; a bound keeps a broken server from hanging the test.
    async fn nth_to(&self, address: &str, n: usize) -> Received {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(message) = self.to(address).await.into_iter().nth(n - 1) {
                    return message;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.unwrap_or_else(|_| panic!("message {n} to {address} never arrived"))
    }

    /// The code in the `n`th one-time passcode mail to `address`.
    async fn code(&self, address: &str, n: usize) -> String {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let codes: Vec<String> = self.to(address).await.iter().filter_map(Received::passcode).collect();
                if let Some(code) = codes.into_iter().nth(n - 1) {
                    return code;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.unwrap_or_else(|_| panic!("code {n} to {address} never arrived"))
    }
}

async fn smtp_session(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>, notify: Arc<Notify>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test-smtp ready\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write.write_all(b"250-test-smtp\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("RCPT TO:") {
            let address = line.trim_end()[8..].trim().trim_start_matches('<').split('>').next().unwrap_or_default().to_string();
            recipients.push(address);
            write.write_all(b"250 ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            store.lock().await.push(Received { recipients: std::mem::take(&mut recipients), raw });
            notify.notify_waiters();
            write.write_all(b"250 queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if command.starts_with("RSET") {
            recipients.clear();
            write.write_all(b"250 ok\r\n").await?;
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
}

impl Received {
    fn subject(&self) -> String {
        self.raw.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
    }

    /// The decoded text/plain part.
    fn text(&self) -> String {
        let raw = self.raw.replace("\r\n", "\n");
        let start = raw.find("Content-Type: text/plain").expect("a text/plain part");
        let part = &raw[start..];
        let (headers, body) = part.split_once("\n\n").expect("part headers end");
        let body = body.split("\n--").next().unwrap_or_default();
        let encoding =
            headers.lines().find_map(|l| l.strip_prefix("Content-Transfer-Encoding: ")).unwrap_or("7bit").trim().to_ascii_lowercase();
        match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                use base64::Engine;
                let compact: String = body.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).expect("base64 body")).expect("UTF-8")
            }
            _ => body.to_string(),
        }
    }

    /// The 8-digit code of a one-time passcode mail.
    fn passcode(&self) -> Option<String> {
        if !self.subject().contains("verification code") {
            return None;
        }
        let text = self.text();
        text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() == 8).map(str::to_string)
    }

    /// The redeem link of an invitation mail.
    fn redeem_link(&self) -> String {
        let text = self.text();
        let start = text.find("https://127.0.0.1:").expect("a link to this server");
        let link = text[start..].split_whitespace().next().unwrap().to_string();
        assert!(link.contains("/redeem?"), "{link}");
        link
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'=', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 text")
}

// ---- the browser ----------------------------------------------------------------------------

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = fields.to_vec();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

// ---- steps ----------------------------------------------------------------------------------

/// Invites `email` with the invitation mail and returns (user id, the mailed redeem link).
async fn invite_by_mail(server: &TestServer, mailbox: &Mailbox, email: &str) -> (String, String) {
    let body = json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": REDIRECT, "sendInvitationMessage": true});
    let (status, invited) = server.post("/v1.0/invitations", body).await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    let n = mailbox.to(email).await.len() + 1;
    let mail = mailbox.nth_to(email, n).await;
    let link = mail.redeem_link();
    assert_eq!(link, invited["inviteRedeemUrl"].as_str().unwrap(), "the mail carries the invitation's link");
    (invited["invitedUser"]["id"].as_str().unwrap().to_string(), link)
}

/// Landing → Continue → Send code: returns the code page's form fields.
async fn request_code(browser: &mut Browser, link: &str) -> Page {
    let landing = browser.get(link).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    let verify = browser.get(&landing.href_to("/redeem/verify?")).await;
    assert_eq!(verify.status, StatusCode::OK, "{}", verify.body);
    let sent = browser.post("/redeem/send-code", &verify.link_fields()).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert!(sent.location().starts_with("/redeem/code?"), "{}", sent.location());
    let code_page = browser.get(&sent.location()).await;
    assert_eq!(code_page.status, StatusCode::OK);
    assert!(code_page.says("We sent a code to"));
    code_page
}

/// From the mailed link to the redirect: the whole flow, reading the code from the mail.
async fn redeem(browser: &mut Browser, mailbox: &Mailbox, link: &str, email: &str) -> Page {
    let before = mailbox.to(email).await.iter().filter(|m| m.passcode().is_some()).count();
    let code_page = request_code(browser, link).await;
    let code = mailbox.code(email, before + 1).await;
    let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    assert!(verified.location().starts_with("/redeem/consent?"));
    let consent = browser.get(&verified.location()).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.says("Review permissions") && consent.says("Contoso") && consent.says("your email address"));
    browser.post("/redeem/consent", &with(&consent.link_fields(), &[("decision", "accept")])).await
}

fn ids(server: &TestServer, user_id: &str) -> (ObjectId, ObjectId) {
    (ObjectId::parse(&server.connection.tenant_id).unwrap(), ObjectId::parse(user_id).unwrap())
}

async fn ticket_states(server: &TestServer, user_id: &str) -> Vec<TicketState> {
    let (tenant, user) = ids(server, user_id);
    server.services().store.invitations_for_user(tenant, user).await.unwrap().iter().map(|i| i.state).collect()
}

async fn audit_names(server: &TestServer) -> Vec<String> {
    let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
    server.services().store.audit_records(tenant, 100).await.unwrap().into_iter().map(|a| a.activity_display_name).collect()
}

/// Test-only time travel: moves stored expiry times into the past, straight in the database.
async fn expire(server: &TestServer, table: &str) {
    use sqlx::Connection;
    let sql = |past: &str| format!("UPDATE {table} SET expires_date_time = {past}");
    match &server.database_url {
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(&sql("TIMESTAMPTZ '2000-01-01 00:00:00+00'")).execute(&mut connection).await.unwrap();
        }
        None => {
            let path = guestlist::config::sqlite_path(server.data_dir.path());
            let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
            sqlx::query(&sql("'2000-01-01T00:00:00.000000Z'")).execute(&mut connection).await.unwrap();
        }
    }
}

both_engines_with_mail! {
    async fn a_guest_redeems_with_a_mailed_code_and_becomes_accepted(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "ann@example.com").await;
        let mut browser = Browser::new(&server);
        let done = redeem(&mut browser, &mailbox, &link, "ann@example.com").await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), REDIRECT);

        let user = server.user(&id, "id,externalUserState,externalUserStateChangeDateTime,identities").await;
        assert_eq!(user["externalUserState"], "Accepted");
        assert!(user["externalUserStateChangeDateTime"].is_string());
        let identities = user["identities"].as_array().unwrap();
        assert!(identities.contains(&json!({"signInType": "federated", "issuer": "mail", "issuerAssignedId": "ann@example.com"})), "{user}");
        assert!(identities.iter().any(|i| i["signInType"] == "userPrincipalName"));
        // The identity is found the way Graph callers look for it.
        let (status, found) = server
            .get("/v1.0/users?$filter=identities/any(c:c/issuerAssignedId%20eq%20'ann@example.com'%20and%20c/issuer%20eq%20'mail')&$select=id")
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["value"][0]["id"], id.as_str());

        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Redeemed]);
        let audit = audit_names(&server).await;
        assert_eq!(audit.iter().filter(|a| *a == "Redeem external user invite").count(), 1, "{audit:?}");
        assert!(audit.contains(&"Update user".to_string()), "{audit:?}");
        let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
        let records = server.services().store.audit_records(tenant, 100).await.unwrap();
        let update = records.iter().find(|a| a.activity_display_name == "Update user").unwrap();
        assert_eq!(update.logged_by_service, "Core Directory");
        let state_change = update.target_resources[0].modified_properties.iter().find(|p| p.display_name == "UserState").unwrap();
        assert_eq!(state_change.new_value.as_deref(), Some(r#"["Accepted"]"#));

        // The used link now explains itself and changes nothing.
        let again = browser.get(&link).await;
        assert_eq!(again.status, StatusCode::GONE);
        assert!(again.says("no longer valid") && again.says("already been accepted"), "{}", again.body);
    }

    async fn the_landing_page_consumes_nothing(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "scan@example.com").await;
        let audit_before = audit_names(&server).await;
        let mut scanner = Browser::new(&server);
        for _ in 0..3 {
            let landing = scanner.get(&link).await;
            assert_eq!(landing.status, StatusCode::OK);
            assert!(landing.says("Contoso invited you") && landing.says("scan@example.com") && landing.says("Continue"), "{}", landing.body);
            // A scanner that follows the Continue link sees the send-code form, and sends nothing.
            let verify = scanner.get(&landing.href_to("/redeem/verify?")).await;
            assert_eq!(verify.status, StatusCode::OK);
            assert!(verify.says("Send code"));
        }
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Pending]);
        assert_eq!(audit_names(&server).await, audit_before);
        let (tenant, _) = ids(&server, &id);
        let invitation = server.services().store.invitations_for_user(tenant, ObjectId::parse(&id).unwrap()).await.unwrap().remove(0);
        assert!(server.services().store.latest_passcode(tenant, invitation.id).await.unwrap().is_none(), "no code was sent");
        let user = server.user(&id, "externalUserState").await;
        assert_eq!(user["externalUserState"], "PendingAcceptance");
    }

    async fn pages_carry_strict_security_headers_and_cookies(server: TestServer, mailbox: Mailbox) {
        let (_, link) = invite_by_mail(&server, &mailbox, "hdr@example.com").await;
        let mut browser = Browser::new(&server);
        let landing = browser.get(&link).await;
        let csp = landing.headers["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
        assert_eq!(landing.headers["referrer-policy"], "same-origin");
        assert_eq!(landing.headers["cache-control"], "no-store");
        assert_eq!(landing.headers["x-frame-options"], "DENY");
        assert!(landing.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(landing.body.contains("<html lang=\"en\">") && !landing.body.contains("<script") && !landing.body.contains("style="));
        let css = browser.get("/assets/guestlist.css").await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));

        let verify = browser.http.get(browser.absolute(&landing.href_to("/redeem/verify?"))).send().await.unwrap();
        let cookie = verify.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.starts_with("__Host-guestlist-csrf="), "{cookie}");
        for flag in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        // An unknown ticket gets an HTML page, not Graph's JSON error envelope.
        let unknown = browser.get("/redeem?tenant=contoso.onmicrosoft.com&user=nobody&ticket=nothing&ver=2.0").await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(unknown.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(unknown.says("isn't valid") && unknown.says("Ask the person who invited you"), "{}", unknown.body);
    }

    async fn forms_without_the_csrf_token_are_refused(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "csrf@example.com").await;
        let mut browser = Browser::new(&server);
        let landing = browser.get(&link).await;
        let verify = browser.get(&landing.href_to("/redeem/verify?")).await;
        let fields = verify.link_fields();
        let without_token: Vec<_> = fields.iter().filter(|(k, _)| k != "csrf_token").cloned().collect();
        let wrong_token: Vec<_> = fields.iter().map(|(k, v)| if k == "csrf_token" { (k.clone(), "A".repeat(43)) } else { (k.clone(), v.clone()) }).collect();

        for form in [&without_token, &wrong_token] {
            let refused = browser.post("/redeem/send-code", form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            assert!(refused.says("nothing was changed") && refused.says("Start again"), "{}", refused.body);
        }
        // The right token from a browser without the cookie (another site's form) is refused too.
        let mut other = Browser::new(&server);
        assert_eq!(other.post("/redeem/send-code", &fields).await.status, StatusCode::FORBIDDEN);
        // So is a post that says it comes from another origin.
        let cross = browser.http.post(browser.absolute("/redeem/send-code")).form(&fields)
            .header("cookie", browser.cookie_header()).header("origin", "https://evil.example").send().await.unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        for path in ["/redeem/code", "/redeem/consent"] {
            assert_eq!(browser.post(path, &with(&without_token, &[("code", "12345678"), ("decision", "accept")])).await.status, StatusCode::FORBIDDEN);
        }
        let (tenant, _) = ids(&server, &id);
        let invitation = server.services().store.invitations_for_user(tenant, ObjectId::parse(&id).unwrap()).await.unwrap().remove(0);
        assert!(server.services().store.latest_passcode(tenant, invitation.id).await.unwrap().is_none(), "no code was sent");
        // With the token, the same form works.
        assert_eq!(browser.post("/redeem/send-code", &fields).await.status, StatusCode::SEE_OTHER);
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Pending]);
    }

    async fn wrong_and_overused_codes_say_what_to_do_next(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "typo@example.com").await;
        let mut browser = Browser::new(&server);
        let code_page = request_code(&mut browser, &link).await;
        let code = mailbox.code("typo@example.com", 1).await;
        let wrong = if code == "00000000" { "11111111" } else { "00000000" };

        let malformed = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", "12ab")])).await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(malformed.says("Enter the 8-digit code"), "{}", malformed.body);
        for left in (1..=4).rev() {
            let page = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", wrong)])).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST);
            let tries = if left == 1 { "1 more try".to_string() } else { format!("{left} more tries") };
            assert!(page.says("That code isn't right") && page.says(&tries), "{}", page.body);
            assert!(page.body.contains("aria-invalid=\"true\"") && page.body.contains("role=\"alert\""));
        }
        let fifth = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", wrong)])).await;
        assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(fifth.says("Too many wrong codes") && fifth.says("Send a new code"), "{}", fifth.body);
        // Even the right code is refused now: the code is spent.
        let late = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
        assert_eq!(late.status, StatusCode::TOO_MANY_REQUESTS, "{}", late.body);
        assert!(!browser.cookies.keys().any(|k| k.contains("redeem")), "no session");

        // The way out the page offers: a new code, which works.
        let resent = browser.post("/redeem/send-code", &late.link_fields()).await;
        assert_eq!(resent.status, StatusCode::SEE_OTHER);
        let fresh = mailbox.code("typo@example.com", 2).await;
        // The first code was replaced by the new one.
        if fresh != code {
            let old = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
            assert_eq!(old.status, StatusCode::BAD_REQUEST, "{}", old.body);
        }
        let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &fresh)])).await;
        assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
        let cookie = verified.headers[SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("__Host-guestlist-redeem=") && cookie.contains("HttpOnly") && cookie.contains("Max-Age=86400"), "{cookie}");
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Pending], "verifying consumes nothing");
    }

    async fn an_expired_code_asks_for_a_new_one(server: TestServer, mailbox: Mailbox) {
        let (_, link) = invite_by_mail(&server, &mailbox, "late@example.com").await;
        let mut browser = Browser::new(&server);
        let code_page = request_code(&mut browser, &link).await;
        let code = mailbox.code("late@example.com", 1).await;
        expire(&server, "one_time_passcodes").await;
        let page = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.says("This code has expired") && page.says("Send a new code"), "{}", page.body);
        let resent = browser.post("/redeem/send-code", &page.link_fields()).await;
        assert_eq!(resent.status, StatusCode::SEE_OTHER);
        let fresh = mailbox.code("late@example.com", 2).await;
        let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &fresh)])).await;
        assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    }

    async fn too_many_code_requests_get_a_clear_page(server: TestServer, mailbox: Mailbox) {
        let (_, link) = invite_by_mail(&server, &mailbox, "again@example.com").await;
        let mut browser = Browser::new(&server);
        let code_page = request_code(&mut browser, &link).await;
        for _ in 2..=5 {
            let sent = browser.post("/redeem/send-code", &code_page.link_fields()).await;
            assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        }
        let sixth = browser.post("/redeem/send-code", &code_page.link_fields()).await;
        assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(sixth.says("Too many codes requested") && sixth.says("You can ask for a new code after"), "{}", sixth.body);
        assert!(sixth.says("The last code we sent still works") && sixth.says("href=\"/redeem/code?"), "{}", sixth.body);
        // Five codes were mailed, and the newest still verifies.
        let fifth = mailbox.code("again@example.com", 5).await;
        let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &fifth)])).await;
        assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
        assert_eq!(mailbox.to("again@example.com").await.iter().filter(|m| m.passcode().is_some()).count(), 5);
    }

    async fn cancel_shares_nothing_and_keeps_the_link(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "maybe@example.com").await;
        let mut browser = Browser::new(&server);
        let code_page = request_code(&mut browser, &link).await;
        let code = mailbox.code("maybe@example.com", 1).await;
        let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
        let consent = browser.get(&verified.location()).await;
        let csp = consent.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://apps.example.net;"), "{csp}");
        let cancelled = browser.post("/redeem/consent", &with(&consent.link_fields(), &[("decision", "cancel")])).await;
        assert_eq!(cancelled.status, StatusCode::OK);
        assert!(cancelled.says("nothing was shared with Contoso") && cancelled.says("still works"), "{}", cancelled.body);
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Pending]);
        assert_eq!(server.user(&id, "externalUserState").await["externalUserState"], "PendingAcceptance");
        // The session lasts: the link leads straight back to the consent page, which accepts.
        let landing = browser.get(&link).await;
        let again = browser.get(&landing.href_to("/redeem/verify?")).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        assert!(again.location().starts_with("/redeem/consent?"));
        let consent = browser.get(&again.location()).await;
        let done = browser.post("/redeem/consent", &with(&consent.link_fields(), &[("decision", "accept")])).await;
        assert_eq!(done.location(), REDIRECT);
    }

    async fn revoked_unknown_and_expired_links_each_explain_and_change_nothing(server: TestServer, mailbox: Mailbox) {
        let (id, first) = invite_by_mail(&server, &mailbox, "old@example.com").await;
        // A re-invite revokes the first link (DECISIONS 2).
        let (_, second) = invite_by_mail(&server, &mailbox, "old@example.com").await;
        let mut browser = Browser::new(&server);
        let revoked = browser.get(&first).await;
        assert_eq!(revoked.status, StatusCode::GONE);
        assert!(revoked.says("This invitation link is no longer valid; ask the person who invited you for a new one."), "{}", revoked.body);
        assert!(!revoked.body.contains("<form"), "a dead link offers no form");
        // A tampered ticket, or a ticket under another invitation id, is unknown.
        let tampered = browser.get(&second.replace("ticket=", "ticket=x")).await;
        assert_eq!(tampered.status, StatusCode::NOT_FOUND);
        let user_param = second.split("user=").nth(1).unwrap().split('&').next().unwrap();
        let swapped = browser.get(&second.replace(user_param, &ObjectId::new_random().to_string())).await;
        assert_eq!(swapped.status, StatusCode::NOT_FOUND);
        let oversized = browser.get(&format!("/redeem?tenant=x&user=y&ticket={}", "a".repeat(5000))).await;
        assert_eq!(oversized.status, StatusCode::NOT_FOUND);
        // A form posted for a revoked link gets the same page and sends no code.
        let landing = browser.get(&second).await;
        let verify = browser.get(&landing.href_to("/redeem/verify?")).await;
        let mut fields = verify.link_fields();
        let revoked_fields: Vec<(String, String)> = {
            let ticket = first.split("ticket=").nth(1).unwrap().split('&').next().unwrap().to_string();
            let user = first.split("user=").nth(1).unwrap().split('&').next().unwrap().to_string();
            fields.iter_mut().for_each(|(k, v)| if k == "ticket" { *v = ticket.clone() } else if k == "user" { *v = user.clone() });
            fields
        };
        assert_eq!(browser.post("/redeem/send-code", &revoked_fields).await.status, StatusCode::GONE);

        // An expired link (a tenant lifetime, DECISIONS 3) says so and offers nothing else.
        expire(&server, "invitations").await;
        let expired = browser.get(&second).await;
        assert_eq!(expired.status, StatusCode::GONE);
        assert!(expired.says("This invitation link has expired"), "{}", expired.body);
        assert!(!expired.body.contains("<form") && !expired.body.contains("class=\"button"), "{}", expired.body);
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Revoked, TicketState::Pending]);
        assert!(mailbox.to("old@example.com").await.iter().all(|m| m.passcode().is_none()));
    }

    async fn two_concurrent_accepts_redeem_exactly_once(server: TestServer, mailbox: Mailbox) {
        let (id, link) = invite_by_mail(&server, &mailbox, "race@example.com").await;
        // Two browsers, each verified with its own code, accept at once.
        let mut first = Browser::new(&server);
        let mut second = Browser::new(&server);
        let mut consents = Vec::new();
        for (n, browser) in [&mut first, &mut second].into_iter().enumerate() {
            let code_page = request_code(browser, &link).await;
            let code = mailbox.code("race@example.com", n + 1).await;
            let verified = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
            assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
            consents.push(browser.get(&verified.location()).await);
        }
        let accept = |page: &Page| with(&page.link_fields(), &[("decision", "accept")]);
        let (form_a, form_b) = (accept(&consents[0]), accept(&consents[1]));
        let (a, b) = tokio::join!(first.post("/redeem/consent", &form_a), second.post("/redeem/consent", &form_b));
        let winners = [&a, &b].iter().filter(|p| p.status == StatusCode::SEE_OTHER).count();
        assert_eq!(winners, 1, "{} / {}", a.status, b.status);
        let loser = if a.status == StatusCode::SEE_OTHER { &b } else { &a };
        assert_eq!(loser.status, StatusCode::GONE, "{}", loser.body);
        // Each browser verified the address, so the loser is told the invitation is accepted and led on.
        assert!(loser.says("Invitation already accepted") && loser.says(REDIRECT), "{}", loser.body);
        let audit = audit_names(&server).await;
        assert_eq!(audit.iter().filter(|a| *a == "Redeem external user invite").count(), 1, "{audit:?}");
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Redeemed]);
        let user = server.user(&id, "identities").await;
        assert_eq!(user["identities"].as_array().unwrap().iter().filter(|i| i["issuer"] == "mail").count(), 1);
    }

    async fn after_a_reset_the_old_link_is_dead_and_the_new_one_redeems(server: TestServer, mailbox: Mailbox) {
        let (id, first) = invite_by_mail(&server, &mailbox, "grace@example.com").await;
        let (status, group) = server.post("/v1.0/groups", json!({
            "displayName": "Partners", "mailEnabled": false, "mailNickname": "partners", "securityEnabled": true
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let group_id = group["id"].as_str().unwrap();
        let (status, body) = server.post(&format!("/v1.0/groups/{group_id}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let mut browser = Browser::new(&server);
        assert_eq!(redeem(&mut browser, &mailbox, &first, "grace@example.com").await.location(), REDIRECT);

        let (status, body) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["grace@newco.example"]})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, reset) = server.post("/v1.0/invitations", json!({
            "invitedUserEmailAddress": "grace@newco.example", "inviteRedirectUrl": REDIRECT, "sendInvitationMessage": true,
            "invitedUser": {"id": id}, "resetRedemption": true
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{reset}");
        let second = mailbox.nth_to("grace@newco.example", 1).await.redeem_link();
        assert_eq!(second, reset["inviteRedeemUrl"].as_str().unwrap());
        let pending = server.user(&id, "externalUserState,identities").await;
        assert_eq!(pending["externalUserState"], "PendingAcceptance");
        assert!(pending["identities"].as_array().unwrap().iter().all(|i| i["issuer"] != "mail"), "{pending}");

        // The old link is dead, also for a browser that still holds a session.
        let old = browser.get(&first).await;
        assert_eq!(old.status, StatusCode::GONE);
        assert!(old.says("no longer valid"), "{}", old.body);
        // The session was for the old address; the new one needs its own code, mailed to it.
        let mut fresh = Browser::new(&server);
        let done = redeem(&mut fresh, &mailbox, &second, "grace@newco.example").await;
        assert_eq!(done.location(), REDIRECT);

        let user = server.user(&id, "id,externalUserState,identities,userPrincipalName,mail").await;
        assert_eq!(user["id"], id.as_str());
        assert_eq!(user["externalUserState"], "Accepted");
        assert_eq!(user["mail"], "grace@newco.example");
        assert_eq!(user["userPrincipalName"], "grace_newco.example#EXT#@contoso.onmicrosoft.com", "the tenant's default UPN rule");
        let mail_identities: Vec<&Value> = user["identities"].as_array().unwrap().iter().filter(|i| i["issuer"] == "mail").collect();
        assert_eq!(mail_identities, vec![&json!({"signInType": "federated", "issuer": "mail", "issuerAssignedId": "grace@newco.example"})]);
        let (status, groups) = server.get(&format!("/v1.0/users/{id}/memberOf")).await;
        assert_eq!(status, StatusCode::OK, "{groups}");
        assert_eq!(groups["value"][0]["id"], group_id, "memberships survive");
        assert_eq!(ticket_states(&server, &id).await, vec![TicketState::Redeemed, TicketState::Redeemed]);
    }
}

// ---- bounded work before the code is hashed (issue 9 item 2) -------------------------------

/// Rows in the one-time passcode table, reservations included, straight from the database.
async fn passcode_rows(server: &TestServer) -> i64 {
    use sqlx::{Connection, Row};
    let sql = "SELECT COUNT(*) AS n FROM one_time_passcodes";
    match &server.database_url {
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).fetch_one(&mut connection).await.unwrap().get::<i64, _>("n")
        }
        None => {
            let path = guestlist::config::sqlite_path(server.data_dir.path());
            let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
            sqlx::query(sql).fetch_one(&mut connection).await.unwrap().get::<i64, _>("n")
        }
    }
}

const BUSY: &str = "Too many requests are in progress right now";

async fn codes_are_limited_before_hashing_and_a_busy_hasher_stores_nothing(server: TestServer, mailbox: Mailbox) {
    let (_, link) = invite_by_mail(&server, &mailbox, "limit@example.com").await;
    let mut browser = Browser::new(&server);
    let code_page = request_code(&mut browser, &link).await;
    for _ in 2..=5 {
        assert_eq!(browser.post("/redeem/send-code", &code_page.link_fields()).await.status, StatusCode::SEE_OTHER);
    }
    assert_eq!(passcode_rows(&server).await, 5);
    // Over the hourly limit the answer needs no hashing: with the only worker held, the page
    // still says the limit is reached (not "busy"), and no row is written.
    let (release, held) = crate::signin_limits::hold_the_hasher(&server).await;
    let over = browser.post("/redeem/send-code", &code_page.link_fields()).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(over.says("Too many codes requested"), "{}", over.body);
    assert_eq!(passcode_rows(&server).await, 5);

    // Under the limit but with the hasher busy: a clear 429 page, the reserved slot given back.
    let (_, second_link) = invite_by_mail(&server, &mailbox, "busy@example.com").await;
    let mut second = Browser::new(&server);
    let landing = second.get(&second_link).await;
    let verify = second.get(&landing.href_to("/redeem/verify?")).await;
    let busy = second.post("/redeem/send-code", &verify.link_fields()).await;
    assert_eq!(busy.status, StatusCode::TOO_MANY_REQUESTS, "{}", busy.body);
    assert!(busy.says(BUSY), "{}", busy.body);
    assert_eq!(passcode_rows(&server).await, 5, "the reservation was given back");
    // Checking a code while busy spends no try.
    let fifth = mailbox.code("limit@example.com", 5).await;
    let wrong = if fifth == "00000000" { "11111111" } else { "00000000" };
    let busy_check = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", wrong)])).await;
    assert_eq!(busy_check.status, StatusCode::TOO_MANY_REQUESTS, "{}", busy_check.body);
    assert!(busy_check.says(BUSY), "{}", busy_check.body);
    release.send(()).unwrap();
    held.await.unwrap();

    let checked = browser.post("/redeem/code", &with(&code_page.link_fields(), &[("code", wrong)])).await;
    assert!(checked.says("4 more tries"), "the busy check counted no try: {}", checked.body);
    let sent = second.post("/redeem/send-code", &verify.link_fields()).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let code = mailbox.code("busy@example.com", 1).await;
    let code_page = second.get(&sent.location()).await;
    let verified = second.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
}

mod codes_are_limited_before_hashing {
    use super::*;

    fn one_hash_at_a_time(config: &mut guestlist::config::ServeConfig) {
        config.limits.hash_workers = Some(1);
        config.limits.hash_queue = Some(0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let mailbox = Mailbox::start().await;
        let server = start_with_mail_and(None, &mailbox, one_hash_at_a_time).await;
        codes_are_limited_before_hashing_and_a_busy_hasher_stores_nothing(server, mailbox).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(base) = postgres_base_url() else { return };
        let mailbox = Mailbox::start().await;
        let server = start_with_mail_and(Some(fresh_postgres_database(&base).await), &mailbox, one_hash_at_a_time).await;
        codes_are_limited_before_hashing_and_a_busy_hasher_stores_nothing(server, mailbox).await;
    }
}
