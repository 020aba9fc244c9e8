//! Seeded random streams and the small, exactly specified functions that turn raw draws into
//! ranges, probabilities and latencies.
//!
//! Every random decision in a run comes from a [`SimRng`] (ChaCha8) derived from the run's seed
//! and a [`Stream`] naming its purpose. Streams are independent: the key is derived from the
//! seed alone and the purpose selects ChaCha's 64-bit stream number, so adding a node, a client
//! or a fault never shifts the draws of any other stream. Shrinking relies on that.
//!
//! We do not use `rand`'s distributions: their exact outputs may change between versions, and a
//! dependency upgrade must never change a trace. The functions here use only integer arithmetic
//! and correctly rounded IEEE-754 operations (`+ - * /`, `sqrt`), which give the same bits on
//! every platform; logarithms are computed by our own series, not the platform's `libm`.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng, TryRng};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::fmt;

/// The random generator every simulation stream uses: ChaCha8, keyed by the run's seed, on the
/// stream number of its purpose.
///
/// A clone carries only where the stream stands (seed, stream number, words drawn), not
/// ChaCha's 256-byte output buffer; the generator is rebuilt at that position by the clone's
/// first draw. Exhaustive exploration keeps a whole simulation per waiting state, with two
/// streams per node and per client, and the buffers were most of its memory. Draws are the same
/// either way: ChaCha is a function of (key, stream, position), and a position is a count of
/// 32-bit words, read in order.
pub struct SimRng {
    seed: u64,
    stream: u64,
    /// Words drawn, while `live` is not built. ChaCha counts in 128 bits, but 2^64 words are
    /// centuries of drawing; 64 bits keep the stream at 32 bytes (a search stores several per
    /// state).
    parked_at: u64,
    live: Option<Box<ChaCha8Rng>>,
}

impl SimRng {
    /// How many 32-bit words this stream has drawn.
    pub fn get_word_pos(&self) -> u128 {
        match &self.live {
            Some(rng) => rng.get_word_pos(),
            None => u128::from(self.parked_at),
        }
    }

    #[inline]
    fn live(&mut self) -> &mut ChaCha8Rng {
        let (seed, stream, words) = (self.seed, self.stream, u128::from(self.parked_at));
        self.live
            .get_or_insert_with(|| Box::new(chacha(seed, stream, words)))
    }
}

impl Clone for SimRng {
    fn clone(&self) -> SimRng {
        SimRng {
            seed: self.seed,
            stream: self.stream,
            parked_at: u64::try_from(self.get_word_pos())
                .expect("a stream draws fewer than 2^64 words in any run"),
            live: None,
        }
    }
}

impl PartialEq for SimRng {
    fn eq(&self, other: &SimRng) -> bool {
        (self.seed, self.stream, self.get_word_pos())
            == (other.seed, other.stream, other.get_word_pos())
    }
}

impl Eq for SimRng {}

impl fmt::Debug for SimRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRng")
            .field("seed", &self.seed)
            .field("stream", &self.stream)
            .field("word_pos", &self.get_word_pos())
            .finish()
    }
}

impl TryRng for SimRng {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.live().try_next_u32()
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.live().try_next_u64()
    }

    #[inline]
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.live().try_fill_bytes(dst)
    }
}

/// The purpose of a random stream. Each gets its own independent sequence of draws.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Network decisions (latency, drop, duplicate) for messages sent by this node.
    Network(u32),
    /// Handed to this node's handlers through `Ctx::rng`.
    Node(u32),
    /// The random nemesis.
    Faults,
    /// This client's choices: which node to ask, latencies to and from it.
    Client(u32),
    /// This client's operations (the workload generator).
    Workload(u32),
    /// Swarm testing: which fault kinds a seed enables.
    Swarm,
}

impl Stream {
    /// ChaCha's stream number for this purpose: a tag in the high 32 bits, the index below.
    pub const fn id(self) -> u64 {
        let (tag, index) = match self {
            Stream::Network(i) => (1u64, i),
            Stream::Node(i) => (2, i),
            Stream::Faults => (3, 0),
            Stream::Client(i) => (4, i),
            Stream::Workload(i) => (5, i),
            Stream::Swarm => (6, 0),
        };
        (tag << 32) | index as u64
    }
}

