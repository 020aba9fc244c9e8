//! Reading histories written by other tools, and simlab's own JSON lines.
//!
//! Three formats, told apart by their first non-blank line:
//!
//! - **Jepsen logs** (register model), as in Porcupine's `test_data/jepsen`:
//!   `INFO  jepsen.util - <process> <type> <f> <value>`, with `<type>` one of `:invoke`, `:ok`,
//!   `:fail`, `:info`, `<f>` one of `:read`, `:write`, `:cas`. Time is line order. `:fail :cas`
//!   is a compare that failed; `:fail :read` returns an unknown value; `:info` lines are ignored,
//!   so that operation never returns.
//! - **Porcupine key-value logs** (kv model): one EDN map per line,
//!   `{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}`.
//! - **simlab JSON lines** (either model): one operation per line,
//!   `{"client": 0, "call": 10, "return": 25, "op": "put", "key": "k", "value": "v"}`.
//!   `op` is `read`, `write` or `cas` (register: `value` is an integer, or `[from, to]` for
//!   cas; `output` is the value read, `null` for empty, or `true`/`false` for cas) or `get`,
//!   `put`, `append` or `cas` (kv: `key`, `value` for writes, `expected` for cas, `output` the
//!   string read or `true`/`false` for cas). `return` is `null` for an operation that never
//!   returned; a missing `output` on a read means unknown. [`write_json_kv`] writes this format.

use super::Op;
use super::models::{KvInput, KvOutput, RegisterInput, RegisterOutput};
use std::collections::BTreeMap;
use std::fmt;

/// The model a file is checked against.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// Read, write, compare-and-set on one register.
    Register,
    /// Get, put, append on string keys.
    Kv,
}

/// A file format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Jepsen's `jepsen.util` log lines (register).
    JepsenLog,
    /// Porcupine's EDN key-value lines.
    PorcupineKv,
    /// simlab's JSON lines.
    SimlabJson,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::JepsenLog => "a Jepsen register log",
            Format::PorcupineKv => "a Porcupine key-value log",
            Format::SimlabJson => "simlab JSON lines",
        })
    }
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// What was expected.
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// Which format `text` is in, from its first non-blank line.
pub fn detect(text: &str) -> Result<Format, ParseError> {
    let Some((index, first)) = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty()) else {
        return err(0, "the file is empty: no operations to check");
    };
    let first = first.trim_start();
    if first.starts_with("INFO  jepsen.util - ") {
        Ok(Format::JepsenLog)
    } else if first.starts_with("{:") {
        Ok(Format::PorcupineKv)
    } else if first.starts_with('{') {
        Ok(Format::SimlabJson)
    } else {
        err(
            index + 1,
            "expected a Jepsen log line (`INFO  jepsen.util - …`), an EDN map (`{:process …}`) or a JSON object",
        )
    }
}

/// Tracks open calls per process and turns call/return lines into operations.
struct Pairing<I, O> {
    open: BTreeMap<u64, (usize, I, usize)>,
    ops: Vec<Option<Op<I, O>>>,
}

impl<I: Clone, O> Pairing<I, O> {
    fn new() -> Self {
        Pairing {
            open: BTreeMap::new(),
            ops: Vec::new(),
        }
    }

    fn call(&mut self, line: usize, process: u64, input: I) -> Result<(), ParseError> {
        if let Some((at, _, _)) = self.open.get(&process) {
            return err(
                line,
                format!("process {process} calls again while its call on line {at} is still open"),
            );
        }
        self.open.insert(process, (line, input, self.ops.len()));
        self.ops.push(None);
        Ok(())
    }

    fn ret(
        &mut self,
        line: usize,
        process: u64,
        output: Option<O>,
        check: impl FnOnce(&I) -> Result<(), String>,
    ) -> Result<(), ParseError> {
        let Some((at, input, slot)) = self.open.remove(&process) else {
            return err(
                line,
                format!("process {process} returns without an open call"),
            );
        };
        check(&input).map_err(|message| ParseError { line, message })?;
        self.ops[slot] = Some(Op {
            client: process,
            input,
            output,
            call: at as u64,
            ret: Some(line as u64),
        });
        Ok(())
    }

    /// Every operation; calls never returned stay open (unknown output, return at infinity).
    fn finish(mut self) -> Vec<Op<I, O>> {
        for (process, (at, input, slot)) in std::mem::take(&mut self.open) {
            self.ops[slot] = Some(Op {
                client: process,
                input,
                output: None,
                call: at as u64,
                ret: None,
            });
        }
        self.ops.into_iter().flatten().collect()
    }
}

