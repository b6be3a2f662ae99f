//! Reads the `Authorization` header the ways GitHub accepts it: `Bearer T`, `token T`, and
//! Basic with the token as password (how registry clients and some API clients send it).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// What the `Authorization` header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// No header.
    Missing,
    /// A token sent as `Bearer T` or `token T`.
    Token(String),
    /// Basic credentials; GitHub reads the password as the token.
    Basic { user: String, password: String },
    /// A header that could not be read: GitHub answers it as bad credentials.
    Malformed,
}

impl Credentials {
    /// The token to look up, if any was sent.
    pub fn token(&self) -> Option<&str> {
        match self {
            Credentials::Token(token) => Some(token),
            Credentials::Basic { password, .. } => Some(password),
            Credentials::Missing | Credentials::Malformed => None,
        }
    }
}

/// Reads the credentials of a request.
pub(crate) fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some((scheme, rest)) = value.trim().split_once(' ') else {
        return Credentials::Malformed;
    };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        return Credentials::Token(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|text| text.split_once(':')) {
            return Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            };
        }
    }
    Credentials::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_bearer_token_and_basic_forms() {
        assert_eq!(credentials(&with("Bearer abc")).token(), Some("abc"));
        assert_eq!(credentials(&with("token abc")).token(), Some("abc"));
        let basic = format!("Basic {}", STANDARD.encode("x:abc"));
        assert_eq!(credentials(&with(&basic)).token(), Some("abc"));
        assert_eq!(credentials(&HeaderMap::new()), Credentials::Missing);
        assert_eq!(credentials(&with("Digest abc")), Credentials::Malformed);
    }
}
