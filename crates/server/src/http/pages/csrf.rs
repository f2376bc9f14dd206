//! CSRF protection for the server-rendered forms: a double-submit token bound to an HttpOnly,
//! SameSite=Strict cookie (`__Host-` prefixed over TLS, so no other host can plant it), checked
//! in constant time, plus a refusal of cross-site form posts by `Origin` and `Sec-Fetch-Site`.
//!
//! Use: a page with a form calls [`token_for`], puts the token in a hidden [`FIELD`] and sends the
//! returned `Set-Cookie` (if any); the handler of the POST calls [`verify`] before anything else.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

const TOKEN_LENGTH: usize = 43;

/// Why a form post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRejection {
    /// No token cookie, or a malformed one (cookies blocked, or the browser dropped it).
    MissingCookie,
    /// The form's token is missing or differs from the cookie's.
    TokenMismatch,
    /// The post came from another site.
    CrossSite,
}

impl CsrfRejection {
    /// What a person is told when a form of theirs is refused.
    pub fn explanation(&self) -> &'static str {
        match self {
            CsrfRejection::MissingCookie => {
                "Your browser didn't send the cookie this form needs. Allow cookies for this site and try again."
            }
            CsrfRejection::TokenMismatch => "This form has expired. Go back, reload the page and try again.",
            CsrfRejection::CrossSite => "This form was sent from another site, so it was not accepted.",
        }
    }
}

/// The cookie's name: `__Host-` prefixed when the server is reached over TLS.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-guestlist-csrf"
    } else {
        "guestlist-csrf"
    }
}

/// This browser's token: the one in its cookie when well-formed, otherwise a new one together
/// with the `Set-Cookie` value that stores it.
pub fn token_for(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    if let Some(existing) = cookie(headers, cookie_name(secure)).filter(|value| well_formed(value)) {
        return (existing.to_string(), None);
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let set_cookie = set_cookie(cookie_name(secure), &token, secure, None);
    (token, Some(set_cookie))
}

/// Checks a form post: same-site, a token cookie, and the form's token equal to it.
/// `public_origin` is this server's origin as browsers see it.
pub fn verify(headers: &HeaderMap, secure: bool, public_origin: &str, submitted: Option<&str>) -> Result<(), CsrfRejection> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site == Some("cross-site") {
        return Err(CsrfRejection::CrossSite);
    }
    if let Some(origin) = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null")) {
        // Browsers send `null` under a no-referrer policy; then only Sec-Fetch-Site can vouch.
        let same = if origin == "null" {
            fetch_site == Some("same-origin")
        } else {
            origin.eq_ignore_ascii_case(public_origin.trim_end_matches('/'))
        };
        if !same {
            return Err(CsrfRejection::CrossSite);
        }
    }
    let Some(expected) = cookie(headers, cookie_name(secure)).filter(|value| well_formed(value)) else {
        return Err(CsrfRejection::MissingCookie);
    };
    match submitted {
        Some(submitted) if constant_time_eq(submitted.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(CsrfRejection::TokenMismatch),
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value: host-only, path `/`, HttpOnly, SameSite=Strict, Secure over TLS; a
/// session cookie unless `max_age_seconds` is given.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age_seconds: Option<i64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        text.push_str("; Secure");
    }
    if let Some(seconds) = max_age_seconds {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    // Names are constants and values base64url, so the header value is always valid.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("guestlist-invalid=; Path=/"))
}

fn well_formed(value: &str) -> bool {
    value.len() == TOKEN_LENGTH && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_new_browser_gets_a_host_only_strict_cookie() {
        let (token, set) = token_for(&HeaderMap::new(), true);
        assert_eq!(token.len(), TOKEN_LENGTH);
        let set = set.unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("__Host-guestlist-csrf={token}; Path=/; HttpOnly; SameSite=Strict; Secure")), "{set}");
        assert!(!set.contains("Domain"));
        let (_, plain) = token_for(&HeaderMap::new(), false);
        assert!(!plain.unwrap().to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn the_cookie_token_is_reused_and_verified() {
        let (token, _) = token_for(&HeaderMap::new(), true);
        let request = headers(&[("cookie", &format!("other=1; __Host-guestlist-csrf={token}"))]);
        let (again, set) = token_for(&request, true);
        assert_eq!(again, token);
        assert!(set.is_none());
        let origin = "https://127.0.0.1:8443";
        assert_eq!(verify(&request, true, origin, Some(&token)), Ok(()));
        assert_eq!(verify(&request, true, origin, Some(&token[1..])), Err(CsrfRejection::TokenMismatch));
        assert_eq!(verify(&request, true, origin, None), Err(CsrfRejection::TokenMismatch));
        assert_eq!(verify(&HeaderMap::new(), true, origin, Some(&token)), Err(CsrfRejection::MissingCookie));
        // The plain-HTTP cookie does not count over TLS.
        let plain = headers(&[("cookie", &format!("guestlist-csrf={token}"))]);
        assert_eq!(verify(&plain, true, origin, Some(&token)), Err(CsrfRejection::MissingCookie));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let (token, _) = token_for(&HeaderMap::new(), true);
        let cookie = format!("__Host-guestlist-csrf={token}");
        let origin = "https://127.0.0.1:8443";
        let same = headers(&[("cookie", &cookie), ("origin", origin), ("sec-fetch-site", "same-origin")]);
        assert_eq!(verify(&same, true, origin, Some(&token)), Ok(()));
        let other = headers(&[("cookie", &cookie), ("origin", "https://evil.example")]);
        assert_eq!(verify(&other, true, origin, Some(&token)), Err(CsrfRejection::CrossSite));
        let null = headers(&[("cookie", &cookie), ("origin", "null")]);
        assert_eq!(verify(&null, true, origin, Some(&token)), Err(CsrfRejection::CrossSite));
        let null_same_origin = headers(&[("cookie", &cookie), ("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(verify(&null_same_origin, true, origin, Some(&token)), Ok(()));
        let fetch = headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]);
        assert_eq!(verify(&fetch, true, origin, Some(&token)), Err(CsrfRejection::CrossSite));
    }
}
