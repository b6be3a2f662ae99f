//! The `Link` response header, for following GitHub's pagination.
//!
//! GitHub says to follow `rel="next"` and never build page URLs. The header's grammar (RFC 8288)
//! is small but has quoted parameters; no maintained crate parses it without pulling in a web
//! framework, so this is written by hand, and it never panics on hostile input.

/// The URL marked `rel="next"` in a `Link` header, if any.
pub fn next_url(header: &str) -> Option<String> {
    links(header)
        .into_iter()
        .find(|(_, rels)| {
            rels.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
        })
        .map(|(url, _)| url)
}

/// Every `<url>; rel="…"` pair, with the rel value (which may list several relations).
fn links(header: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let url = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];

        // Parameters run until the next link, which starts after a comma outside quotes.
        let mut params_end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    params_end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..params_end];
        rest = &rest[params_end..];

        let rel = params.split(';').find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("rel")
                .then(|| value.trim().trim_matches('"').to_string())
        });
        if let Some(rel) = rel {
            found.push((url, rel));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_among_githubs_relations() {
        let header = r#"<https://api.github.com/orgs/acme/packages?package_type=container&per_page=100&page=2>; rel="next", <https://api.github.com/orgs/acme/packages?package_type=container&per_page=100&page=5>; rel="last""#;
        assert_eq!(
            next_url(header).as_deref(),
            Some(
                "https://api.github.com/orgs/acme/packages?package_type=container&per_page=100&page=2"
            )
        );
    }

    #[test]
    fn no_next_on_the_last_page() {
        let header = r#"<https://x/?page=1>; rel="first", <https://x/?page=4>; rel="prev""#;
        assert_eq!(next_url(header), None);
    }

    #[test]
    fn tolerates_odd_spacing_case_and_multiple_rels() {
        assert_eq!(
            next_url(r#"< https://x/?p=2 >;REL = "prev next""#).as_deref(),
            Some("https://x/?p=2")
        );
        assert_eq!(
            next_url(r#"<https://x/?p=2>; title="a, b"; rel=next"#).as_deref(),
            Some("https://x/?p=2")
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        for header in [
            "",
            "<",
            ">",
            "<<>>",
            "<a>;",
            "<a>; rel",
            "<a>; rel=\"",
            ",,,;;;==",
            "<é>; rel=\"next\u{0}\"",
        ] {
            let _ = next_url(header);
        }
        assert_eq!(next_url("<a>; rel=\"next"), Some("a".to_string()));
    }
}
