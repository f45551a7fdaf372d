//! The SSRF guard: which addresses an endpoint may reach.
//!
//! Checked on the addresses DNS actually returned (a name that resolves to
//! 127.0.0.1 is refused like the literal). IPv4-mapped IPv6 addresses are
//! turned back into IPv4 first; every other IPv6 form that carries an IPv4
//! address (IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo) is
//! refused if either the IPv6 address or the IPv4 address it carries is
//! refused, because a translator or tunnel on the way may deliver it to
//! that IPv4 host. Their IPv6 ranges are refused by default; the IPv4
//! check is what still holds when the host allows one of them. If any returned address is refused the whole name is
//! refused, so a name mixing public and private answers cannot be used to
//! reach the private one. A name's checked answer is reused for 30 s:
//! connections go to addresses that were checked, never to a fresh answer
//! that was not.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use parking_lot::Mutex;

use ureq::config::Config as UreqConfig;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Parses an allow-list entry: a network in CIDR notation (`10.20.0.0/16`,
/// `fd00::/8`) or a single address (`::1`, taken as `/32` or `/128`).
pub(crate) fn parse_network(text: &str) -> Result<IpNet, &'static str> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    text.parse::<IpNet>().map_err(|_| {
        "expected an IP address or a CIDR network such as 10.20.0.0/16 or fd00::/8 \
         (prefix length at most 32 for IPv4, 128 for IPv6)"
    })
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
    IpNet::V6(v6net(segments, prefix))
}

const fn v6net(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// Networks no endpoint may reach unless the host allows them.
const FORBIDDEN: &[IpNet] = &[
    v4(0, 0, 0, 0, 8),                         // "this network", unspecified
    v4(10, 0, 0, 0, 8),                        // private
    v4(100, 64, 0, 0, 10),                     // carrier-grade NAT
    v4(127, 0, 0, 0, 8),                       // loopback
    v4(169, 254, 0, 0, 16),                    // link-local, cloud metadata
    v4(172, 16, 0, 0, 12),                     // private
    v4(192, 0, 0, 0, 24),                      // IETF protocol assignments
    v4(192, 0, 2, 0, 24),                      // documentation
    v4(192, 88, 99, 0, 24),                    // 6to4 relay
    v4(192, 168, 0, 0, 16),                    // private
    v4(198, 18, 0, 0, 15),                     // benchmarking
    v4(198, 51, 100, 0, 24),                   // documentation
    v4(203, 0, 113, 0, 24),                    // documentation
    v4(224, 0, 0, 0, 4),                       // multicast
    v4(240, 0, 0, 0, 4),                       // reserved, broadcast
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128),         // unspecified
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128),         // loopback
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96),          // IPv4-compatible (deprecated)
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),     // IPv4-translated (SIIT)
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),  // NAT64: reaches IPv4 behind it
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local NAT64
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),     // Teredo
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),     // 6to4
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),      // unique local
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),     // site-local (deprecated)
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),      // multicast
];

