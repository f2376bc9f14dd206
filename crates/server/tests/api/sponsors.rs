//! Sponsors: `/users/{id}/sponsors` and `invitedUserSponsors` (contract §1.2, §2).

use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

async fn member(server: &TestServer, nickname: &str) -> String {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": nickname, "mailNickname": nickname,
            "userPrincipalName": format!("{nickname}@contoso.onmicrosoft.com"), "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn add(server: &TestServer, user: &str, reference: String) -> (StatusCode, Value) {
    server.post(&format!("/v1.0/users/{user}/sponsors/$ref"), json!({"@odata.id": reference})).await
}

async fn sponsor_ids(server: &TestServer, user: &str) -> Vec<String> {
    let (status, body) = server.get(&format!("/v1.0/users/{user}/sponsors")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

async fn audit_count(server: &TestServer, activity: &str) -> usize {
    let tenant = guestlist_domain::ids::ObjectId::parse(&server.connection.tenant_id).unwrap();
    server.services().store.audit_records(tenant, 999).await.unwrap().iter().filter(|a| a.activity_display_name == activity).count()
}

both_engines! {
    async fn sponsors_are_added_listed_and_removed(server: TestServer) {
        let guest = server.invite("kim@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let alice = member(&server, "alice").await;
        let bob = member(&server, "bob").await;
        assert!(sponsor_ids(&server, &guest).await.is_empty());
        let (status, body) = add(&server, &guest, format!("https://graph.microsoft.com/v1.0/users/{alice}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = add(&server, &guest, format!("https://graph.microsoft.com/v1.0/directoryObjects/{bob}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        let (status, listed) = server.get(&format!("/v1.0/users/{guest}/sponsors")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(listed["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#directoryObjects"));
        let first = &listed["value"][0];
        assert_eq!(first["@odata.type"], "#microsoft.graph.user");
        assert_eq!(first["id"], alice.as_str());
        assert_eq!(first["userPrincipalName"], "alice@contoso.onmicrosoft.com");
        assert!(first.get("displayName").is_some() && first.get("userType").is_none(), "default properties only: {first}");
        assert_eq!(sponsor_ids(&server, &guest).await, vec![alice.clone(), bob.clone()]);
        assert_eq!(audit_count(&server, "Add user sponsor").await, 2);

        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/users/{guest}/sponsors/{alice}/$ref"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(sponsor_ids(&server, &guest).await, vec![bob.clone()]);
        assert_eq!(audit_count(&server, "Remove user sponsor").await, 1);
        let (status, body) = server.call(Method::DELETE, &format!("/v1.0/users/{guest}/sponsors/{alice}/$ref"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", &alice);

        // A deleted sponsor sponsors no one.
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/users/{bob}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(sponsor_ids(&server, &guest).await.is_empty());
    }

    async fn sponsor_refusals_change_nothing(server: TestServer) {
        let guest = server.invite("lee@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let mut sponsors = Vec::new();
        for n in 0..6 {
            sponsors.push(member(&server, &format!("s{n}")).await);
        }
        for sponsor in &sponsors[..5] {
            let (status, body) = add(&server, &guest, format!("https://graph.microsoft.com/v1.0/users/{sponsor}")).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
        let (status, body) = add(&server, &guest, format!("https://graph.microsoft.com/v1.0/users/{}", sponsors[5])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "maximum of 5 sponsors");
        let (status, body) = add(&server, &guest, format!("https://graph.microsoft.com/v1.0/users/{}", sponsors[0])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'sponsors'.");
        let missing = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        let (status, body) = add(&server, &sponsors[5], format!("https://graph.microsoft.com/v1.0/users/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", missing);
        let (status, body) = add(&server, missing, format!("https://graph.microsoft.com/v1.0/users/{}", sponsors[5])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", missing);
        let (status, body) = add(&server, &guest, "https://graph.microsoft.com/v1.0/users/nope".into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "@odata.id");
        let (status, body) = server.post(&format!("/v1.0/users/{guest}/sponsors/$ref"), json!({"id": sponsors[5]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "@odata.id");
        let (status, body) = add(&server, &guest, format!("users/{guest}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "its own sponsor");

        let reader = server.token_with(&[AppPermission::UserReadAll]).await;
        let (status, body) = server.call_as(&reader, Method::POST, &format!("/v1.0/users/{}/sponsors/$ref", sponsors[5]),
            Some(json!({"@odata.id": format!("users/{}", sponsors[0])}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges");
        let (status, _) = server.call_as(&reader, Method::DELETE, &format!("/v1.0/users/{guest}/sponsors/{}/$ref", sponsors[0]), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.call_as(&reader, Method::GET, &format!("/v1.0/users/{guest}/sponsors"), None).await;
        assert_eq!(status, StatusCode::OK, "reading sponsors needs only User.Read.All");
        let inviter = server.token_with(&[AppPermission::UserInviteAll]).await;
        let (status, _) = server.call_as(&inviter, Method::GET, &format!("/v1.0/users/{guest}/sponsors"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        assert_eq!(sponsor_ids(&server, &guest).await, sponsors[..5].to_vec());
        assert_eq!(audit_count(&server, "Add user sponsor").await, 5);
    }

    async fn invitations_name_sponsors_and_reinvites_keep_them(server: TestServer) {
        let alice = member(&server, "alice").await;
        let bob = member(&server, "bob").await;
        let invite = |sponsors: Value| json!({"invitedUserEmailAddress": "max@example.com", "inviteRedirectUrl": "https://x.example",
            "invitedUserSponsors": sponsors});
        let (status, body) = server.post("/v1.0/invitations", invite(json!([{"id": alice}, {"id": alice, "@odata.type": "#microsoft.graph.user"}]))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let guest = body["invitedUser"]["id"].as_str().unwrap().to_string();
        assert_eq!(sponsor_ids(&server, &guest).await, vec![alice.clone()]);
        assert_eq!(audit_count(&server, "Add user sponsor").await, 1);

        // A re-invite without sponsors keeps them; one that names another adds it.
        server.invite("max@example.com").await;
        assert_eq!(sponsor_ids(&server, &guest).await, vec![alice.clone()]);
        let (status, body) = server.post("/v1.0/invitations", invite(json!([{"id": bob}]))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(sponsor_ids(&server, &guest).await, vec![alice.clone(), bob.clone()]);
        // A reset keeps them too.
        let (status, body) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "max@example.com",
            "inviteRedirectUrl": "https://x.example", "invitedUser": {"id": guest}, "resetRedemption": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(sponsor_ids(&server, &guest).await, vec![alice.clone(), bob.clone()]);
        assert_eq!(audit_count(&server, "Add user sponsor").await, 2);
    }

    async fn invitation_sponsor_refusals_create_no_guest(server: TestServer) {
        let alice = member(&server, "alice").await;
        let missing = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        let six: Vec<Value> = (0..6).map(|_| json!({"id": guestlist_domain::ids::ObjectId::new_random().to_string()})).collect();
        for (sponsors, needle) in [
            (json!([{"id": missing}]), missing.to_string()),
            (json!([{"id": alice}, {"id": "not-a-guid"}]), "Invalid object identifier 'not-a-guid'".to_string()),
            (json!([{"displayName": "x"}]), "needs an id".to_string()),
            (json!("alice"), "Cannot convert".to_string()),
            (Value::Array(six), "at most 5".to_string()),
        ] {
            let (status, body) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "nia@example.com",
                "inviteRedirectUrl": "https://x.example", "invitedUserSponsors": sponsors})).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_graph_error(&body, "BadRequest", &needle);
        }
        assert_eq!(server.user_count().await, 1, "only the sponsor exists");
    }
}
