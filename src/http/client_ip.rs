//! Who is calling, by address: the client IP behind trusted proxy headers,
//! the reference's way of writing it, and matching it against lists of IPs
//! and CIDR subnets (`superuserIPs`, `rateLimits.excludedIPs`).
//!
//! Domain-free: plain addresses, header pairs and strings in, answers out.
//! It must never trust a header the settings do not name: behind no proxy,
//! any client can send `X-Forwarded-For`.

use crate::settings::TrustedProxySettings;
use std::net::IpAddr;

/// Headers reported as a "possible proxy" on the superuser health check
/// after the configured ones (the reference's list).
const COMMON_PROXY_HEADERS: [&str; 2] = ["CF-Connecting-IP", "Fly-Client-IP"];

/// The client's IP: the first configured proxy header that yields an IP
/// (its last occurrence, rightmost valid entry or leftmost with
/// `useLeftmostIP`), else the TCP peer.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &[(String, String)],
    proxy: &TrustedProxySettings,
) -> Option<IpAddr> {
    for name in &proxy.headers {
        // The last occurrence is the one the nearest proxy wrote.
        let Some(list) = last_header(headers, name).filter(|v| !v.is_empty()) else {
            continue;
        };
        if let Some(ip) = pick_from_list(list, proxy.use_leftmost_ip) {
            return Some(ip);
        }
    }
    peer.map(canonical)
}

fn last_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The rightmost (or leftmost) entry of a comma-separated list that parses
/// as an IP; entries that do not parse are skipped.
fn pick_from_list(list: &str, leftmost: bool) -> Option<IpAddr> {
    let mut parsed = list
        .split(',')
        .filter_map(|s| s.trim().parse::<IpAddr>().ok());
    if leftmost {
        parsed.next()
    } else {
        parsed.next_back()
    }
}

/// An IPv4 peer seen through a dual-stack socket is an IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reference's spelling: dotted IPv4, fully expanded IPv6
/// (`2001:0db8:0000:0000:0000:0000:0000:0001`).
/// Written by hand because every request logs two of these, and the general
/// formatter's padding machinery cost more than the rest of the log entry.
pub fn display(ip: IpAddr) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (n, octet) in v4.octets().into_iter().enumerate() {
                if n > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        IpAddr::V6(v6) => {
            let mut text = String::with_capacity(39);
            for (n, segment) in v6.segments().into_iter().enumerate() {
                if n > 0 {
                    text.push(':');
                }
                for shift in [12, 8, 4, 0] {
                    text.push(char::from(HEX[usize::from(segment >> shift & 0xf)]));
                }
            }
            text
        }
    }
}

/// Whether `ip` equals an IP of `list` or falls inside one of its CIDR
/// subnets. Entries that parse as neither never match.
pub fn in_list(list: &[String], ip: IpAddr) -> bool {
    list.iter().any(|entry| entry_matches(entry.trim(), ip))
}

