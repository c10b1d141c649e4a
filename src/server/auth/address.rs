//! Whose request this is: the TCP peer, or, when the peer is a proxy the
//! server was told to trust (`--trusted-proxy`), the client that proxy
//! names in `X-Forwarded-For`. Behind a TLS proxy every request comes from
//! the proxy; counting sign-in failures by it would let one person's
//! typos, or one attacker, lock the whole clinic out.
//!
//! A header from any other peer is ignored: anyone can send one.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address or a network (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit number.
fn masked(v: u128, width: u32, prefix: u8) -> u128 {
    let keep = u32::from(prefix).min(width);
    if keep == 0 { 0 } else { v >> (width - keep) }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let addr = addr.to_canonical();
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= width)
                .ok_or_else(|| format!("{s:?}: the prefix length is 0 to {width}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Where a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's IP, when known.
    pub ip: Option<IpAddr>,
    /// For the audit: the peer, or the client and the proxy it came by.
    pub source: Option<String>,
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    e.parse::<IpAddr>()
        .ok()
        .or_else(|| e.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client of a request that arrived from `peer`.
pub fn client(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Client {
    let Some(peer) = peer else {
        return Client {
            ip: None,
            source: None,
        };
    };
    let peer_ip = peer.ip().to_canonical();
    let direct = Client {
        ip: Some(peer_ip),
        source: Some(peer.to_string()),
    };
    if !trusted.iter().any(|t| t.contains(peer_ip)) {
        return direct;
    }
    // Each proxy appends the address it was reached from, so the right-most
    // entry not one of ours is the first hop nobody trusted can have
    // written; what lies left of it is the client's to invent.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|e| !e.trim().is_empty())
        .collect();
    let mut nearest = peer_ip;
    for entry in entries.iter().rev() {
        let Some(ip) = forwarded_ip(entry) else {
            // A trusted proxy wrote something that is not an address:
            // the nearest address known is all there is.
            break;
        };
        nearest = ip;
        if !trusted.iter().any(|t| t.contains(ip)) {
            break;
        }
    }
    if nearest == peer_ip {
        return direct;
    }
    Client {
        ip: Some(nearest),
        source: Some(format!("{nearest} via {peer}")),
    }
}

/// What the limits count an address as: itself for IPv4, its /64 for
/// IPv6 (one subscriber is usually given a whole /64, and could otherwise
/// walk through 2^64 addresses).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy".parse::<Cidr>().is_err());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let h = with_xff(&["198.51.100.7, 203.0.113.9"]);
        // Untrusted peer: the header is ignored.
        let c = client(Some(peer), &h, &[]);
        assert_eq!(c.ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(c.source.as_deref(), Some("10.0.0.2:4000"));
        // Trusted: the right-most entry that is not a proxy of ours.
        let c = client(Some(peer), &h, &cidrs(&["10.0.0.0/24"]));
        assert_eq!(c.ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(c.source.as_deref(), Some("203.0.113.9 via 10.0.0.2:4000"));
        // Two proxies of ours, split over two header lines.
        let h = with_xff(&["1.2.3.4, 198.51.100.7", "10.0.0.3"]);
        let c = client(Some(peer), &h, &cidrs(&["10.0.0.0/24"]));
        assert_eq!(c.ip, Some("198.51.100.7".parse().unwrap()));
        // No header: the peer.
        let c = client(Some(peer), &HeaderMap::new(), &cidrs(&["10.0.0.0/24"]));
        assert_eq!(c.ip, Some("10.0.0.2".parse().unwrap()));
        // Garbage right of the client: the nearest address known.
        let h = with_xff(&["203.0.113.9, not-an-address"]);
        let c = client(Some(peer), &h, &cidrs(&["10.0.0.0/24"]));
        assert_eq!(c.ip, Some("10.0.0.2".parse().unwrap()));
        // A port is allowed.
        let h = with_xff(&["[2001:db8::1]:443"]);
        let c = client(Some(peer), &h, &cidrs(&["10.0.0.0/24"]));
        assert_eq!(c.ip, Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        let a = limit_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = limit_key("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = limit_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(limit_key(v4), v4);
    }
}
