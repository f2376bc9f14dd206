//! Bounded work before authentication (issue 9 item 2), both engines: every guess takes its
//! account's and its address's slot before any hashing, so concurrent guesses count one each;
//! unknown domains cost the address a slot; `X-Forwarded-For` counts only behind a trusted
//! proxy; a saturated hasher answers "busy" (429), never a 5xx, and counts nothing.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{Browser, Page};
use crate::harness::{assert_graph_error, fresh_postgres_database, postgres_base_url, Engine, TestServer};
use guestlist::config::ServeConfig;
use guestlist::services::signin::{NewPassword, SignInFailure};
use guestlist::services::ServiceError;

const PASSWORD: &str = "Corr3ct-Horse!";
const WRONG: &str = "Wrong-passw0rd!";
const INCORRECT: &str = "Your account or password is incorrect.";
const LOCKED: &str = "Your account is temporarily locked";
const NETWORK_LOCKED: &str = "Too many failed sign-ins from your network";
const BUSY: &str = "Too many sign-ins are in progress right now";

/// `<name>::sqlite` and `<name>::postgres`, each on a server that `$adjust` configured.
macro_rules! both_engines_configured {
    ($(async fn $name:ident($server:ident: TestServer) with $adjust:expr; $body:block)*) => {
        $(
            mod $name {
                use super::*;
                async fn case($server: TestServer) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    case(start(Engine::Sqlite, $adjust).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if postgres_base_url().is_none() {
                        return;
                    }
                    case(start(Engine::Postgres, $adjust).await).await;
                }
            }
        )*
    };
}

async fn start(engine: Engine, adjust: fn(&mut ServeConfig)) -> TestServer {
    let database_url = match engine {
        Engine::Sqlite => None,
        Engine::Postgres => Some(fresh_postgres_database(&postgres_base_url().expect("PostgreSQL configured")).await),
    };
    TestServer::start_with(tempfile::tempdir().expect("temp dir"), database_url, adjust).await
}

/// The test client connects from 127.0.0.1: naming it makes `X-Forwarded-For` count.
fn behind_a_trusted_proxy(config: &mut ServeConfig) {
    config.limits.trusted_proxy = vec!["127.0.0.1".parse().unwrap()];
}

/// Behind a trusted proxy, with room at the hasher for every one of 20 concurrent guesses (a
/// full hasher would answer some "busy" before they count; that case has its own test).
fn behind_a_trusted_proxy_with_room_for_twenty(config: &mut ServeConfig) {
    behind_a_trusted_proxy(config);
    config.limits.hash_queue = Some(32);
}

fn defaults(_: &mut ServeConfig) {}

/// One hash at a time and none waiting, so one held job saturates the hasher.
fn one_hash_at_a_time(config: &mut ServeConfig) {
    config.limits.hash_workers = Some(1);
    config.limits.hash_queue = Some(0);
}

async fn create_member(server: &TestServer, alias: &str) -> String {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias,
                   "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"),
                   "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// A browser on the console's sign-in page, ready to post.
async fn on_sign_in_page(server: &TestServer) -> Browser {
    let mut browser = Browser::new(server);
    assert_eq!(browser.get("/console/signin").await.status, StatusCode::OK);
    browser
}

/// Posts the console sign-in form, with `X-Forwarded-For: forwarded_for` when given.
async fn post_sign_in(browser: &mut Browser, username: &str, password: &str, forwarded_for: Option<&str>) -> Page {
    let token = browser.csrf_token.clone().expect("the sign-in page's token");
    let form = [("username", username), ("password", password), ("next", "/console/guests"), ("csrf_token", token.as_str())];
    let mut request = browser.http.post(browser.absolute("/console/signin")).header("origin", &browser.origin).form(&form);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    browser.send(request).await
}

async fn sign_in_from(server: &TestServer, username: &str, password: &str, forwarded_for: Option<&str>) -> Page {
    let mut browser = on_sign_in_page(server).await;
    post_sign_in(&mut browser, username, password, forwarded_for).await
}

