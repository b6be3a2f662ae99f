//! (being written) Registry bearer tokens, issued the way ghcr.io issues them.

/// One grant inside a registry token: `repository:NAME:pull`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Signs registry tokens with a self-signed certificate that the registry trusts.
pub struct TokenIssuer {
    _private: (),
}

impl TokenIssuer {
    /// Generates a fresh key and self-signed certificate.
    pub fn new(_issuer: &str, _service: &str) -> anyhow::Result<TokenIssuer> {
        anyhow::bail!("token issuer not written yet")
    }

    /// The issuer name put in every token (`iss`).
    pub fn issuer(&self) -> &str {
        ""
    }

    /// The service name the registry expects (`aud`).
    pub fn service(&self) -> &str {
        ""
    }

    /// The certificate the registry must trust (`auth.token.rootcertbundle`), PEM.
    pub fn root_cert_pem(&self) -> String {
        String::new()
    }

    /// A signed JWT for `subject` granting `access`.
    pub fn issue(&self, _subject: &str, _access: Vec<Access>) -> anyhow::Result<String> {
        anyhow::bail!("token issuer not written yet")
    }
}