/// Reads a Jepsen register log.
pub fn parse_jepsen(text: &str) -> Result<Vec<Op<RegisterInput, RegisterOutput>>, ParseError> {
    const PREFIX: &str = "INFO  jepsen.util - ";
    let mut pairing = Pairing::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let Some(rest) = raw.strip_prefix(PREFIX) else {
            return err(line, format!("expected a line starting with {PREFIX:?}"));
        };
        let mut fields = rest.split_whitespace();
        let (Some(process), Some(kind), Some(f)) = (fields.next(), fields.next(), fields.next())
        else {
            return err(line, "expected `<process> <type> <f> <value>`");
        };
        let value: Vec<&str> = fields.collect();
        let value = value.join(" ");
        let process: u64 = process.parse().map_err(|_| ParseError {
            line,
            message: format!("expected a process number, found {process:?}"),
        })?;
        let int = |s: &str| {
            s.parse::<i64>().map_err(|_| ParseError {
                line,
                message: format!("expected an integer, found {s:?}"),
            })
        };
        let pair = |s: &str| -> Result<(i64, i64), ParseError> {
            let inner = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
            let parts: Vec<&str> = inner
                .map(|s| s.split_whitespace().collect())
                .unwrap_or_default();
            match parts.as_slice() {
                [a, b] => Ok((int(a)?, int(b)?)),
                _ => err(line, format!("expected `[from to]`, found {s:?}")),
            }
        };
        match (kind, f) {
            (":invoke", ":read") => pairing.call(line, process, RegisterInput::Read)?,
            (":invoke", ":write") => {
                pairing.call(line, process, RegisterInput::Write(int(&value)?))?
            }
            (":invoke", ":cas") => {
                let (a, b) = pair(&value)?;
                pairing.call(line, process, RegisterInput::Cas(a, b))?;
            }
            (":ok", ":read") => {
                let read = if value == "nil" {
                    None
                } else {
                    Some(int(&value)?)
                };
                pairing.ret(line, process, Some(RegisterOutput::Read(read)), |i| {
                    expect(i, &RegisterInput::Read)
                })?;
            }
            (":ok", ":write") => {
                pairing.ret(line, process, Some(RegisterOutput::Written), |i| {
                    matches!(i, RegisterInput::Write(_))
                        .then_some(())
                        .ok_or_else(|| "an :ok :write without a write call".to_string())
                })?
            }
            (":ok", ":cas") | (":fail", ":cas") => {
                let swapped = kind == ":ok";
                pairing.ret(line, process, Some(RegisterOutput::Cas(swapped)), |i| {
                    matches!(i, RegisterInput::Cas(..))
                        .then_some(())
                        .ok_or_else(|| "a cas result without a cas call".to_string())
                })?;
            }
            (":fail", ":read") => {
                pairing.ret(line, process, None, |i| expect(i, &RegisterInput::Read))?
            }
            (":info", ":read" | ":write" | ":cas") => {} // Indeterminate: the call stays open.
            _ => {
                return err(
                    line,
                    format!(
                        "expected :invoke/:ok/:fail/:info of :read/:write/:cas, found {kind} {f}"
                    ),
                );
            }
        }
    }
    Ok(pairing.finish())
}

fn expect(input: &RegisterInput, wanted: &RegisterInput) -> Result<(), String> {
    if std::mem::discriminant(input) == std::mem::discriminant(wanted) {
        Ok(())
    } else {
        Err(format!("a return that does not match its call ({input:?})"))
    }
}

/// An EDN value, as much of EDN as Porcupine's logs use.
#[derive(Clone, Debug, PartialEq)]
enum Edn {
    Nil,
    Int(i64),
    Str(String),
    Keyword(String),
}

