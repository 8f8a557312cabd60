//! The syntax of `outboundAllowlist` entries, checked when the variables file is validated.
//!
//! Owns reading an entry (an IP address, an `address/prefix` block or a host name) only; what an
//! entry allows is decided by `crate::outbound::Allowlist`, which is built from these entries.
//! Never resolves a name nor opens a socket.

use std::net::IpAddr;

/// One entry of `outboundAllowlist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowlistEntry {
    /// An address block (`10.0.0.0/8`; a bare address is a block of one).
    Block {
        /// The block's address.
        addr: IpAddr,
        /// Its prefix length (at most 32 for IPv4, 128 for IPv6).
        prefix: u8,
    },
    /// A host name, lowercase, matched exactly.
    Host(String),
}

/// Reads `addr/prefix` or a bare address (a block of one); `None` when `text` is neither.
pub fn parse_block(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.trim().parse::<u8>().ok()?,
        None => max,
    };
    (prefix <= max).then_some((addr, prefix))
}

/// Reads every entry; the error names the first entry that is neither a host name, an IP
/// address nor an `address/prefix` block.
pub fn parse_allowlist<S: AsRef<str>>(entries: &[S]) -> Result<Vec<AllowlistEntry>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.as_ref().trim();
            if let Some((addr, prefix)) = parse_block(entry) {
                Ok(AllowlistEntry::Block { addr, prefix })
            } else if !entry.is_empty()
                && !entry.contains('/')
                && entry
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                Ok(AllowlistEntry::Host(entry.to_ascii_lowercase()))
            } else {
                Err(format!(
                    "`{entry}` is neither a host name, an IP address nor an `address/prefix` block"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_addresses_and_hosts_are_read_and_junk_is_named() {
        let entries = parse_allowlist(&["10.0.0.0/8", "::1", "Intranet.Example"]).expect("valid");
        assert_eq!(
            entries,
            vec![
                AllowlistEntry::Block {
                    addr: "10.0.0.0".parse().expect("ip"),
                    prefix: 8
                },
                AllowlistEntry::Block {
                    addr: "::1".parse().expect("ip"),
                    prefix: 128
                },
                AllowlistEntry::Host("intranet.example".into()),
            ]
        );
        let err = parse_allowlist(&["10.0.0.0/33"]).expect_err("prefix too long");
        assert!(err.contains("10.0.0.0/33"), "{err}");
        let err = parse_allowlist(&["http://x"]).expect_err("a URL");
        assert!(err.contains("http://x"), "{err}");
    }
}