/// The generator for one purpose in the run with this seed.
///
/// The 256-bit ChaCha key is four SplitMix64 outputs of the seed, written little-endian; the
/// stream number is [`Stream::id`]. Both steps are specified here, not borrowed from a crate's
/// `seed_from_u64`, whose algorithm is not promised to stay fixed.
pub fn stream(seed: u64, purpose: Stream) -> SimRng {
    let stream = purpose.id();
    SimRng {
        seed,
        stream,
        parked_at: 0,
        live: Some(Box::new(chacha(seed, stream, 0))),
    }
}

/// ChaCha8 for this seed and stream number, `words` 32-bit words in.
fn chacha(seed: u64, stream: u64, words: u128) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut state = seed;
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    if words > 0 {
        rng.set_word_pos(words);
    }
    rng
}

/// One step of SplitMix64 (Steele, Lea and Flood, 2014).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniformly distributed integer in `0..n`, without modulo bias (Lemire's method).
///
/// # Panics
/// If `n == 0`: there is no integer to choose.
pub fn below(rng: &mut SimRng, n: u64) -> u64 {
    assert!(n > 0, "below(0) has no value to return");
    let mut product = u128::from(rng.next_u64()) * u128::from(n);
    // The rejection threshold `2^64 mod n` is below `n`, so a low half of at least `n` is
    // accepted without computing it: the 64-bit division runs only on the rare draws that
    // might be rejected. Same draws accepted and rejected as always, so the same numbers.
    if (product as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (product >> 64) as u64
}

/// A uniformly distributed integer in `lo..=hi`.
///
/// # Panics
/// If `lo > hi`.
pub fn between(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    assert!(lo <= hi, "between({lo}, {hi}): empty range");
    match (hi - lo).checked_add(1) {
        Some(width) => lo + below(rng, width),
        None => rng.next_u64(),
    }
}

/// A uniformly distributed float in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut SimRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Shuffles `items` in place (Fisher–Yates, drawing with [`below`]).
pub fn shuffle<T>(rng: &mut SimRng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A probability, stored exactly as parts per billion so that `chance` is integer arithmetic.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Probability(u32);

impl Probability {
    /// Never.
    pub const NEVER: Probability = Probability(0);
    /// Always.
    pub const ALWAYS: Probability = Probability(1_000_000_000);

    /// `p` rounded to the nearest billionth, or `None` unless `0 <= p <= 1`.
    pub fn new(p: f64) -> Option<Probability> {
        if (0.0..=1.0).contains(&p) {
            Some(Probability((p * 1e9).round() as u32))
        } else {
            None
        }
    }

    /// Parts per billion.
    pub const fn per_billion(self) -> u32 {
        self.0
    }

    /// As a float, for display.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1e9
    }

    /// Whether this is zero (so no draw is needed).
    pub const fn is_never(self) -> bool {
        self.0 == 0
    }
}

impl Serialize for Probability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        Probability::new(p).ok_or_else(|| {
            serde::de::Error::custom(format!("probability {p} is not between 0.0 and 1.0"))
        })
    }
}

/// True with probability `p`. Draws nothing when `p` is zero, so turning a fault off does not
/// shift the draws that follow it.
pub fn chance(rng: &mut SimRng, p: Probability) -> bool {
    if p.is_never() {
        return false;
    }
    below(rng, u64::from(Probability::ALWAYS.0)) < u64::from(p.0)
}

/// The natural logarithm of `x > 0`, to within a few ulps, using only IEEE-exact operations.
///
/// Splits `x = m * 2^e` with `m` in `[1, 2)` from the bits, then `ln m = 2 atanh(s)` with
/// `s = (m - 1) / (m + 1)` in `[0, 1/3)`, summed to 40 terms of the odd series.
pub fn ln(x: f64) -> f64 {
    assert!(x > 0.0 && x.is_finite(), "ln({x}) is undefined here");
    const LN_2: f64 = std::f64::consts::LN_2;
    let mut bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64;
    if exponent == 0 {
        // Subnormal: scale into the normal range first.
        bits = (x * (1u64 << 54) as f64).to_bits();
        exponent = ((bits >> 52) & 0x7ff) as i64 - 54;
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1023 << 52));
    let e = exponent - 1023;
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    for k in 0..40 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    e as f64 * LN_2 + 2.0 * sum
}