/// Parses `{:k v, :k v}` with string, integer, keyword and nil values.
fn parse_edn_map(line: usize, text: &str) -> Result<BTreeMap<String, Edn>, ParseError> {
    let t = text.trim();
    let Some(inner) = t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return err(line, "expected an EDN map `{...}`");
    };
    let mut map = BTreeMap::new();
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ',' {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    loop {
        skip(&mut i);
        if i >= chars.len() {
            break;
        }
        if chars[i] != ':' {
            return err(line, format!("expected a keyword at column {}", i + 2));
        }
        let key = token(&mut i)[1..].to_string();
        skip(&mut i);
        if i >= chars.len() {
            return err(line, format!("expected a value for :{key}"));
        }
        let value = if chars[i] == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return err(line, format!("unterminated string for :{key}")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => s.push('\n'),
                            Some(&c) => s.push(c),
                            None => return err(line, "a backslash at the end of the line"),
                        }
                        i += 2;
                    }
                    Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            Edn::Str(s)
        } else {
            let word = token(&mut i);
            match word.as_str() {
                "nil" => Edn::Nil,
                w if w.starts_with(':') => Edn::Keyword(w[1..].to_string()),
                w => Edn::Int(w.parse().map_err(|_| ParseError {
                    line,
                    message: format!("unexpected value {w:?} for :{key}"),
                })?),
            }
        };
        map.insert(key, value);
    }
    Ok(map)
}

/// Reads a Porcupine key-value log.
pub fn parse_porcupine_kv(text: &str) -> Result<Vec<Op<KvInput, KvOutput>>, ParseError> {
    let mut pairing = Pairing::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let map = parse_edn_map(line, raw)?;
        let get = |k: &str| {
            map.get(k).ok_or_else(|| ParseError {
                line,
                message: format!("expected a :{k} entry"),
            })
        };
        let Edn::Int(process) = get("process")? else {
            return err(line, ":process must be an integer");
        };
        let Edn::Keyword(kind) = get("type")? else {
            return err(line, ":type must be a keyword");
        };
        let Edn::Keyword(f) = get("f")? else {
            return err(line, ":f must be a keyword");
        };
        let Edn::Str(key) = get("key")? else {
            return err(line, ":key must be a string");
        };
        let value = get("value")?;
        let process = *process as u64;
        let string = |v: &Edn| match v {
            Edn::Str(s) => Ok(s.clone()),
            other => err(line, format!("expected a string value, found {other:?}")),
        };
        match (kind.as_str(), f.as_str()) {
            ("invoke", "get") => pairing.call(line, process, KvInput::Get(key.clone()))?,
            ("invoke", "put") => {
                pairing.call(line, process, KvInput::Put(key.clone(), string(value)?))?
            }
            ("invoke", "append") => {
                pairing.call(line, process, KvInput::Append(key.clone(), string(value)?))?
            }
            ("ok", "get") => {
                let read = match value {
                    Edn::Nil => String::new(),
                    v => string(v)?,
                };
                pairing.ret(line, process, Some(KvOutput::Value(read)), |_| Ok(()))?;
            }
            ("ok", "put" | "append") => {
                pairing.ret(line, process, Some(KvOutput::Written), |_| Ok(()))?
            }
            ("fail" | "info", _) => {}
            _ => {
                return err(
                    line,
                    format!("expected :invoke or :ok of :get/:put/:append, found :{kind} :{f}"),
                );
            }
        }
    }
    Ok(pairing.finish())
}

fn json_field<'a>(
    line: usize,
    v: &'a serde_json::Value,
    key: &str,
) -> Result<&'a serde_json::Value, ParseError> {
    v.get(key).ok_or_else(|| ParseError {
        line,
        message: format!("expected a {key:?} field"),
    })
}

fn json_u64(line: usize, v: &serde_json::Value, key: &str) -> Result<u64, ParseError> {
    json_field(line, v, key)?
        .as_u64()
        .ok_or_else(|| ParseError {
            line,
            message: format!("{key:?} must be a non-negative integer"),
        })
}

fn json_common(
    line: usize,
    raw: &str,
) -> Result<(serde_json::Value, u64, u64, Option<u64>, String), ParseError> {
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| ParseError {
        line,
        message: format!("expected a JSON object: {e}"),
    })?;
    let client = json_u64(line, &v, "client")?;
    let call = json_u64(line, &v, "call")?;
    let ret = match v.get("return") {
        None | Some(serde_json::Value::Null) => None,
        Some(r) => Some(r.as_u64().ok_or_else(|| ParseError {
            line,
            message: "\"return\" must be an integer or null".into(),
        })?),
    };
    if ret.is_some_and(|r| r < call) {
        return err(line, "\"return\" is before \"call\"");
    }
    let op = json_field(line, &v, "op")?
        .as_str()
        .ok_or_else(|| ParseError {
            line,
            message: "\"op\" must be a string".into(),
        })?
        .to_string();
    Ok((v, client, call, ret, op))
}

