//! Syntax checks for `email` and `url` field values, and the domain each
//! names (for `onlyDomains` / `exceptDomains`). The reference's checks are
//! loose (`example.com` is a URL, `a@b.c` an email); these reproduce the
//! behaviour observed on it, case by case, rather than any RFC.
//!
//! Pure string functions: no schema, no I/O.

/// Characters allowed in an unquoted email local part besides letters and digits.
const LOCAL_PART_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";
/// Schemes the reference accepts in front of `://`.
const URL_SCHEMES: [&str; 7] = ["http", "https", "ftp", "tcp", "udp", "ws", "wss"];
/// The reference refuses URLs of this many characters or more.
const MAX_URL_CHARS: usize = 2083;

/// True when `value` looks like an email address to the reference.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    value.len() <= 254 && is_local_part(local) && is_email_domain(domain)
}

/// The part after the last `@` (what `onlyDomains` compares, case-sensitively).
pub fn email_domain(value: &str) -> &str {
    value.rsplit_once('@').map_or("", |(_, domain)| domain)
}

fn is_local_part(local: &str) -> bool {
    if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        return is_quoted_local_part(&local[1..local.len() - 1]);
    }
    !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_local_atom_char))
}

fn is_local_atom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || LOCAL_PART_SYMBOLS.contains(c) || is_wide_letter(c)
}

fn is_quoted_local_part(inner: &str) -> bool {
    inner
        .chars()
        .all(|c| (c != '"' && c != '\\' && !c.is_control()) || c == '\t')
}

/// Non-ASCII characters from U+00A0 up, which the reference treats as letters.
fn is_wide_letter(c: char) -> bool {
    u32::from(c) >= 0xA0
}

/// Dot-separated labels, at least two, each starting and ending with a
/// letter or digit; the last (top-level) label must start and end with a letter.
fn is_email_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let (tld, rest) = match labels.split_last() {
        Some(split) => split,
        None => return false,
    };
    rest.iter()
        .all(|label| is_domain_label(label, char::is_alphanumeric))
        && is_domain_label(tld, char::is_alphabetic)
}

fn is_domain_label(label: &str, edge: fn(char) -> bool) -> bool {
    let inner_ok = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '~');
    let (Some(first), Some(last)) = (label.chars().next(), label.chars().last()) else {
        return false;
    };
    edge(first) && edge(last) && label.chars().all(inner_ok)
}

/// The pieces of a URL as far as the checks need them.
struct UrlParts<'a> {
    has_scheme: bool,
    host: &'a str,
    port: Option<&'a str>,
}

/// True when `value` looks like a URL to the reference: an optional
/// `http(s)/ftp/ws(s)/tcp/udp://` scheme, optional `user[:pass]@`, a host
/// (name, IPv4 or `[IPv6]`), an optional port and a path without spaces.
/// A bare single word (`notaurl`) is not a URL, but `https://x` is.
pub fn is_url(value: &str) -> bool {
    let chars = value.chars().count();
    if chars <= 3 || chars >= MAX_URL_CHARS || value.starts_with('.') {
        return false;
    }
    let Some(parts) = split_url(value) else {
        return false;
    };
    if parts
        .port
        .is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let single_label = !parts.host.contains('.') && !parts.host.starts_with('[');
    if single_label && !parts.has_scheme && parts.port.is_none() {
        return false;
    }
    is_url_host(parts.host)
}

/// The host a URL names (what `onlyDomains` compares): only when the value
/// has a `scheme://`, as the reference parses scheme-less values as paths.
pub fn url_domain(value: &str) -> &str {
    if !value.contains("://") {
        return "";
    }
    split_url(value).map_or("", |parts| {
        parts.host.trim_start_matches('[').trim_end_matches(']')
    })
}

fn split_url(value: &str) -> Option<UrlParts<'_>> {
    let (has_scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) if URL_SCHEMES.contains(&scheme) => (true, rest),
        Some(_) => return None,
        None => (false, value),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if path.chars().any(char::is_whitespace) || authority.chars().any(char::is_whitespace) {
        return None;
    }
    let host_and_port = match authority.rsplit_once('@') {
        Some((userinfo, host)) if !userinfo.is_empty() => host,
        Some(_) => return None,
        None => authority,
    };
    let (host, port) = split_port(host_and_port);
    if host.is_empty() {
        return None;
    }
    Some(UrlParts {
        has_scheme,
        host,
        port,
    })
}

fn split_port(host_and_port: &str) -> (&str, Option<&str>) {
    if host_and_port.starts_with('[') {
        return match host_and_port.find(']') {
            Some(end) => {
                let (host, rest) = host_and_port.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (host_and_port, None),
        };
    }
    match host_and_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_and_port, None),
    }
}

fn is_url_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    if is_ipv4(host) {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_') || is_wide_letter(c))
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    // A multi-label name needs a letters-only top-level label (`a.b1` is refused).
    match labels.as_slice() {
        [_] => true,
        [.., tld] => tld.chars().all(char::is_alphabetic),
        [] => false,
    }
}

fn is_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_accepted_by_the_reference() {
        for ok in [
            "X@Example.COM",
            "\"q\"@b.co",
            "ü@b.co",
            "a@ü.co",
            "a+b@c.co",
            "a@b_c.co",
            "a@b.c",
            "someone@example.com",
        ] {
            assert!(is_email(ok), "{ok}");
        }
    }

    #[test]
    fn emails_refused_by_the_reference() {
        for bad in [
            "not-an-email",
            "a@b",
            " a@b.co",
            "a b@c.co",
            "a@b.co ",
            "a@localhost",
            "a@[1.2.3.4]",
            "a..b@c.co",
            "5",
            "a@b..co",
            "a@-b.co",
            "a@b.c1",
            "",
            "@b.co",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn email_domains() {
        assert_eq!(email_domain("a@x.com"), "x.com");
        assert_eq!(email_domain("\"a@b\"@x.com"), "x.com");
        assert_eq!(email_domain("bad"), "");
    }

    #[test]
    fn urls_accepted_by_the_reference() {
        for ok in [
            "example.com",
            "ftp://x.y",
            "https://example.org/p?q=1",
            "http://localhost",
            "http://localhost:8080/x",
            "http://1.2.3.4",
            "mailto:a@b.co",
            "https://x",
            "https://ex_ample.com",
            "https://ü.com",
            "http://a.b:99999",
            "http://[::1]/",
            "http://x.com#frag",
            "www.x.com",
            "x.com.",
            "https://user:pw@x.com",
            "1.2.3.4",
            "https://example.com/a",
        ] {
            assert!(is_url(ok), "{ok}");
        }
    }

    #[test]
    fn urls_refused_by_the_reference() {
        for bad in [
            "notaurl",
            "not a url",
            "//x.com",
            "x.com/path with space",
            "javascript:alert(1)",
            "a.b",
            "a.b1",
            "HTTP://X.COM",
            "http://",
            "x..com",
            "-x.com",
            "",
            ".x.com",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
    }

    #[test]
    fn url_domains_need_a_scheme() {
        assert_eq!(url_domain("https://bad.com/x"), "bad.com");
        assert_eq!(url_domain("https://u@bad.com"), "bad.com");
        assert_eq!(url_domain("https://bad.com:80"), "bad.com");
        assert_eq!(url_domain("https://BAD.com"), "BAD.com");
        assert_eq!(url_domain("bad.com"), "");
    }
}