/// An exponentially distributed value with the given mean, capped at `cap` (inverse transform).
pub fn exponential(rng: &mut SimRng, mean: u64, cap: u64) -> u64 {
    // 1 - unit() lies in (0, 1], so the logarithm is finite.
    let u = 1.0 - unit(rng);
    let value = -(mean as f64) * ln(u);
    (value.round() as u64).min(cap)
}

/// An approximately normal value (Irwin–Hall: the sum of twelve uniforms, minus six), so it
/// needs no transcendental functions. Clamped to `[0, mean + 6 * stddev]`.
pub fn normal(rng: &mut SimRng, mean: u64, stddev: u64) -> u64 {
    let mut sum: u64 = 0;
    for _ in 0..12 {
        sum += rng.next_u64() >> 11;
    }
    let z = sum as f64 / (1u64 << 53) as f64 - 6.0;
    let value = mean as f64 + stddev as f64 * z;
    if value <= 0.0 {
        0
    } else {
        value.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_draws(seed: u64, purpose: Stream) -> Vec<u64> {
        let mut rng = stream(seed, purpose);
        (0..4).map(|_| rng.next_u64()).collect()
    }

    /// Pinned outputs: if one of these changes, every trace ever recorded changes too.
    #[test]
    fn streams_are_pinned() {
        assert_eq!(
            first_draws(0, Stream::Network(0)),
            [
                18304104846013696453,
                10984705267607150657,
                6617551344835602101,
                2796191288484815764
            ]
        );
        assert_eq!(
            first_draws(42, Stream::Node(3)),
            [
                13387277257409681628,
                70954247524159057,
                7875626436495723544,
                5012523754088012487
            ]
        );
    }

    /// A clone keeps only the position, and rebuilds the generator there: its draws must be
    /// the original's, at every word offset, across block and buffer boundaries.
    #[test]
    fn a_clone_draws_what_the_original_would() {
        let mut original = stream(5, Stream::Node(1));
        for step in 0..300u32 {
            let mut copy = original.clone();
            assert_eq!(copy, original);
            assert_eq!(copy.get_word_pos(), original.get_word_pos());
            let mut twin = original.clone();
            let a: Vec<u64> = (0..40).map(|_| original.next_u64()).collect();
            let b: Vec<u64> = (0..40).map(|_| copy.next_u64()).collect();
            assert_eq!(a, b, "after {step} steps");
            // A clone of a clone, never drawn from, is at the same place as well.
            assert_eq!(twin.clone().next_u32(), twin.next_u32());
            // An odd number of words moves the next clone off the 64-bit grid.
            if step % 3 == 0 {
                let _ = original.next_u32();
            }
        }
        let mut bytes_a = [0u8; 37];
        let mut bytes_b = [0u8; 37];
        let mut copy = original.clone();
        original.fill_bytes(&mut bytes_a);
        copy.fill_bytes(&mut bytes_b);
        assert_eq!(bytes_a, bytes_b);
        assert_eq!(original.next_u64(), copy.next_u64());
        assert_ne!(stream(5, Stream::Node(1)), stream(5, Stream::Node(2)));
    }

    #[test]
    fn distributions_are_pinned() {
        let mut rng = stream(7, Stream::Faults);
        let got: Vec<u64> = vec![
            below(&mut rng, 10),
            between(&mut rng, 100, 200),
            exponential(&mut rng, 5_000, 50_000),
            normal(&mut rng, 5_000, 1_000),
            u64::from(chance(&mut rng, Probability::new(0.5).unwrap())),
        ];
        assert_eq!(got, [0, 188, 4929, 4682, 1]);
    }

    #[test]
    fn streams_are_independent_of_each_other() {
        assert_ne!(
            first_draws(1, Stream::Node(0)),
            first_draws(1, Stream::Node(1))
        );
        assert_ne!(
            first_draws(1, Stream::Node(0)),
            first_draws(1, Stream::Network(0))
        );
        assert_ne!(
            first_draws(1, Stream::Node(0)),
            first_draws(2, Stream::Node(0))
        );
        // Creating and draining other streams does not disturb this one.
        let before = first_draws(9, Stream::Client(2));
        for i in 0..10 {
            let _ = first_draws(9, Stream::Client(i));
        }
        assert_eq!(before, first_draws(9, Stream::Client(2)));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = stream(3, Stream::Faults);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[below(&mut rng, 7) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&count| (800..1200).contains(&count)),
            "{seen:?}"
        );
        assert_eq!(between(&mut rng, 5, 5), 5);
        let _ = between(&mut rng, 0, u64::MAX);
    }

    #[test]
    fn below_draws_exactly_as_the_textbook_rejection_loop() {
        // Lemire's method as first written: the threshold computed on every draw. Pinned
        // traces depend on every accepted value and on how many draws each call consumed.
        fn textbook(rng: &mut SimRng, n: u64) -> u64 {
            let threshold = n.wrapping_neg() % n;
            loop {
                let product = u128::from(rng.next_u64()) * u128::from(n);
                if (product as u64) >= threshold {
                    return (product >> 64) as u64;
                }
            }
        }
        // Small and large bounds; near 2^63 about half of all draws are rejected.
        for n in [
            1,
            2,
            7,
            1_000,
            1_000_000_000,
            (1 << 63) + 1,
            (3 << 62) + 5,
            u64::MAX,
        ] {
            let (mut a, mut b) = (stream(11, Stream::Faults), stream(11, Stream::Faults));
            for _ in 0..20_000 {
                assert_eq!(below(&mut a, n), textbook(&mut b, n), "n = {n}");
            }
            assert_eq!(a.next_u64(), b.next_u64(), "n = {n}: streams in step");
        }
    }

    #[test]
    fn chance_matches_its_probability() {
        let mut rng = stream(11, Stream::Faults);
        let p = Probability::new(0.25).unwrap();
        let hits = (0..20_000).filter(|_| chance(&mut rng, p)).count();
        assert!((4_600..5_400).contains(&hits), "{hits}");
        assert!(!chance(&mut rng, Probability::NEVER));
        assert!(chance(&mut rng, Probability::ALWAYS));
        assert_eq!(Probability::new(1.5), None);
        assert_eq!(Probability::new(-0.1), None);
        assert_eq!(Probability::new(0.01).unwrap().per_billion(), 10_000_000);
    }

    #[test]
    fn ln_agrees_with_the_platform_to_a_few_ulps() {
        for &x in &[
            1e-300, 1e-10, 0.001, 0.5, 0.999_999, 1.0, 1.5, 2.0, 10.0, 12345.678, 5e-324,
        ] {
            let ours = ln(x);
            let platform = x.ln();
            assert!(
                (ours - platform).abs() <= 4.0 * f64::EPSILON * platform.abs().max(1.0),
                "{x}"
            );
        }
    }

    #[test]
    fn latency_shapes_have_the_right_moments() {
        let mut rng = stream(5, Stream::Network(0));
        let n = 20_000u64;
        let exp_mean = (0..n)
            .map(|_| exponential(&mut rng, 1_000, u64::MAX))
            .sum::<u64>()
            / n;
        assert!((950..1050).contains(&exp_mean), "{exp_mean}");
        assert!((0..n).all(|_| exponential(&mut rng, 1_000, 3_000) <= 3_000));
        let normal_mean = (0..n).map(|_| normal(&mut rng, 5_000, 500)).sum::<u64>() / n;
        assert!((4_950..5_050).contains(&normal_mean), "{normal_mean}");
        assert!((0..n).all(|_| normal(&mut rng, 100, 1_000) <= 6_100));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = stream(1, Stream::Faults);
        let mut items: Vec<u32> = (0..20).collect();
        shuffle(&mut rng, &mut items);
        assert_ne!(items, (0..20).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..20).collect::<Vec<_>>());
    }
}
