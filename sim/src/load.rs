//! Reading RON files with errors a person can act on.
//!
//! A syntax or type error names the file, line and column, shows the line with a caret under
//! the spot, and says what was expected. Protocol crates use [`parse_ron`] for their scenario
//! types and [`LoadError::invalid`] for rules serde cannot express.

use crate::time::Time;
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
    #[error("{}{}: {error}{}", path.display(), Position(snippet.as_deref()), Shown(snippet.as_deref()))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field and the rule it breaks.
        error: FieldError,
        /// Where the field is written, with a caret under it (when it is written).
        snippet: Option<Box<Snippet>>,
    },
}

/// `:line:column` of a snippet, or nothing.
struct Position<'a>(Option<&'a Snippet>);

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, ":{}:{}", s.line_number, s.column),
            None => Ok(()),
        }
    }
}

/// A snippet on its own lines, or nothing.
struct Shown<'a>(Option<&'a Snippet>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(snippet) => write!(f, "\n{snippet}"),
            None => Ok(()),
        }
    }
}

impl LoadError {
    /// A rule violation in `path`, with no position.
    pub fn invalid(path: &Path, error: FieldError) -> LoadError {
        LoadError::Invalid {
            path: path.to_path_buf(),
            error,
            snippet: None,
        }
    }

    /// A rule violation in `path`, pointing at the field in `text` where it is written.
    pub fn invalid_in(path: &Path, text: &str, error: FieldError) -> LoadError {
        let snippet = locate(text, &error.field).map(|(line, column)| {
            Box::new(Snippet {
                line_number: line,
                text: text.lines().nth(line - 1).unwrap_or("").to_string(),
                column,
            })
        });
        LoadError::Invalid {
            path: path.to_path_buf(),
            error,
            snippet,
        }
    }
}

/// Where the field at `field_path` (as [`FieldError`] writes it: `faults[2].at_ms`,
/// `protocol.election_timeout_ms`) is written in RON `text`, as a 1-based line and column.
/// `None` when the path is empty or the field is not written (it has its default).
pub fn locate(text: &str, field_path: &str) -> Option<(usize, usize)> {
    let mut scanner = RonScanner::new(text);
    // Into the outermost struct: `Scenario(` (or a bare `(`).
    scanner.enter_value()?;
    let mut position = None;
    for segment in path_segments(field_path)? {
        let start = match segment {
            Segment::Field(name) => scanner.find_field(name)?,
            Segment::Index(i) => scanner.find_item(i)?,
        };
        position = Some(start);
        scanner.enter_value();
    }
    let offset = position?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    Some((line, column))
}

enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

fn path_segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Segment::Field(name));
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            out.push(Segment::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Just enough of RON to find where fields and list items are written: strings, comments and
/// nesting are understood; values are skipped.
struct RonScanner<'a> {
    bytes: &'a [u8],
    /// Where the current container's contents start and end (exclusive).
    range: (usize, usize),
}

impl<'a> RonScanner<'a> {
    fn new(text: &'a str) -> RonScanner<'a> {
        RonScanner {
            bytes: text.as_bytes(),
            range: (0, text.len()),
        }
    }

    /// Skips whitespace and comments from `i`.
    fn skip_blank(&self, mut i: usize) -> usize {
        let b = self.bytes;
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                i += 1;
            } else if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if b[i..].starts_with(b"/*") {
                i += 2;
                while i < b.len() && !b[i..].starts_with(b"*/") {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            } else if b[i..].starts_with(b"#![") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else {
                break;
            }
        }
        i
    }

