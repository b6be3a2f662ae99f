//! Checks on the names that go into registry URLs: repository paths, digests and hosts.
//!
//! Package names and version digests come from the GitHub API, which dragnet does not control,
//! and both are pasted into URL paths. Accepting only the distribution spec's grammar (lowercase
//! path components, `sha256:`/`sha512:` hex digests) keeps `../`, `%2e%2e`, `?` and friends out
//! of every request before it is built. The loopback check decides `http://` versus `https://`
//! the way Docker does for local registries.

use std::net::IpAddr;

/// The longest repository path the distribution spec allows.
const MAX_REPOSITORY_LEN: usize = 255;

/// Checks a repository path (`acme/products/bfx/samtools`) against the distribution spec's
/// grammar: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
///
/// Returns the reason when the name is not valid.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_REPOSITORY_LEN {
        return Err(format!("it is longer than {MAX_REPOSITORY_LEN} characters"));
    }
    for component in name.split('/') {
        check_component(component)?;
    }
    Ok(())
}

/// One path component: alphanumerics, with single separators between them.
fn check_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();

    if bytes.is_empty() {
        return Err("it has an empty path component".into());
    }
    if !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "path component `{}` must start and end with a lowercase letter or digit",
            printable(component)
        ));
    }

    // Walk separator runs between alphanumeric runs.
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return Err(format!(
                "path component `{}` contains `{}`; only lowercase letters, digits and single \
                 `.`, `_`, `__` or `-` separators are allowed",
                printable(component),
                printable(separator)
            ));
        }
    }
    Ok(())
}

/// Checks a content digest: `sha256:` and 64 lowercase hex digits, or `sha512:` and 128.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or("it has no `algorithm:` prefix")?;
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "algorithm `{}` is not sha256 or sha512",
                printable(algorithm)
            ));
        }
    };
    let is_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != expected || !is_hex {
        return Err(format!(
            "a {algorithm} digest is {expected} lowercase hex digits"
        ));
    }
    Ok(())
}

/// Whether a registry host (`127.0.0.1:5000`, `localhost`, `[::1]:5000`) is this machine, which
/// Docker reaches over plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let host = host_without_port(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The scheme dragnet uses for a registry host.
pub fn scheme_for(host: &str) -> &'static str {
    if is_loopback(host) { "http" } else { "https" }
}

/// `host[:port]` or `[v6][:port]` or a bare IPv6 address, without the port and brackets.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(inner, _)| inner);
    }
    // A bare IPv6 address has several colons and no port.
    if host.matches(':').count() > 1 {
        return host;
    }
    host.split_once(':').map_or(host, |(name, _)| name)
}

/// An untrusted name shortened and stripped of control characters, fit for an error message.
pub fn printable(text: &str) -> String {
    shorten(text, 80)
}

/// Checks a tag against the distribution spec's grammar, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`,
/// before it goes into a URL.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match bytes.first() {
        None => Err("it is empty".into()),
        Some(first) if !word(first) => Err(format!(
            "tag `{}` must start with a letter, digit or `_`",
            printable(tag)
        )),
        _ if bytes.len() > 128 => Err("it is longer than 128 characters".into()),
        _ if !bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-') => Err(format!(
            "tag `{}` has characters other than letters, digits, `_`, `.` and `-`",
            printable(tag)
        )),
        _ => Ok(()),
    }
}

/// Untrusted text cut to `max` characters and stripped of control characters.
pub fn shorten(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().filter(|c| !c.is_control()).nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ghcr_style_repository_paths() {
        for name in [
            "acme/x",
            "acme/products/bfx/samtools",
            "acme/my-tool",
            "acme/my--tool",
            "acme/a.b_c__d",
            "a",
            "0/1",
        ] {
            assert_eq!(check_repository(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_the_path() {
        for name in [
            "acme/../x",
            "acme/%2e%2e/x",
            "acme/./x",
            "../acme",
            "acme/x?y",
            "acme/x#y",
            "acme//x",
            "/acme/x",
            "acme/x/",
            "Acme/x",
            "acme/x y",
            "acme/x\n",
            "acme/-x",
            "acme/x.",
            "acme/x._y",
            "acme/x___y",
            "acme/é",
            "",
        ] {
            assert!(check_repository(name).is_err(), "{name:?} must be rejected");
        }
    }

    #[test]
    fn rejects_overlong_repository_paths() {
        let name = format!("acme/{}", "a".repeat(300));
        assert_eq!(
            check_repository(&name),
            Err("it is longer than 255 characters".into())
        );
    }

    #[test]
    fn explains_a_rejected_component() {
        let reason = check_repository("acme/%2e%2e").unwrap_err();
        assert!(reason.contains("`%2e%2e`"), "{reason}");
    }

    #[test]
    fn accepts_sha256_and_sha512_digests() {
        assert_eq!(check_digest(&format!("sha256:{}", "a".repeat(64))), Ok(()));
        assert_eq!(check_digest(&format!("sha512:{}", "0".repeat(128))), Ok(()));
    }

    #[test]
    fn rejects_malformed_digests() {
        for digest in [
            "latest".to_string(),
            "sha256:".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}/../x", "a".repeat(64)),
            format!("md5:{}", "a".repeat(32)),
            format!("sha512:{}", "a".repeat(64)),
        ] {
            assert!(
                check_digest(&digest).is_err(),
                "{digest:?} must be rejected"
            );
        }
    }

    #[test]
    fn loopback_hosts_use_plain_http() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3:80",
            "localhost",
            "LOCALHOST:5000",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert_eq!(scheme_for(host), "http", "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
            "128.0.0.1",
        ] {
            assert_eq!(scheme_for(host), "https", "{host}");
        }
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(check_tag("1.0").is_ok());
        assert!(check_tag("v1.2.3-rc_1").is_ok());
        assert!(check_tag("_x").is_ok());
        assert!(check_tag("").is_err());
        assert!(check_tag(".hidden").is_err());
        assert!(check_tag("a/b").is_err());
        assert!(check_tag("a?b").is_err());
        assert!(check_tag(&"x".repeat(129)).is_err());
    }

    #[test]
    fn printable_strips_control_characters_and_shortens() {
        assert_eq!(printable("a\u{1b}[31mb\n"), "a[31mb");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 81);
    }
}
