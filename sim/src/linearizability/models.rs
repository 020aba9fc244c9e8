//! Sequential models: a register with read/write/compare-and-set, and a key-value store with
//! get/put/append/compare-and-set (checked key by key).

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
    /// If the key's value is `expected` (the first string), set it to the second.
    Cas(String, String, String),
}

impl KvInput {
    /// The key operated on.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get(k)
            | KvInput::Put(k, _)
            | KvInput::Append(k, _)
            | KvInput::Cas(k, _, _) => k,
        }
    }
}

/// A key-value operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KvOutput {
    /// A get's value (`""` for a missing key).
    Value(String),
    /// A put or an append took effect.
    Written,
    /// Whether a compare-and-set found the expected value and swapped.
    Cas(bool),
}

impl Model for Kv {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvInput, output: Option<&KvOutput>) -> Option<String> {
        match (input, output) {
            (KvInput::Get(_), None) => Some(state.clone()),
            (KvInput::Get(_), Some(KvOutput::Value(v))) => (v == state).then(|| state.clone()),
            (KvInput::Put(_, v), None | Some(KvOutput::Written)) => Some(v.clone()),
            (KvInput::Append(_, v), None | Some(KvOutput::Written)) => Some(format!("{state}{v}")),
            // An unknown compare-and-set takes effect if it can.
            (KvInput::Cas(_, expected, new), None) => Some(if state == expected {
                new.clone()
            } else {
                state.clone()
            }),
            (KvInput::Cas(_, expected, new), Some(KvOutput::Cas(swapped))) => {
                let matches = state == expected;
                (matches == *swapped).then(|| if matches { new.clone() } else { state.clone() })
            }
            _ => None,
        }
    }

    fn key(&self, input: &KvInput) -> Option<String> {
        Some(input.key().to_string())
    }

    fn read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get(_))
    }

    fn only_extends(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Append(..))
    }

    fn leads_to(&self, state: &String, input: &KvInput, output: &KvOutput) -> bool {
        // Appends only extend a value: a read can see this state's future if it extends it.
        match (input, output) {
            (KvInput::Get(_), KvOutput::Value(read)) => read.starts_with(state.as_str()),
            _ => true,
        }
    }

    fn resets(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Put(..))
    }

    fn replaced_by(&self, input: &KvInput) -> Option<String> {
        // A put sets its value; a swap sets its new value or leaves the state as it was.
        match input {
            KvInput::Put(_, v) | KvInput::Cas(_, _, v) => Some(v.clone()),
            _ => None,
        }
    }

    fn witnesses(&self, input: &KvInput, output: Option<&KvOutput>, other: &KvInput) -> bool {
        let written = match other {
            KvInput::Put(_, v) | KvInput::Append(_, v) | KvInput::Cas(_, _, v) => v,
            KvInput::Get(_) => return false,
        };
        match (input, output) {
            // An empty write is "seen" by every read: conservative, so it is never left out.
            (KvInput::Get(_), Some(KvOutput::Value(read))) => read.contains(written.as_str()),
            // A swap saw its expected value, which may hold the write.
            (KvInput::Cas(_, expected, _), Some(KvOutput::Cas(true))) => {
                expected.contains(written.as_str())
            }
            // A refused swap saw some other value, which any write may have put there: it
            // witnesses them all, so none is left out of the search.
            (KvInput::Cas(..), Some(KvOutput::Cas(false))) => true,
            _ => false,
        }
    }

    fn describe(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        let answer = match output {
            None => "?".to_string(),
            Some(KvOutput::Value(v)) => format!("{v:?}"),
            Some(KvOutput::Written) => "ok".to_string(),
            Some(KvOutput::Cas(swapped)) => if *swapped { "ok" } else { "fail" }.to_string(),
        };
        match input {
            KvInput::Get(k) => format!("get({k:?}) -> {answer}"),
            KvInput::Put(k, v) => format!("put({k:?}, {v:?})"),
            KvInput::Append(k, v) => format!("append({k:?}, {v:?})"),
            KvInput::Cas(k, e, v) => format!("cas({k:?}, {e:?}, {v:?}) -> {answer}"),
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
    fn kv_witnesses_keep_pruning_sound_with_swaps() {
        let kv = Kv;
        let write = |v: &str| KvInput::Put("k".into(), v.into());
        let swap = KvInput::Cas("k".into(), "[a][b]".into(), "c".into());
        // A swap that succeeded saw its expected value, and so every write inside it.
        assert!(kv.witnesses(&swap, Some(&KvOutput::Cas(true)), &write("[a]")));
        assert!(!kv.witnesses(&swap, Some(&KvOutput::Cas(true)), &write("[z]")));
        // A refused swap saw some other value, which any write may have put there.
        assert!(kv.witnesses(&swap, Some(&KvOutput::Cas(false)), &write("[z]")));
        // A get sees the value a swap wrote.
        let get = KvInput::Get("k".into());
        assert!(kv.witnesses(&get, Some(&KvOutput::Value("c".into())), &swap));
        assert!(!kv.witnesses(&get, Some(&KvOutput::Value("d".into())), &swap));
        // A swap with an unknown outcome witnesses nothing.
        assert!(!kv.witnesses(&swap, None, &write("[a]")));
    }

    #[test]
    fn kv_rules() {
        let kv = Kv;
        let s = kv
            .step(&"a".into(), &KvInput::Append("k".into(), "b".into()), None)
            .unwrap();
        assert_eq!(s, "ab");
        assert!(
            kv.step(
                &s,
                &KvInput::Get("k".into()),
                Some(&KvOutput::Value("a".into()))
            )
            .is_none()
        );
        let cas = KvInput::Cas("k".into(), "ab".into(), "c".into());
        assert_eq!(
            kv.step(&s, &cas, Some(&KvOutput::Cas(true))).as_deref(),
            Some("c")
        );
        assert_eq!(kv.step(&s, &cas, Some(&KvOutput::Cas(false))), None);
        assert_eq!(kv.step(&s, &cas, None).as_deref(), Some("c"));
        let miss = KvInput::Cas("k".into(), "zz".into(), "c".into());
        assert_eq!(
            kv.step(&s, &miss, Some(&KvOutput::Cas(false))).as_deref(),
            Some("ab")
        );
        assert_eq!(kv.step(&s, &miss, Some(&KvOutput::Cas(true))), None);
        assert_eq!(kv.step(&s, &miss, None).as_deref(), Some("ab"));
        assert_eq!(
            kv.key(&KvInput::Put("k".into(), "v".into())).as_deref(),
            Some("k")
        );
    }
}
