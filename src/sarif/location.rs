//! Where a package's alerts point in the repository: `--location-template`.
//!
//! An image is built from a file in some repository (`docker/samtools/Dockerfile`); pointing
//! the alerts there lets a reader jump from the alert to what builds the image. The template's
//! placeholders are filled with path-safe text, so no package name can climb out of the
//! repository or form an absolute path. The location never holds a tag or digest: fingerprints
//! and locations stay the same while tags come and go.

use std::fmt;

/// A bad `--location-template`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "invalid location template `{template}`: unknown placeholder `{{{placeholder}}}`; use \
         {{package}} (products/bfx/samtools), {{name}} (samtools) or {{owner}}"
    )]
    Placeholder {
        template: String,
        placeholder: String,
    },
    #[error(
        "invalid location template `{template}`: an unmatched `{{` or `}}`; write placeholders \
         as {{package}}, {{name}} or {{owner}}"
    )]
    Unbalanced { template: String },
    #[error(
        "invalid location template `{template}`: {reason}; write a path relative to the \
         repository root, such as docker/{{name}}/Dockerfile"
    )]
    Path {
        template: String,
        reason: &'static str,
    },
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Package,
    Name,
    Owner,
}

/// A parsed `--location-template`, such as `docker/{name}/Dockerfile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationTemplate {
    source: String,
    pieces: Vec<Piece>,
}

impl LocationTemplate {
    /// Parses a template: literal text with `{package}`, `{name}` and `{owner}` placeholders,
    /// naming a relative path (no leading `/`, no `..` segment, no `\`).
    pub fn parse(template: &str) -> Result<LocationTemplate, TemplateError> {
        let path_error = |reason| TemplateError::Path {
            template: template.to_string(),
            reason,
        };
        if template.trim().is_empty() {
            return Err(path_error("it is empty"));
        }
        if template.starts_with('/') {
            return Err(path_error("it starts with `/`"));
        }
        if template.contains('\\') || template.chars().any(char::is_control) {
            return Err(path_error("it holds a backslash or a control character"));
        }
        if template.contains("://") {
            return Err(path_error("it is a URL"));
        }

        let mut pieces = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']);
            let Some(at) = next else {
                pieces.push(Piece::Text(rest.to_string()));
                break;
            };
            if at > 0 {
                pieces.push(Piece::Text(rest[..at].to_string()));
            }
            if rest[at..].starts_with('}') {
                return Err(TemplateError::Unbalanced {
                    template: template.to_string(),
                });
            }
            let Some(close) = rest[at..].find('}') else {
                return Err(TemplateError::Unbalanced {
                    template: template.to_string(),
                });
            };
            let name = &rest[at + 1..at + close];
            pieces.push(match name {
                "package" => Piece::Package,
                "name" => Piece::Name,
                "owner" => Piece::Owner,
                _ => {
                    return Err(TemplateError::Placeholder {
                        template: template.to_string(),
                        placeholder: name.to_string(),
                    });
                }
            });
            rest = &rest[at + close + 1..];
        }

        // The literal parts must not climb out of the repository on their own.
        let literal: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(text) => text.as_str(),
                _ => "x",
            })
            .collect();
        if literal.split('/').any(|s| s == "..") {
            return Err(path_error("it holds a `..` segment"));
        }
        Ok(LocationTemplate {
            source: template.to_string(),
            pieces,
        })
    }

    /// The path for a package of `owner`: placeholders filled with path-safe text, empty
    /// segments dropped.
    pub fn render(&self, package: &str, owner: &str) -> String {
        let name = package.rsplit('/').next().unwrap_or(package);
        let mut path = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => path.push_str(text),
                Piece::Package => path.push_str(&safe_path(package)),
                Piece::Name => path.push_str(&safe_segment(name)),
                Piece::Owner => path.push_str(&safe_segment(owner)),
            }
        }
        let segments: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if segments.is_empty() {
            "_".to_string()
        } else {
            segments.join("/")
        }
    }
}

impl fmt::Display for LocationTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for LocationTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LocationTemplate::parse(s)
    }
}

/// A package name as a relative path: `/`-separated segments, each made [`safe_segment`],
/// with empty, `.` and `..` segments dropped.
pub(super) fn safe_path(package: &str) -> String {
    let segments: Vec<String> = package
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(safe_segment)
        .collect();
    if segments.is_empty() {
        "_".to_string()
    } else {
        segments.join("/")
    }
}

/// One path segment: any character outside `A-Za-z0-9._-` becomes `_`; `.`, `..` and the
/// empty string become `_`.
pub(super) fn safe_segment(text: &str) -> String {
    let segment: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if segment.is_empty() || segment == "." || segment == ".." {
        "_".to_string()
    } else {
        segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_with_path_safe_text() {
        let template = LocationTemplate::parse("docker/{name}/Dockerfile").unwrap();
        assert_eq!(
            template.render("products/bfx/samtools", "bfx-org"),
            "docker/samtools/Dockerfile"
        );
        let template = LocationTemplate::parse("{owner}/{package}/Containerfile").unwrap();
        assert_eq!(
            template.render("products/bfx/samtools", "Bfx-Org"),
            "Bfx-Org/products/bfx/samtools/Containerfile"
        );
        assert_eq!(
            template.render("../../etc/pass wd", "o"),
            "o/etc/pass_wd/Containerfile"
        );
        let template = LocationTemplate::parse("images/{name}.Dockerfile").unwrap();
        assert_eq!(template.render("a/..", "o"), "images/_.Dockerfile");
    }

    #[test]
    fn refuses_templates_that_are_not_relative_paths_or_name_unknown_placeholders() {
        for (template, expected) in [
            ("", "empty"),
            ("/etc/{name}", "starts with `/`"),
            ("../{name}/Dockerfile", "`..`"),
            ("a\\{name}", "backslash"),
            ("https://x/{name}", "URL"),
            ("docker/{tag}/Dockerfile", "unknown placeholder `{tag}`"),
            ("docker/{name/Dockerfile", "unmatched"),
            ("docker/name}/Dockerfile", "unmatched"),
        ] {
            let error = LocationTemplate::parse(template).unwrap_err().to_string();
            assert!(error.contains(expected), "{template}: {error}");
        }
    }
}
