use std::collections::HashSet;

use guestlist_domain::ids::ObjectId;
use guestlist_domain::ticket::TicketState;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{assert_graph_error, both_engines};

both_engines! {
    async fn invite_creates_a_pending_guest_with_graphs_201_body(server: TestServer) {
        let (status, body) = server.post("/v1.0/invitations", json!({
            "invitedUserEmailAddress": "alice@example.com",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
            "invitedUserDisplayName": "Alice",
            "@odata.type": "#microsoft.graph.invitation",
            "someUnknownMember": 42
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["@odata.context"], format!("{}/v1.0/$metadata#invitations/$entity", server.connection.graph_url));
        assert!(ObjectId::parse(body["id"].as_str().unwrap()).is_ok());
        assert_eq!(body["invitedUserEmailAddress"], "alice@example.com");
        assert_eq!(body["invitedUserDisplayName"], "Alice");
        assert_eq!(body["invitedUserType"], "Guest");
        assert_eq!(body["sendInvitationMessage"], false);
        assert_eq!(body["resetRedemption"], false);
        assert_eq!(body["inviteRedirectUrl"], "https://myapps.microsoft.com");
        assert_eq!(body["status"], "PendingAcceptance");
        assert_eq!(body["invitedUserMessageInfo"], json!({"messageLanguage": null, "customizedMessageBody": null, "ccRecipients": [{"emailAddress": {"name": null, "address": null}}]}));
        let redeem = body["inviteRedeemUrl"].as_str().unwrap();
        assert!(redeem.starts_with(&format!("{}/redeem?", server.connection.graph_url)), "{redeem}");
        assert!(redeem.contains(&format!("user={}", body["id"].as_str().unwrap())));
        assert!(redeem.contains(&format!("tenant={}", server.connection.tenant_id)));
        let upn = "alice_example.com#EXT#@contoso.onmicrosoft.com";
        assert_eq!(body["invitedUser"]["userPrincipalName"], upn);

        let id = body["invitedUser"]["id"].as_str().unwrap();
        let user = server.user(id, "id,displayName,userType,creationType,externalUserState,externalUserStateChangeDateTime,mail,otherMails,proxyAddresses,identities,userPrincipalName,accountEnabled").await;
        assert_eq!(user["userType"], "Guest");
        assert_eq!(user["creationType"], "Invitation");
        assert_eq!(user["externalUserState"], "PendingAcceptance");
        assert!(user["externalUserStateChangeDateTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(user["mail"], "alice@example.com");
        assert_eq!(user["displayName"], "Alice");
        assert_eq!(user["userPrincipalName"], upn);
        assert_eq!(user["otherMails"], json!([]));
        assert_eq!(user["proxyAddresses"], json!(["SMTP:alice@example.com"]));
        assert_eq!(user["identities"], json!([{"signInType": "userPrincipalName", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": upn}]));
        assert_eq!(user["accountEnabled"], true);
    }

    async fn invite_echoes_message_info_and_defaults_the_display_name(server: TestServer) {
        let (status, body) = server.post("/beta/invitations", json!({
            "invitedUserEmailAddress": "bob@example.com",
            "inviteRedirectUrl": "https://example.com/welcome",
            "sendInvitationMessage": false,
            "invitedUserMessageInfo": {"messageLanguage": "de-DE", "customizedMessageBody": "<b>Hi</b>", "ccRecipients": [{"emailAddress": {"name": "CC", "address": "cc@example.com"}}]}
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["@odata.context"], format!("{}/beta/$metadata#invitations/$entity", server.connection.graph_url));
        assert_eq!(body["invitedUserDisplayName"], serde_json::Value::Null);
        assert_eq!(body["invitedUserMessageInfo"]["customizedMessageBody"], "<b>Hi</b>");
        assert_eq!(body["invitedUserMessageInfo"]["ccRecipients"][0]["emailAddress"]["address"], "cc@example.com");
        let user = server.user(body["invitedUser"]["id"].as_str().unwrap(), "displayName").await;
        assert_eq!(user["displayName"], "bob", "DECISIONS 8: the local part");
    }

    async fn reinvite_keeps_the_user_and_revokes_earlier_links(server: TestServer) {
        let first = server.invite("carol@example.com").await;
        let second = server.invite("CAROL@example.com").await;
        assert_eq!(first["invitedUser"]["id"], second["invitedUser"]["id"]);
        assert_ne!(first["inviteRedeemUrl"], second["inviteRedeemUrl"]);
        assert_ne!(first["id"], second["id"]);
        let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
        let user_id = ObjectId::parse(second["invitedUser"]["id"].as_str().unwrap()).unwrap();
        let invitations = server.services().store.invitations_for_user(tenant, user_id).await.unwrap();
        assert_eq!(invitations.len(), 2);
        for invitation in invitations {
            let expected = if invitation.id.to_string() == second["id"].as_str().unwrap() { TicketState::Pending } else { TicketState::Revoked };
            assert_eq!(invitation.state, expected);
        }
        assert_eq!(server.user_count().await, 1);
    }

    async fn concurrent_invites_of_one_address_make_one_user(server: TestServer) {
        let server = std::sync::Arc::new(server);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let server = server.clone();
                tokio::spawn(async move { server.invite("dave@example.com").await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap()["invitedUser"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(server.user_count().await, 1);
    }

    async fn a_taken_guest_upn_gets_a_suffix(server: TestServer) {
        // A member already holds the UPN the guest would get (DECISIONS 9).
        let (status, body) = server.post("/v1.0/users", json!({
            "accountEnabled": true, "displayName": "Squatter", "mailNickname": "squatter",
            "userPrincipalName": "erin_example.com#EXT#@contoso.onmicrosoft.com",
            "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let invited = server.invite("erin@example.com").await;
        let upn = invited["invitedUser"]["userPrincipalName"].as_str().unwrap();
        assert!(upn.starts_with("erin_example.com") && upn.ends_with("#EXT#@contoso.onmicrosoft.com"), "{upn}");
        assert_ne!(upn, "erin_example.com#EXT#@contoso.onmicrosoft.com");
    }

    async fn inviting_a_members_address_is_refused(server: TestServer) {
        let (status, member) = server.post("/v1.0/users", json!({
            "accountEnabled": true, "displayName": "Frank", "mailNickname": "frank",
            "userPrincipalName": "frank@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}
        })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = server.patch(&format!("/v1.0/users/{}", member["id"].as_str().unwrap()), json!({"mail": "frank@partner.com"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "frank@partner.com", "inviteRedirectUrl": "https://x.example"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "BadRequest", "belongs to the member user");
        assert_eq!(server.user_count().await, 1);
    }

    async fn invalid_invitations_are_refused_and_change_nothing(server: TestServer) {
        let cases = [
            (json!({"inviteRedirectUrl": "https://x.example"}), "invitedUserEmailAddress"),
            (json!({"invitedUserEmailAddress": "a@example.com"}), "inviteRedirectUrl"),
            (json!({"invitedUserEmailAddress": "not an email", "inviteRedirectUrl": "https://x.example"}), "invalid"),
            (json!({"invitedUserEmailAddress": "a(b)@example.com", "inviteRedirectUrl": "https://x.example"}), "not allowed"),
            (json!({"invitedUserEmailAddress": "a@example.com", "inviteRedirectUrl": "javascript:alert(1)"}), "absolute http"),
            (json!({"invitedUserEmailAddress": "a@example.com", "inviteRedirectUrl": "https://x.example", "invitedUserType": "Admin"}), "invitedUserType"),
            (json!({"invitedUserEmailAddress": "a@example.com", "inviteRedirectUrl": "https://x.example", "sendInvitationMessage": "yes"}), "Edm.Boolean"),
            (json!({"invitedUserEmailAddress": "a@example.com", "inviteRedirectUrl": "https://x.example", "invitedUserDisplayName": "x".repeat(257)}), "longer than 256"),
            (json!({"invitedUserEmailAddress": format!("{}@example.com", "a".repeat(65)), "inviteRedirectUrl": "https://x.example"}), "longer than 64"),
        ];
        for (body, fragment) in cases {
            let (status, answer) = server.post("/v1.0/invitations", body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
            assert_graph_error(&answer, "BadRequest", fragment);
        }
        assert_eq!(server.user_count().await, 0);
    }

    async fn invitations_serve_only_post(server: TestServer) {
        for method in [reqwest::Method::GET, reqwest::Method::PATCH, reqwest::Method::DELETE] {
            let (status, body) = server.call(method.clone(), "/v1.0/invitations", None).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {body}");
            assert_eq!(body["error"]["code"], "Request_BadRequest");
        }
        let (status, _) = server.get("/v1.0/invitations/8f0c4e5a-7a3b-4c4a-9b8b-0a7c2f1c7e11").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
