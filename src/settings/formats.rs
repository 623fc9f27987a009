//! Format checks the settings validation needs: URL, host name, e-mail
//! address, IP or CIDR subnet, hex colour, rate-limit rule label.
//!
//! Each check was written from the reference's observable behaviour (see the
//! tables in the tests), not from its source. They answer "is this
//! acceptable", never normalise or rewrite the value.

use std::net::{Ipv4Addr, Ipv6Addr};

/// URL schemes accepted with `://`.
const URL_SCHEMES: [&str; 7] = ["http", "https", "ftp", "tcp", "udp", "ws", "wss"];

/// A URL as the reference's `is.URL` sees it: an optional known scheme,
/// optional user info, a host (name, IPv4 or bracketed IPv6), an optional
/// port, and a path/query/fragment without whitespace. `localhost:8090` and
/// `example.com` pass; `example`, `//x.com` and `http://` do not.
pub fn is_url(text: &str) -> bool {
    let length = text.chars().count();
    if length <= 3 || length >= 2083 || text.starts_with(['.', '/']) {
        return false;
    }
    if text.chars().any(char::is_whitespace) || !has_valid_escapes(text) {
        return false;
    }
    let (has_scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) if URL_SCHEMES.contains(&scheme) => (true, rest),
        Some(_) => return false,
        None => (false, text),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_and_port = match authority.rsplit_once('@') {
        Some(("", _)) => return false,
        Some((_, host_and_port)) => host_and_port,
        None => authority,
    };
    let Some((host, port)) = split_host_port(host_and_port) else {
        return false;
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    // Without a scheme or a port, a bare word is a relative path, not a host.
    if !has_scheme && port.is_none() && !text.contains('.') {
        return false;
    }
    is_url_host(host)
}

/// `host[:port]`, with IPv6 hosts in brackets. `None` when malformed.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        inside.parse::<Ipv6Addr>().ok()?;
        let host = &text[..inside.len() + 2];
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    Some(match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    })
}

