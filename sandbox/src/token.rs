//! Registry bearer tokens, issued the way ghcr.io issues them.
//!
//! Debian's `docker-registry` 2.8 (CNCF distribution) in `auth: token:` mode accepts a JWT whose
//! header carries either an `x5c` chain verified against `rootcertbundle`, a `jwk`, or a `kid`
//! naming a trusted key. We sign ES256 tokens with a fresh self-signed certificate and send it in
//! `x5c`: the registry then needs nothing but that certificate as its root bundle.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// How long an issued token stays valid: distribution's own token server uses five minutes;
/// ghcr.io does not say, and clients fetch again on 401.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// How far `nbf` lies in the past, so that a registry whose clock reads a little behind still
/// accepts a token issued this instant.
const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// One grant inside a registry token: `repository:NAME:pull`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// A grant on one repository, such as `Access::repository("bfx-org/tool", &["pull"])`.
    pub fn repository(name: &str, actions: &[&str]) -> Access {
        Access {
            kind: "repository".to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        }
    }

    /// Parses a registry scope (`repository:NAME:pull,push`) as sent in `?scope=`.
    ///
    /// The name may hold a `:` only in the registry's own port form, so the type is everything
    /// before the first `:` and the actions everything after the last one.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions = actions
            .split(',')
            .filter(|action| !action.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }
}

/// The claims distribution's `registry/auth/token` package reads.
#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// Signs registry tokens with a self-signed certificate that the registry trusts.
pub struct TokenIssuer {
    issuer: String,
    service: String,
    key: EncodingKey,
    cert_der_base64: String,
    cert_pem: String,
}

impl std::fmt::Debug for TokenIssuer {
    // The signing key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Generates a fresh key and self-signed certificate.
    pub fn new(issuer: &str, service: &str) -> anyhow::Result<TokenIssuer> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the token signing key")?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .context("preparing the token certificate")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, issuer);
        let cert = params
            .self_signed(&key_pair)
            .context("self-signing the token certificate")?;

        Ok(TokenIssuer {
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            key: EncodingKey::from_ec_der(&key_pair.serialize_der()),
            cert_der_base64: base64::engine::general_purpose::STANDARD.encode(cert.der()),
            cert_pem: cert.pem(),
        })
    }

    /// The issuer name put in every token (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The service name the registry expects (`aud`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The certificate the registry must trust (`auth.token.rootcertbundle`), PEM.
    pub fn root_cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// A signed JWT for `subject` granting `access`.
    pub fn issue(&self, subject: &str, access: Vec<Access>) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("reading the clock")?;
        let claims = Claims {
            iss: &self.issuer,
            sub: subject,
            aud: &self.service,
            exp: (now + TOKEN_LIFETIME).as_secs(),
            nbf: now.saturating_sub(CLOCK_SKEW).as_secs(),
            iat: now.as_secs(),
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
        };

        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![self.cert_der_base64.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a registry token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_part(part: &str) -> serde_json::Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("a JWT part is base64url");
        serde_json::from_slice(&bytes).expect("a JWT part is JSON")
    }

    #[test]
    fn token_carries_the_claims_a_registry_checks() {
        let issuer = TokenIssuer::new("sandbox-issuer", "sandbox-service").unwrap();
        let token = issuer
            .issue("alice", vec![Access::repository("bfx-org/tool", &["pull"])])
            .unwrap();

        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode_part(parts[0]);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["x5c"].as_array().map(Vec::len), Some(1));
        let claims = decode_part(parts[1]);
        assert_eq!(claims["iss"], "sandbox-issuer");
        assert_eq!(claims["aud"], "sandbox-service");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["access"][0]["type"], "repository");
        assert_eq!(claims["access"][0]["name"], "bfx-org/tool");
        assert_eq!(claims["access"][0]["actions"][0], "pull");
        assert!(claims["exp"].as_u64() > claims["nbf"].as_u64());
    }

    #[test]
    fn token_verifies_with_the_certificates_key() {
        let issuer = TokenIssuer::new("iss", "svc").unwrap();
        let token = issuer.issue("bob", Vec::new()).unwrap();

        // The x5c certificate must be the one published as the root bundle.
        let header = decode_part(token.split('.').next().unwrap());
        let der = base64::engine::general_purpose::STANDARD
            .decode(header["x5c"][0].as_str().unwrap())
            .unwrap();
        let pem = issuer.root_cert_pem();
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
            der
        );
    }

    #[test]
    fn parses_scopes_with_ports_and_several_actions() {
        assert_eq!(
            Access::parse_scope("repository:bfx-org/tool:pull,push"),
            Some(Access::repository("bfx-org/tool", &["pull", "push"]))
        );
        assert_eq!(
            Access::parse_scope("repository:127.0.0.1:5000/x:pull"),
            Some(Access::repository("127.0.0.1:5000/x", &["pull"]))
        );
        assert_eq!(Access::parse_scope("nonsense"), None);
    }
}
