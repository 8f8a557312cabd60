//! The rules a URL and the addresses it resolves to must pass before any byte is sent (pure: no
//! I/O): scheme, userinfo, host form, and the forbidden ranges unless the operator's allowlist
//! says otherwise.

use std::net::IpAddr;

use url::{Host, Url};

use super::OutboundError;
use super::ranges::{self, Cidr};
use crate::config::outbound::{AllowlistEntry, parse_allowlist};

/// The operator's `outboundAllowlist`: hosts and blocks an outbound fetch may reach despite the
/// forbidden ranges (intranets, and the tests' local servers). Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    nets: Vec<Cidr>,
}

impl Allowlist {
    /// Reads the entries: an IP address or `address/prefix` block, or else a host name (matched
    /// exactly, case-insensitively; what it resolves to is then not checked).
    /// The syntax is [`crate::config::outbound::parse_allowlist`]'s (checked when the variables
    /// file is validated).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in parse_allowlist(entries)? {
            match entry {
                AllowlistEntry::Block { addr, prefix } => list.nets.push(Cidr::new(addr, prefix)),
                AllowlistEntry::Host(host) => list.hosts.push(host),
            }
        }
        Ok(list)
    }

    /// Whether the host name itself is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `ip` is inside an allowed block.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|n| n.contains(ip) || n.contains(canonical))
    }

    /// Whether nothing is allowed beyond the rules.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }
}

/// Where a checked URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A literal address (already in canonical form: the URL parser reads decimal, octal and
    /// hexadecimal IPv4 spellings).
    Ip(IpAddr),
    /// A name to resolve (lowercase, IDNA-encoded by the URL parser).
    Name(String),
}

/// A URL that passed the rules that do not need DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL.
    pub url: Url,
    /// Its host.
    pub host: TargetHost,
    /// Its port (the scheme's default when absent).
    pub port: u16,
    /// Whether TLS is used.
    pub tls: bool,
    /// Whether the allowlist names the host itself.
    pub host_allowed: bool,
}

/// Parses `text` as an absolute URL.
pub fn parse_url(text: &str) -> Result<Url, OutboundError> {
    Url::parse(text.trim()).map_err(|e| OutboundError::BadUrl(e.to_string()))
}

/// Checks scheme, userinfo and host of `url`, and the host's address when it is a literal.
pub fn check_url(url: Url, allow: &Allowlist) -> Result<Target, OutboundError> {
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(OutboundError::Scheme(other.to_owned())),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::Userinfo);
    }
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => TargetHost::Ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => TargetHost::Ip(IpAddr::V6(ip)),
        Some(Host::Domain(name)) if !name.is_empty() => {
            TargetHost::Name(name.trim_end_matches('.').to_ascii_lowercase())
        }
        _ => return Err(OutboundError::BadUrl("the URL has no host".into())),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| OutboundError::BadUrl("the URL has no port".into()))?;
    let host_allowed = match &host {
        TargetHost::Name(name) => allow.allows_host(name),
        TargetHost::Ip(ip) => {
            check_ip(*ip, allow)?;
            false
        }
    };
    Ok(Target {
        url,
        host,
        port,
        tls,
        host_allowed,
    })
}

/// Refuses `ip` when it is in a forbidden range and not allowlisted.
pub fn check_ip(ip: IpAddr, allow: &Allowlist) -> Result<(), OutboundError> {
    if allow.allows_ip(ip) {
        return Ok(());
    }
    match ranges::classify(ip) {
        Some(refusal) => Err(OutboundError::RefusedAddress {
            ip,
            range: refusal.to_string(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn check(text: &str) -> Result<Target, OutboundError> {
        check_url(parse_url(text)?, &Allowlist::default())
    }

    fn refused_ip(text: &str) -> IpAddr {
        match check(text) {
            Err(OutboundError::RefusedAddress { ip, .. }) => ip,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn numeric_ipv4_spellings_are_read_as_addresses() {
        for text in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://0x7F.0x00.0x00.0x01/",
            "http://127.0.0.1./",
        ] {
            assert_eq!(
                refused_ip(text),
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "{text}"
            );
        }
        assert_eq!(
            refused_ip("http://0xa9fea9fe/"),
            "169.254.169.254".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            refused_ip("http://[::ffff:7f00:1]/"),
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn scheme_userinfo_and_host_rules() {
        assert!(matches!(
            check("file:///etc/passwd"),
            Err(OutboundError::Scheme(s)) if s == "file"
        ));
        assert!(matches!(
            check("gopher://a.example/"),
            Err(OutboundError::Scheme(_))
        ));
        assert!(matches!(
            check("http://user:pw@a.example/"),
            Err(OutboundError::Userinfo)
        ));
        assert!(matches!(
            check("http://user@a.example/"),
            Err(OutboundError::Userinfo)
        ));
        assert!(matches!(check("not a url"), Err(OutboundError::BadUrl(_))));
        let ok = check("https://Example.COM./a?b=c").unwrap();
        assert_eq!(ok.host, TargetHost::Name("example.com".into()));
        assert_eq!(ok.port, 443);
        assert!(ok.tls);
    }

    #[test]
    fn allowlist_entries() {
        let allow = Allowlist::parse(&["127.0.0.1/32", "Intranet.example", "::1"]).unwrap();
        assert!(allow.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(allow.allows_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allow.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(allow.allows_host("intranet.example"));
        assert!(check_url(parse_url("http://127.0.0.1:9/").unwrap(), &allow).is_ok());
        assert!(Allowlist::parse(&["http://x/"]).is_err());
        assert!(Allowlist::parse(&["10.0.0.0/40"]).is_err());
        assert!(Allowlist::parse::<&str>(&[]).unwrap().is_empty());
    }
}
