//! A token that cannot be printed by accident.
//!
//! Every credential dragnet holds (the GitHub token, registry passwords) lives in a [`Secret`],
//! whose `Debug` and `Display` print a placeholder, so neither logs nor error messages can carry
//! it. The value is reachable only through [`Secret::expose`], which marks each place it leaves.

use std::fmt;

/// A credential whose value never appears in formatted output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that must send it (a header, a child's
    /// environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_value() {
        let secret = Secret::new("ghp_abc123");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "ghp_abc123");
    }
}
