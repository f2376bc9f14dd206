//! The client address a request counts against (the per-address sign-in limit): the TCP peer,
//! or, only when the peer is a proxy named by `--trusted-proxy`, the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy. Anyone can write the header, so it is
//! believed only as far as trusted hops vouch for it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// Hops of `X-Forwarded-For` looked at, from the right; a longer chain stops at the last one.
pub const MAX_FORWARDED_HOPS: usize = 16;

/// The address [`resolve`] chose, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`); empty by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpAddr]>);

impl TrustedProxies {
    pub fn new(addresses: &[IpAddr]) -> Self {
        TrustedProxies(addresses.iter().map(|a| a.to_canonical()).collect())
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.contains(&address.to_canonical())
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then, walking
/// `X-Forwarded-For` from the right, the first hop that is not a trusted proxy. A hop that is not
/// an IP address ends the walk at the trusted hop that reported it.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.trusts(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
        let Ok(address) = hop.parse::<IpAddr>() else { break };
        client = address.to_canonical();
        if !trusted.trusts(client) {
            break;
        }
    }
    client
}

/// Middleware: puts the request's [`ClientAddress`] in its extensions.
pub async fn attach(State(trusted): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = resolve(peer.ip(), request.headers(), &trusted);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The client address of a request, as text for the limit's scope ("unknown" without a peer).
pub fn of(parts: &Parts) -> String {
    parts.extensions.get::<ClientAddress>().map_or_else(|| "unknown".to_string(), |ClientAddress(address)| address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let headers = forwarded(&["198.51.100.7"]);
        assert_eq!(resolve(ip("203.0.113.9"), &headers, &TrustedProxies::default()), ip("203.0.113.9"));
        let trusted = TrustedProxies::new(&[ip("10.0.0.1")]);
        assert_eq!(resolve(ip("203.0.113.9"), &headers, &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("10.0.0.1"), &headers, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client_and_forged_left_hops_are_not_believed() {
        let trusted = TrustedProxies::new(&[ip("10.0.0.1"), ip("10.0.0.2")]);
        // The client forged "1.2.3.4"; the proxies appended what they saw.
        let headers = forwarded(&["1.2.3.4, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &headers, &trusted), ip("198.51.100.7"));
        // Without a header, or with only trusted hops, the left-most trusted hop is all we know.
        assert_eq!(resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
        assert_eq!(resolve(ip("10.0.0.1"), &forwarded(&["10.0.0.2"]), &trusted), ip("10.0.0.2"));
        // Garbage ends the walk at the trusted hop that passed it on.
        assert_eq!(resolve(ip("10.0.0.1"), &forwarded(&["198.51.100.7, not-an-ip"]), &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_addresses_match_their_ipv4_form_and_long_chains_stop() {
        let trusted = TrustedProxies::new(&[ip("10.0.0.1")]);
        assert_eq!(resolve(ip("::ffff:10.0.0.1"), &forwarded(&["198.51.100.7"]), &trusted), ip("198.51.100.7"));
        let chain = vec!["10.0.0.1"; MAX_FORWARDED_HOPS + 5].join(",");
        let headers = forwarded(&[&format!("198.51.100.7,{chain}")]);
        assert_eq!(resolve(ip("10.0.0.1"), &headers, &trusted), ip("10.0.0.1"), "the walk stops after the cap");
    }
}
