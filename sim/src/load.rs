//! Reading RON files with errors a person can act on.
//!
//! A syntax or type error names the file, line and column, shows the line with a caret under
//! the spot, and says what was expected. Protocol crates use [`parse_ron`] for their scenario
//! types and [`LoadError::invalid`] for rules serde cannot express.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid for the expected type.
    #[error("{}:{line}:{column}: {message}\n{snippet}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
        /// The offending line with a caret under the column.
        snippet: Snippet,
    },
    /// The file parses but breaks a rule (0 nodes, a fault naming a missing node, …).
    #[error("{}: {field}: {rule}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as a path (e.g. `faults[2].fault`).
        field: String,
        /// The rule it breaks.
        rule: String,
    },
}

impl LoadError {
    /// A rule violation in `path` at `field`.
    pub fn invalid(path: &Path, field: impl Into<String>, rule: impl Into<String>) -> LoadError {
        LoadError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// A source line with a caret, rendered like a compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    line_number: usize,
    text: String,
    column: usize,
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = self.line_number.to_string().len();
        let pad = " ".repeat(gutter);
        let caret_at: String = self
            .text
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{pad} |")?;
        writeln!(f, "{} | {}", self.line_number, self.text)?;
        write!(f, "{pad} | {caret_at}^")
    }
}

/// Reads and parses a RON file.
pub fn load_ron<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_ron(path, &text)
}

/// The RON dialect simlab reads: `Some(..)` may be left out around optional values, and a
/// variant wrapping a struct may be written `Variant(field: ..)` rather than `Variant((field: ..))`.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    )
}

/// Parses RON text; `path` is only used in error messages.
pub fn parse_ron<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, LoadError> {
    ron_options().from_str(text).map_err(|e| {
        let line = e.span.start.line.max(1);
        let column = e.span.start.col.max(1);
        let source_line = text.lines().nth(line - 1).unwrap_or("").to_string();
        LoadError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.code.to_string(),
            snippet: Snippet {
                line_number: line,
                text: source_line,
                column,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        name: String,
        nodes: u32,
    }

    #[test]
    fn syntax_errors_name_line_column_and_expectation() {
        let text = "Example(\n    name: \"x\",\n    nodez: 3,\n)\n";
        let err = parse_ron::<Example>(Path::new("s.ron"), text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("s.ron:3:"), "{shown}");
        assert!(shown.contains("nodez"), "{shown}");
        assert!(shown.contains("3 |     nodez: 3,"), "{shown}");
        let LoadError::Syntax { line, .. } = err else {
            panic!("not a syntax error")
        };
        assert_eq!(line, 3);
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let text = "Example(name: \"x\", nodes: -1)";
        let shown = parse_ron::<Example>(Path::new("t.ron"), text)
            .unwrap_err()
            .to_string();
        assert!(shown.starts_with("t.ron:1:"), "{shown}");
    }

    #[test]
    fn missing_files_say_so() {
        let err = load_ron::<Example>(Path::new("/nonexistent/x.ron")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.ron: cannot read"));
    }
}