fn is_url_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // checked while splitting
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return false;
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().is_ok();
    }
    host.split('.').all(|label| {
        let allowed = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
        !label.is_empty()
            && label.chars().all(allowed)
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

/// Every `%` starts a two-digit hex escape.
fn has_valid_escapes(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// An IP address or an ASCII DNS name (labels of letters, digits, `_` and
/// `-`, not starting with `-`, at most 63 characters; a trailing dot is fine).
pub fn is_host(text: &str) -> bool {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('.').all(|label| {
        let mut chars = label.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        first_ok
            && label.len() <= 63
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// An address like the reference's e-mail format check: dot-separated atoms
/// before the `@` (no quoted strings), and a domain of at least two labels
/// whose last one is made of letters. No DNS lookups.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || text.len() > 254 {
        return false;
    }
    let atom_char = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    local_ok && is_email_domain(domain)
}

fn is_email_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    labels.len() >= 2 && labels.iter().all(label_ok) && tld.chars().all(char::is_alphabetic)
}

/// A single IP address (IPv6 may carry a `%zone`) or a CIDR subnet whose
/// prefix length has no sign or leading zero.
pub fn is_ip_or_subnet(text: &str) -> bool {
    is_subnet(text) || is_ip_with_optional_zone(text)
}

fn is_subnet(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    let bits_ok = !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && (bits == "0" || !bits.starts_with('0'));
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    if !bits_ok {
        return false;
    }
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_ip_with_optional_zone(text: &str) -> bool {
    match text.split_once('%') {
        // The zone may be any non-empty text; only IPv6 has zones.
        Some((address, zone)) => !zone.is_empty() && address.parse::<Ipv6Addr>().is_ok(),
        None => text.parse::<std::net::IpAddr>().is_ok(),
    }
}

/// `#` and six hex digits.
pub fn is_hex_color(text: &str) -> bool {
    text.strip_prefix('#')
        .is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A rate-limit rule label: a word tag (`tag_a`), `collection:action`,
/// `*:action`, a path (`/api/`), or `METHOD /path`. Words are ASCII
/// letters, digits and `_`; paths add `/` and `-`.
pub fn is_rate_limit_label(text: &str) -> bool {
    let is_word =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let is_path = |s: &str| {
        s.strip_prefix('/').is_some_and(|rest| {
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/' || b == b'-')
        })
    };
    if is_word(text) || is_path(text) {
        return true;
    }
    if let Some((method, path)) = text.split_once(' ') {
        return is_word(method) && is_path(path);
    }
    if let Some((target, action)) = text.split_once(':') {
        return (target == "*" || is_word(target)) && is_word(action);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verdicts observed from the reference 0.40.6 for `meta.appURL`.
    #[test]
    fn urls_like_the_reference() {
        let good = [
            "http://a",
            "https://example.com/path?q=1#f",
            "example.com",
            "www.example.com",
            "http://example",
            "http://1.2.3.4:99999",
            "http://1.2.3.4:8090",
            "http://[::1]:8090",
            "ftp://x",
            "localhost:8090",
            "http://localhost",
            "http://localhost:8090/",
            "mailto:a@b.com",
            "http://a_b.com",
            "http://user:pass@host.com",
            "http://ümlaut.de",
            "http://127.0.0.1",
            "http://aa.bbbbbbb",
        ];
        for url in good {
            assert!(is_url(url), "{url:?} should be a URL");
        }
        let bad = [
            "",
            "notaurl",
            "example",
            "http://exa mple.com",
            "http://-bad.com",
            "http://bad-.com",
            "//example.com",
            "http://",
            "http:/example.com",
            "a.b",
            "http://300.1.1.1",
            ".com",
            "http://a..b",
            "https://x.co/a b",
            "/relative",
            "http://a.b/%zz",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "ex ample.com",
        ];
        for url in bad {
            assert!(!is_url(url), "{url:?} should not be a URL");
        }
    }

    /// Verdicts observed from the reference for `smtp.host`.
    #[test]
    fn hosts_like_the_reference() {
        for host in [
            "localhost",
            "a_b",
            "_a",
            "a-",
            "a.",
            "a.b_",
            "1.2.3.4",
            "300.1.1.1",
            "::1",
            &"a".repeat(63),
        ] {
            assert!(is_host(host), "{host:?} should be a host");
        }
        for host in [
            "-a",
            "a..b",
            "[::1]",
            "ümlaut.de",
            "a:25",
            "bad host!",
            &"a".repeat(64),
            "",
        ] {
            assert!(!is_host(host), "{host:?} should not be a host");
        }
    }

    /// Verdicts observed from the reference for `meta.senderAddress`.
    #[test]
    fn emails_like_the_reference() {
        let good = [
            "a@b.c",
            "a.b@c.de",
            "a+b@c.de",
            "a@b_c.de",
            "ümlaut@b.de",
            "a@ümlaut.de",
            "a@b.de.",
            "A!#$%&'*+/=?^_`{|}~-@x.io",
            "a@b.d",
            "support@example.com",
        ];
        for email in good {
            assert!(is_email(email), "{email:?} should be an email");
        }
        let bad = [
            "a@b",
            "a@localhost",
            ".a@c.de",
            "a.@c.de",
            "a..b@c.de",
            "a b@c.de",
            "\"a b\"@c.de",
            "a@-b.de",
            "a@b-.de",
            "a@1.2.3.4",
            "a@[1.2.3.4]",
            "a@@b.de",
            "a@b..de",
            "@b.de",
            "a@",
            "a@b.123",
            "bad",
        ];
        for email in bad {
            assert!(!is_email(email), "{email:?} should not be an email");
        }
    }

    /// Verdicts observed from the reference for `superuserIPs` items.
    #[test]
    fn ips_and_subnets_like_the_reference() {
        for ip in [
            "1.2.3.4",
            "10.0.0.0/8",
            "::1",
            "fe80::/10",
            "1.2.3.4/24",
            "::ffff:1.2.3.4",
            "::/0",
            "fe80::1%eth0",
            "fe80::1%eth0/64",
            "0.0.0.0/0",
        ] {
            assert!(is_ip_or_subnet(ip), "{ip:?} should be accepted");
        }
        for ip in [
            "bad",
            "1.2.3.4/33",
            "01.2.3.4",
            "1.2.3.4/024",
            "1.2.3.4%eth0",
            "::1/129",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "",
        ] {
            assert!(!is_ip_or_subnet(ip), "{ip:?} should be refused");
        }
    }

    #[test]
    fn hex_colors() {
        assert!(is_hex_color("#1055c9"));
        assert!(is_hex_color("#ABCDEF"));
        assert!(!is_hex_color("#zzzzzz"));
        assert!(!is_hex_color("1055c9a"));
        assert!(!is_hex_color("#fff"));
    }

    /// Verdicts observed from the reference for `rateLimits.rules[].label`.
    #[test]
    fn rate_limit_labels_like_the_reference() {
        for label in [
            "*:auth",
            "*:authRefresh",
            "users:create",
            "/api/",
            "/",
            "/api/batch",
            "FOO /api",
            "get /api",
            "tag_a",
            "/a-b/c_d",
        ] {
            assert!(is_rate_limit_label(label), "{label:?} should be accepted");
        }
        for label in [
            "",
            "bad label!",
            "a:b:c",
            "* /api",
            "/api/é",
            "*",
            "users:",
            ":auth",
            "GET  /api",
            "GET api",
        ] {
            assert!(!is_rate_limit_label(label), "{label:?} should be refused");
        }
    }
}
