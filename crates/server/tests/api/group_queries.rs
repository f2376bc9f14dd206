//! OData on `/groups` and the member lists: `$count` (with `ConsistencyLevel: eventual`) and the
//! `/$count` segments, advanced-only operators, `$orderby=displayName` with paging, `$search`,
//! `$expand=members`, and Graph's refusal for each shape it does not serve.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

/// `(displayName, mailNickname, Microsoft 365?, description)`: M365 groups get `<nickname>@contoso.onmicrosoft.com`.
const GROUPS: [(&str, &str, bool, Option<&str>); 5] = [
    ("Sales Team", "sales-team", true, Some("Everyone in sales")),
    ("Sales EU", "sales-eu", false, None),
    ("Marketing", "marketing", true, Some("Sales support and brand")),
    ("Engineering", "eng-eu", false, Some("Builders")),
    ("Finance", "finance", true, None),
];

async fn create_groups(server: &TestServer) {
    for (name, nickname, unified, description) in GROUPS {
        let mut body = json!({"displayName": name, "mailNickname": nickname, "mailEnabled": unified, "securityEnabled": !unified});
        if unified {
            body["groupTypes"] = json!(["Unified"]);
        }
        if let Some(description) = description {
            body["description"] = json!(description);
        }
        let (status, group) = server.post("/v1.0/groups", body).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
    }
}

async fn new_group(server: &TestServer, name: &str) -> String {
    let body =
        json!({"displayName": name, "mailNickname": name.to_lowercase().replace(' ', "-"), "mailEnabled": false, "securityEnabled": true});
    let (status, group) = server.post("/v1.0/groups", body).await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    group["id"].as_str().unwrap().to_string()
}