    /// The end of the value (or token) starting at `i`: past a string, a bracketed group, or
    /// an identifier/number and any group that follows it directly (`Uniform(1, 10)`).
    fn skip_value(&self, mut i: usize) -> usize {
        let b = self.bytes;
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                    if depth == 0 {
                        return i;
                    }
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    if depth == 0 {
                        return i;
                    }
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ if depth == 0 && b[i..].starts_with(b"//") => return i,
                _ => {}
            }
            i += 1;
        }
        i
    }

    /// Enters the value at the start of the current range, if it is a group: `(…)`, `[…]` or
    /// `Name(…)`. Returns whether it did.
    fn enter_value(&mut self) -> Option<()> {
        let b = self.bytes;
        let mut i = self.skip_blank(self.range.0);
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        i = self.skip_blank(i);
        if i < b.len() && matches!(b[i], b'(' | b'[' | b'{') {
            let end = self.skip_value(i);
            self.range = (i + 1, end.saturating_sub(1).max(i + 1));
            Some(())
        } else {
            None
        }
    }

    /// Finds `name:` among the current struct's fields; the range moves to its value.
    fn find_field(&mut self, name: &str) -> Option<usize> {
        let b = self.bytes;
        let mut i = self.skip_blank(self.range.0);
        while i < self.range.1 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &b[start..i];
            let colon = self.skip_blank(i);
            if colon < b.len() && b[colon] == b':' && !word.is_empty() {
                let value = self.skip_blank(colon + 1);
                let end = self.skip_value(value);
                if word == name.as_bytes() {
                    self.range = (value, end);
                    return Some(start);
                }
                i = end;
            } else {
                i = self.skip_value(start.max(i));
            }
            i = self.skip_blank(i);
            if i < b.len() && b[i] == b',' {
                i = self.skip_blank(i + 1);
            } else if i == start {
                return None;
            }
        }
        None
    }

    /// Finds the `index`-th item of the current list; the range moves to it.
    fn find_item(&mut self, index: usize) -> Option<usize> {
        let b = self.bytes;
        let mut i = self.skip_blank(self.range.0);
        let mut n = 0;
        while i < self.range.1 {
            let end = self.skip_value(i);
            if n == index {
                self.range = (i, end);
                return Some(i);
            }
            n += 1;
            i = self.skip_blank(end);
            if i < b.len() && b[i] == b',' {
                i = self.skip_blank(i + 1);
            } else {
                return None;
            }
        }
        None
    }
}

/// A setting that breaks a rule: the one shape of "this field breaks this rule" for every
/// layer (engine configuration, protocol settings, scenario files). The field is a path such as
/// `faults[2].at_ms`, built as the error travels outwards: whoever checks a value names only
/// its own field, and each enclosing level adds its name with [`FieldError::within`] or
/// [`FieldError::at`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// The field, as a path (e.g. `faults[2].fault`, `protocol.election_timeout_ms`).
    pub field: String,
    /// The rule it breaks, with the offending value where that helps.
    pub rule: String,
}

impl FieldError {
    /// `field` breaks `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The same error seen from the struct that holds it under `outer`: `think_ms` becomes
    /// `clients.think_ms`, `[2].at_ms` becomes `faults[2].at_ms`.
    pub fn within(mut self, outer: &str) -> FieldError {
        self.field = if self.field.is_empty() {
            outer.to_string()
        } else if self.field.starts_with('[') {
            format!("{outer}{}", self.field)
        } else {
            format!("{outer}.{}", self.field)
        };
        self
    }

    /// The same error seen from the list that holds it at `index`: `at_ms` becomes `[2].at_ms`.
    pub fn at(mut self, index: usize) -> FieldError {
        self.field = if self.field.is_empty() {
            format!("[{index}]")
        } else if self.field.starts_with('[') {
            format!("[{index}]{}", self.field)
        } else {
            format!("[{index}].{}", self.field)
        };
        self
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

/// The largest scenario file simlab reads (the biggest in `scenarios/` is a few KiB).
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;
/// The largest history file `simlab lincheck` reads: far beyond what the checker can decide
/// (Porcupine's largest, 318 KB, is decided in a fraction of a second; a 64 MiB history holds
/// hundreds of thousands of operations).
pub const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// Reads a text file of at most `limit` bytes. Refuses larger files (and endless ones such as
/// `/dev/zero`) without reading them whole, and reports invalid UTF-8 with its line and column.
pub fn read_text(path: &Path, limit: u64) -> Result<String, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(LoadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!(
                "the file is larger than {limit} bytes, the most simlab reads"
            )),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let text = String::from_utf8_lossy(e.as_bytes());
        let source_line = text.lines().nth(line - 1).unwrap_or("").to_string();
        LoadError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: "the file is not valid UTF-8 text here".into(),
            snippet: Snippet {
                line_number: line,
                text: source_line,
                column,
            },
        }
    })
}

