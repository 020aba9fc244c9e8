//! The trace hash: a specified algorithm over a specified encoding.
//!
//! Neither `DefaultHasher` (its algorithm may change between Rust releases) nor `Debug` output
//! (formatting may change) is stable enough to pin traces for years. Instead:
//!
//! **Encoding.** Values are walked through their `serde::Serialize` implementation and written
//! as 64-bit words: every integer widened to 64 bits (signed ones as two's complement), `bool`
//! as 0/1, `char` as its scalar value, floats as their IEEE bits, strings and byte slices as a
//! length word followed by the bytes packed eight to a little-endian word (zero padded), `None`
//! as 0 and `Some(x)` as 1 then `x`, an enum variant as its index then its fields, a struct or
//! tuple as its fields in order, a sequence or map as its length then its elements (or, where
//! the length is not known up front, the elements then a terminator word). Nothing depends on
//! pointer width or byte order.
//!
//! **Mixing.** Each word `w` updates the state `h` as `h = (h ^ w) * K; h ^= h >> 32`, with
//! `K = 0x9E3779B97F4A7C15` and wrapping multiplication. The state starts at
//! `0xCBF29CE484222325`. This is "simlab-hash-v1"; changing it changes every pinned hash.
//!
//! Because a variant's *index* is hashed, new variants of a hashed enum (messages, faults,
//! timers) go at the end; inserting one in the middle changes the hash of every run using a
//! later variant.

use serde::ser::{self, Serialize};
use std::fmt;

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const INITIAL: u64 = 0xCBF2_9CE4_8422_2325;
const UNKNOWN_LENGTH_END: u64 = 0xFFFF_FFFF_FFFF_FFF1;

/// A running simlab-hash-v1 state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(INITIAL)
    }
}

impl StableHasher {
    /// Starts a hash.
    pub fn new() -> StableHasher {
        StableHasher::default()
    }

    /// Mixes one word in.
    #[inline]
    pub fn word(&mut self, w: u64) {
        let h = (self.0 ^ w).wrapping_mul(MULTIPLIER);
        self.0 = h ^ (h >> 32);
    }

    /// Mixes in a byte string: its length, then its bytes eight to a word.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(
                chunk.try_into().expect("chunk of eight"),
            ));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Assembled in a register: copying the bytes into a buffer and reading it back
            // as a word called `memcpy` and stalled the read (most strings hashed are short).
            let last = rest
                .iter()
                .rev()
                .fold(0u64, |word, &byte| (word << 8) | u64::from(byte));
            self.word(last);
        }
    }

    /// Mixes in any serialisable value, in the canonical encoding above.
    pub fn value<T: Serialize + ?Sized>(&mut self, value: &T) {
        value
            .serialize(&mut *self)
            .expect("hashing a value cannot fail");
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash of one value on its own.
pub fn stable_hash<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::new();
    hasher.value(value);
    hasher.finish()
}

/// The error type hashing never produces; serde requires one.
#[derive(Debug)]
pub struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unreachable hashing error")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Never
    }
}

/// A sequence, map or struct being hashed; knows whether it owes a terminator word.
pub struct Compound<'a> {
    hasher: &'a mut StableHasher,
    terminate: bool,
}

impl Compound<'_> {
    fn end(self) -> Result<(), Never> {
        if self.terminate {
            self.hasher.word(UNKNOWN_LENGTH_END);
        }
        Ok(())
    }
}

macro_rules! words {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<(), Never> {
            self.word(v as u64);
            Ok(())
        })*
    };
}

