//! `GET /auditLogs/directoryAudits`: every write the server makes reads back here, with Graph's
//! shapes, filters and paging (contract §7, DECISIONS 16).

use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

/// Every entry a query returns, following `@odata.nextLink` to the end.
async fn all_entries(server: &TestServer, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut next = Some(server.url(&format!("/v1.0/auditLogs/directoryAudits{query}")));
    while let Some(url) = next {
        let response = server.http.get(&url).bearer_auth(&server.token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body: Value = response.json().await.unwrap();
        entries.extend(body["value"].as_array().unwrap().iter().cloned());
        next = body["@odata.nextLink"].as_str().map(str::to_string);
    }
    entries
}

fn ids(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["id"].as_str().unwrap()).collect()
}

fn encode(filter: &str) -> String {
    format!("?$filter={}", percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC))
}

fn property<'a>(entry: &'a Value, name: &str) -> &'a Value {
    entry["targetResources"][0]["modifiedProperties"].as_array().unwrap().iter().find(|p| p["displayName"] == name).unwrap_or(&Value::Null)
}

both_engines! {
    async fn every_write_reads_back_with_graph_shapes(server: TestServer) {
        let invited = server.invite("olga@example.com").await;
        let id = invited["invitedUser"]["id"].as_str().unwrap().to_string();
        let (status, _) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["olga@newco.example"], "accountEnabled": false})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "olga@newco.example",
            "inviteRedirectUrl": "https://x.example", "invitedUser": {"id": id}, "resetRedemption": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, page) = server.get("/v1.0/auditLogs/directoryAudits").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#auditLogs/directoryAudits"));
        let entries = page["value"].as_array().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e["activityDisplayName"].as_str().unwrap()).collect();
        assert_eq!(names, ["Invite external user with reset invitation status", "Update user", "Invite external user"], "newest first");

        let reset = &entries[0];
        assert_eq!(reset["category"], "UserManagement");
        assert_eq!(reset["loggedByService"], "Invited Users");
        assert_eq!(reset["result"], "success");
        assert_eq!(reset["targetResources"][0]["id"], id.as_str());
        assert_eq!(reset["targetResources"][0]["type"], "User");
        assert_eq!(reset["initiatedBy"]["app"]["appId"], server.connection.client_id.as_str());
        assert_eq!(reset["initiatedBy"]["user"], Value::Null);
        assert_eq!(reset["additionalDetails"], json!([]));
        // Graph's values are JSON arrays inside strings.
        let upn = property(reset, "UserPrincipalName");
        assert_eq!(upn["oldValue"], r#"["olga_example.com#EXT#@contoso.onmicrosoft.com"]"#);
        assert_eq!(upn["newValue"], r#"["olga_newco.example#EXT#@contoso.onmicrosoft.com"]"#);
        assert_eq!(property(reset, "Mail")["oldValue"], r#"["olga@example.com"]"#);
        assert_eq!(property(reset, "Mail")["newValue"], r#"["olga@newco.example"]"#);
        // The guest never redeemed: its state stays PendingAcceptance, so the reset changes no state.
        assert_eq!(property(reset, "ExternalUserState"), &Value::Null);

        let update = &entries[1];
        assert_eq!(update["loggedByService"], "Core Directory");
        assert_eq!(property(update, "AccountEnabled")["oldValue"], "[true]");
        assert_eq!(property(update, "AccountEnabled")["newValue"], "[false]");
        assert_eq!(property(update, "OtherMail")["newValue"], r#"["olga@newco.example"]"#);

        let entry_id = reset["id"].as_str().unwrap();
        let (status, single) = server.get(&format!("/beta/auditLogs/directoryAudits/{entry_id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(single["@odata.context"].as_str().unwrap().ends_with("/beta/$metadata#auditLogs/directoryAudits/$entity"));
        let mut without_context = single.clone();
        without_context.as_object_mut().unwrap().remove("@odata.context");
        assert_eq!(&without_context, reset);
        for missing in ["0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99", "nope"] {
            let (status, body) = server.get(&format!("/v1.0/auditLogs/directoryAudits/{missing}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_graph_error(&body, "Request_ResourceNotFound", missing);
        }
    }

    async fn a_reset_of_a_redeemed_guest_records_its_state_change(server: TestServer) {
        let id = server.invite("pia@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        // Redemption arrives with a later milestone; mark the guest redeemed directly in the store.
        let store = &server.services().store;
        let tenant = guestlist_domain::ids::ObjectId::parse(&server.connection.tenant_id).unwrap();
        let mut user = store.user(tenant, &guestlist_store::UserKey::Id(guestlist_domain::ids::ObjectId::parse(&id).unwrap())).await.unwrap().unwrap();
        user.external_user_state = Some(guestlist_domain::user::ExternalUserState::Accepted);
        store.write_user(&guestlist_store::UserWrite::Update(user), &[]).await.unwrap();
        let (status, _) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "pia@example.com",
            "inviteRedirectUrl": "https://x.example", "invitedUser": {"id": id}, "resetRedemption": true})).await;
        assert_eq!(status, StatusCode::CREATED);
        let entries = all_entries(&server, &encode("activityDisplayName eq 'Invite external user with reset invitation status'")).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(property(&entries[0], "ExternalUserState")["oldValue"], r#"["Accepted"]"#);
        assert_eq!(property(&entries[0], "ExternalUserState")["newValue"], r#"["PendingAcceptance"]"#);
        assert_eq!(entries[0]["targetResources"][0]["id"], id.as_str());
    }

    async fn every_filter_shape_selects_exactly(server: TestServer) {
        let a = server.invite("a@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let b = server.invite("b@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let (status, _) = server.patch(&format!("/v1.0/users/{a}"), json!({"displayName": "A"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/users/{b}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let other_app = server.token_with(&[AppPermission::UserInviteAll]).await;
        let (status, c) = server.call_as(&other_app, Method::POST, "/v1.0/invitations",
            Some(json!({"invitedUserEmailAddress": "c@example.com", "inviteRedirectUrl": "https://x.example"}))).await;
        assert_eq!(status, StatusCode::CREATED);
        let c = c["invitedUser"]["id"].as_str().unwrap().to_string();

        let all = all_entries(&server, "").await;
        let by_name = |name: &str| all.iter().filter(|e| e["activityDisplayName"] == name).map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>();
        assert_eq!(all.len(), 5, "{all:?}");
        let other_app_id = all[0]["initiatedBy"]["app"]["appId"].as_str().unwrap().to_string();
        assert_ne!(other_app_id, server.connection.client_id);
        let middle = all[2]["activityDateTime"].as_str().unwrap().to_string();
        let at_or_after: Vec<&str> = ids(&all[..3]);
        let every: Vec<&str> = ids(&all);
        let targets_a: Vec<&str> = all.iter().filter(|e| e["targetResources"][0]["id"] == a.as_str()).map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(targets_a.len(), 2);
        for (filter, expected) in [
            ("activityDisplayName eq 'Update user'".to_string(), by_name("Update user")),
            ("activityDisplayName eq 'delete EXTERNAL user'".to_string(), by_name("Delete external user")),
            ("startsWith(activityDisplayName,'Invite')".to_string(), by_name("Invite external user")),
            ("category eq 'UserManagement'".to_string(), every.clone()),
            ("loggedByService eq 'Core Directory'".to_string(), by_name("Update user")),
            ("result eq 'success'".to_string(), every.clone()),
            ("result eq 'failure'".to_string(), vec![]),
            (format!("targetResources/any(t:t/id eq '{a}')"), targets_a.clone()),
            (format!("targetResources/any(x: x/id eq '{}')", c.to_uppercase()), ids(&all[..1])),
            (format!("initiatedBy/app/appId eq '{other_app_id}'"), ids(&all[..1])),
            (format!("initiatedBy/user/id eq '{a}'"), vec![]),
            (format!("activityDateTime ge {middle}"), at_or_after.clone()),
            (format!("activityDateTime gt {middle}"), at_or_after[..2].to_vec()),
            (format!("activityDateTime le {middle}"), ids(&all[2..])),
            (format!("activityDateTime lt {middle}"), ids(&all[3..])),
            (format!("activityDateTime ge {middle} and loggedByService eq 'Invited Users' and initiatedBy/app/appId eq '{}'", server.connection.client_id), by_name("Delete external user")),
        ] {
            let found = all_entries(&server, &encode(&filter)).await;
            assert_eq!(ids(&found), expected, "{filter}");
        }
    }

    async fn pages_follow_next_links_newest_first(server: TestServer) {
        for n in 0..5 {
            server.invite(&format!("p{n}@example.com")).await;
        }
        let everything = all_entries(&server, "").await;
        assert_eq!(everything.len(), 5);
        let (status, first) = server.get("/v1.0/auditLogs/directoryAudits?$top=2&$filter=category%20eq%20'UserManagement'").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(first["value"].as_array().unwrap().len(), 2);
        let next = first["@odata.nextLink"].as_str().expect("a next page");
        assert!(next.contains("/v1.0/auditLogs/directoryAudits?") && next.contains("$skiptoken=") && next.contains("$top=2"), "{next}");
        let paged = all_entries(&server, "?$top=2").await;
        assert_eq!(ids(&paged), ids(&everything));
        let times: Vec<&str> = everything.iter().map(|e| e["activityDateTime"].as_str().unwrap()).collect();
        let mut sorted = times.clone();
        sorted.sort_by(|x, y| y.cmp(x));
        assert_eq!(times, sorted, "newest first");
        let (_, last) = server.get("/v1.0/auditLogs/directoryAudits?$top=5").await;
        assert!(last.get("@odata.nextLink").is_none());
    }

    async fn reading_the_audit_log_needs_audit_log_read_all(server: TestServer) {
        server.invite("q@example.com").await;
        for permissions in [&[AppPermission::DirectoryReadWriteAll][..], &[AppPermission::UserReadAll, AppPermission::DirectoryReadAll]] {
            let token = server.token_with(permissions).await;
            for path in ["/v1.0/auditLogs/directoryAudits", "/v1.0/auditLogs/directoryAudits/0b0e5c1a-3f5e-4d8e-9b8b-2a7c2f1c7e99"] {
                let (status, body) = server.call_as(&token, Method::GET, path, None).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{permissions:?} {path}");
                assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
            }
        }
        let auditor = server.token_with(&[AppPermission::AuditLogReadAll]).await;
        let (status, body) = server.call_as(&auditor, Method::GET, "/v1.0/auditLogs/directoryAudits", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["value"].as_array().unwrap().len(), 1);
    }

    async fn unsupported_queries_get_graph_errors(server: TestServer) {
        server.invite("r@example.com").await;
        for (query, code, needle) in [
            (encode("activityDisplayName eq 'a' or category eq 'b'"), "Request_UnsupportedQuery", "'or'"),
            (encode("operationType eq 'Add'"), "Request_UnsupportedQuery", "operationType"),
            (encode("endsWith(activityDisplayName,'user')"), "Request_UnsupportedQuery", "endsWith"),
            (encode("activityDateTime ge 'yesterday'"), "BadRequest", "incompatible types"),
            (encode("category eq"), "BadRequest", "Syntax error"),
            ("?$top=1000".to_string(), "Request_BadRequest", "Invalid page size"),
            ("?$skiptoken=garbage".to_string(), "Request_BadRequest", "continuation token"),
            ("?$orderby=activityDateTime".to_string(), "Request_UnsupportedQuery", "$orderby"),
        ] {
            let (status, body) = server.get(&format!("/v1.0/auditLogs/directoryAudits{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_graph_error(&body, code, needle);
        }
    }
}
