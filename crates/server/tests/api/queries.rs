use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

/// Three guests and a member with distinct addresses, for filter tests.
async fn directory(server: &TestServer) -> Vec<String> {
    let mut ids = vec![];
    for email in ["anna@alpha.example", "ben@beta.example", "o'hara@gamma.example"] {
        ids.push(server.invite(email).await["invitedUser"]["id"].as_str().unwrap().to_string());
    }
    let (status, _) = server.patch(&format!("/v1.0/users/{}", ids[0]), json!({"otherMails": ["anna@home.example"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, member) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": "Zed Member", "mailNickname": "zed",
        "userPrincipalName": "zed@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    ids.push(member["id"].as_str().unwrap().to_string());
    ids
}

async fn ids_for(server: &TestServer, query: &str) -> HashSet<String> {
    let (status, body) = server.get(&format!("/v1.0/users?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

fn set(ids: &[&String]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

both_engines! {
    async fn filters_select_exactly_the_matching_users(server: TestServer) {
        let ids = directory(&server).await;
        let (anna, ben, ohara, zed) = (&ids[0], &ids[1], &ids[2], &ids[3]);
        let cases: Vec<(&str, HashSet<String>)> = vec![
            ("$filter=userType%20eq%20%27Guest%27", set(&[anna, ben, ohara])),
            ("$filter=userType eq 'Member'", set(&[zed])),
            ("$filter=creationType%20eq%20%27Invitation%27&$select=id", set(&[anna, ben, ohara])),
            ("$filter=externalUserState%20eq%20%27PendingAcceptance%27", set(&[anna, ben, ohara])),
            ("$filter=mail%20eq%20%27BEN%40beta.example%27", set(&[ben])),
            ("$filter=startsWith(displayName,'an')", set(&[anna])),
            ("$filter=startsWith(userPrincipalName,%27o%27%27hara%27)", set(&[ohara])),
            // Python SDK encoding
            ("$filter=otherMails%2Fany%28x%3Ax%20eq%20%27anna%40home.example%27%29&$select=id,otherMails", set(&[anna])),
            // Node client encoding: / ( : @ literal
            ("$filter=otherMails/any(x:x%20eq%20%27anna@home.example%27)&$select=id,otherMails", set(&[anna])),
            ("$filter=proxyAddresses/any(x:x%20eq%20%27SMTP:ben@beta.example%27)", set(&[ben])),
            ("$filter=identities/any(c:c/issuerAssignedId%20eq%20%27ben_beta.example%23EXT%23@contoso.onmicrosoft.com%27%20and%20c/issuer%20eq%20%27contoso.onmicrosoft.com%27)", set(&[ben])),
            ("$filter=mail eq 'anna@alpha.example' or mail eq 'ben@beta.example'", set(&[anna, ben])),
            ("$filter=userType eq 'Guest' and startsWith(mail,'b')", set(&[ben])),
            ("$filter=mail eq null", set(&[zed])),
        ];
        for (query, expected) in cases {
            assert_eq!(ids_for(&server, query).await, expected, "{query}");
        }
        let query = format!("$filter=id in ('{anna}','{zed}')");
        assert_eq!(ids_for(&server, &query).await, set(&[anna, zed]));
    }

    async fn select_shapes_the_values_and_the_context(server: TestServer) {
        directory(&server).await;
        let (status, body) = server.get("/v1.0/users?$select=id,otherMails&$filter=userType%20eq%20%27Guest%27").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["@odata.context"], format!("{}/v1.0/$metadata#users(id,otherMails)", server.connection.graph_url));
        for user in body["value"].as_array().unwrap() {
            let mut keys: Vec<&String> = user.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["id", "otherMails"]);
        }
        let (status, body) = server.get("/v1.0/users?$select=nonsense").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "Request_BadRequest");
    }

    async fn paging_visits_every_user_once(server: TestServer) {
        for i in 0..7 {
            server.invite(&format!("pager{i}@example.com")).await;
        }
        let mut seen = HashSet::new();
        let mut pages = 0;
        let mut next = Some(server.url("/v1.0/users?$top=3&$select=id,mail"));
        while let Some(url) = next {
            let body: Value = server.http.get(&url).bearer_auth(&server.token).send().await.unwrap().json().await.unwrap();
            pages += 1;
            for user in body["value"].as_array().unwrap() {
                assert!(seen.insert(user["id"].as_str().unwrap().to_string()), "a user appeared twice");
            }
            assert!(body["value"].as_array().unwrap().len() <= 3);
            next = body["@odata.nextLink"].as_str().map(str::to_string);
            if let Some(link) = &next {
                assert!(link.contains("$skiptoken=") && link.contains("$top=3"), "{link}");
            }
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(pages, 3);
    }

    async fn unsupported_queries_get_graphs_errors(server: TestServer) {
        directory(&server).await;
        for (query, code) in [
            ("$top=1000", "Request_BadRequest"),
            ("$top=0", "Request_BadRequest"),
            ("$top=abc", "BadRequest"),
            ("$skip=2", "Request_BadRequest"),
            ("$filter=nonsense%20eq%201", "Request_UnsupportedQuery"),
            ("$filter=userType%20eq", "BadRequest"),
            ("$filter=endsWith(mail,'example')", "Request_UnsupportedQuery"),
            ("$filter=mail%20ne%20null", "Request_UnsupportedQuery"),
            ("$search=%22displayName:anna%22", "Request_UnsupportedQuery"),
            ("$filter=%zz", "BadRequest"),
        ] {
            let (status, body) = server.get(&format!("/v1.0/users?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_graph_error(&body, code, "");
        }
    }

    async fn advanced_queries_work_with_consistency_level(server: TestServer) {
        let ids = directory(&server).await;
        let response = server.http.get(server.url("/v1.0/users?$filter=endsWith(mail,'.example')&$count=true&$select=id"))
            .bearer_auth(&server.token).header("ConsistencyLevel", "eventual").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["@odata.count"], 3);
        assert_eq!(body["value"].as_array().unwrap().len(), 3);
        assert!(!body["value"].as_array().unwrap().iter().any(|u| u["id"] == ids[3].as_str()));
        // $count=true without the header is silently ignored (contract §6.4).
        let (status, body) = server.get("/v1.0/users?$count=true&$select=id").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("@odata.count").is_none());
        // /users/$count needs the header.
        let (status, body) = server.get("/v1.0/users/$count").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_BadRequest", "$count is not currently supported.");
        let response = server.http.get(server.url("/v1.0/users/$count")).bearer_auth(&server.token).header("consistencylevel", "eventual").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "4");
    }
}

async fn eventual_ids(server: &TestServer, query: &str) -> (StatusCode, Value) {
    let response = server
        .http
        .get(server.url(&format!("/v1.0/users?{query}")))
        .bearer_auth(&server.token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn id_set(body: &Value) -> HashSet<String> {
    body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

both_engines! {
    async fn search_matches_word_prefixes_with_the_header(server: TestServer) {
        let ids = directory(&server).await;
        let (anna, ben, zed) = (&ids[0], &ids[1], &ids[3]);
        let (status, body) = server.get("/v1.0/users?$search=%22displayName:an%22").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_UnsupportedQuery", "ConsistencyLevel: eventual");
        for (query, expected) in [
            ("$search=%22displayName:an%22", set(&[anna])),
            ("$search=%22displayName:member%22", set(&[zed])),
            ("$search=%22mail:beta%22", set(&[ben])),
            ("$search=%22displayName:an%22%20OR%20%22mail:beta%22", set(&[anna, ben])),
            ("$search=%22displayName:zed%20member%22", set(&[zed])),
            ("$search=%22displayName:zed%22%20AND%20%22displayName:nobody%22", HashSet::new()),
            ("$search=%22displayName:an%22&$filter=userType%20eq%20%27Member%27", HashSet::new()),
        ] {
            let (status, body) = eventual_ids(&server, query).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(id_set(&body), expected, "{query}");
        }
        let (status, body) = eventual_ids(&server, "$search=displayName:an").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "BadRequest", "$search");
        let (status, body) = eventual_ids(&server, "$search=%22city:paris%22").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "Request_UnsupportedQuery", "city");
    }

    async fn advanced_refusals_name_the_operator(server: TestServer) {
        for (query, operator) in [("$filter=endsWith(mail,'x')", "endsWith"), ("$filter=mail%20ne%20null", "ne"), ("$filter=not(userType%20eq%20%27Guest%27)", "not"), ("$filter=otherMails/$count%20eq%200", "$count")] {
            let (status, body) = server.get(&format!("/v1.0/users?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_graph_error(&body, "Request_UnsupportedQuery", &format!("Operator '{operator}' is not supported because the required parameters might be missing."));
        }
        // With the header and $count=true each works.
        let ids = directory(&server).await;
        let (status, body) = eventual_ids(&server, "$filter=otherMails/$count%20eq%200&$count=true").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["@odata.count"], 3);
        assert!(!id_set(&body).contains(&ids[0]), "anna has otherMails");
        let (status, body) = eventual_ids(&server, "$filter=userType%20eq%20%27Guest%27&$orderby=displayName%20desc&$count=true&$select=id,displayName").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let names: Vec<&str> = body["value"].as_array().unwrap().iter().map(|u| u["displayName"].as_str().unwrap()).collect();
        assert_eq!(names, ["o'hara", "ben", "anna"]);
    }

    async fn orderby_sorts_and_pages_in_order(server: TestServer) {
        for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
            let (status, _) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": format!("{name}@example.com"), "inviteRedirectUrl": "https://x.example", "invitedUserDisplayName": name})).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let mut names = vec![];
        let mut next = Some(server.url("/v1.0/users?$orderby=displayName&$top=2&$select=displayName"));
        while let Some(url) = next {
            let body: Value = server.http.get(&url).bearer_auth(&server.token).send().await.unwrap().json().await.unwrap();
            names.extend(body["value"].as_array().unwrap().iter().map(|u| u["displayName"].as_str().unwrap().to_string()));
            next = body["@odata.nextLink"].as_str().map(str::to_string);
        }
        assert_eq!(names, ["alpha", "bravo", "charlie", "delta", "echo"]);
        let (status, body) = server.get("/v1.0/users?$orderby=createdDateTime").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "createdDateTime is an advanced sort: {body}");
    }
}