async fn add(server: &TestServer, group: &str, member: &str) {
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")});
    let (status, body) = server.post(&format!("/v1.0/groups/{group}/members/$ref"), reference).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// GET `path` (a full URL or a Graph path), with `ConsistencyLevel: eventual` when `eventual`;
/// the status, the raw body and its JSON (`Null` when it is not JSON).
async fn fetch(server: &TestServer, path: &str, eventual: bool) -> (StatusCode, String, Value) {
    let url = if path.starts_with("https://") { path.to_string() } else { server.url(path) };
    let mut request = server.http.get(url).bearer_auth(&server.token);
    if eventual {
        request = request.header("ConsistencyLevel", "eventual");
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, json)
}

async fn ok(server: &TestServer, path: &str, eventual: bool) -> Value {
    let (status, _, body) = fetch(server, path, eventual).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn names(body: &Value) -> Vec<String> {
    body["value"].as_array().expect("value").iter().map(|g| g["displayName"].as_str().unwrap().to_string()).collect()
}

fn name_set(body: &Value) -> BTreeSet<String> {
    names(body).into_iter().collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Follows `@odata.nextLink` from `path`, returning every page's display names in order.
async fn all_names(server: &TestServer, path: &str, eventual: bool) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(server.url(path));
    while let Some(url) = next {
        let body = ok(server, &url, eventual).await;
        pages += 1;
        seen.extend(names(&body));
        next = body["@odata.nextLink"].as_str().map(str::to_string);
    }
    (seen, pages)
}

async fn refused(server: &TestServer, path: &str, eventual: bool, code: &str, message: &str) {
    let (status, _, body) = fetch(server, path, eventual).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    assert_graph_error(&body, code, message);
}

const ADVANCED_HINT: &str = "is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header.";

both_engines! {
    async fn groups_count_with_the_header_and_the_count_segment(server: TestServer) {
        create_groups(&server).await;
        // Without the header `$count=true` is silently ignored.
        let body = ok(&server, "/v1.0/groups?$count=true&$select=id", false).await;
        assert!(body.get("@odata.count").is_none(), "{body}");
        let body = ok(&server, "/v1.0/groups?$count=true&$top=2&$select=id,displayName", true).await;
        assert_eq!(body["@odata.count"], 5, "the count is of the whole collection, not the page");
        assert_eq!(body["value"].as_array().unwrap().len(), 2);
        assert!(body["@odata.nextLink"].is_string());
        let body = ok(&server, "/v1.0/groups?$count=true&$filter=startsWith(displayName,'Sales')", true).await;
        assert_eq!(body["@odata.count"], 2);
        assert_eq!(name_set(&body), set(&["Sales Team", "Sales EU"]));
        let body = ok(&server, "/v1.0/groups?$count=true&$filter=groupTypes/any(c:c%20eq%20'Unified')", true).await;
        assert_eq!(body["@odata.count"], 3);

        refused(&server, "/v1.0/groups/$count", false, "Request_BadRequest", "$count is not currently supported.").await;
        let (status, text, _) = fetch(&server, "/v1.0/groups/$count", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text, "5");
        let response = server.http.get(server.url("/v1.0/groups/$count")).bearer_auth(&server.token)
            .header("ConsistencyLevel", "eventual").send().await.unwrap();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let (_, text, _) = fetch(&server, "/v1.0/groups/$count?$filter=securityEnabled%20eq%20true", true).await;
        assert_eq!(text, "2");
        // The segment is itself an advanced query, so advanced operators pass there.
        let (status, text, _) = fetch(&server, "/v1.0/groups/$count?$filter=mail%20ne%20null", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text, "3");
        let (_, text, _) = fetch(&server, "/v1.0/groups/$count?$search=%22displayName:sales%22", true).await;
        assert_eq!(text, "2");
        refused(&server, "/v1.0/groups/$count?$filter=nope%20eq%201", true, "Request_UnsupportedQuery", "nope").await;
    }

    async fn advanced_operators_need_the_header_and_count(server: TestServer) {
        create_groups(&server).await;
        let cases: [(&str, &str, &[&str]); 5] = [
            ("mail%20ne%20null", "ne", &["Sales Team", "Marketing", "Finance"]),
            ("not(securityEnabled%20eq%20true)", "not", &["Sales Team", "Marketing", "Finance"]),
            ("endsWith(mail,'@contoso.onmicrosoft.com')", "endsWith", &["Sales Team", "Marketing", "Finance"]),
            ("endsWith(mailNickname,'-eu')", "endsWith", &["Sales EU", "Engineering"]),
            ("startsWith(displayName,'S')%20and%20displayName%20ne%20'Sales%20EU'", "ne", &["Sales Team"]),
        ];
        for (filter, operator, expected) in cases {
            let message = format!("Operator '{operator}' {ADVANCED_HINT}");
            refused(&server, &format!("/v1.0/groups?$filter={filter}"), false, "Request_UnsupportedQuery", &message).await;
            refused(&server, &format!("/v1.0/groups?$filter={filter}"), true, "Request_UnsupportedQuery", &message).await;
            refused(&server, &format!("/v1.0/groups?$filter={filter}&$count=true"), false, "Request_UnsupportedQuery", &message).await;
            let body = ok(&server, &format!("/v1.0/groups?$filter={filter}&$count=true"), true).await;
            assert_eq!(name_set(&body), set(expected), "{filter}");
            assert_eq!(body["@odata.count"], expected.len(), "{filter}");
        }
        // endsWith is served on mail and mailNickname only, header or not.
        refused(&server, "/v1.0/groups?$filter=endsWith(displayName,'EU')&$count=true", true, "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'displayName' of resource 'Group'.").await;
        // $filter with $orderby is an advanced query too.
        let filtered_sort = "/v1.0/groups?$filter=securityEnabled%20eq%20false&$orderby=displayName%20desc";
        refused(&server, filtered_sort, false, "Request_UnsupportedQuery", &format!("Sorting a filtered query {ADVANCED_HINT}")).await;
        let body = ok(&server, &format!("{filtered_sort}&$count=true"), true).await;
        assert_eq!(names(&body), ["Sales Team", "Marketing", "Finance"]);
        assert_eq!(body["@odata.count"], 3);
    }

    async fn orderby_display_name_pages_in_order(server: TestServer) {
        for name in ["Delta", "alpha", "Echo", "Delta", "Charlie", "Bravo", "Delta"] {
            new_group(&server, name).await;
        }
        let (ascending, pages) = all_names(&server, "/v1.0/groups?$orderby=displayName&$top=2&$select=id,displayName", false).await;
        assert_eq!(pages, 4);
        let (descending, _) = all_names(&server, "/v1.0/groups?$orderby=displayName%20desc&$top=3", false).await;
        let mut reversed = descending.clone();
        reversed.reverse();
        assert_eq!(ascending, reversed);
        assert_eq!(ascending.iter().filter(|n| *n == "Delta").count(), 3, "ties on the name are paged by id, none lost or repeated");
        // Case-sensitive collations may put 'alpha' after the capitals; the rest are in order either way.
        let capitals: Vec<&String> = ascending.iter().filter(|n| *n != "alpha").collect();
        assert_eq!(capitals, ["Bravo", "Charlie", "Delta", "Delta", "Delta", "Echo"]);
        assert_eq!(ascending.len(), 7);
        let body = ok(&server, "/v1.0/groups?$orderby=displayName%20asc&$top=1", false).await;
        assert!(body["@odata.nextLink"].as_str().unwrap().contains("$orderby=displayName%20asc"), "{body}");
        // A continuation is only good for the order it was made in.
        let token = body["@odata.nextLink"].as_str().unwrap().split("$skiptoken=").nth(1).unwrap().to_string();
        let (status, _, _) = fetch(&server, &format!("/v1.0/groups?$skiptoken={token}"), false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        refused(&server, "/v1.0/groups?$orderby=mail", false, "Request_UnsupportedQuery", "Sorting not supported for current query.").await;
        refused(&server, "/v1.0/groups?$orderby=createdDateTime%20desc", true, "Request_UnsupportedQuery", "Sorting not supported for current query.").await;
        refused(&server, "/v1.0/groups?$orderby=displayName,mail", false, "Request_UnsupportedQuery", "Sorting not supported for current query.").await;
        refused(&server, "/v1.0/groups?$orderby=displayName%20up", false, "Request_UnsupportedQuery", "Sorting not supported for current query.").await;
        refused(&server, "/v1.0/groups?$orderby=nope", false, "Request_BadRequest", "Could not find a property named 'nope' on type 'microsoft.graph.group'.").await;
    }

    async fn search_matches_word_prefixes_with_the_header(server: TestServer) {
        create_groups(&server).await;
        refused(&server, "/v1.0/groups?$search=%22displayName:sales%22", false, "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'").await;
        for (search, expected) in [
            ("%22displayName:sales%22", set(&["Sales Team", "Sales EU"])),
            ("%22displayName:team%22", set(&["Sales Team"])),
            ("%22displayName:eam%22", set(&[])),
            ("%22displayName:sales%20eu%22", set(&["Sales EU"])),
            ("%22description:sales%22", set(&["Sales Team", "Marketing"])),
            ("%22mail:eu%22", set(&[])),
            ("%22mail:team%22", set(&["Sales Team"])),
            ("%22displayName:fin%22%20OR%20%22description:builders%22", set(&["Finance", "Engineering"])),
            ("%22displayName:sales%22%20AND%20%22description:everyone%22", set(&["Sales Team"])),
        ] {
            let body = ok(&server, &format!("/v1.0/groups?$search={search}"), true).await;
            assert_eq!(name_set(&body), expected, "{search}");
        }
        let body = ok(&server, "/v1.0/groups?$search=%22displayName:sales%22&$filter=securityEnabled%20eq%20true&$count=true", true).await;
        assert_eq!(names(&body), ["Sales EU"]);
        assert_eq!(body["@odata.count"], 1);
        let body = ok(&server, "/v1.0/groups?$search=%22displayName:sales%22&$orderby=displayName%20desc", true).await;
        assert_eq!(names(&body), ["Sales Team", "Sales EU"]);
        refused(&server, "/v1.0/groups?$search=displayName:sales", true, "BadRequest", "$search").await;
        refused(&server, "/v1.0/groups?$search=%22mailNickname:sales%22", true, "Request_UnsupportedQuery", "mailNickname").await;
    }

    async fn expand_members_gives_up_to_twenty_typed_objects(server: TestServer) {
        let team = new_group(&server, "Team").await;
        let nested = new_group(&server, "Nested").await;
        let big = new_group(&server, "Big").await;
        let mut users = Vec::new();
        for i in 0..21 {
            users.push(server.invite(&format!("member{i}@example.com")).await["invitedUser"]["id"].as_str().unwrap().to_string());
        }
        add(&server, &team, &users[0]).await;
        add(&server, &team, &users[1]).await;
        add(&server, &team, &nested).await;
        for user in &users {
            add(&server, &big, user).await;
        }

        let body = ok(&server, &format!("/v1.0/groups/{team}?$expand=members&$select=id,displayName"), false).await;
        let members = body["members"].as_array().expect("members");
        assert_eq!(members.len(), 3);
        let types: BTreeSet<&str> = members.iter().map(|m| m["@odata.type"].as_str().unwrap()).collect();
        assert_eq!(types, BTreeSet::from(["#microsoft.graph.user", "#microsoft.graph.group"]));
        assert!(members.iter().any(|m| m["displayName"] == "Nested" && m["securityEnabled"] == true));
        let body = ok(&server, &format!("/v1.0/groups/{big}?$expand=MEMBERS"), false).await;
        assert_eq!(body["members"].as_array().unwrap().len(), 20, "Graph expands at most 20 objects");

        let body = ok(&server, "/v1.0/groups?$expand=members&$select=displayName", false).await;
        for group in body["value"].as_array().unwrap() {
            let expected = match group["displayName"].as_str().unwrap() {
                "Team" => 3,
                "Big" => 20,
                _ => 0,
            };
            assert_eq!(group["members"].as_array().expect("members on every group").len(), expected, "{group}");
        }
        let body = ok(&server, "/v1.0/groups?$select=id", false).await;
        assert!(body["value"][0].get("members").is_none());

        refused(&server, "/v1.0/groups?$expand=members&$count=true", true, "Request_UnsupportedQuery", "$expand is not supported in advanced queries").await;
        refused(&server, "/v1.0/groups?$expand=members&$search=%22displayName:team%22", true, "Request_UnsupportedQuery", "$expand is not supported in advanced queries").await;
        refused(&server, &format!("/v1.0/groups/{team}?$expand=owners"), false, "Request_UnsupportedQuery", "Expanding 'owners'").await;
        refused(&server, "/v1.0/groups?$expand=displayName", false, "Request_BadRequest", "is not a navigation property").await;
    }

    async fn member_lists_count_with_the_header(server: TestServer) {
        let inner = new_group(&server, "Inner").await;
        let outer = new_group(&server, "Outer").await;
        let top = new_group(&server, "Top").await;
        let guest = server.invite("nested@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let other = server.invite("other@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        add(&server, &inner, &guest).await;
        add(&server, &inner, &other).await;
        add(&server, &outer, &inner).await;
        add(&server, &top, &outer).await;
        add(&server, &top, &guest).await;

        // `$count=true` on members, paged: the count is of the whole list; ignored without the header.
        let path = format!("/v1.0/groups/{inner}/members?$count=true&$top=1&$select=id");
        let body = ok(&server, &path, true).await;
        assert_eq!(body["@odata.count"], 2);
        assert_eq!(body["value"].as_array().unwrap().len(), 1);
        let second = ok(&server, body["@odata.nextLink"].as_str().unwrap(), true).await;
        assert_eq!(second["@odata.count"], 2);
        assert_ne!(second["value"][0]["id"], body["value"][0]["id"]);
        assert!(second.get("@odata.nextLink").is_none());
        assert!(ok(&server, &path, false).await.get("@odata.count").is_none());

        for (path, count) in [
            (format!("/v1.0/groups/{inner}/members"), 2),
            (format!("/v1.0/groups/{top}/members"), 2),
            (format!("/v1.0/users/{guest}/memberOf"), 2),
            (format!("/v1.0/users/{guest}/transitiveMemberOf"), 3),
            (format!("/v1.0/users/{other}/transitiveMemberOf"), 3),
            (format!("/v1.0/groups/{inner}/memberOf"), 1),
            (format!("/v1.0/groups/{inner}/transitiveMemberOf"), 2),
            (format!("/v1.0/groups/{top}/transitiveMemberOf"), 0),
        ] {
            let body = ok(&server, &format!("{path}?$count=true"), true).await;
            assert_eq!(body["@odata.count"], count, "{path}");
            assert_eq!(body["value"].as_array().unwrap().len(), count, "{path}");
            let (status, text, _) = fetch(&server, &format!("{path}/$count"), true).await;
            assert_eq!(status, StatusCode::OK, "{path}/$count: {text}");
            assert_eq!(text, count.to_string(), "{path}/$count");
            refused(&server, &format!("{path}/$count"), false, "Request_BadRequest", "$count is not currently supported.").await;
        }
        // By UPN, as the SDKs address users.
        let upn = server.user(&guest, "userPrincipalName").await["userPrincipalName"].as_str().unwrap().replace('#', "%23");
        let (_, text, _) = fetch(&server, &format!("/v1.0/users/{upn}/transitiveMemberOf/$count"), true).await;
        assert_eq!(text, "3");
        let missing = "00000000-0000-0000-0000-000000000001";
        let (status, _, body) = fetch(&server, &format!("/v1.0/groups/{missing}/members/$count"), true).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_graph_error(&body, "Request_ResourceNotFound", missing);
        refused(&server, &format!("/v1.0/groups/{inner}/members/$count?$filter=id%20eq%20'x'"), true, "Request_UnsupportedQuery", "$filter").await;
    }
}
