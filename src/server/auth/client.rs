//! The clients this server signs people in for. One today: `chartty`, a
//! public native client (no secret; PKCE stands in), whose redirect goes
//! to a loopback port of its own (RFC 8252 §7.3).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The terminal client.
pub const CHARTTY: &str = "chartty";

pub fn known(client_id: &str) -> bool {
    client_id == CHARTTY
}

/// The origin of `redirect_uri` if it is a loopback `http` URI (any port,
/// any path), for the page's `form-action`; `None` for anything else.
pub fn loopback_redirect(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    if url.scheme() != "http"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    let host = match url.host()? {
        url::Host::Ipv4(ip) if ip == Ipv4Addr::LOCALHOST => "127.0.0.1",
        url::Host::Ipv6(ip) if ip == Ipv6Addr::LOCALHOST => "[::1]",
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => "localhost",
        _ => return None,
    };
    Some(match url.port() {
        Some(p) => format!("http://{host}:{p}"),
        None => format!("http://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects() {
        for (uri, origin) in [
            ("http://127.0.0.1:49152/callback", "http://127.0.0.1:49152"),
            ("http://localhost:8000/", "http://localhost:8000"),
            ("http://[::1]:9/cb?x=1", "http://[::1]:9"),
            ("http://127.0.0.1/", "http://127.0.0.1"),
        ] {
            assert_eq!(loopback_redirect(uri).as_deref(), Some(origin), "{uri}");
        }
        for uri in [
            "https://127.0.0.1:1/cb",
            "http://evil.example/cb",
            "http://127.0.0.2:1/cb",
            "http://localhost.evil.example/cb",
            "http://user@127.0.0.1:1/cb",
            "http://127.0.0.1:1/cb#frag",
            "com.example.app:/cb",
            "not a uri",
            "",
        ] {
            assert_eq!(loopback_redirect(uri), None, "{uri}");
        }
    }
}
