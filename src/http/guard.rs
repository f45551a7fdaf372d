//! The SSRF guard: which addresses an endpoint may reach.
//!
//! Checked on the addresses DNS actually returned (a name that resolves to
//! 127.0.0.1 is refused like the literal), after IPv4-mapped IPv6 addresses
//! are turned back into IPv4. If any returned address is refused the whole
//! name is refused, so a name mixing public and private answers cannot be
//! used to reach the private one. A name's checked answer is reused for
//! 30 s: connections go to addresses that were checked, never to a fresh
//! answer that was not.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use ureq::config::Config as UreqConfig;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// An IP network in CIDR notation, such as `10.20.0.0/16` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
        IpNet {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
        let [a, b, c, d, e, f, g, h] = segments;
        IpNet {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    a & mask == b & mask
}

impl FromStr for IpNet {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| "not an IP address")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| "prefix length is not a number")?,
            None => max,
        };
        if prefix > max {
            return Err("prefix length too long for the address family");
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Networks no endpoint may reach unless the host allows them.
const FORBIDDEN: &[IpNet] = &[
    IpNet::v4(0, 0, 0, 0, 8),                 // "this network", unspecified
    IpNet::v4(10, 0, 0, 0, 8),                // private
    IpNet::v4(100, 64, 0, 0, 10),             // carrier-grade NAT
    IpNet::v4(127, 0, 0, 0, 8),               // loopback
    IpNet::v4(169, 254, 0, 0, 16),            // link-local, cloud metadata
    IpNet::v4(172, 16, 0, 0, 12),             // private
    IpNet::v4(192, 0, 0, 0, 24),              // IETF protocol assignments
    IpNet::v4(192, 0, 2, 0, 24),              // documentation
    IpNet::v4(192, 88, 99, 0, 24),            // 6to4 relay
    IpNet::v4(192, 168, 0, 0, 16),            // private
    IpNet::v4(198, 18, 0, 0, 15),             // benchmarking
    IpNet::v4(198, 51, 100, 0, 24),           // documentation
    IpNet::v4(203, 0, 113, 0, 24),            // documentation
    IpNet::v4(224, 0, 0, 0, 4),               // multicast
    IpNet::v4(240, 0, 0, 0, 4),               // reserved, broadcast
    IpNet::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), // unspecified
    IpNet::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), // loopback
    IpNet::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), // NAT64: reaches IPv4 behind it
    IpNet::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local NAT64
    IpNet::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard
    IpNet::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), // Teredo
    IpNet::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    IpNet::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
    IpNet::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique local
    IpNet::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    IpNet::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated)
    IpNet::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
];

/// Which addresses endpoints may reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetworkPolicy {
    pub(crate) allow_private: bool,
    pub(crate) allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Whether `ip` may be connected to.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.allow_private || self.allowed.iter().any(|n| n.contains(ip)) {
            return true;
        }
        !FORBIDDEN.iter().any(|n| n.contains(ip))
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Raised by the resolver when a name resolves to a refused address; the
/// attempt is logged with `ErrorKind::Blocked`.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) addr: IpAddr,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is in a private or reserved range; allow it with BusBuilder::allow_network",
            self.addr
        )
    }
}

impl std::error::Error for Blocked {}

/// ureq's resolver with the policy applied to every answer.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    inner: DefaultResolver,
    policy: Arc<NetworkPolicy>,
    /// "host:port" → when it was resolved, and its checked addresses.
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<NetworkPolicy>) -> Self {
        GuardedResolver {
            inner: DefaultResolver::default(),
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &UreqConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // ureq asks before every request, pooled connection or not, and its
        // resolver runs each lookup on a new thread when a timeout is set
        // (a quarter of a sender's CPU, measured). An IP literal needs no
        // lookup; a name's checked answer is kept for a short while.
        let port = uri.port_u16().or_else(|| match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        if let (Some(host), Some(port)) = (host, port) {
            if let Ok(ip) = host.parse::<IpAddr>() {
                self.check(&[ip])?;
                let mut out = self.empty();
                out.push(std::net::SocketAddr::new(ip, port));
                return Ok(out);
            }
            let key = format!("{host}:{port}");
            if let Some((at, addrs)) = self.cache.lock().get(&key) {
                if at.elapsed() < DNS_CACHE_TTL {
                    return Ok(addrs.clone());
                }
            }
            let addrs = self.inner.resolve(uri, config, timeout)?;
            let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            self.check(&ips)?;
            let mut cache = self.cache.lock();
            if cache.len() >= DNS_CACHE_ENTRIES {
                cache.retain(|_, (at, _)| at.elapsed() < DNS_CACHE_TTL);
            }
            if cache.len() < DNS_CACHE_ENTRIES {
                cache.insert(key, (Instant::now(), addrs.clone()));
            }
            return Ok(addrs);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
        self.check(&ips)?;
        Ok(addrs)
    }
}

impl GuardedResolver {
    /// Refuses the whole answer if any address is not allowed.
    fn check(&self, ips: &[IpAddr]) -> Result<(), ureq::Error> {
        match ips.iter().find(|ip| !self.policy.permits(**ip)) {
            Some(bad) => Err(ureq::Error::Other(Box::new(Blocked { addr: *bad }))),
            None => Ok(()),
        }
    }
}

/// How long a name's checked addresses are reused.
const DNS_CACHE_TTL: Duration = Duration::from_secs(30);
/// Names kept at most; past that, lookups are simply not cached.
const DNS_CACHE_ENTRIES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_private_and_reserved_ranges() {
        let p = NetworkPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.10",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            assert!(!p.permits(ip(bad)), "{bad} permitted");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(p.permits(ip(good)), "{good} refused");
        }
    }

    #[test]
    fn allow_list_and_switch_reopen_ranges() {
        let p = NetworkPolicy {
            allow_private: false,
            allowed: vec!["10.20.0.0/16".parse().unwrap(), "::1".parse().unwrap()],
        };
        assert!(p.permits(ip("10.20.3.4")));
        assert!(!p.permits(ip("10.21.0.1")));
        assert!(p.permits(ip("::1")));
        assert!(!p.permits(ip("127.0.0.1")));
        let open = NetworkPolicy {
            allow_private: true,
            allowed: vec![],
        };
        assert!(open.permits(ip("127.0.0.1")));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            "10.0.0.0/8".parse::<IpNet>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<IpNet>().unwrap().to_string(), "::1/128");
        for bad in ["", "10.0.0.0/33", "fe80::/129", "x/8", "10.0.0.0/x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!("0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("8.8.8.8")));
    }
}