/// The authorization code flow's sign-in page, posted as a browser would.
async fn authorize_sign_in(server: &TestServer, username: &str, password: &str) -> Page {
    let path = format!("/{}/oauth2/v2.0/authorize", server.connection.tenant_id);
    let params = [
        ("client_id", server.connection.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", "http://localhost:8400/callback"),
        ("scope", "openid https://graph.microsoft.com/User.Read"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ];
    let mut browser = Browser::new(server);
    let query = query_string(&params);
    assert_eq!(browser.get(&format!("{path}?{query}")).await.status, StatusCode::OK);
    let mut form = params.to_vec();
    form.extend([("username", username), ("password", password)]);
    browser.submit(&path, &form).await
}

fn query_string(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// The device code flow's pages: a new device code, the code page, then the sign-in form.
async fn device_sign_in(server: &TestServer, username: &str, password: &str) -> Page {
    let url = format!("{}/{}/oauth2/v2.0/devicecode", server.connection.authority_url, server.connection.tenant_id);
    let form = [("client_id", server.connection.client_id.as_str()), ("scope", "https://graph.microsoft.com/User.Read")];
    let device: serde_json::Value = server.http.post(url).form(&form).send().await.unwrap().json().await.unwrap();
    let user_code = device["user_code"].as_str().expect("a user code").to_string();
    let mut browser = Browser::new(server);
    browser.get("/devicelogin").await;
    let signin = browser.submit("/devicelogin", &[("user_code", &user_code)]).await;
    assert!(signin.body.contains("name=\"password\""), "{}", signin.body);
    let fields = [("user_code", user_code.as_str()), ("username", username), ("password", password), ("decision", "sign-in")];
    browser.submit("/devicelogin/signin", &fields).await
}

async fn audit_count(server: &TestServer, user_id: &str, activity: &str) -> usize {
    let filter = format!("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/id eq '{user_id}')");
    let (status, audits) = server.get(&filter).await;
    assert_eq!(status, StatusCode::OK, "{audits}");
    audits["value"].as_array().unwrap().iter().filter(|a| a["activityDisplayName"] == activity).count()
}

/// Holds the server's only hash worker until the returned sender is dropped or sent to (also used by
/// the redemption tests).
pub(crate) async fn hold_the_hasher(server: &TestServer) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let hashing = server.services().hashing.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let held = tokio::spawn(async move {
        hashing
            .run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            })
            .await
            .expect("the held job runs");
    });
    started_rx.await.expect("the hasher is held");
    (release_tx, held)
}

