use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::tenant::UpnOnReset;
use guestlist_domain::ticket::TicketState;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

const SELECT: &str = "id,userPrincipalName,mail,otherMails,externalUserState,userType,creationType,identities";

async fn reset(server: &TestServer, token: Option<&str>, user_id: &str, email: &str) -> (StatusCode, Value) {
    let body = json!({
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": "https://myapps.microsoft.com",
        "invitedUser": {"id": user_id, "@odata.type": "#microsoft.graph.user"},
        "resetRedemption": true
    });
    server.call_as(token.unwrap_or(&server.token), reqwest::Method::POST, "/v1.0/invitations", Some(body)).await
}

async fn guest_with_other_mail(server: &TestServer) -> String {
    let invited = server.invite("grace@example.com").await;
    let id = invited["invitedUser"]["id"].as_str().unwrap().to_string();
    let (status, body) =
        server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["grace@example.com", "grace@newco.example"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    id
}

both_engines! {
    async fn reset_moves_mail_and_upn_and_keeps_the_object(server: TestServer) {
        let id = guest_with_other_mail(&server).await;
        let (status, body) = reset(&server, None, &id, "Grace@NewCo.example").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["resetRedemption"], true);
        assert_eq!(body["status"], "PendingAcceptance");
        assert_eq!(body["invitedUser"]["id"], id.as_str());
        assert_eq!(body["invitedUser"]["userPrincipalName"], "Grace_NewCo.example#EXT#@contoso.onmicrosoft.com");

        let user = server.user(&id, SELECT).await;
        assert_eq!(user["id"], id.as_str());
        assert_eq!(user["mail"], "Grace@NewCo.example");
        assert_eq!(user["userPrincipalName"], "Grace_NewCo.example#EXT#@contoso.onmicrosoft.com");
        assert_eq!(user["externalUserState"], "PendingAcceptance");
        assert_eq!(user["userType"], "Guest");
        assert_eq!(user["creationType"], "Invitation");
        assert_eq!(user["otherMails"], json!(["grace@example.com", "grace@newco.example"]));
        // The user is still found by its new UPN, percent-encoded as the SDKs send it.
        let (status, by_upn) = server.get("/v1.0/users/Grace_NewCo.example%23EXT%23%40contoso.onmicrosoft.com?$select=id").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(by_upn["id"], id.as_str());

        // Every earlier link is revoked; only the reset's is pending (DECISIONS 2).
        let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
        let invitations = server.services().store.invitations_for_user(tenant, ObjectId::parse(&id).unwrap()).await.unwrap();
        assert_eq!(invitations.iter().filter(|i| i.state == TicketState::Pending).count(), 1);
        assert!(invitations.iter().any(|i| i.state == TicketState::Revoked));

        // The audit log says what happened, with the old and new values (contract §7).
        let audit = server.services().store.audit_records(tenant, 10).await.unwrap();
        let entry = audit.iter().find(|a| a.activity_display_name == "Invite external user with reset invitation status").expect("reset audited");
        let modified = &entry.target_resources[0].modified_properties;
        let upn_change = modified.iter().find(|p| p.display_name == "UserPrincipalName").unwrap();
        // Graph's encoding: a JSON array inside the string.
        assert_eq!(upn_change.old_value.as_deref(), Some(r#"["grace_example.com#EXT#@contoso.onmicrosoft.com"]"#));
        assert_eq!(upn_change.new_value.as_deref(), Some(r#"["Grace_NewCo.example#EXT#@contoso.onmicrosoft.com"]"#));
    }

    async fn reset_keeps_the_upn_when_the_tenant_says_so(server: TestServer) {
        let store = &server.services().store;
        let mut tenant = store.tenant(&server.connection.tenant_id).await.unwrap().unwrap();
        tenant.upn_on_reset = UpnOnReset::Keep;
        store.update_tenant(&tenant).await.unwrap();
        let id = guest_with_other_mail(&server).await;
        let (status, body) = reset(&server, None, &id, "grace@newco.example").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let user = server.user(&id, SELECT).await;
        assert_eq!(user["userPrincipalName"], "grace_example.com#EXT#@contoso.onmicrosoft.com");
        assert_eq!(user["mail"], "grace@newco.example");
        assert_eq!(user["externalUserState"], "PendingAcceptance");
    }

    async fn reset_to_the_original_invite_email_is_allowed(server: TestServer) {
        let id = guest_with_other_mail(&server).await;
        let (status, _) = reset(&server, None, &id, "grace@newco.example").await;
        assert_eq!(status, StatusCode::CREATED);
        // mail moved away; the invitation's own address still qualifies (seed).
        let (status, body) = reset(&server, None, &id, "grace@example.com").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(server.user(&id, "mail").await["mail"], "grace@example.com");
    }

    async fn reset_with_an_unlisted_email_is_refused_and_changes_nothing(server: TestServer) {
        let id = guest_with_other_mail(&server).await;
        let before = server.user(&id, SELECT).await;
        let (status, body) = reset(&server, None, &id, "mallory@evil.example").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "BadRequest", "The email you’re using to invite this user doesn’t match any emails on the user object. Please add this email to the user object and try again.");
        assert_eq!(server.user(&id, SELECT).await, before);
    }

    async fn reset_of_an_unknown_user_is_not_found(server: TestServer) {
        let missing = "0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99";
        let (status, body) = reset(&server, None, missing, "someone@example.com").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", &format!("Resource '{missing}' does not exist"));
    }

    async fn reset_without_invited_user_is_a_bad_request(server: TestServer) {
        let (status, body) = server.post("/v1.0/invitations", json!({
            "invitedUserEmailAddress": "x@example.com", "inviteRedirectUrl": "https://x.example", "resetRedemption": true
        })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "BadRequest", "invitedUser.id is required");
        assert_eq!(server.user_count().await, 0);
    }

    async fn reset_needs_more_than_the_invite_permission(server: TestServer) {
        let id = guest_with_other_mail(&server).await;
        let before = server.user(&id, SELECT).await;
        let inviter = server.token_with(&[AppPermission::UserInviteAll]).await;
        let (status, body) = reset(&server, Some(&inviter), &id, "grace@newco.example").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Forbidden", "Generic authorization exception.");
        assert_eq!(server.user(&id, SELECT).await, before);
        // ...while the same app may still invite.
        let (status, _) = server.call_as(&inviter, reqwest::Method::POST, "/v1.0/invitations", Some(json!({"invitedUserEmailAddress": "new@example.com", "inviteRedirectUrl": "https://x.example"}))).await;
        assert_eq!(status, StatusCode::CREATED);
        let writer = server.token_with(&[AppPermission::UserReadWriteAll]).await;
        let (status, body) = reset(&server, Some(&writer), &id, "grace@newco.example").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn reset_of_a_member_converts_it_to_an_external_user(server: TestServer) {
        let (status, member) = server.post("/v1.0/users", json!({
            "accountEnabled": true, "displayName": "Heidi", "mailNickname": "heidi",
            "userPrincipalName": "heidi@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"},
            "otherMails": ["heidi@partner.example"]
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        let id = member["id"].as_str().unwrap();
        let (status, body) = reset(&server, None, id, "heidi@partner.example").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let user = server.user(id, SELECT).await;
        assert_eq!(user["userType"], "Member");
        assert_eq!(user["creationType"], "Invitation");
        assert_eq!(user["externalUserState"], "PendingAcceptance");
        assert_eq!(user["userPrincipalName"], "heidi@contoso.onmicrosoft.com", "internal users keep their UPN (contract §3.6)");
        assert_eq!(user["mail"], "heidi@partner.example");
    }
}