/// Reads and parses a RON file (at most [`MAX_SCENARIO_BYTES`]).
pub fn load_ron<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = read_text(path, MAX_SCENARIO_BYTES)?;
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
    ron_options().from_str::<T>(text).map_err(|e| {
        let line = e.span.start.line.max(1);
        let column = e.span.start.col.max(1);
        let source_line = text.lines().nth(line - 1).unwrap_or("").to_string();
        let message = match e.code {
            ron::error::Error::IntegerOutOfBounds => {
                integer_range::<T>(text, line, column).unwrap_or_else(|| explain(&e.code))
            }
            ref code => explain(code),
        };
        LoadError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
            snippet: Snippet {
                line_number: line,
                text: source_line,
                column,
            },
        }
    })
}

/// Checks every time setting of `settings` at once: each value under a field whose name ends in
/// `_ms` (a number, a range, a latency distribution, at any depth, in any protocol's settings)
/// must be at most [`Time::LONGEST_MS`] in size. Loaders call this before anything converts a
/// setting to engine time, so a later `ms * 1_000` or a sum of a few times cannot overflow, and
/// a new protocol's `*_ms` settings are covered without code of their own.
///
/// The error names the field as a path, e.g. `clients.think_ms`; enum variant names
/// (`Raft`, `ClockSkew`, `Uniform`) are left out of the path, as scenario messages write it.
pub fn check_times<T: serde::Serialize>(settings: &T) -> Result<(), FieldError> {
    let value = serde_json::to_value(settings).map_err(|e| FieldError::new("", e.to_string()))?;
    check_value(&value, "", false)
}

