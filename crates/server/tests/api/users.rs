use guestlist_domain::permissions::AppPermission;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{assert_graph_error, both_engines};

const MEMBER: fn(&str) -> serde_json::Value = |alias| {
    json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias,
           "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"), "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}})
};

both_engines! {
    async fn get_by_id_and_by_upn_returns_the_default_property_set(server: TestServer) {
        let invited = server.invite("ivan@example.com").await;
        let id = invited["invitedUser"]["id"].as_str().unwrap();
        let (status, by_id) = server.get(&format!("/v1.0/users/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let mut keys: Vec<&str> = by_id.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["@odata.context", "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"]);
        assert_eq!(by_id["@odata.context"], format!("{}/v1.0/$metadata#users/$entity", server.connection.graph_url));
        for path in ["ivan_example.com%23EXT%23%40contoso.onmicrosoft.com", "IVAN_example.com%23EXT%23@contoso.onmicrosoft.com"] {
            let (status, by_upn) = server.get(&format!("/v1.0/users/{path}")).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(by_upn["id"], id);
        }
        let (status, selected) = server.get(&format!("/v1.0/users/{id}?$select=id,userType,externalUserState")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(selected, json!({
            "@odata.context": format!("{}/v1.0/$metadata#users(id,userType,externalUserState)/$entity", server.connection.graph_url),
            "id": id, "userType": "Guest", "externalUserState": "PendingAcceptance"
        }));
    }

    async fn unknown_users_are_not_found(server: TestServer) {
        for path in ["/v1.0/users/2b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99", "/v1.0/users/nobody%40contoso.onmicrosoft.com", "/v1.0/users/not-a-guid"] {
            let (status, body) = server.get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_graph_error(&body, "Request_ResourceNotFound", "does not exist");
        }
    }

    async fn patch_changes_other_mails_and_answers_204(server: TestServer) {
        let id = server.invite("judy@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let (status, body) = server.patch(&format!("/v1.0/users/{id}"), json!({"@odata.type": "#microsoft.graph.user", "otherMails": ["judy@example.com", "judy@example.org"], "jobTitle": "Auditor"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(body, serde_json::Value::Null);
        let user = server.user(&id, "otherMails,jobTitle").await;
        assert_eq!(user["otherMails"], json!(["judy@example.com", "judy@example.org"]));
        assert_eq!(user["jobTitle"], "Auditor");
        // null clears a nullable property
        let (status, _) = server.patch(&format!("/v1.0/users/{id}"), json!({"jobTitle": null})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(server.user(&id, "jobTitle").await["jobTitle"], serde_json::Value::Null);
    }

    async fn bad_patches_are_refused_and_change_nothing(server: TestServer) {
        let id = server.invite("ken@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let select = "displayName,otherMails,mail,userPrincipalName,accountEnabled,proxyAddresses";
        let before = server.user(&id, select).await;
        let cases = [
            (json!({"otherMails": "ken@example.org"}), "collection"),
            (json!({"otherMails": ["not an email"]}), "otherMails"),
            (json!({"otherMails": (0..251).map(|i| format!("k{i}@example.org")).collect::<Vec<_>>()}), "at most 250"),
            (json!({"displayName": "x".repeat(257)}), "displayName"),
            (json!({"displayName": null}), "displayName"),
            (json!({"accountEnabled": "yes"}), "Edm.Boolean"),
            (json!({"proxyAddresses": ["SMTP:x@example.org"]}), "read-only"),
            (json!({"id": "2b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99"}), "read-only"),
            (json!({"userPrincipalName": "ken@fabrikam.com"}), "verified domain"),
            (json!({"mail": "bad mail"}), "mail"),
        ];
        for (patch, fragment) in cases {
            let (status, body) = server.patch(&format!("/v1.0/users/{id}"), patch.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{patch} → {body}");
            assert_graph_error(&body, "Request_BadRequest", fragment);
        }
        assert_eq!(server.user(&id, select).await, before);
    }

    async fn post_users_creates_members_with_unique_upns(server: TestServer) {
        let (status, body) = server.post("/v1.0/users", MEMBER("leo")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["userPrincipalName"], "leo@contoso.onmicrosoft.com");
        let user = server.user(body["id"].as_str().unwrap(), "userType,creationType,externalUserState,accountEnabled").await;
        assert_eq!(user["userType"], "Member");
        assert_eq!(user["creationType"], serde_json::Value::Null);
        assert_eq!(user["externalUserState"], serde_json::Value::Null);
        let (status, body) = server.post("/v1.0/users", MEMBER("LEO")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.");
        let mut missing = MEMBER("mia");
        missing.as_object_mut().unwrap().remove("passwordProfile");
        let (status, body) = server.post("/v1.0/users", missing).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "passwordProfile");
        let mut foreign = MEMBER("nia");
        foreign["userPrincipalName"] = json!("nia@fabrikam.com");
        let (status, _) = server.post("/v1.0/users", foreign).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(server.user_count().await, 1);
    }

    async fn permissions_gate_each_route(server: TestServer) {
        let reader = server.token_with(&[AppPermission::UserReadAll]).await;
        let inviter = server.token_with(&[AppPermission::UserInviteAll]).await;
        let id = server.invite("olga@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        // A reader can read but neither write nor invite.
        let (status, _) = server.call_as(&reader, reqwest::Method::GET, &format!("/v1.0/users/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.call_as(&reader, reqwest::Method::PATCH, &format!("/v1.0/users/{id}"), Some(json!({"jobTitle": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        let (status, body) = server.call_as(&reader, reqwest::Method::POST, "/v1.0/invitations", Some(json!({"invitedUserEmailAddress": "p@example.com", "inviteRedirectUrl": "https://x.example"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "contract §6.2: 401, not 403");
        assert_graph_error(&body, "Unauthorized", "ControllerName=MSGraphInviteAPI, ActionName=CreateInvite");
        // An inviter cannot read the directory.
        let (status, body) = server.call_as(&inviter, reqwest::Method::GET, "/v1.0/users", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges");
        assert_eq!(server.user_count().await, 1);
    }
}

both_engines! {
    async fn expand_adds_member_of_and_sponsors(server: TestServer) {
        let guest = server.invite("yara@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let (_, sponsor) = server.post("/v1.0/users", MEMBER("zoe")).await;
        let sponsor = sponsor["id"].as_str().unwrap().to_string();
        let (status, _) = server.post(&format!("/v1.0/users/{guest}/sponsors/$ref"), json!({"@odata.id": format!("users/{sponsor}")})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, group) = server.post("/v1.0/groups", json!({"displayName": "Partners", "mailNickname": "partners", "mailEnabled": false, "securityEnabled": true})).await;
        let group = group["id"].as_str().unwrap().to_string();
        let (status, _) = server.post(&format!("/v1.0/groups/{group}/members/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{guest}")})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, body) = server.get(&format!("/v1.0/users/{guest}?$expand=memberOf")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["memberOf"].as_array().unwrap().len(), 1);
        assert_eq!(body["memberOf"][0]["id"], group.as_str());
        assert_eq!(body["memberOf"][0]["@odata.type"], "#microsoft.graph.group");
        assert!(body.get("sponsors").is_none());

        let (status, body) = server.get(&format!("/v1.0/users/{guest}?$expand=sponsors&$select=id")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["sponsors"][0]["id"], sponsor.as_str());
        assert_eq!(body["sponsors"][0]["@odata.type"], "#microsoft.graph.user");

        let (status, body) = server.get("/v1.0/users?$expand=memberOf&$filter=userType%20eq%20%27Guest%27").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"][0]["memberOf"][0]["id"], group.as_str());
        let (_, members) = server.get("/v1.0/users?$expand=memberOf&$filter=userType%20eq%20%27Member%27").await;
        assert_eq!(members["value"][0]["memberOf"], json!([]));

        let (status, body) = server.get(&format!("/v1.0/users/{guest}?$expand=manager")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_UnsupportedQuery", "manager");
        let (status, body) = server.get(&format!("/v1.0/users/{guest}?$expand=displayName")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "navigation");
        let response = server.http.get(server.url("/v1.0/users?$expand=memberOf&$count=true")).bearer_auth(&server.token).header("ConsistencyLevel", "eventual").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no $expand in advanced queries");
    }
}
