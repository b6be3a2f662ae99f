//! Registry authentication: parsing `WWW-Authenticate` challenges and the Bearer token exchange.
//!
//! The challenge parser is written by hand: the crates that parse `WWW-Authenticate` are either
//! unmaintained, tied to one scheme, or split on commas without honouring quoted strings, and a
//! registry is untrusted input. This one follows RFC 9110 §11 (schemes, `token68`, auth-params
//! with quoted strings and `\` escapes, several challenges in one header), is lenient where
//! registries are sloppy (unquoted URLs, empty list elements), rejects what it cannot read, and
//! never panics. The exchange follows the Docker token spec: GET the realm with `service` and
//! `scope`, Basic credentials when dragnet has them, and read `token` or `access_token`.

use std::fmt;

use serde::Deserialize;
use tracing::debug;
use url::Url;

use super::reference::{is_loopback, shorten};
use super::{Credentials, Hints, RegistryError, SMALL_LIMIT, expect_success, read_capped};
use crate::http::HttpClient;
use crate::secret::Secret;

/// The longest header dragnet reads; real challenges are a few hundred bytes.
const MAX_HEADER_LEN: usize = 16 * 1024;

/// What dragnet sends to a registry that asked for authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// The configured username and password, as HTTP Basic.
    Basic,
    /// A token from the Bearer challenge's realm.
    Bearer(Secret),
}

impl Authorization {
    /// The scheme's name, for logs.
    pub fn scheme(&self) -> &'static str {
        match self {
            Authorization::Basic => "basic credentials",
            Authorization::Bearer(_) => "a bearer token",
        }
    }
}

/// The realm's answer; registries use either field name.
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// Fetches a Bearer token for `repository` from the challenge's realm, with `service` and
/// `scope` as the challenge gave them (`repository:<name>:pull` when it gave no scope), and
/// Basic credentials when dragnet has them.
///
/// Credentials are never sent to a plain-HTTP realm off this machine.
pub async fn fetch_token(
    http: &HttpClient,
    challenge: &Challenge,
    repository: &str,
    credentials: Option<&Credentials>,
) -> Result<Secret, RegistryError> {
    let unusable = |detail: String| RegistryError::Challenge {
        what: format!("authenticating to {repository}"),
        detail,
    };
    let realm = challenge.param("realm").ok_or_else(|| {
        unusable("the Bearer challenge names no realm to get a token from".into())
    })?;
    let mut url = Url::parse(realm).map_err(|e| {
        unusable(format!(
            "its realm `{}` is not a URL ({e})",
            shorten(realm, 120)
        ))
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    if !matches!(url.scheme(), "http" | "https") || host.is_empty() {
        return Err(unusable(format!(
            "its realm `{}` is not an http(s) URL",
            shorten(realm, 120)
        )));
    }
    if url.scheme() == "http" && credentials.is_some() && !is_loopback(&host) {
        return Err(unusable(format!(
            "its realm {host} is plain HTTP; dragnet will not send credentials unencrypted"
        )));
    }
    // Name the realm without userinfo or query, which may carry credentials.
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let what = format!(
        "getting a registry token for {repository} from {}://{host}{port}{}",
        url.scheme(),
        url.path()
    );

    let scope = match challenge.param("scope") {
        Some(scope) => scope.to_string(),
        None => format!("repository:{repository}:pull"),
    };
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = challenge.param("service") {
            query.append_pair("service", service);
        }
        query.append_pair("scope", &scope);
    }
    debug!("{what}: scope {scope}");

    let response = http
        .send(&what, || {
            let request = http.inner().get(url.clone());
            match credentials {
                Some(login) => request.basic_auth(&login.username, Some(login.password.expose())),
                None => request,
            }
        })
        .await?;
    let hints = Hints {
        missing: "the registry's token service was not found",
        signed_in: credentials.is_some(),
    };
    let response = expect_success(&what, response, &hints).await?;
    let body = read_capped(&what, response, SMALL_LIMIT).await?;

    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|_| RegistryError::Malformed {
            what: what.clone(),
            detail: "the answer is not the JSON token document the Docker token spec describes"
                .into(),
        })?;
    [answer.token, answer.access_token]
        .into_iter()
        .flatten()
        .find(|token| !token.is_empty())
        .map(Secret::new)
        .ok_or_else(|| RegistryError::Malformed {
            what,
            detail: "the answer has no `token` or `access_token`".into(),
        })
}

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The auth-params in order, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
    /// A `token68` given instead of params (rare for registries).
    pub token68: Option<String>,
}