fn check_value(value: &serde_json::Value, path: &str, timed: bool) -> Result<(), FieldError> {
    use serde_json::Value;
    match value {
        Value::Number(n) if timed => {
            let within = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u <= Time::LONGEST_MS,
                (None, Some(i), _) => i.unsigned_abs() <= Time::LONGEST_MS,
                (None, None, Some(f)) => f.abs() <= Time::LONGEST_MS as f64,
                _ => false,
            };
            if within {
                Ok(())
            } else {
                Err(FieldError::new(
                    path,
                    format!(
                        "{n} ms is longer than 30 days ({} ms), the longest time a run can use",
                        Time::LONGEST_MS
                    ),
                ))
            }
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            if item.is_number() {
                check_value(item, path, timed) // a range or a tuple: the field is the unit
            } else {
                check_value(item, &format!("{path}[{i}]"), timed)
            }
        }),
        Value::Object(fields) => {
            // `{"Variant": ...}` is an enum variant: its name is not a field.
            let variant = fields.len() == 1
                && fields
                    .keys()
                    .next()
                    .is_some_and(|k| k.starts_with(|c: char| c.is_ascii_uppercase()));
            for (key, inner) in fields {
                if variant {
                    check_value(inner, path, timed)?;
                    continue;
                }
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_value(inner, &path, timed || key.ends_with("_ms"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// For a number out of range at `line:column`, the range the field takes: found by putting
/// each type's bounds in the number's place and seeing which the parser accepts (it accepts
/// a value when parsing gets past it, to the end or to a later error).
fn integer_range<T: DeserializeOwned>(text: &str, line: usize, column: usize) -> Option<String> {
    let line_start = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum::<usize>();
    let start = line_start
        + text[line_start..]
            .char_indices()
            .nth(column - 1)
            .map(|(i, _)| i)?;
    // RON points after a sign: the number starts at the sign.
    let (start, column) = match text[..start].chars().last() {
        Some('-' | '+') => (start - 1, column - 1),
        _ => (start, column),
    };
    let len = text[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+'))
        .unwrap_or(text.len() - start);
    let number = &text[start..start + len];
    if len == 0
        || !number
            .trim_start_matches(['-', '+'])
            .starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let fits = |candidate: &str| {
        let tried = format!("{}{candidate}{}", &text[..start], &text[start + len..]);
        match ron_options().from_str::<T>(&tried) {
            Ok(_) => true,
            // An error past the candidate (not inside it) is some later problem.
            Err(e) => (e.span.start.line, e.span.start.col) > (line, column + candidate.len()),
        }
    };
    let range = [
        ("0", "255"),
        ("0", "65535"),
        ("0", "4294967295"),
        ("0", "18446744073709551615"),
        ("-128", "127"),
        ("-32768", "32767"),
        ("-2147483648", "2147483647"),
        ("-9223372036854775808", "9223372036854775807"),
    ]
    .into_iter()
    .filter(|(lo, hi)| fits(lo) && fits(hi))
    .max_by_key(|(lo, hi)| (hi.len(), lo.len()))?;
    Some(format!(
        "{number} is out of range: this field takes a whole number from {} to {}",
        range.0, range.1
    ))
}

/// RON's message for an error, with what it leaves out: the range of the number that did not
/// fit, and without advice that does not apply to scenario files (raw identifiers).
fn explain(code: &ron::error::Error) -> String {
    let message = code.to_string();
    // RON suggests `r#name` when a name is not a plain identifier: raw identifiers are for Rust
    // keywords used as names, and no simlab name is one, so the advice only misleads.
    if let ron::error::Error::SuggestRawIdentifier(name) = code {
        return format!(
            "{name:?} is not a name here: field and variant names are letters, digits and `_`"
        );
    }
    if matches!(code, ron::error::Error::IntegerOutOfBounds) {
        return format!(
            "{message}: counts and times take whole numbers from 0 to 18446744073709551615 \
             (node, client and account counts, percentages: up to 4294967295; offsets: \
             -9223372036854775808 to 9223372036854775807)"
        );
    }
    message
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
    fn every_time_setting_at_any_depth_is_bounded() {
        #[derive(Clone, serde::Serialize)]
        enum Dist {
            Uniform(u64, u64),
        }
        #[derive(Clone, serde::Serialize)]
        struct Link {
            latency_ms: Dist,
        }
        #[derive(Clone, serde::Serialize)]
        struct Settings {
            stop_ms: u64,
            count: u64,
            think_ms: (u64, u64),
            offset_ms: i64,
            links: Vec<Link>,
        }
        let ok = Settings {
            stop_ms: Time::LONGEST_MS,
            count: u64::MAX, // not a time: unchecked
            think_ms: (0, 10),
            offset_ms: -5,
            links: vec![Link {
                latency_ms: Dist::Uniform(1, 10),
            }],
        };
        assert_eq!(check_times(&ok), Ok(()));
        let err = |f: &dyn Fn(&mut Settings)| {
            let mut s = ok.clone();
            f(&mut s);
            check_times(&s).unwrap_err()
        };
        let FieldError { field, rule } = err(&|s| s.think_ms = (1, 18_446_744_073_709_552));
        assert_eq!(field, "think_ms");
        assert!(
            rule.starts_with("18446744073709552 ms is longer than 30 days"),
            "{rule}"
        );
        assert_eq!(err(&|s| s.offset_ms = i64::MIN).field, "offset_ms");
        assert_eq!(err(&|s| s.stop_ms = Time::LONGEST_MS + 1).field, "stop_ms");
        let field = err(&|s| s.links[0].latency_ms = Dist::Uniform(1, u64::MAX)).field;
        assert_eq!(field, "links[0].latency_ms");
    }

    #[test]
    fn field_paths_are_built_outwards() {
        let e = FieldError::new("at_ms", "too late").at(2).within("faults");
        assert_eq!(e.field, "faults[2].at_ms");
        assert_eq!(e.to_string(), "faults[2].at_ms: too late");
        let e = FieldError::new("think_ms", "empty").within("clients");
        assert_eq!(e.field, "clients.think_ms");
        assert_eq!(FieldError::new("", "x").within("limits").field, "limits");
        let shown = LoadError::invalid(Path::new("s.ron"), e).to_string();
        assert_eq!(shown, "s.ron: clients.think_ms: empty");
    }

    #[test]
    fn oversized_and_non_utf8_files_are_refused_with_a_position() {
        let dir = std::env::temp_dir().join(format!("simlab-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.ron");
        std::fs::write(&big, vec![b' '; 2_000]).unwrap();
        let err = read_text(&big, 1_000).unwrap_err().to_string();
        assert!(err.contains("larger than 1000 bytes"), "{err}");
        let bad = dir.join("bad.ron");
        std::fs::write(&bad, b"Example(\n    name: \"a\xffb\",\n)").unwrap();
        let err = read_text(&bad, 1_000).unwrap_err();
        let LoadError::Syntax { line, column, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (2, 13), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        // An endless file is cut at the limit, not read whole.
        if Path::new("/dev/zero").exists() {
            let err = read_text(Path::new("/dev/zero"), 1_000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("larger than"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_advice_to_use_raw_identifiers() {
        let shown = explain(&ron::error::Error::SuggestRawIdentifier("count-x".into()));
        assert!(!shown.contains("r#"), "{shown}");
        assert!(shown.contains("\"count-x\" is not a name here"), "{shown}");
    }

    #[test]
    fn numbers_out_of_range_give_the_fields_range() {
        let text = "Example(name: \"x\", nodes: 99999999999)";
        let shown = parse_ron::<Example>(Path::new("t.ron"), text)
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains(
                "99999999999 is out of range: this field takes a whole number from 0 to 4294967295"
            ),
            "{shown}"
        );
        let text = "Example(name: \"x\", nodes: -1)";
        let shown = parse_ron::<Example>(Path::new("t.ron"), text)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("from 0 to 4294967295"), "{shown}");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Signed {
            offset: i64,
            later: u8,
        }
        // A later error does not hide the range of the first one.
        let text = "Signed(offset: 99999999999999999999, later: 300)";
        let shown = parse_ron::<Signed>(Path::new("t.ron"), text)
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("from -9223372036854775808 to 9223372036854775807"),
            "{shown}"
        );
    }

    #[test]
    fn field_paths_are_found_where_they_are_written() {
        let text = "// comment: nodes: 9\nScenario(\n    name: \"a, b: (c)\",\n    nodes: 3,\n    clients: (count: 1, think_ms: (5, 1)),\n    faults: [(at_ms: 1, fault: Heal), (at_ms: 2, fault: ClockSkew(node: 0, offset_ms: 7, drift_ppm: 0))],\n    protocol: Raft(election_timeout_ms: (1, 2)),\n)\n";
        assert_eq!(locate(text, "nodes"), Some((4, 5)));
        assert_eq!(locate(text, "clients.think_ms"), Some((5, 25)));
        assert_eq!(locate(text, "faults[1].fault.offset_ms"), Some((6, 76)));
        assert_eq!(locate(text, "faults[1]"), Some((6, 39)));
        assert_eq!(locate(text, "protocol.election_timeout_ms"), Some((7, 20)));
        assert_eq!(locate(text, "seed"), None, "not written: no position");
        assert_eq!(locate(text, "faults[5].at_ms"), None);
        assert_eq!(locate(text, ""), None);
        let e = LoadError::invalid_in(Path::new("s.ron"), text, FieldError::new("nodes", "bad"));
        let shown = e.to_string();
        assert!(shown.starts_with("s.ron:4:5: nodes: bad\n"), "{shown}");
        assert!(shown.contains("4 |     nodes: 3,"), "{shown}");
    }

    #[test]
    fn missing_files_say_so() {
        let err = load_ron::<Example>(Path::new("/nonexistent/x.ron")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.ron: cannot read"));
    }
}