/// IPv6 ranges whose addresses carry an IPv4 address (RFC 4291, 6052,
/// 6145, 8215, 3056, 4380).
const COMPATIBLE: Ipv6Net = v6net([0, 0, 0, 0, 0, 0, 0, 0], 96);
const TRANSLATED: Ipv6Net = v6net([0, 0, 0, 0, 0xffff, 0, 0, 0], 96);
const NAT64: Ipv6Net = v6net([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const NAT64_LOCAL: Ipv6Net = v6net([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48);
const SIX_TO_FOUR: Ipv6Net = v6net([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
const TEREDO: Ipv6Net = v6net([0x2001, 0, 0, 0, 0, 0, 0, 0], 32);

/// The IPv4 address an IPv6 address carries, in the forms that a
/// translator or tunnel may deliver to that IPv4 host. IPv4-mapped
/// addresses are not here: [`canonical`] turns them into IPv4 first.
///
/// NAT64 addresses are read with the /96 layout of RFC 6052, the only one
/// the well-known prefix allows. Inside the local-use /48 an operator may
/// pick a shorter prefix, which puts the IPv4 address elsewhere; it cannot
/// be told from the address, and reading every possible position would
/// refuse ordinary /96 addresses (their zero bytes read as 0.0.0.0), so
/// the /96 layout is read there too. The range itself stays refused
/// unless the host allows it.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let at = |i: usize| Ipv4Addr::new(o[i], o[i + 1], o[i + 2], o[i + 3]);
    if COMPATIBLE.contains(&ip) {
        // `::` and `::1` are the unspecified and loopback IPv6 addresses,
        // not IPv4-compatible ones (RFC 4291 2.5.5.1); both are refused as
        // IPv6 already.
        (u128::from(ip) > 1).then(|| at(12))
    } else if TRANSLATED.contains(&ip) || NAT64.contains(&ip) || NAT64_LOCAL.contains(&ip) {
        Some(at(12))
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(at(2))
    } else if TEREDO.contains(&ip) {
        // The client's public IPv4 address, stored inverted (RFC 4380 4).
        Some(Ipv4Addr::from(!u32::from(at(12))))
    } else {
        None
    }
}

/// Which addresses endpoints may reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetworkPolicy {
    pub(crate) allow_private: bool,
    pub(crate) allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Whether `ip` may be connected to.
    #[cfg(test)]
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }

    /// Why `ip` may not be connected to, if it may not.
    pub(crate) fn refusal(&self, ip: IpAddr) -> Option<Blocked> {
        if self.allow_private {
            return None;
        }
        let refused = |ip: IpAddr| {
            !self.allowed.iter().any(|n| n.contains(&ip))
                && FORBIDDEN.iter().any(|n| n.contains(&ip))
        };
        let checked = canonical(ip);
        // The IPv4 address first: it is what a refusal most likely
        // reaches, so it is what the message names.
        if let IpAddr::V6(v6) = checked {
            if let Some(v4) = embedded_ipv4(v6).filter(|v4| refused(IpAddr::V4(*v4))) {
                return Some(Blocked {
                    addr: ip,
                    embedded: Some(v4),
                });
            }
        }
        if refused(checked) {
            return Some(Blocked {
                addr: ip,
                embedded: None,
            });
        }
        None
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
    /// The address as resolved.
    pub(crate) addr: IpAddr,
    /// The IPv4 address it carries, when that is what was refused.
    pub(crate) embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(
                f,
                "{} carries the IPv4 address {v4}, which is in a private or reserved range; \
                 allow it with BusBuilder::allow_network",
                self.addr
            ),
            None => write!(
                f,
                "{} is in a private or reserved range; allow it with BusBuilder::allow_network",
                self.addr
            ),
        }
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
        match ips.iter().find_map(|ip| self.policy.refusal(*ip)) {
            Some(blocked) => Err(ureq::Error::Other(Box::new(blocked))),
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

    fn policy(allowed: &[&str]) -> NetworkPolicy {
        NetworkPolicy {
            allow_private: false,
            allowed: allowed.iter().map(|n| parse_network(n).unwrap()).collect(),
        }
    }

    #[test]
    fn allow_list_and_switch_reopen_ranges() {
        let p = policy(&["10.20.0.0/16", "::1"]);
        assert!(p.permits(ip("10.20.3.4")));
        assert!(!p.permits(ip("10.21.0.1")));
        assert!(p.permits(ip("::1")));
        assert!(!p.permits(ip("127.0.0.1")));
        let open = NetworkPolicy {
            allow_private: true,
            allowed: vec![],
        };
        assert!(open.permits(ip("127.0.0.1")));
        assert!(open.permits(ip("::127.0.0.1")));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_network(" fd00::/8 ").unwrap().to_string(), "fd00::/8");
        assert_eq!(parse_network("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_network("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "fe80::/129",
            "x/8",
            "10.0.0.0/x",
            "10.0.0.0/8/8",
            "10.0.0/8",
        ] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
        assert!(parse_network("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
        // A network written with host bits set covers its whole prefix.
        let net = parse_network("10.20.7.9/16").unwrap();
        assert!(net.contains(&ip("10.20.200.1")));
        assert!(!net.contains(&ip("10.21.0.1")));
    }

    /// Each embedded-IPv4 form, carrying a refused and an accepted IPv4
    /// address: what is refused and why.
    #[test]
    fn every_embedded_ipv4_form_is_checked() {
        let p = NetworkPolicy::default();
        let refused_for = |addr: &str| p.refusal(ip(addr)).map(|b| b.embedded);
        let loopback = Some(Ipv4Addr::LOCALHOST);
        // IPv4-compatible, ::/96: the refusal names the IPv4 address.
        assert_eq!(refused_for("::127.0.0.1"), Some(loopback));
        assert_eq!(
            refused_for("::10.1.2.3"),
            Some(Some(Ipv4Addr::new(10, 1, 2, 3)))
        );
        // IPv4-translated, ::ffff:0:0:0/96.
        assert_eq!(refused_for("::ffff:0:127.0.0.1"), Some(loopback));
        assert_eq!(
            refused_for("::ffff:0:169.254.169.254"),
            Some(Some(Ipv4Addr::new(169, 254, 169, 254)))
        );
        // IPv4-mapped, ::ffff:0:0/96: canonicalised to the IPv4 address.
        assert_eq!(refused_for("::ffff:127.0.0.1"), Some(None));
        assert_eq!(refused_for("::ffff:8.8.8.8"), None);
        // The compatible (deprecated) and translated (internal to a
        // translator) forms, NAT64, local NAT64, 6to4 and Teredo are
        // refused as IPv6 ranges whatever they carry; the next test checks
        // what they carry when the host allows the ranges.
        for whole in [
            "::8.8.8.8",
            "::ffff:0:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert_eq!(refused_for(whole), Some(None), "{whole}");
        }
        // :: and ::1 are IPv6's own unspecified and loopback addresses.
        assert_eq!(refused_for("::"), Some(None));
        assert_eq!(refused_for("::1"), Some(None));
    }

    /// With the IPv6 translation ranges allowed, the IPv4 address each
    /// carries still decides.
    #[test]
    fn an_allowed_ipv6_range_does_not_open_the_ipv4_it_carries() {
        let p = policy(&[
            "::/96",
            "::ffff:0:0:0/96",
            "64:ff9b::/96",
            "64:ff9b:1::/48",
            "2002::/16",
            "2001::/32",
        ]);
        let refused_for = |addr: &str| p.refusal(ip(addr)).map(|b| b.embedded);
        let loopback = Some(Some(Ipv4Addr::LOCALHOST));
        // IPv4-compatible and IPv4-translated: the last 32 bits.
        assert_eq!(refused_for("::127.0.0.1"), loopback);
        assert_eq!(refused_for("::8.8.8.8"), None);
        assert_eq!(refused_for("::ffff:0:127.0.0.1"), loopback);
        assert_eq!(refused_for("::ffff:0:8.8.8.8"), None);
        // NAT64, 64:ff9b::/96: the last 32 bits.
        assert_eq!(refused_for("64:ff9b::127.0.0.1"), loopback);
        assert_eq!(refused_for("64:ff9b::8.8.8.8"), None);
        // Local NAT64, 64:ff9b:1::/48: the /96 layout.
        assert_eq!(refused_for("64:ff9b:1::127.0.0.1"), loopback);
        assert_eq!(refused_for("64:ff9b:1:abcd::127.0.0.1"), loopback);
        assert_eq!(refused_for("64:ff9b:1::8.8.8.8"), None);
        // 6to4, 2002::/16: bits 16 to 47.
        assert_eq!(refused_for("2002:7f00:1::1"), loopback);
        assert_eq!(
            refused_for("2002:a9fe:a9fe::1"),
            Some(Some(Ipv4Addr::new(169, 254, 169, 254)))
        );
        assert_eq!(refused_for("2002:808:808::1"), None);
        // Teredo, 2001::/32: the client address is the last 32 bits
        // inverted (0x80fffffe = !127.0.0.1); the server's is not checked.
        assert_eq!(
            refused_for("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            loopback
        );
        assert_eq!(refused_for("2001:0:7f00:1:8000:63bf:f7f7:f7f7"), None);
        // Allowing the IPv4 network too opens the path.
        let both = policy(&["2002::/16", "127.0.0.0/8"]);
        assert!(both.permits(ip("2002:7f00:1::1")));
        // Allowing only the IPv4 network does not open a refused IPv6 range.
        assert!(!policy(&["127.0.0.0/8"]).permits(ip("2002:7f00:1::1")));
        assert!(!policy(&["127.0.0.0/8"]).permits(ip("::127.0.0.1")));
        assert!(policy(&["127.0.0.0/8"]).permits(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn a_refusal_names_the_address_and_what_it_carries() {
        let p = NetworkPolicy::default();
        let msg = p.refusal(ip("::ffff:0:127.0.0.1")).unwrap().to_string();
        // std prints IPv4-translated addresses in hexadecimal.
        assert!(msg.starts_with("::ffff:0:7f00:1 carries"), "{msg}");
        assert!(msg.contains("carries the IPv4 address 127.0.0.1"), "{msg}");
        assert!(msg.contains("allow_network"), "{msg}");
        let plain = p.refusal(ip("10.0.0.1")).unwrap().to_string();
        assert!(plain.starts_with("10.0.0.1 is in a private"), "{plain}");
    }
}