/// Each client's operations so far: a client runs one operation at a time, as the Jepsen and
/// Porcupine readers require too, so an operation may not start before the client's previous
/// one returned (nor after one that never returned).
#[derive(Default)]
struct Sessions {
    /// Per client: the line and the return time of its latest operation (`None`: never returned).
    last: std::collections::BTreeMap<u64, (usize, Option<u64>)>,
}

impl Sessions {
    fn check(
        &mut self,
        line: usize,
        client: u64,
        call: u64,
        ret: Option<u64>,
    ) -> Result<(), ParseError> {
        if let Some(&(previous, returned)) = self.last.get(&client) {
            match returned {
                None => {
                    return err(
                        line,
                        format!(
                            "client {client} starts an operation after its operation on line {previous}, which never returned"
                        ),
                    );
                }
                Some(r) if call <= r => {
                    return err(
                        line,
                        format!(
                            "client {client}'s operation starts at {call}, before its operation on line {previous} returned at {r}: a client runs one operation at a time"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        self.last.insert(client, (line, ret));
        Ok(())
    }
}

/// Reads simlab JSON lines for the register model.
pub fn parse_json_register(
    text: &str,
) -> Result<Vec<Op<RegisterInput, RegisterOutput>>, ParseError> {
    let mut ops = Vec::new();
    let mut sessions = Sessions::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (v, client, call, ret, op) = json_common(line, raw)?;
        let int = |x: &serde_json::Value| {
            x.as_i64().ok_or_else(|| ParseError {
                line,
                message: format!("expected an integer, found {x}"),
            })
        };
        let output = v.get("output").filter(|_| ret.is_some());
        let (input, output) = match op.as_str() {
            "read" => (
                RegisterInput::Read,
                match output {
                    None => None,
                    Some(serde_json::Value::Null) => Some(RegisterOutput::Read(None)),
                    Some(x) => Some(RegisterOutput::Read(Some(int(x)?))),
                },
            ),
            "write" => (
                RegisterInput::Write(int(json_field(line, &v, "value")?)?),
                ret.map(|_| RegisterOutput::Written),
            ),
            "cas" => {
                let pair = json_field(line, &v, "value")?
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| ParseError {
                        line,
                        message: "a cas \"value\" must be [from, to]".into(),
                    })?;
                let swapped = match output {
                    None => None,
                    Some(x) => Some(RegisterOutput::Cas(x.as_bool().ok_or_else(|| {
                        ParseError {
                            line,
                            message: "a cas \"output\" must be true or false".into(),
                        }
                    })?)),
                };
                (RegisterInput::Cas(int(&pair[0])?, int(&pair[1])?), swapped)
            }
            other => {
                return err(
                    line,
                    format!(
                        "expected \"op\" read, write or cas for the register model, found {other:?}"
                    ),
                );
            }
        };
        sessions.check(line, client, call, ret)?;
        ops.push(Op {
            client,
            input,
            output,
            call,
            ret,
        });
    }
    Ok(ops)
}

/// Reads simlab JSON lines for the key-value model.
pub fn parse_json_kv(text: &str) -> Result<Vec<Op<KvInput, KvOutput>>, ParseError> {
    let mut ops = Vec::new();
    let mut sessions = Sessions::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (v, client, call, ret, op) = json_common(line, raw)?;
        let string = |key: &str| -> Result<String, ParseError> {
            json_field(line, &v, key)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ParseError {
                    line,
                    message: format!("{key:?} must be a string"),
                })
        };
        let key = string("key")?;
        let (input, output) = match op.as_str() {
            "get" => {
                let output = match v.get("output").filter(|_| ret.is_some()) {
                    None => None,
                    Some(serde_json::Value::Null) => Some(KvOutput::Value(String::new())),
                    Some(x) => Some(KvOutput::Value(
                        x.as_str()
                            .ok_or_else(|| ParseError {
                                line,
                                message: "a get \"output\" must be a string".into(),
                            })?
                            .to_string(),
                    )),
                };
                (KvInput::Get(key), output)
            }
            "put" => (
                KvInput::Put(key, string("value")?),
                ret.map(|_| KvOutput::Written),
            ),
            "append" => (
                KvInput::Append(key, string("value")?),
                ret.map(|_| KvOutput::Written),
            ),
            "cas" => {
                let output = match v.get("output").filter(|_| ret.is_some()) {
                    None => None,
                    Some(x) => Some(KvOutput::Cas(x.as_bool().ok_or_else(|| ParseError {
                        line,
                        message: "a cas \"output\" must be true (swapped) or false".into(),
                    })?)),
                };
                (
                    KvInput::Cas(key, string("expected")?, string("value")?),
                    output,
                )
            }
            other => {
                return err(
                    line,
                    format!(
                        "expected \"op\" get, put, append or cas for the kv model, found {other:?}"
                    ),
                );
            }
        };
        sessions.check(line, client, call, ret)?;
        ops.push(Op {
            client,
            input,
            output,
            call,
            ret,
        });
    }
    Ok(ops)
}

/// Writes key-value operations as simlab JSON lines, one per line, in the order given; what
/// [`parse_json_kv`] reads back as the same operations.
pub fn write_json_kv(ops: &[Op<KvInput, KvOutput>]) -> String {
    use serde_json::{Value, json};
    let mut out = String::new();
    for op in ops {
        let ret = op.ret.map_or(Value::Null, Value::from);
        let mut line = json!({"client": op.client, "call": op.call, "return": ret});
        let fields = line.as_object_mut().expect("an object");
        let (name, key) = match &op.input {
            KvInput::Get(k) => ("get", k),
            KvInput::Put(k, v) | KvInput::Append(k, v) => {
                fields.insert("value".into(), json!(v));
                let name = if matches!(op.input, KvInput::Put(..)) {
                    "put"
                } else {
                    "append"
                };
                (name, k)
            }
            KvInput::Cas(k, expected, v) => {
                fields.insert("expected".into(), json!(expected));
                fields.insert("value".into(), json!(v));
                ("cas", k)
            }
        };
        fields.insert("op".into(), json!(name));
        fields.insert("key".into(), json!(key));
        if op.ret.is_some() {
            match &op.output {
                Some(KvOutput::Value(v)) => {
                    fields.insert("output".into(), json!(v));
                }
                Some(KvOutput::Cas(swapped)) => {
                    fields.insert("output".into(), json!(swapped));
                }
                Some(KvOutput::Written) | None => {}
            }
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_json_lines_round_trip_every_operation() {
        let op = |client, input, output, call, ret| Op {
            client,
            input,
            output,
            call,
            ret,
        };
        let ops = vec![
            op(
                0,
                KvInput::Put("k".into(), "a".into()),
                Some(KvOutput::Written),
                0,
                Some(3),
            ),
            op(
                1,
                KvInput::Get("k".into()),
                Some(KvOutput::Value("a".into())),
                1,
                Some(4),
            ),
            op(2, KvInput::Append("k".into(), "b".into()), None, 2, None),
            op(
                0,
                KvInput::Cas("k".into(), "a".into(), "c".into()),
                Some(KvOutput::Cas(true)),
                5,
                Some(6),
            ),
            op(
                1,
                KvInput::Cas("k".into(), "x".into(), "d".into()),
                Some(KvOutput::Cas(false)),
                7,
                Some(8),
            ),
            op(3, KvInput::Get("j".into()), None, 9, None),
        ];
        let text = write_json_kv(&ops);
        assert_eq!(detect(&text), Ok(Format::SimlabJson));
        assert_eq!(parse_json_kv(&text).unwrap(), ops);
    }

    #[test]
    fn a_client_runs_one_operation_at_a_time() {
        let overlapping = "{\"client\": 0, \"call\": 0, \"return\": 5, \"op\": \"get\", \"key\": \"k\", \"output\": \"\"}\n\
                           {\"client\": 0, \"call\": 3, \"return\": 7, \"op\": \"put\", \"key\": \"k\", \"value\": \"v\"}\n";
        let e = parse_json_kv(overlapping).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("before its operation on line 1 returned"),
            "{}",
            e.message
        );
        let after_unknown = "{\"client\": 1, \"call\": 0, \"return\": null, \"op\": \"write\", \"value\": 1}\n\
                             {\"client\": 1, \"call\": 9, \"return\": 10, \"op\": \"read\", \"output\": 1}\n";
        let e = parse_json_register(after_unknown).unwrap_err();
        assert!(e.message.contains("never returned"), "{}", e.message);
        // Other clients may overlap freely.
        let fine = "{\"client\": 0, \"call\": 0, \"return\": 5, \"op\": \"get\", \"key\": \"k\", \"output\": \"\"}\n\
                    {\"client\": 1, \"call\": 3, \"return\": 7, \"op\": \"put\", \"key\": \"k\", \"value\": \"v\"}\n";
        assert_eq!(parse_json_kv(fine).unwrap().len(), 2);
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(
            detect("\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\n"),
            Ok(Format::JepsenLog)
        );
        assert_eq!(
            detect("{:process 0, :type :invoke}"),
            Ok(Format::PorcupineKv)
        );
        assert_eq!(detect("{\"client\": 0}"), Ok(Format::SimlabJson));
        assert_eq!(detect("").unwrap_err().line, 0);
        assert_eq!(detect("\n\nhello").unwrap_err().line, 3);
    }

    #[test]
    fn jepsen_lines_pair_by_process_and_info_stays_open() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 1 :invoke :write 4\nINFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\nINFO  jepsen.util - 1\t:info\t:write\t:timed-out\n";
        let ops = parse_jepsen(text).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].input, RegisterInput::Cas(3, 0));
        assert_eq!(ops[0].output, Some(RegisterOutput::Cas(false)));
        assert_eq!((ops[0].call, ops[0].ret), (1, Some(3)));
        assert_eq!(ops[1].ret, None, "an :info write never returns");
    }

    #[test]
    fn malformed_lines_name_the_line_and_what_was_expected() {
        let e = parse_jepsen("INFO  jepsen.util - 1\t:invoke\t:write\tx\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("expected an integer"), "{e}");
        let e = parse_jepsen("INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_porcupine_kv("{:process 0, :type :invoke, :f :get, :key 5, :value nil}")
            .unwrap_err();
        assert!(e.message.contains(":key must be a string"), "{e}");
        let e = parse_json_kv(
            "{\"client\": 0, \"call\": 5, \"return\": 1, \"op\": \"get\", \"key\": \"a\"}",
        )
        .unwrap_err();
        assert!(e.message.contains("before"), "{e}");
        let e = parse_json_register("{\"client\": 0, \"call\": 1, \"op\": \"get\"}").unwrap_err();
        assert!(e.message.contains("register model"), "{e}");
    }

    #[test]
    fn edn_and_json_lines_read_the_same_history() {
        let edn = "{:process 0, :type :invoke, :f :append, :key \"4\", :value \"x 0 1 y\"}\n{:process 0, :type :ok, :f :append, :key \"4\", :value \"x 0 1 y\"}\n{:process 1, :type :invoke, :f :get, :key \"4\", :value nil}\n{:process 1, :type :ok, :f :get, :key \"4\", :value \"x 0 1 y\"}\n";
        let json = "{\"client\":0,\"call\":1,\"return\":2,\"op\":\"append\",\"key\":\"4\",\"value\":\"x 0 1 y\"}\n{\"client\":1,\"call\":3,\"return\":4,\"op\":\"get\",\"key\":\"4\",\"output\":\"x 0 1 y\"}\n";
        assert_eq!(
            parse_porcupine_kv(edn).unwrap(),
            parse_json_kv(json).unwrap()
        );
    }
}

/// The result of checking a history file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The format it was read in.
    pub format: Format,
    /// How many operations it holds.
    pub operations: usize,
    /// The verdict.
    pub verdict: super::Verdict,
}

