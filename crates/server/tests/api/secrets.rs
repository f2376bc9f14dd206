//! Secrets at rest and in transit (issue 9): owner-only files, signing keys sealed under a
//! key-encryption key the database does not hold, its rotation, client authentication on every
//! grant, the rate-limited reload on unknown kids, and what `serve` prints.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use guestlist::config::ConfigurationError;
use guestlist::key_encryption::data_dir_key_path;
use guestlist_domain::signin::{secret_hash, GrantKind, GrantState, OAuthGrant};
use guestlist_domain::ObjectId;
use guestlist_identity::KeyEncryptionKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{both_engines, TestServer};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// `(kid, private_key, key_encryption_key_id)` of every stored signing key, read straight from
/// the database as someone holding a copy of it would.
async fn stored_keys(data_dir: &Path, database_url: Option<&str>) -> Vec<(String, String, Option<String>)> {
    use sqlx::Connection;
    const SQL: &str = "SELECT kid, private_key, key_encryption_key_id FROM signing_keys ORDER BY kid";
    match database_url {
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut connection).await.unwrap()
        }
        None => {
            let path = guestlist::config::sqlite_path(data_dir);
            let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&mut connection).await.unwrap()
        }
    }
}

/// Rewrites a signing key row as versions before 0013 stored it: plain PEM, no key id.
async fn store_plain(data_dir: &Path, database_url: Option<&str>, kid: &str, pem: &str) {
    use sqlx::Connection;
    const SQL: &str = "UPDATE signing_keys SET private_key = $1, key_encryption_key_id = NULL WHERE kid = $2";
    match database_url {
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(SQL).bind(pem).bind(kid).execute(&mut connection).await.unwrap();
        }
        None => {
            let path = guestlist::config::sqlite_path(data_dir);
            let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
            sqlx::query(SQL).bind(pem).bind(kid).execute(&mut connection).await.unwrap();
        }
    }
}

fn data_dir_key(data_dir: &Path) -> KeyEncryptionKey {
    KeyEncryptionKey::from_base64(&std::fs::read_to_string(data_dir_key_path(data_dir)).unwrap()).unwrap()
}

/// The JWKS a server publishes: tokens verify after a restart when it is the same.
async fn jwks(server: &TestServer) -> Value {
    let url = format!("{}/{}/discovery/v2.0/keys", server.connection.authority_url, server.connection.tenant_id);
    server.http.get(url).send().await.unwrap().json().await.unwrap()
}

fn kid_of(token: &str) -> String {
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn token_request(server: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let url = format!("{}/{}/oauth2/v2.0/token", server.connection.authority_url, server.connection.tenant_id);
    let response = server.http.post(url).form(form).send().await.expect("token request");
    (response.status(), response.json().await.expect("token JSON"))
}

fn assert_token_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
}