both_engines_configured! {
    async fn twenty_concurrent_guesses_count_twenty_and_lock_the_account(server: TestServer) with behind_a_trusted_proxy_with_room_for_twenty; {
        let user_id = create_member(&server, "erin").await;
        let server = Arc::new(server);
        // Each guess from its own address, so only the account's limit applies; all posted at once.
        let ready = Arc::new(tokio::sync::Barrier::new(20));
        let guesses: Vec<_> = (1..=20)
            .map(|n| {
                let (server, ready) = (server.clone(), ready.clone());
                tokio::spawn(async move {
                    let mut browser = on_sign_in_page(&server).await;
                    ready.wait().await;
                    let address = format!("198.51.100.{n}");
                    post_sign_in(&mut browser, "erin@contoso.onmicrosoft.com", WRONG, Some(&address)).await
                })
            })
            .collect();
        let mut incorrect = 0;
        let mut locked = 0;
        for guess in guesses {
            let page = guess.await.unwrap();
            if page.status == StatusCode::OK && page.says(INCORRECT) {
                incorrect += 1;
            } else if page.status == StatusCode::TOO_MANY_REQUESTS && page.says(LOCKED) {
                locked += 1;
            } else {
                panic!("unexpected answer {}: {}", page.status, page.body);
            }
        }
        // Slots 1-4 were checked and wrong; slot 5 locked the account; the other 15 never hashed.
        assert_eq!((incorrect, locked), (4, 16));
        assert_eq!(audit_count(&server, &user_id, "Sign-in failed").await, 5);
        assert_eq!(audit_count(&server, &user_id, "Account locked out").await, 1);
        // Locked: the right password, from a fresh address, is refused too.
        let right = sign_in_from(&server, "erin@contoso.onmicrosoft.com", PASSWORD, Some("203.0.113.50")).await;
        assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(right.says(LOCKED), "{}", right.body);
    }

    async fn unknown_domains_count_against_the_forwarded_address(server: TestServer) with behind_a_trusted_proxy; {
        create_member(&server, "frank").await;
        for attempt in 1..=20 {
            let page = sign_in_from(&server, "someone@nowhere.example", WRONG, Some("198.51.100.7")).await;
            assert_eq!(page.status, StatusCode::OK, "attempt {attempt}");
            assert!(page.says(INCORRECT), "{}", page.body);
        }
        let refused = sign_in_from(&server, "someone@nowhere.example", WRONG, Some("198.51.100.7")).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.says(NETWORK_LOCKED), "{}", refused.body);
        // The address is refused for known accounts too, before its password is looked at.
        let right = sign_in_from(&server, "frank@contoso.onmicrosoft.com", PASSWORD, Some("198.51.100.7")).await;
        assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(right.says(NETWORK_LOCKED), "{}", right.body);
        // Another client behind the same proxy is counted apart and signs in.
        let other = sign_in_from(&server, "frank@contoso.onmicrosoft.com", PASSWORD, Some("198.51.100.8")).await;
        assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
    }

    async fn forwarded_for_is_ignored_without_a_trusted_proxy(server: TestServer) with defaults; {
        create_member(&server, "grace").await;
        // Every guess claims another address; the peer (127.0.0.1) is what counts.
        for attempt in 1..=20 {
            let forged = format!("198.51.100.{attempt}");
            let page = sign_in_from(&server, "someone@nowhere.example", WRONG, Some(&forged)).await;
            assert_eq!(page.status, StatusCode::OK, "attempt {attempt}");
        }
        let refused = sign_in_from(&server, "grace@contoso.onmicrosoft.com", PASSWORD, Some("203.0.113.99")).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.says(NETWORK_LOCKED), "{}", refused.body);
    }

    async fn a_saturated_hasher_answers_busy_and_counts_nothing(server: TestServer) with one_hash_at_a_time; {
        create_member(&server, "heidi").await;
        let (release, held) = hold_the_hasher(&server).await;
        let server = Arc::new(server);
        let flood: Vec<_> = (0..10)
            .map(|_| {
                let server = server.clone();
                tokio::spawn(async move { sign_in_from(&server, "heidi@contoso.onmicrosoft.com", WRONG, None).await })
            })
            .collect();
        for page in flood {
            let page = page.await.unwrap();
            assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
            assert!(page.says(BUSY), "{}", page.body);
        }
        // Unknown domains and Graph's password writes are refused the same way.
        let unknown = sign_in_from(&server, "someone@nowhere.example", WRONG, None).await;
        assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(unknown.says(BUSY), "{}", unknown.body);
        let (status, body) = server
            .post(
                "/v1.0/users",
                json!({"accountEnabled": true, "displayName": "ivan", "mailNickname": "ivan",
                       "userPrincipalName": "ivan@contoso.onmicrosoft.com",
                       "passwordProfile": {"password": PASSWORD}}),
            )
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_graph_error(&body, "TooManyRequests", "Please try again later.");
        let (status, _) = server.get("/v1.0/users/ivan@contoso.onmicrosoft.com").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a refused create changes nothing");
        // The other pages that check a password: the authorize page and the device login.
        let authorize = authorize_sign_in(&server, "heidi@contoso.onmicrosoft.com", PASSWORD).await;
        assert_eq!(authorize.status, StatusCode::TOO_MANY_REQUESTS, "{}", authorize.body);
        assert!(authorize.says(BUSY), "{}", authorize.body);
        let device = device_sign_in(&server, "heidi@contoso.onmicrosoft.com", PASSWORD).await;
        assert_eq!(device.status, StatusCode::TOO_MANY_REQUESTS, "{}", device.body);
        assert!(device.says(BUSY), "{}", device.body);
        // And the services behind them, the forced password change included.
        let services = server.services();
        let tenant = services.store.tenant(&server.connection.tenant_id).await.unwrap().unwrap();
        let change = NewPassword { password: "N3w-passw0rd!".into(), confirmation: "N3w-passw0rd!".into() };
        for new_password in [None, Some(&change)] {
            let outcome = services.sign_in(&tenant, "heidi@contoso.onmicrosoft.com", PASSWORD, new_password, "192.0.2.1").await;
            assert!(matches!(outcome, Err(SignInFailure::Busy)), "{outcome:?}");
        }
        assert!(matches!(services.hash_password(PASSWORD.into()).await, Err(ServiceError::Busy)));

        release.send(()).unwrap();
        held.await.unwrap();
        // None of the busy answers counted: four wrong guesses leave the account open.
        for _ in 0..4 {
            let page = sign_in_from(&server, "heidi@contoso.onmicrosoft.com", WRONG, None).await;
            assert!(page.says(INCORRECT), "{}", page.body);
        }
        let right = sign_in_from(&server, "heidi@contoso.onmicrosoft.com", PASSWORD, None).await;
        assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.body);
    }
}
