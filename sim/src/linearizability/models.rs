//! Sequential models: a register with read/write/compare-and-set, and a key-value store with
//! get/put/append (checked key by key).

use super::Model;

/// A single register holding an integer, or nothing.
#[derive(Clone, Debug)]
pub struct Register {
    initial: Option<i64>,
}

impl Register {
    /// A register that starts empty (Jepsen's etcd tests).
    pub fn new() -> Register {
        Register { initial: None }
    }

    /// A register that starts with this value.
    pub fn with_initial(initial: Option<i64>) -> Register {
        Register { initial }
    }
}

impl Default for Register {
    fn default() -> Self {
        Register::new()
    }
}

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Write a value.
    Write(i64),
    /// If the value is `from`, make it `to`.
    Cas(i64, i64),
}

/// A register operation's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// The value read (`None`: empty).
    Read(Option<i64>),
    /// The write happened.
    Written,
    /// Whether the compare-and-set swapped.
    Cas(bool),
}

impl Model for Register {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Option<i64> {
        self.initial
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => (v == state).then_some(*state),
            (RegisterInput::Write(v), None | Some(RegisterOutput::Written)) => Some(Some(*v)),
            (RegisterInput::Cas(from, to), None) => Some(if *state == Some(*from) {
                Some(*to)
            } else {
                *state
            }),
            (RegisterInput::Cas(from, to), Some(RegisterOutput::Cas(swapped))) => {
                let matches = *state == Some(*from);
                (matches == *swapped).then_some(if matches { Some(*to) } else { *state })
            }
            _ => None,
        }
    }

    fn witnesses(
        &self,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
        other: &RegisterInput,
    ) -> bool {
        let written = match other {
            RegisterInput::Write(v) | RegisterInput::Cas(_, v) => *v,
            RegisterInput::Read => return false,
        };
        match (input, output) {
            (RegisterInput::Read, Some(RegisterOutput::Read(Some(value)))) => *value == written,
            // A compare-and-set observes whether the value was `from`.
            (RegisterInput::Cas(from, _), Some(RegisterOutput::Cas(_))) => *from == written,
            _ => false,
        }
    }

    fn describe(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        let call = match input {
            RegisterInput::Read => "read".to_string(),
            RegisterInput::Write(v) => format!("write {v}"),
            RegisterInput::Cas(a, b) => format!("cas {a} -> {b}"),
        };
        let answer = match output {
            None => "?".to_string(),
            Some(RegisterOutput::Read(None)) => "nil".to_string(),
            Some(RegisterOutput::Read(Some(v))) => v.to_string(),
            Some(RegisterOutput::Written) => "ok".to_string(),
            Some(RegisterOutput::Cas(ok)) => if *ok { "ok" } else { "fail" }.to_string(),
        };
        format!("{call} -> {answer}")
    }
}

/// A key-value store of strings; every key starts as `""`.
#[derive(Clone, Debug, Default)]
pub struct Kv;

/// A key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KvInput {
    /// Read a key.
    Get(String),
    /// Set a key.
    Put(String, String),
    /// Append to a key's value.
    Append(String, String),
}

impl KvInput {
    /// The key operated on.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get(k) | KvInput::Put(k, _) | KvInput::Append(k, _) => k,
        }
    }
}

/// A key-value operation's answer: the value read, or `None` for writes.
pub type KvOutput = Option<String>;

impl Model for Kv {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvInput, output: Option<&KvOutput>) -> Option<String> {
        match input {
            KvInput::Get(_) => match output {
                None | Some(None) => Some(state.clone()),
                Some(Some(v)) => (v == state).then(|| state.clone()),
            },
            KvInput::Put(_, v) => Some(v.clone()),
            KvInput::Append(_, v) => Some(format!("{state}{v}")),
        }
    }

    fn key(&self, input: &KvInput) -> Option<String> {
        Some(input.key().to_string())
    }

    fn read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get(_))
    }

    fn witnesses(&self, input: &KvInput, output: Option<&KvOutput>, other: &KvInput) -> bool {
        let (KvInput::Get(_), Some(Some(read))) = (input, output) else {
            return false;
        };
        match other {
            // An empty write is "seen" by every read: conservative, so it is never left out.
            KvInput::Put(_, v) | KvInput::Append(_, v) => read.contains(v.as_str()),
            KvInput::Get(_) => false,
        }
    }

    fn describe(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        match (input, output) {
            (KvInput::Get(k), Some(Some(v))) => format!("get({k:?}) -> {v:?}"),
            (KvInput::Get(k), _) => format!("get({k:?}) -> ?"),
            (KvInput::Put(k, v), _) => format!("put({k:?}, {v:?})"),
            (KvInput::Append(k, v), _) => format!("append({k:?}, {v:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_rules() {
        let r = Register::new();
        assert_eq!(
            r.step(
                &None,
                &RegisterInput::Read,
                Some(&RegisterOutput::Read(None))
            ),
            Some(None)
        );
        assert_eq!(
            r.step(
                &Some(1),
                &RegisterInput::Read,
                Some(&RegisterOutput::Read(None))
            ),
            None
        );
        assert_eq!(
            r.step(
                &Some(1),
                &RegisterInput::Cas(1, 2),
                Some(&RegisterOutput::Cas(true))
            ),
            Some(Some(2))
        );
        assert_eq!(
            r.step(
                &Some(1),
                &RegisterInput::Cas(3, 2),
                Some(&RegisterOutput::Cas(true))
            ),
            None
        );
        assert_eq!(
            r.step(
                &Some(1),
                &RegisterInput::Cas(3, 2),
                Some(&RegisterOutput::Cas(false))
            ),
            Some(Some(1))
        );
        assert_eq!(
            r.step(&Some(1), &RegisterInput::Cas(1, 2), None),
            Some(Some(2)),
            "unknown cas takes effect if it can"
        );
    }

    #[test]
    fn kv_rules() {
        let kv = Kv;
        let s = kv
            .step(&"a".into(), &KvInput::Append("k".into(), "b".into()), None)
            .unwrap();
        assert_eq!(s, "ab");
        assert!(
            kv.step(&s, &KvInput::Get("k".into()), Some(&Some("a".into())))
                .is_none()
        );
        assert_eq!(
            kv.key(&KvInput::Put("k".into(), "v".into())).as_deref(),
            Some("k")
        );
    }
}