/// Reads a history in whichever format `text` is in and checks it against `model`.
pub fn check_text(model: ModelKind, text: &str) -> Result<FileCheck, ParseError> {
    use super::models::{Kv, Register};
    let format = detect(text)?;
    let mismatch = |wanted: &str| {
        err(
            0,
            format!("this is {format}, which holds {wanted} operations: use --model {wanted}"),
        )
    };
    let (operations, verdict) = match (model, format) {
        (ModelKind::Register, Format::JepsenLog) => {
            let ops = parse_jepsen(text)?;
            (ops.len(), super::check(&Register::new(), &ops))
        }
        (ModelKind::Register, Format::SimlabJson) => {
            let ops = parse_json_register(text)?;
            (ops.len(), super::check(&Register::new(), &ops))
        }
        (ModelKind::Kv, Format::PorcupineKv) => {
            let ops = parse_porcupine_kv(text)?;
            (ops.len(), super::check(&Kv, &ops))
        }
        (ModelKind::Kv, Format::SimlabJson) => {
            let ops = parse_json_kv(text)?;
            (ops.len(), super::check(&Kv, &ops))
        }
        (ModelKind::Kv, Format::JepsenLog) => return mismatch("register"),
        (ModelKind::Register, Format::PorcupineKv) => return mismatch("kv"),
    };
    Ok(FileCheck {
        format,
        operations,
        verdict,
    })
}
