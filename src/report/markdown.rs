//! Safe Markdown for text that comes from outside: package names, tags, causes, advisory titles.
//!
//! Such text may hold `|`, `<`, backticks, newlines or megabytes; written raw it could break a
//! table, start a code block or inject HTML into a page GitHub renders. [`escape_inline`] turns
//! any string into one line of literal text, bounded in length, that renders as itself.

/// Characters that would start Markdown syntax inline (or end a table cell, close a heading, or
/// start GitHub's `$` math); each is written with a backslash before it.
const BACKSLASHED: &[char] = &['\\', '`', '*', '_', '[', ']', '|', '~', '$', '#'];

/// Escapes `text` to render literally in one line of GitHub-flavoured Markdown, in a table cell
/// or anywhere inline.
///
/// The text is first made [`single_line`]; then `&`, `<`, `>` become entities so that no HTML
/// survives, and Markdown punctuation is backslash-escaped.
pub(crate) fn escape_inline(text: &str, max_chars: usize) -> String {
    let line = single_line(text, max_chars);
    let mut out = String::with_capacity(line.len() + line.len() / 4);
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if BACKSLASHED.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Outside text as one line of plain text: whitespace runs (newlines included) become one
/// space, control and bidirectional-formatting characters are dropped, and text longer than
/// `max_chars` characters is cut and ends with `…`.
pub(crate) fn single_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut kept = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = kept > 0;
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        if kept + usize::from(pending_space) >= max_chars {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            kept += 1;
            pending_space = false;
        }
        out.push(c);
        kept += 1;
    }
    out
}

/// Zero-width and bidirectional formatting characters, which can make text display differently
/// from what it is (a tag that reads `latest` but is not).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}')
}

/// The first 12 hex digits of a `sha256:…` digest, or `None` when it is not a well-formed
/// digest (and so must be escaped like any other outside text).
pub(crate) fn short_digest(digest: &str) -> Option<&str> {
    let (algorithm, hex) = digest.split_once(':')?;
    let well_formed = !algorithm.is_empty()
        && algorithm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
        && hex.len() >= 12
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    well_formed.then(|| &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_table_breakers_and_html() {
        let hostile = "v1|<script>alert(1)</script>`x`\n| evil | row |";
        let escaped = escape_inline(hostile, 200);
        assert_eq!(
            escaped,
            "v1\\|&lt;script&gt;alert(1)&lt;/script&gt;\\`x\\` \\| evil \\| row \\|"
        );
        assert!(!escaped.contains('\n') && !escaped.contains('<'));
    }

    #[test]
    fn every_pipe_and_backtick_is_escaped() {
        let escaped = escape_inline("a\\|b``c***d[e](f)~~g$h$", 200);
        // Every special character is preceded by exactly one added backslash.
        assert_eq!(
            escaped,
            "a\\\\\\|b\\`\\`c\\*\\*\\*d\\[e\\](f)\\~\\~g\\$h\\$"
        );
    }

    #[test]
    fn collapses_whitespace_and_drops_invisible_characters() {
        assert_eq!(escape_inline("  a\r\n\tb  ", 50), "a b");
        assert_eq!(
            escape_inline("lat\u{202E}est\u{0007}\u{200B}", 50),
            "latest"
        );
        assert_eq!(escape_inline("", 50), "");
    }

    #[test]
    fn cuts_very_long_text() {
        let long = "x".repeat(10_000);
        let escaped = escape_inline(&long, 40);
        assert_eq!(escaped.chars().count(), 41);
        assert!(escaped.ends_with('…'));
        assert_eq!(
            escape_inline(&"é".repeat(5), 5),
            "ééééé",
            "counts characters, not bytes"
        );
    }

    #[test]
    fn shortens_only_well_formed_digests() {
        let digest = format!("sha256:{}", "0123456789ab".repeat(5));
        assert_eq!(short_digest(&digest), Some("0123456789ab"));
        assert_eq!(short_digest("sha256:`rm -rf`0123456789"), None);
        assert_eq!(short_digest("latest"), None);
        assert_eq!(short_digest("sha256:ABCDEF0123456789"), None);
    }
}