fn entry_matches(entry: &str, ip: IpAddr) -> bool {
    match entry.split_once('/') {
        None => entry.parse::<IpAddr>().is_ok_and(|e| same_ip(e, ip)),
        Some((base, bits)) => match (base.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(base), Ok(bits)) => subnet_contains(base, bits, ip),
            _ => false,
        },
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn subnet_contains(base: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (base, canonical(ip)) {
        (IpAddr::V4(base), IpAddr::V4(ip)) => {
            prefix_equal(&base.octets(), &ip.octets(), bits.min(32))
        }
        (IpAddr::V6(base), IpAddr::V6(ip)) => {
            prefix_equal(&base.octets(), &ip.octets(), bits.min(128))
        }
        _ => false,
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_equal(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// The first present header among the configured proxy headers and the
/// common ones, for the superuser health check; `""` when none is present.
pub fn possible_proxy_header(headers: &[(String, String)], proxy: &TrustedProxySettings) -> String {
    proxy
        .headers
        .iter()
        .map(String::as_str)
        .chain(COMMON_PROXY_HEADERS)
        .find(|name| last_header(headers, name).is_some_and(|v| !v.is_empty()))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_ips_as_the_reference_spells_them() {
        let cases = [
            ("0.0.0.0", "0.0.0.0"),
            ("127.0.0.1", "127.0.0.1"),
            ("10.20.199.255", "10.20.199.255"),
            ("::1", "0000:0000:0000:0000:0000:0000:0000:0001"),
            (
                "2001:db8::ff00:42:8329",
                "2001:0db8:0000:0000:0000:ff00:0042:8329",
            ),
        ];
        for (input, shown) in cases {
            let ip: IpAddr = input.parse().expect("a valid IP");
            assert_eq!(display(ip), shown, "{input}");
        }
        // every octet value, against the standard formatter
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 0, 255 - octet, 9]);
            assert_eq!(display(ip), ip.to_string());
        }
    }

    fn proxy(headers: &[&str], leftmost: bool) -> TrustedProxySettings {
        TrustedProxySettings {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            use_leftmost_ip: leftmost,
            ..TrustedProxySettings::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_are_ignored_unless_configured() {
        let h = headers(&[("X-Forwarded-For", "1.1.1.1")]);
        let peer = Some(ip("127.0.0.1"));
        assert_eq!(resolve(peer, &h, &proxy(&[], false)), peer);
        assert_eq!(resolve(peer, &h, &proxy(&["X-Real-IP"], false)), peer);
    }

    #[test]
    fn the_rightmost_or_leftmost_valid_entry_wins() {
        let h = headers(&[("X-Forwarded-For", "bogus, 9.9.9.9, 2001:db8::1 , junk")]);
        let peer = Some(ip("127.0.0.1"));
        let right = resolve(peer, &h, &proxy(&["x-forwarded-for"], false));
        assert_eq!(right, Some(ip("2001:db8::1")));
        let left = resolve(peer, &h, &proxy(&["X-Forwarded-For"], true));
        assert_eq!(left, Some(ip("9.9.9.9")));
    }

    #[test]
    fn the_last_occurrence_of_a_repeated_header_is_read() {
        let h = headers(&[
            ("X-Forwarded-For", "5.5.5.5"),
            ("X-Forwarded-For", "6.6.6.6,7.7.7.7"),
        ]);
        let got = resolve(None, &h, &proxy(&["X-Forwarded-For"], false));
        assert_eq!(got, Some(ip("7.7.7.7")));
    }

    #[test]
    fn an_unusable_header_falls_through_to_the_next_then_the_peer() {
        let h = headers(&[("X-Forwarded-For", "bogus"), ("CF-Connecting-IP", "")]);
        let config = proxy(&["CF-Connecting-IP", "X-Forwarded-For"], false);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &config),
            Some(ip("10.0.0.1"))
        );
        let h = headers(&[("X-Forwarded-For", "bogus"), ("X-Real-IP", "4.4.4.4")]);
        let config = proxy(&["X-Forwarded-For", "X-Real-IP"], false);
        assert_eq!(resolve(None, &h, &config), Some(ip("4.4.4.4")));
    }

    #[test]
    fn a_mapped_ipv4_peer_is_an_ipv4_client() {
        let got = resolve(Some(ip("::ffff:127.0.0.1")), &[], &proxy(&[], false));
        assert_eq!(got, Some(ip("127.0.0.1")));
    }

    #[test]
    fn addresses_are_written_like_the_reference() {
        assert_eq!(display(ip("127.0.0.1")), "127.0.0.1");
        assert_eq!(
            display(ip("2001:db8::1")),
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
        assert_eq!(
            display(ip("::ffff:1.2.3.4")),
            "0000:0000:0000:0000:0000:ffff:0102:0304"
        );
    }

    #[test]
    fn lists_match_ips_and_subnets() {
        let list: Vec<String> = [
            "10.0.0.0/24",
            "2001:db8::/32",
            "192.168.1.7",
            "junk",
            "1.2.3.4/x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(in_list(&list, ip("10.0.0.255")));
        assert!(!in_list(&list, ip("10.0.1.0")));
        assert!(in_list(&list, ip("2001:db8:ffff::1")));
        assert!(!in_list(&list, ip("2001:db9::1")));
        assert!(in_list(&list, ip("192.168.1.7")));
        assert!(in_list(&list, ip("::ffff:192.168.1.7")));
        assert!(!in_list(&list, ip("192.168.1.8")));
        assert!(!in_list(&[], ip("192.168.1.7")));
    }

    #[test]
    fn odd_prefix_lengths_and_extremes() {
        let list = vec!["172.16.0.0/12".to_string()];
        assert!(in_list(&list, ip("172.31.255.255")));
        assert!(!in_list(&list, ip("172.32.0.0")));
        assert!(in_list(&["0.0.0.0/0".to_string()], ip("8.8.8.8")));
        assert!(!in_list(&["0.0.0.0/0".to_string()], ip("::1")));
        assert!(in_list(&["::1/128".to_string()], ip("::1")));
        assert!(in_list(&["1.2.3.4/99".to_string()], ip("1.2.3.4")));
    }

    #[test]
    fn possible_proxy_header_prefers_configured_ones() {
        let h = headers(&[("CF-Connecting-IP", "5.5.5.5"), ("X-Real-IP", "1.1.1.1")]);
        assert_eq!(
            possible_proxy_header(&h, &proxy(&[], false)),
            "CF-Connecting-IP"
        );
        assert_eq!(
            possible_proxy_header(&h, &proxy(&["X-Real-IP"], false)),
            "X-Real-IP"
        );
        assert_eq!(
            possible_proxy_header(&[], &proxy(&["X-Real-IP"], false)),
            ""
        );
    }
}