impl<'a> ser::Serializer for &'a mut StableHasher {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    words!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
           serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
           serialize_char: char);

    fn serialize_bool(self, v: bool) -> Result<(), Never> {
        self.word(u64::from(v));
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Never> {
        self.word(v as u64);
        self.word((v >> 64) as u64);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Never> {
        self.serialize_u128(v as u128)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Never> {
        self.word(u64::from(v.to_bits()));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Never> {
        self.word(v.to_bits());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Never> {
        self.bytes(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Never> {
        self.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Never> {
        self.word(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Never> {
        self.word(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), Never> {
        self.word(u64::from(index));
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        self.word(u64::from(index));
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Never> {
        if let Some(len) = len {
            self.word(len as u64);
        }
        Ok(Compound {
            hasher: self,
            terminate: len.is_none(),
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, Never> {
        Ok(Compound {
            hasher: self,
            terminate: false,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Never> {
        Ok(Compound {
            hasher: self,
            terminate: false,
        })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Never> {
        self.word(u64::from(index));
        Ok(Compound {
            hasher: self,
            terminate: false,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Never> {
        self.serialize_seq(len)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Never> {
        Ok(Compound {
            hasher: self,
            terminate: false,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Never> {
        self.word(u64::from(index));
        Ok(Compound {
            hasher: self,
            terminate: false,
        })
    }
}

macro_rules! compound {
    ($($trait:ident :: $method:ident),*) => {
        $(impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
                value.serialize(&mut *self.hasher)
            }
            fn end(self) -> Result<(), Never> {
                Compound::end(self)
            }
        })*
    };
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        key.serialize(&mut *self.hasher)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        value.serialize(&mut *self.hasher)
    }
    fn end(self) -> Result<(), Never> {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Never> {
        v.serialize(&mut *self.hasher)
    }
    fn end(self) -> Result<(), Never> {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Never> {
        v.serialize(&mut *self.hasher)
    }
    fn end(self) -> Result<(), Never> {
        Compound::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    enum Msg {
        Ping { term: u64, from: u32 },
        Data(Vec<u8>, Option<String>),
        Stop,
    }

    /// Pinned values: a change here means every recorded trace hash changes.
    #[test]
    fn encoding_is_pinned() {
        assert_eq!(stable_hash(&0u64), 0xf8bb92c91b3f5cc0);
        assert_eq!(
            stable_hash(&Msg::Ping { term: 3, from: 1 }),
            0xa97f9439ecc3a9c5
        );
        assert_eq!(
            stable_hash(&Msg::Data(vec![1, 2, 3], Some("abcdefghij".into()))),
            0x038c3d5d6f2feb6c
        );
        assert_eq!(stable_hash(&Msg::Stop), 0x352a863cd733400f);
    }

    /// The encoding the module states, word by word, for every length of a last partial word.
    #[test]
    fn bytes_are_packed_eight_to_a_little_endian_word_zero_padded() {
        let all: Vec<u8> = (1..=19).collect();
        for len in 0..=all.len() {
            let bytes = &all[..len];
            let mut expected = StableHasher::new();
            expected.word(len as u64);
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                expected.word(u64::from_le_bytes(word));
            }
            let mut hashed = StableHasher::new();
            hashed.bytes(bytes);
            assert_eq!(hashed, expected, "{len} bytes");
        }
    }

    #[test]
    fn width_does_not_matter_but_values_do() {
        assert_eq!(stable_hash(&5u8), stable_hash(&5u64));
        assert_eq!(stable_hash(&5usize), stable_hash(&5u64));
        assert_ne!(stable_hash(&5u64), stable_hash(&6u64));
        assert_ne!(
            stable_hash(&Msg::Ping { term: 3, from: 1 }),
            stable_hash(&Msg::Ping { term: 1, from: 3 })
        );
        assert_ne!(stable_hash("ab"), stable_hash("ab\0"));
        assert_ne!(
            stable_hash(&(Some(0u8), 1u8)),
            stable_hash(&(None::<u8>, 1u8))
        );
    }

    #[test]
    fn maps_hash_in_their_iteration_order() {
        let a: BTreeMap<u32, &str> = [(1, "x"), (2, "y")].into_iter().collect();
        let b: BTreeMap<u32, &str> = [(2, "y"), (1, "x")].into_iter().collect();
        assert_eq!(stable_hash(&a), stable_hash(&b));
        assert_ne!(stable_hash(&a), stable_hash(&[(1u32, "x")]));
    }
}