impl Challenge {
    /// The first value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a `WWW-Authenticate` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// The header is longer than dragnet is willing to read.
    TooLong(usize),
    /// A quoted string has no closing quote.
    UnterminatedQuote { at: usize },
    /// Something other than what the grammar allows.
    Unexpected { at: usize, expected: &'static str },
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::TooLong(len) => {
                write!(
                    f,
                    "the header is {len} bytes, more than the {MAX_HEADER_LEN} allowed"
                )
            }
            ChallengeError::UnterminatedQuote { at } => {
                write!(
                    f,
                    "the quoted string starting at byte {at} is not terminated"
                )
            }
            ChallengeError::Unexpected { at, expected } => {
                write!(f, "expected {expected} at byte {at}")
            }
        }
    }
}

/// Parses one `WWW-Authenticate` header value into its challenges.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(ChallengeError::TooLong(header.len()));
    }
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();

    loop {
        cursor.skip_list_separators();
        if cursor.at_end() {
            return Ok(challenges);
        }
        let scheme = cursor
            .token()
            .ok_or(cursor.unexpected("an authentication scheme"))?;
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };

        // A scheme alone ends at a comma or the end; otherwise a space leads to its parameters.
        let had_space = cursor.skip_spaces() > 0;
        if had_space && !cursor.at_end() && cursor.peek() != Some(b',') {
            if let Some(param) = cursor.param()? {
                challenge.params.push(param);
                parse_more_params(&mut cursor, &mut challenge)?;
            } else {
                let token68 = cursor
                    .token68()
                    .ok_or(cursor.unexpected("parameters or a token"))?;
                challenge.token68 = Some(token68.to_string());
                cursor.skip_spaces();
                if !cursor.at_end() && cursor.peek() != Some(b',') {
                    return Err(cursor.unexpected("a comma after the token"));
                }
            }
        } else if !cursor.at_end() && cursor.peek() != Some(b',') {
            return Err(cursor.unexpected("a space or a comma after the scheme"));
        }
        challenges.push(challenge);
    }
}

/// Reads `, name=value` pairs until the header ends or a new challenge's scheme begins.
fn parse_more_params(
    cursor: &mut Cursor<'_>,
    challenge: &mut Challenge,
) -> Result<(), ChallengeError> {
    loop {
        cursor.skip_spaces();
        if cursor.at_end() {
            return Ok(());
        }
        if cursor.peek() != Some(b',') {
            return Err(cursor.unexpected("a comma between parameters"));
        }
        let before_comma = cursor.pos;
        cursor.skip_list_separators();
        if cursor.at_end() {
            return Ok(());
        }
        match cursor.param()? {
            Some(param) => challenge.params.push(param),
            None => {
                // Not `name=value`: the next challenge's scheme starts here.
                cursor.pos = before_comma;
                return Ok(());
            }
        }
    }
}

