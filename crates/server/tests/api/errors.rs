use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{assert_graph_error, both_engines, TestServer};

async fn raw(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = server
        .http
        .request(method, server.url(path))
        .bearer_auth(&server.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

both_engines! {
    async fn malformed_bodies_get_4xx_json_and_change_nothing(server: TestServer) {
        let id = server.invite("quinn@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let before = server.user(&id, "displayName,otherMails,mail").await;
        let cases: Vec<(reqwest::Method, String, Vec<u8>, StatusCode)> = vec![
            (reqwest::Method::POST, "/v1.0/invitations".into(), b"{not json".to_vec(), StatusCode::BAD_REQUEST),
            (reqwest::Method::POST, "/v1.0/invitations".into(), b"".to_vec(), StatusCode::BAD_REQUEST),
            (reqwest::Method::POST, "/v1.0/invitations".into(), b"[1,2]".to_vec(), StatusCode::BAD_REQUEST),
            (reqwest::Method::POST, "/v1.0/invitations".into(), vec![0xff, 0xfe, 0x00], StatusCode::BAD_REQUEST),
            (reqwest::Method::PATCH, format!("/v1.0/users/{id}"), b"{\"otherMails\": [1]}".to_vec(), StatusCode::BAD_REQUEST),
            (reqwest::Method::PATCH, format!("/v1.0/users/{id}"), b"\"just a string\"".to_vec(), StatusCode::BAD_REQUEST),
            (reqwest::Method::PATCH, format!("/v1.0/users/{id}"), format!("{{\"displayName\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)).into_bytes(), StatusCode::PAYLOAD_TOO_LARGE),
        ];
        for (method, path, body, expected) in cases {
            let (status, headers, answer) = raw(&server, method.clone(), &path, "application/json", body).await;
            assert_eq!(status, expected, "{method} {path}: {answer}");
            assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
            assert!(answer["error"]["code"].is_string(), "{answer}");
            assert_graph_error(&answer, answer["error"]["code"].as_str().unwrap(), "");
        }
        assert_eq!(server.user(&id, "displayName,otherMails,mail").await, before);
        assert_eq!(server.user_count().await, 1);
    }

    async fn bad_paths_and_encodings_are_4xx(server: TestServer) {
        for (path, expected) in [
            ("/v1.0/users/%zz", StatusCode::BAD_REQUEST),
            ("/v1.0/users/%C0%AF", StatusCode::BAD_REQUEST),
            ("/v1.0/users?$filter=%E0%A4%A", StatusCode::BAD_REQUEST),
            ("/v1.0/nonsense", StatusCode::BAD_REQUEST),
            ("/nonsense", StatusCode::NOT_FOUND),
        ] {
            let (status, body) = server.get(path).await;
            assert_eq!(status, expected, "{path}: {body}");
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
        }
    }

    async fn responses_carry_graphs_headers(server: TestServer) {
        let response = server.http.get(server.url("/v1.0/users")).bearer_auth(&server.token).header("client-request-id", "my-correlation-1").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["client-request-id"], "my-correlation-1");
        assert!(uuid::Uuid::parse_str(headers["request-id"].to_str().unwrap()).is_ok());
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json;odata.metadata=minimal"));
        assert_eq!(headers["odata-version"], "4.0");

        let response = server.http.get(server.url("/v1.0/users/2b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99")).bearer_auth(&server.token).send().await.unwrap();
        let request_id = response.headers()["request-id"].to_str().unwrap().to_string();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["innerError"]["request-id"], request_id.as_str());
        assert_eq!(body["error"]["innerError"]["client-request-id"], request_id.as_str());
    }
}
