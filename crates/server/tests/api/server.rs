use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{app_token, both_engines, TestServer};

both_engines! {
    async fn restart_keeps_the_tenant_the_secret_and_the_data(server: TestServer) {
        let id = server.invite("tara@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let first = server.connection.clone();
        let (data_dir, database_url) = server.stop().await;
        let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(data_dir.path().join("connection.json")).unwrap()).unwrap();
        assert_eq!(on_disk["tenantId"], first.tenant_id.as_str());
        let again = TestServer::start_in(data_dir, database_url).await;
        assert_eq!(again.connection.tenant_id, first.tenant_id);
        assert_eq!(again.connection.client_id, first.client_id);
        assert_eq!(again.connection.client_secret, first.client_secret);
        assert_eq!(again.connection.ca_certificate, first.ca_certificate, "the development CA is kept");
        assert_eq!(again.user(&id, "mail").await["mail"], "tara@example.com");
    }

    async fn the_demo_admin_is_a_global_administrator_kept_across_restarts(server: TestServer) {
        assert!(server.connection.admin_password.is_none(), "--no-demo-admin makes none");
        let (data_dir, database_url) = server.stop().await;
        let with_admin = |config: &mut guestlist::config::ServeConfig| config.no_demo_admin = false;
        let server = TestServer::start_with(data_dir, database_url, with_admin).await;
        let upn = server.connection.admin_user_principal_name.clone().expect("adminUserPrincipalName");
        let password = server.connection.admin_password.clone().expect("adminPassword");
        assert_eq!(upn, "admin@contoso.onmicrosoft.com");
        assert!(guestlist_domain::signin::password_meets_complexity(&password));
        assert_eq!(server.connection.console_url.as_deref(), Some(format!("{}/console", server.connection.graph_url).as_str()));
        let admin = server.user(&upn, "id,userType,accountEnabled").await;
        assert_eq!((admin["userType"].as_str(), admin["accountEnabled"].as_bool()), (Some("Member"), Some(true)));
        let (_, roles) = server.get(&format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{}'", admin["id"].as_str().unwrap())).await;
        assert_eq!(roles["value"][0]["roleDefinitionId"], "62e90394-69f5-4237-9190-012177145e10", "{roles}");
        assert_eq!(console_sign_in(&server, &upn, &password).await, StatusCode::SEE_OTHER);

        // A restart keeps the password connection.json names, and the one admin.
        let (data_dir, database_url) = server.stop().await;
        let again = TestServer::start_with(data_dir, database_url, with_admin).await;
        assert_eq!(again.connection.admin_password.as_deref(), Some(password.as_str()));
        assert_eq!(console_sign_in(&again, &upn, &password).await, StatusCode::SEE_OTHER);
        let (_, roles) = again.get("/v1.0/roleManagement/directory/roleAssignments").await;
        assert_eq!(roles["value"].as_array().unwrap().len(), 1, "{roles}");
    }
}

/// Signs in to the console with a fresh cookie jar; the status of the sign-in post.
async fn console_sign_in(server: &TestServer, username: &str, password: &str) -> StatusCode {
    crate::browser::Browser::new(server).console_sign_in(username, password).await.status
}

#[tokio::test]
async fn connection_json_describes_a_working_server() {
    let server = TestServer::start(crate::harness::Engine::Sqlite).await;
    let text = std::fs::read_to_string(server.data_dir.path().join("connection.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    for key in ["tenantId", "tenantDomain", "graphUrl", "authorityUrl", "clientId", "clientSecret", "caCertificate"] {
        assert!(file[key].is_string(), "connection.json lacks {key}: {text}");
    }
    assert_eq!(file["tenantDomain"], "contoso.onmicrosoft.com");
    assert!(file["graphUrl"].as_str().unwrap().starts_with("https://127.0.0.1:"));
    assert!(std::path::Path::new(file["caCertificate"].as_str().unwrap()).is_absolute());
}

#[tokio::test]
async fn tls_offers_http2_and_http1() {
    let server = TestServer::start(crate::harness::Engine::Sqlite).await;
    let response = server.http.get(server.url("/v1.0/users")).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN h2 is negotiated");
    let ca = std::fs::read(server.connection.ca_certificate.as_ref().unwrap()).unwrap();
    let http1 = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).http1_only().build().unwrap();
    let response = http1.get(server.url("/v1.0/users")).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_and_in_memory_modes_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestServer::config(dir.path(), None);
    config.plain_http = true;
    config.in_memory = true;
    let running = guestlist::http::server::start(config).await.unwrap();
    let connection = running.connection.clone();
    assert!(connection.graph_url.starts_with("http://"));
    assert!(connection.ca_certificate.is_none());
    assert!(!dir.path().join("guestlist.db").exists(), "in-memory mode writes no database file");
    let http = reqwest::Client::new();
    let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
    let response = http.get(format!("{}/v1.0/users", connection.graph_url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    running.stop().await.unwrap();
}

/// An acknowledged invitation survives `kill -9` of the server (SQLite: WAL, synchronous=FULL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let serve = |dir: &std::path::Path| {
        let _ = std::fs::remove_file(dir.join("connection.json"));
        Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn guestlist serve")
    };
    let wait_for_connection = |dir: &std::path::Path| {
        for _ in 0..200 {
            if let Some(info) = guestlist::connection::read(dir) {
                return info;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the server did not write connection.json");
    };
    let mut child = serve(dir.path());
    let connection = wait_for_connection(dir.path());
    let http = crate::harness::https_client(&connection);
    let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
    let mut ids = vec![];
    for i in 0..20 {
        let response = http
            .post(format!("{}/v1.0/invitations", connection.graph_url))
            .bearer_auth(&token)
            .json(&serde_json::json!({"invitedUserEmailAddress": format!("k{i}@example.com"), "inviteRedirectUrl": "https://x.example"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        ids.push(body["invitedUser"]["id"].as_str().unwrap().to_string());
    }
    child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    child.wait().unwrap();

    let mut child = serve(dir.path());
    let connection = wait_for_connection(dir.path());
    let http = crate::harness::https_client(&connection);
    let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
    for id in ids {
        let response = http.get(format!("{}/v1.0/users/{id}", connection.graph_url)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "user {id} was acknowledged before kill -9");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
