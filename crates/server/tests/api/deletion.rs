//! `DELETE /users/{id}`: the way Graph revokes an invitation (DECISIONS 14, contract §7).

use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::ticket::TicketState;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{assert_graph_error, both_engines, TestServer};

fn tenant(server: &TestServer) -> ObjectId {
    ObjectId::parse(&server.connection.tenant_id).unwrap()
}

async fn delete(server: &TestServer, token: Option<&str>, path: &str) -> (StatusCode, serde_json::Value) {
    server.call_as(token.unwrap_or(&server.token), Method::DELETE, path, None).await
}

both_engines! {
    async fn deleting_a_guest_revokes_its_invitations_and_frees_its_address(server: TestServer) {
        let first = server.invite("ivan@example.com").await;
        let id = first["invitedUser"]["id"].as_str().unwrap().to_string();
        server.invite("ivan@example.com").await;
        let (status, body) = delete(&server, None, &format!("/v1.0/users/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(body, serde_json::Value::Null);

        let (status, body) = server.get(&format!("/v1.0/users/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", &id);
        let invitations = server.services().store.invitations_for_user(tenant(&server), ObjectId::parse(&id).unwrap()).await.unwrap();
        assert_eq!(invitations.len(), 2);
        assert!(invitations.iter().all(|i| i.state == TicketState::Revoked), "{invitations:?}");

        // The address can be invited again, as a new user with the same #EXT# UPN.
        let again = server.invite("ivan@example.com").await;
        assert_ne!(again["invitedUser"]["id"], id.as_str());
        assert_eq!(again["invitedUser"]["userPrincipalName"], first["invitedUser"]["userPrincipalName"]);
        assert_eq!(server.user_count().await, 1);

        let audit = server.services().store.audit_records(tenant(&server), 10).await.unwrap();
        let entry = audit.iter().find(|a| a.activity_display_name == "Delete external user").expect("deletion audited");
        assert_eq!(entry.logged_by_service, "Invited Users");
        assert_eq!(entry.operation_type, "Delete");
        assert_eq!(entry.target_resources[0].id, id);
    }

    async fn deleting_a_member_is_a_core_directory_delete_user(server: TestServer) {
        let (status, member) = server.post("/v1.0/users", json!({"accountEnabled": true, "displayName": "Mia", "mailNickname": "mia",
            "userPrincipalName": "mia@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}})).await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        // By UPN, as the SDKs allow.
        let (status, _) = delete(&server, None, "/v1.0/users/mia%40contoso.onmicrosoft.com").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let audit = server.services().store.audit_records(tenant(&server), 10).await.unwrap();
        let entry = audit.iter().find(|a| a.activity_display_name == "Delete user").expect("deletion audited");
        assert_eq!(entry.logged_by_service, "Core Directory");
        assert_eq!(entry.target_resources[0].id, member["id"].as_str().unwrap());
        assert_eq!(server.user_count().await, 0);
    }

    async fn deleting_an_unknown_user_is_not_found_and_writes_nothing(server: TestServer) {
        let missing = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        let before = server.services().store.audit_records(tenant(&server), 100).await.unwrap().len();
        let (status, body) = delete(&server, None, &format!("/v1.0/users/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", &format!("Resource '{missing}' does not exist"));
        let (status, body) = delete(&server, None, "/v1.0/users/not-a-guid").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", "not-a-guid");
        assert_eq!(server.services().store.audit_records(tenant(&server), 100).await.unwrap().len(), before);
    }

    async fn deleting_needs_a_write_permission(server: TestServer) {
        let id = server.invite("judy@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        for permissions in [&[AppPermission::UserReadAll][..], &[AppPermission::UserInviteAll, AppPermission::DirectoryReadAll]] {
            let token = server.token_with(permissions).await;
            let (status, body) = delete(&server, Some(&token), &format!("/v1.0/users/{id}")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{permissions:?}");
            assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        }
        assert_eq!(server.user_count().await, 1);
        let writer = server.token_with(&[AppPermission::UserReadWriteAll]).await;
        let (status, _) = delete(&server, Some(&writer), &format!("/beta/users/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}
