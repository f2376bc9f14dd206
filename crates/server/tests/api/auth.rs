use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{assert_graph_error, both_engines, TestServer};

async fn token_request(server: &TestServer, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response =
        server.http.post(format!("{}/{tenant}/oauth2/v2.0/token", server.connection.authority_url)).form(form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

both_engines! {
    async fn discovery_documents_point_back_at_this_server(server: TestServer) {
        for tenant in [server.connection.tenant_id.clone(), server.connection.tenant_domain.clone()] {
            let doc: Value = server.http.get(format!("{}/{tenant}/v2.0/.well-known/openid-configuration", server.connection.authority_url)).send().await.unwrap().json().await.unwrap();
            assert_eq!(doc["token_endpoint"], format!("{}/{tenant}/oauth2/v2.0/token", server.connection.authority_url));
            assert_eq!(doc["issuer"], format!("{}/{}/v2.0", server.connection.authority_url, server.connection.tenant_id));
            assert!(doc["authorization_endpoint"].as_str().unwrap().starts_with(&server.connection.authority_url));
            assert!(doc["jwks_uri"].as_str().unwrap().starts_with(&server.connection.authority_url));
        }
        let response = server.http.get(format!("{}/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration", server.connection.authority_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS90002"), "{body}");
        let instance: Value = server.http.get(format!("{}/common/discovery/instance?api-version=1.1&authorization_endpoint=x", server.connection.authority_url)).send().await.unwrap().json().await.unwrap();
        assert!(instance["tenant_discovery_endpoint"].is_string());
    }

    async fn client_credentials_issue_a_signed_jwt_with_graphs_claims(server: TestServer) {
        let (status, body) = token_request(&server, &server.connection.tenant_domain, &[
            ("grant_type", "client_credentials"), ("client_id", &server.connection.client_id), ("client_secret", &server.connection.client_secret),
            ("scope", "https://graph.microsoft.com/.default"), ("client_info", "1"), ("claims", "{\"access_token\": {\"xms_cc\": {\"values\": [\"CP1\"]}}}"),
        ]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].is_u64());
        let token = body["access_token"].as_str().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| -> Value { serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap() };
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["aud"], "https://graph.microsoft.com");
        assert_eq!(claims["tid"], server.connection.tenant_id.as_str());
        assert_eq!(claims["appid"], server.connection.client_id.as_str());
        assert_eq!(claims["iss"], format!("{}/{}/v2.0", server.connection.authority_url, server.connection.tenant_id));
        assert!(claims["roles"].as_array().unwrap().iter().any(|r| r == "User.Invite.All"));
        assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
        // The key that signed it is published.
        let jwks: Value = server.http.get(format!("{}/{}/discovery/v2.0/keys", server.connection.authority_url, server.connection.tenant_id)).send().await.unwrap().json().await.unwrap();
        assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"] && k["kty"] == "RSA"));
        // HTTP Basic works too (client_secret_basic).
        let response = server.http.post(format!("{}/{}/oauth2/v2.0/token", server.connection.authority_url, server.connection.tenant_id))
            .basic_auth(&server.connection.client_id, Some(&server.connection.client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn token_errors_have_aads_shape(server: TestServer) {
        let tenant = server.connection.tenant_id.clone();
        let id = server.connection.client_id.clone();
        type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (vec![("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "wrong"), ("scope", "https://graph.microsoft.com/.default")], StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215"),
            (vec![("grant_type", "client_credentials"), ("client_id", "6b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99"), ("client_secret", "x"), ("scope", "https://graph.microsoft.com/.default")], StatusCode::BAD_REQUEST, "unauthorized_client", "AADSTS700016"),
            (vec![("grant_type", "client_credentials"), ("client_id", &id), ("scope", "https://graph.microsoft.com/.default")], StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000216"),
            (vec![("grant_type", "password"), ("client_id", &id), ("client_secret", "x")], StatusCode::BAD_REQUEST, "unsupported_grant_type", "AADSTS70003"),
        ];
        for (form, status, error, code) in cases {
            let (got, body) = token_request(&server, &tenant, &form).await;
            assert_eq!(got, status, "{body}");
            assert_eq!(body["error"], error, "{body}");
            assert!(body["error_description"].as_str().unwrap().starts_with(code), "{body}");
        }
        let (status, body) = token_request(&server, &tenant, &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &server.connection.client_secret), ("scope", "User.Read")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_scope");
    }

    async fn graph_refuses_missing_and_forged_tokens(server: TestServer) {
        let response = server.http.get(server.url("/v1.0/users")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_graph_error(&body, "InvalidAuthenticationToken", "Access token is empty.");
        for token in ["garbage", "a.b.c", &format!("{}x", server.token)] {
            let (status, body) = server.call_as(token, reqwest::Method::GET, "/v1.0/users", None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
            assert_graph_error(&body, "InvalidAuthenticationToken", "");
        }
        // A token whose payload was altered (tenant swapped) fails the signature check.
        let parts: Vec<&str> = server.token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["roles"] = serde_json::json!(["Directory.ReadWrite.All", "User.ReadWrite.All", "Application.ReadWrite.All"]);
        let forged = format!("{}.{}.{}", parts[0], engine.encode(claims.to_string()), parts[2]);
        let (status, _) = server.call_as(&forged, reqwest::Method::GET, "/v1.0/users", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