both_engines! {
    async fn secret_files_are_owner_only_and_the_data_directory_0700(server: TestServer) {
        let (parent, database_url) = server.stop().await;
        // A first start on a data directory that does not exist yet (and its own database: the
        // first server's keys are sealed with the key of the first directory).
        let database_url = match database_url {
            Some(_) => Some(crate::harness::fresh_postgres_database(&crate::harness::postgres_base_url().unwrap()).await),
            None => None,
        };
        let data_dir = parent.path().join("fresh").join("data");
        let inside = data_dir.clone();
        let server = TestServer::start_with(parent, database_url, move |config| config.data_dir = inside).await;
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(data_dir.parent().unwrap()), 0o700);
        assert_eq!(mode(&data_dir.join("tls")), 0o700);
        for secret in ["connection.json", "key-encryption.key", "tls/ca-key.pem", "tls/server-key.pem"] {
            assert_eq!(mode(&data_dir.join(secret)), 0o600, "{secret}");
        }
        // No temporary file is left behind.
        let names: Vec<String> =
            std::fs::read_dir(&data_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        server.stop().await;
    }

    async fn signing_keys_are_sealed_and_a_copied_database_with_another_key_does_not_start(server: TestServer) {
        let kek_id = server.services().keys.key_encryption_key_id().expect("a key-encryption key").to_string();
        let (data_dir, database_url) = server.stop().await;
        let rows = stored_keys(data_dir.path(), database_url.as_deref()).await;
        assert_eq!(rows.len(), 1);
        let (kid, private_key, key_id) = &rows[0];
        assert!(!private_key.contains("PRIVATE KEY") && !private_key.contains("-----"), "the column holds no PEM");
        assert_eq!(key_id.as_deref(), Some(kek_id.as_str()));
        assert_eq!(data_dir_key(data_dir.path()).id(), kek_id);
        assert!(data_dir_key(data_dir.path()).open(kid, private_key).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));

        // The database with another key (a copy taken elsewhere): a clear configuration error.
        let stranger = KeyEncryptionKey::generate();
        let mut config = TestServer::config(data_dir.path(), database_url.clone());
        config.key_encryption.key = Some(stranger.to_base64());
        let error = match guestlist::http::server::start(config).await {
            Ok(_) => panic!("a server with the wrong key-encryption key started"),
            Err(error) => error,
        };
        assert!(error.downcast_ref::<ConfigurationError>().is_some(), "{error:#}");
        let message = format!("{error:#}");
        assert!(message.contains(&kek_id) && message.contains(stranger.id()), "{message}");
        assert!(message.contains("GUESTLIST_KEY_ENCRYPTION_KEY"), "{message}");
        // Nothing was changed: the right key still starts the server.
        let again = TestServer::start_in(data_dir, database_url).await;
        assert_eq!(again.get("/v1.0/users?$top=1").await.0, StatusCode::OK);
    }

    async fn plain_keys_of_earlier_versions_are_sealed_at_start_and_their_tokens_stay_valid(server: TestServer) {
        let before = jwks(&server).await;
        let (data_dir, database_url) = server.stop().await;
        let (kid, sealed, _) = stored_keys(data_dir.path(), database_url.as_deref()).await.remove(0);
        let pem = data_dir_key(data_dir.path()).open(&kid, &sealed).unwrap();
        store_plain(data_dir.path(), database_url.as_deref(), &kid, &pem).await;
        assert_eq!(stored_keys(data_dir.path(), database_url.as_deref()).await[0].2, None);

        let server = TestServer::start_in(data_dir, database_url).await;
        let rows = stored_keys(server.data_dir.path(), server.database_url.as_deref()).await;
        assert_eq!(rows[0].0, kid);
        assert!(!rows[0].1.contains("PRIVATE KEY"));
        assert_eq!(rows[0].2.as_deref(), server.services().keys.key_encryption_key_id());
        // The same keys: tokens signed before verify (a restart on port 0 changes the issuer,
        // so the published keys are compared), and new ones are signed with that key.
        assert_eq!(jwks(&server).await, before);
        assert_eq!(kid_of(&server.token), kid);
        assert_eq!(server.get("/v1.0/users?$top=1").await.0, StatusCode::OK);
    }

    async fn rotating_the_key_encryption_key_keeps_tokens_verifiable(server: TestServer) {
        let before = jwks(&server).await;
        let kid = kid_of(&server.token);
        let (data_dir, database_url) = server.stop().await;
        let old = data_dir_key(data_dir.path());
        let mut args = vec!["--json".to_string(), "keys".into(), "rotate-encryption-key".into(), "--data-dir".into(), data_dir.path().display().to_string()];
        if let Some(url) = &database_url {
            args.extend(["--database-url".to_string(), url.clone()]);
        }
        let output = run_guestlist(args).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let new = data_dir_key(data_dir.path());
        assert_ne!(new.id(), old.id());
        assert_eq!(report["resealedKeys"], 1, "{report}");
        assert_eq!(report["keyEncryptionKeyId"], new.id(), "{report}");
        assert_eq!(mode(&data_dir_key_path(data_dir.path())), 0o600);
        assert!(!data_dir.path().join("key-encryption.key.new").exists());
        let rows = stored_keys(data_dir.path(), database_url.as_deref()).await;
        assert!(rows.iter().all(|(kid, sealed, id)| id.as_deref() == Some(new.id()) && old.open(kid, sealed).is_err()));

        let server = TestServer::start_in(data_dir, database_url).await;
        assert_eq!(server.services().keys.key_encryption_key_id(), Some(new.id()));
        // The signing keys themselves are unchanged, so tokens from before verify.
        assert_eq!(jwks(&server).await, before);
        assert_eq!(kid_of(&server.token), kid);
        assert_eq!(server.get("/v1.0/users?$top=1").await.0, StatusCode::OK);
    }

    async fn confidential_clients_must_send_their_secret_on_delegated_grants(server: TestServer) {
        let (status, member) = server
            .post("/v1.0/users", json!({
                "accountEnabled": true, "displayName": "Rita", "mailNickname": "rita",
                "userPrincipalName": "rita@contoso.onmicrosoft.com",
                "passwordProfile": {"password": "Rita-passw0rd!", "forceChangePasswordNextSignIn": false}
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        let user_id = ObjectId::parse(member["id"].as_str().unwrap()).unwrap();
        let tenant_id = ObjectId::parse(&server.connection.tenant_id).unwrap();
        let confidential = server.connection.client_id.clone();
        let public = server.connection.cli_client_id.clone().expect("the CLI's public client");
        let now = chrono::Utc::now();
        let refresh_grant = |secret: &str, client: &str| OAuthGrant {
            token_hash: secret_hash(secret),
            tenant_id,
            kind: GrantKind::RefreshToken,
            state: GrantState::Active,
            client_id: ObjectId::parse(client).unwrap(),
            user_id: Some(user_id),
            family_id: ObjectId::new_random(),
            scope: "User.Read offline_access".into(),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            user_code: None,
            created_date_time: now,
            expires_date_time: now + chrono::Duration::days(1),
        };
        let store = &server.services().store;
        store.insert_oauth_grant(&refresh_grant("web-app-refresh", &confidential)).await.unwrap();
        store.insert_oauth_grant(&refresh_grant("cli-refresh", &public)).await.unwrap();

        // Without the secret: Entra's AADSTS7000218, and the refresh token is not spent.
        let borrowed = vec![("grant_type", "refresh_token"), ("client_id", confidential.as_str()), ("refresh_token", "web-app-refresh")];
        let (status, body) = token_request(&server, &borrowed).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_token_error(&body, "invalid_client", 7000218);
        assert!(body["error_description"].as_str().unwrap().starts_with(
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
        ));
        let mut wrong = borrowed.clone();
        wrong.push(("client_secret", "not-the-secret"));
        let (status, body) = token_request(&server, &wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_token_error(&body, "invalid_client", 7000215);

        let mut with_secret = borrowed.clone();
        with_secret.push(("client_secret", server.connection.client_secret.as_str()));
        let (status, body) = token_request(&server, &with_secret).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["access_token"].is_string() && body["refresh_token"].is_string());

        // The public client sends none and is served.
        let cli = [("grant_type", "refresh_token"), ("client_id", public.as_str()), ("refresh_token", "cli-refresh")];
        let (status, body) = token_request(&server, &cli).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // An authorization code of the confidential client needs the secret too.
        let verifier = "v".repeat(50);
        let mut code = refresh_grant("web-app-code", &confidential);
        code.kind = GrantKind::AuthorizationCode;
        code.redirect_uri = Some("http://localhost:8400".into());
        code.code_challenge = Some(URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes())));
        store.insert_oauth_grant(&code).await.unwrap();
        let mut exchange = vec![
            ("grant_type", "authorization_code"),
            ("client_id", confidential.as_str()),
            ("code", "web-app-code"),
            ("redirect_uri", "http://localhost:8400"),
            ("code_verifier", verifier.as_str()),
        ];
        let (status, body) = token_request(&server, &exchange).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_token_error(&body, "invalid_client", 7000218);
        exchange.push(("client_secret", server.connection.client_secret.as_str()));
        let (status, body) = token_request(&server, &exchange).await;
        assert_eq!(status, StatusCode::OK, "the code was not spent by the refused request: {body}");

        // The public client gets no app-only token.
        let (status, body) = token_request(&server, &[
            ("grant_type", "client_credentials"), ("client_id", public.as_str()), ("scope", "https://graph.microsoft.com/.default"),
        ]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_token_error(&body, "invalid_client", 7000216);
    }

    async fn tokens_with_unknown_kids_reload_the_keys_at_most_once_per_interval(server: TestServer) {
        let segment = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let forged = format!(
            "{}.{}.{}",
            segment(json!({"alg": "RS256", "typ": "JWT", "kid": "a-kid-nobody-has"})),
            segment(json!({"aud": "https://graph.microsoft.com"})),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        );
        let (status, body) = server.call_as(&forged, reqwest::Method::GET, "/v1.0/users", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

        // The clock is ours from here: far enough after the request above for one reload.
        let services = server.services();
        let start = Instant::now() + guestlist::services::tokens::UNKNOWN_KID_RELOAD_INTERVAL * 2;
        let loads = services.keys.loads();
        for step in 0..5 {
            let at = start + Duration::from_secs(step);
            assert!(services.validate_token(&forged, at).await.unwrap().is_err());
        }
        assert_eq!(services.keys.loads(), loads + 1, "five unknown kids within the interval, one reload");
        let later = start + guestlist::services::tokens::UNKNOWN_KID_RELOAD_INTERVAL;
        assert!(services.validate_token(&forged, later).await.unwrap().is_err());
        assert_eq!(services.keys.loads(), loads + 2, "the next interval allows the next reload");
        // Known kids never reload.
        for _ in 0..3 {
            assert!(services.validate_token(&server.token, later).await.unwrap().is_ok());
        }
        assert_eq!(services.keys.loads(), loads + 2);
    }
}

async fn run_guestlist(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(&args)
            .env_remove("GUESTLIST_KEY_ENCRYPTION_KEY")
            .env_remove("GUESTLIST_KEY_ENCRYPTION_KEY_FILE")
            .env_remove("GUESTLIST_PUBLIC_URL")
            .output()
            .expect("run guestlist")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_public_url_stops_serve_at_once_with_exit_2() {
    let parent = tempfile::tempdir().unwrap();
    for bad in ["not a url", "guests.example.com", "ftp://guests.example.com", "https://guests.example.com/?x=1", "https://"] {
        let data_dir = parent.path().join("data");
        let output = run_guestlist(vec![
            "serve".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--public-url".into(),
            bad.into(),
        ])
        .await;
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--public-url (GUESTLIST_PUBLIC_URL) must be an absolute http or https URL"), "{bad}: {stderr}");
        assert!(stderr.contains(bad), "{bad}: {stderr}");
        assert!(!data_dir.exists(), "nothing is created before the check");
    }
}

/// Starts `guestlist serve` on `data_dir` and returns its printed summary once it is up; the
/// process is then killed (by its id).
async fn serve_summary(data_dir: &Path) -> String {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(["serve", "--data-dir", &data_dir.display().to_string(), "--listen", "127.0.0.1:0"])
            .env_remove("GUESTLIST_KEY_ENCRYPTION_KEY")
            .env_remove("GUESTLIST_KEY_ENCRYPTION_KEY_FILE")
            .env_remove("GUESTLIST_DATABASE_URL")
            .env_remove("GUESTLIST_PUBLIC_URL")
            .env_remove("GUESTLIST_NO_DEMO_ADMIN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start guestlist serve");
        let mut summary = String::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            let line = line.expect("stdout line");
            summary.push_str(&line);
            summary.push('\n');
            if line.trim_start().starts_with("mail:") {
                break;
            }
        }
        child.kill().expect("stop the server");
        child.wait().expect("reap the server");
        summary
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_secret_and_the_admin_password_only_when_they_are_new() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let first = serve_summary(&data_dir).await;
    let connection: Value = serde_json::from_str(&std::fs::read_to_string(data_dir.join("connection.json")).unwrap()).unwrap();
    let secret = connection["clientSecret"].as_str().unwrap();
    let password = connection["adminPassword"].as_str().unwrap();
    assert!(first.contains(&format!("client secret: {secret}")), "{first}");
    assert!(first.contains(&format!("password {password}")), "{first}");

    let second = serve_summary(&data_dir).await;
    assert!(!second.contains(secret) && !second.contains(password), "{second}");
    let path = data_dir.join("connection.json").display().to_string();
    assert!(second.contains(&format!("client secret: unchanged, in {path}")), "{second}");
    assert!(second.contains("password unchanged: adminPassword in connection.json"), "{second}");
    assert!(second.contains(&format!("connection:    {path}")), "{second}");
}