/// A position in the header; all grammar characters are ASCII, so slicing at them keeps UTF-8.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn unexpected(&self, expected: &'static str) -> ChallengeError {
        ChallengeError::Unexpected {
            at: self.pos,
            expected,
        }
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Skips whitespace and the empty elements of a comma-separated list.
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    /// Reads while `accept` holds; `None` when nothing matched.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        let bytes: &'a [u8] = self.bytes;
        (self.pos > start)
            .then(|| std::str::from_utf8(&bytes[start..self.pos]).ok())
            .flatten()
    }

    fn token(&mut self) -> Option<&'a str> {
        self.take_while(is_tchar)
    }

    /// `token68`: base64-ish characters and trailing `=` padding.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))?;
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.pos]).ok()
    }

    /// `name = value`, or `None` (position unchanged) when the input is not a parameter.
    fn param(&mut self) -> Result<Option<(String, String)>, ChallengeError> {
        let start = self.pos;
        let Some(name) = self.token() else {
            return Ok(None);
        };
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        self.skip_spaces();

        let value = match self.peek() {
            Some(b'"') => self.quoted()?,
            // `abc==` is token68 padding, not a parameter.
            Some(b'=') | None => {
                self.pos = start;
                return Ok(None);
            }
            Some(_) => match self.unquoted_value() {
                Some(value) => value.to_string(),
                None => {
                    self.pos = start;
                    return Ok(None);
                }
            },
        };
        Ok(Some((name.to_ascii_lowercase(), value)))
    }

    /// A value without quotes; lenient beyond `token`, since some servers send bare URLs.
    fn unquoted_value(&mut self) -> Option<&'a str> {
        self.take_while(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
    }

    /// A quoted string, unescaped; the cursor is at the opening quote.
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ChallengeError::UnterminatedQuote { at: open }),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(ChallengeError::UnterminatedQuote { at: open }),
                        Some(escaped) => value.push(escaped),
                    }
                    self.pos += 1;
                }
                Some(other) => {
                    value.push(other);
                    self.pos += 1;
                }
            }
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn reads_the_ghcr_bearer_challenge() {
        let header = concat!(
            r#"Bearer realm="https://ghcr.io/token","#,
            r#"service="ghcr.io",scope="repository:acme/x:pull""#
        );
        let challenges = parse_challenges(header).unwrap();
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(
            params(&challenges[0]),
            [
                ("realm", "https://ghcr.io/token"),
                ("service", "ghcr.io"),
                ("scope", "repository:acme/x:pull")
            ]
        );
    }

    #[test]
    fn reads_basic_with_a_realm_and_a_bare_scheme() {
        let challenges = parse_challenges(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].param("realm"), Some("Registry Realm"));

        let challenges = parse_challenges("Basic").unwrap();
        assert_eq!(
            challenges,
            [Challenge {
                scheme: "basic".into(),
                params: vec![],
                token68: None
            }]
        );
    }

    #[test]
    fn scheme_and_parameter_names_are_case_insensitive() {
        let challenges = parse_challenges(r#"BEARER Realm="r", SERVICE="s""#).unwrap();
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(challenges[0].param("realm"), Some("r"));
        assert_eq!(challenges[0].param("Service"), Some("s"));
    }

    #[test]
    fn commas_and_escapes_inside_quotes_stay_in_the_value() {
        let header =
            r#"Bearer realm="a,b",scope="repository:x:pull,push",error="say \"hi\" \\ bye""#;
        let challenge = &parse_challenges(header).unwrap()[0];
        assert_eq!(challenge.param("realm"), Some("a,b"));
        assert_eq!(challenge.param("scope"), Some("repository:x:pull,push"));
        assert_eq!(challenge.param("error"), Some(r#"say "hi" \ bye"#));
    }

    #[test]
    fn tolerates_spaces_around_equals_and_empty_list_elements() {
        let header = r#"  , Bearer   realm = "r" ,, service=s ,  "#;
        let challenge = &parse_challenges(header).unwrap()[0];
        assert_eq!(params(challenge), [("realm", "r"), ("service", "s")]);
    }

    #[test]
    fn reads_unquoted_urls() {
        let header = "Bearer realm=https://auth.example.com/token?a=b,service=registry";
        let challenge = &parse_challenges(header).unwrap()[0];
        assert_eq!(
            challenge.param("realm"),
            Some("https://auth.example.com/token?a=b")
        );
        assert_eq!(challenge.param("service"), Some("registry"));
    }

    #[test]
    fn splits_several_challenges_in_one_header() {
        let header =
            r#"Basic realm="basic", Bearer realm="https://r/t",service="s", Negotiate abc+/=="#;
        let challenges = parse_challenges(header).unwrap();
        let schemes: Vec<_> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(challenges[1].param("service"), Some("s"));
        assert_eq!(challenges[2].token68.as_deref(), Some("abc+/=="));
    }

    #[test]
    fn a_bare_scheme_followed_by_another_challenge() {
        let challenges = parse_challenges(r#"Basic, Bearer realm="r""#).unwrap();
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].params.is_empty());
        assert_eq!(challenges[1].param("realm"), Some("r"));
    }

    #[test]
    fn keeps_non_ascii_text_inside_quotes() {
        let challenge = &parse_challenges("Bearer realm=\"réalm\\é\"").unwrap()[0];
        assert_eq!(challenge.param("realm"), Some("réalmé"));
    }

    #[test]
    fn empty_quoted_values_are_values() {
        let challenge = &parse_challenges(r#"Bearer realm="",service="s""#).unwrap()[0];
        assert_eq!(challenge.param("realm"), Some(""));
    }

    #[test]
    fn an_empty_header_has_no_challenges() {
        assert_eq!(parse_challenges(""), Ok(vec![]));
        assert_eq!(parse_challenges(" , ,"), Ok(vec![]));
    }

    #[test]
    fn rejects_an_unterminated_quote() {
        let error = parse_challenges(r#"Bearer realm="https://ghcr.io/token"#).unwrap_err();
        assert_eq!(error, ChallengeError::UnterminatedQuote { at: 13 });
        assert_eq!(
            parse_challenges(r#"Bearer realm="ends with a backslash\"#).unwrap_err(),
            ChallengeError::UnterminatedQuote { at: 13 }
        );
    }

    #[test]
    fn rejects_missing_commas_and_stray_characters() {
        assert!(matches!(
            parse_challenges(r#"Bearer realm="r" service="s""#),
            Err(ChallengeError::Unexpected {
                expected: "a comma between parameters",
                ..
            })
        ));
        assert!(parse_challenges(r#""Bearer""#).is_err());
        assert!(parse_challenges("Bearer\"x").is_err());
        assert!(parse_challenges("Bearer =x").is_err());
        assert!(parse_challenges("Bearer realm=\"r\";x").is_err());
    }

    #[test]
    fn rejects_huge_input_without_reading_it() {
        let header = format!("Bearer realm=\"{}\"", "a".repeat(1 << 20));
        assert_eq!(
            parse_challenges(&header),
            Err(ChallengeError::TooLong(header.len()))
        );
    }

    #[test]
    fn never_panics_on_hostile_input() {
        // Every prefix of tricky headers, plus byte soup: each must return, never panic.
        let samples = [
            r#"Bearer realm="a\"#,
            r#"Bearer realm="\"#,
            "Bearer ==,=,\"\"\\,",
            "Bearer a=\"é\\",
            "=\u{0}\u{7f}\t,Basic\trealm=\t\"x\"",
            "Bearer realm=\"r\", , ,scope=\"a\\\\\"",
        ];
        for sample in samples {
            for end in (0..=sample.len()).filter(|&i| sample.is_char_boundary(i)) {
                let _ = parse_challenges(&sample[..end]);
            }
        }
        let soup: String = (0..4000u32)
            .map(|i| char::from(b" ,=\"\\aB\t;/"[(i * 7 % 10) as usize]))
            .collect();
        let _ = parse_challenges(&soup);
        let nested = "Bearer ".to_string() + &"a=b,".repeat(3000);
        assert_eq!(parse_challenges(&nested).unwrap()[0].params.len(), 3000);
    }
}
