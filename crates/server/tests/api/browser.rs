//! A small browser for the server-rendered pages (redemption, sign-in, the admin console): it
//! keeps cookies, follows no redirect by itself (so each can be checked), and remembers the
//! CSRF token of the last page with a form.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::harness::TestServer;

/// An HTTPS client that trusts the server's CA and follows no redirect.
pub fn client(server: &TestServer) -> reqwest::Client {
    let ca = std::fs::read(server.connection.ca_certificate.as_ref().expect("TLS")).expect("CA file");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub struct Browser {
    pub http: reqwest::Client,
    pub origin: String,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had a form.
    pub csrf_token: Option<String>,
}

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location on {}: {}", self.status, self.body))
            .to_string()
    }

    /// A hidden field's value.
    pub fn field(&self, name: &str) -> String {
        self.field_if_any(name).unwrap_or_else(|| panic!("no field {name} in {}", self.body))
    }

    fn field_if_any(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        Some(html_unescape(&self.body[start..start + self.body[start..].find('"')?]))
    }

    /// The hidden fields every form of the redemption flow carries: the link and the CSRF token.
    pub fn link_fields(&self) -> Vec<(String, String)> {
        ["tenant", "user", "ticket", "csrf_token"].iter().map(|name| (name.to_string(), self.field(name))).collect()
    }

    pub fn href_to(&self, path: &str) -> String {
        let body = html_unescape(&self.body);
        let marker = format!("href=\"{path}");
        let start = body.find(&marker).unwrap_or_else(|| panic!("no link to {path} in {}", self.body)) + 6;
        body[start..start + body[start..].find('"').unwrap()].to_string()
    }

    pub fn says(&self, text: &str) -> bool {
        html_unescape(&self.body).contains(text)
    }

    /// The text of the page's `role="alert"` box, tags stripped; empty when there is none.
    pub fn alert(&self) -> String {
        let Some(start) = self.body.find("role=\"alert\"") else { return String::new() };
        let end = self.body[start..].find("</div>").map_or(self.body.len(), |e| start + e);
        let mut text = String::new();
        let mut in_tag = false;
        for c in self.body[start..end].chars().skip_while(|c| *c != '>').skip(1) {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        html_unescape(&text)
    }
}

pub fn html_unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
}

impl Browser {
    pub fn new(server: &TestServer) -> Browser {
        Browser { http: client(server), origin: server.connection.graph_url.clone(), cookies: BTreeMap::new(), csrf_token: None }
    }

    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.origin)
        } else {
            url.to_string()
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Sends with this browser's cookies, then keeps the cookies the answer sets (an empty value
    /// deletes one) and the page's CSRF token.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() { request } else { request.header("cookie", self.cookie_header()) };
        let response = request.send().await.expect("page answered");
        for set in response.headers().get_all(SET_COOKIE) {
            let (name, value) = set.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let page = Page { status: response.status(), headers: response.headers().clone(), body: response.text().await.unwrap() };
        if let Some(token) = page.field_if_any("csrf_token") {
            self.csrf_token = Some(token);
        }
        page
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(self.absolute(url));
        self.send(request).await
    }

    /// Posts exactly these fields.
    pub async fn post(&mut self, path: &str, fields: &[(String, String)]) -> Page {
        let request = self.http.post(self.absolute(path)).form(fields);
        self.send(request).await
    }

    /// Posts a form as a page of this origin would: these fields, the CSRF token of the last
    /// page, and the `Origin` header.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf_token.clone().expect("a page with a form was loaded first");
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        let request = self.http.post(self.absolute(path)).header("origin", &self.origin).form(&form);
        self.send(request).await
    }

    /// Signs in to the admin console.
    pub async fn console_sign_in(&mut self, username: &str, password: &str) -> Page {
        self.get("/console/signin").await;
        self.submit("/console/signin", &[("username", username), ("password", password), ("next", "/console/guests")]).await
    }
}
