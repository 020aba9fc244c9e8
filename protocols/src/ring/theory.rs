//! The theory of consistent hashing, measured: how many keys move when a member joins or
//! leaves, and how evenly the keys spread, for the ring (with and without bounded loads) and the
//! strategies it is compared with, each beside the value the mathematics predicts.
//!
//! Every prediction here is exact, not asymptotic, so a measurement disagrees with it only by
//! sampling noise; [`Estimate::agrees`] compares the two in units of the trials' standard error.
//!
//! - **Ring, v virtual nodes per member, n members.** The n·v positions are uniform, so a
//!   member's share of the key space (the gaps before its v positions) is `Beta(v, (n-1)v)`:
//!   mean 1/n, sd/mean `√((n-1)/(nv+1))` (about 1/√v). A newcomer's share is `Beta(v, nv)`, so a
//!   join moves 1/(n+1) of the keys, all to the newcomer; a leave moves the leaver's 1/n. With v =
//!   1 the shares are the n gaps between n uniform points, whose largest has mean H_n/n, so
//!   max/mean is H_n. With K keys, a member's key count is binomial given its share:
//!   `Var = K(μ - μ² - σ²) + K²σ²` for share mean μ and variance σ².
//! - **Bounded loads** (ε): each key, in arrival order, goes to the first member clockwise with
//!   fewer than `⌈(1+ε)K/n⌉` keys; no member ever holds more. What moves on a join is measured,
//!   with no closed form beside it.
//! - **Rendezvous hashing** (highest random weight): a key goes to the member with the largest
//!   hash of (key, member). Shares are exactly even; a join moves 1/(n+1), a leave 1/n.
//! - **Jump consistent hash** (Lamping and Veach, 2014): numbered buckets; a join adds bucket n
//!   and moves 1/(n+1); only the last bucket can leave (1/n moves).
//! - **Modulo n**: `hash mod n`. A key stays on a join only if `hash mod n(n+1) < n`, so
//!   n/(n+1) of the keys move; on a leave (n-1)/n move.
//!
//! For the strategies with even shares, a member's key count is multinomial: sd/mean
//! `√((n-1)/K)`.

use super::hash_ring::{Point, Ring, bounded_capacity, ring_hash};
use crate::stats::{Beta, Spread, harmonic};
use serde::Serialize;

/// The cluster sizes of the published table.
pub const NODES: [u32; 3] = [10, 100, 1_000];
/// The virtual-node counts of the published table.
pub const VNODES: [u32; 4] = [1, 10, 100, 1_000];
/// The bound the published table uses for bounded loads.
pub const EPSILON: f64 = 0.25;
/// The pooled quantiles reported for the ring's shares: the 99% range.
pub const LOW_QUANTILE: f64 = 0.005;
/// See [`LOW_QUANTILE`].
pub const HIGH_QUANTILE: f64 = 0.995;

/// Domain words, so key positions and leaver choices never reuse a ring's own hash inputs.
const KEYS_DOMAIN: u64 = 0x6b65_7973; // "keys"
const LEAVER_DOMAIN: u64 = 0x6c65_6176; // "leav"
const RENDEZVOUS_DOMAIN: u64 = 0x7268_7721; // "rhw!"

/// How keys are assigned to members.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// The consistent-hash ring with virtual nodes.
    Ring,
    /// The ring with bounded loads.
    BoundedLoads,
    /// Rendezvous (highest random weight) hashing.
    Rendezvous,
    /// Jump consistent hash.
    Jump,
    /// `hash mod n`.
    Modulo,
}

impl Strategy {
    /// The strategy's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Ring => "ring",
            Strategy::BoundedLoads => "bounded",
            Strategy::Rendezvous => "rendezvous",
            Strategy::Jump => "jump",
            Strategy::Modulo => "modulo",
        }
    }

    /// Whether the strategy places virtual nodes (and so has a `v`).
    pub fn has_vnodes(self) -> bool {
        matches!(self, Strategy::Ring | Strategy::BoundedLoads)
    }
}

/// One row's configuration.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct RowSpec {
    /// The strategy.
    pub strategy: Strategy,
    /// Members before a join or a leave.
    pub nodes: u32,
    /// Virtual nodes per member (1 for the strategies without them).
    pub vnodes: u32,
    /// Keys placed in each trial.
    pub keys: u32,
    /// Trials (ring seeds `first_seed..first_seed + trials`).
    pub trials: u32,
    /// The first seed.
    pub first_seed: u64,
    /// The bounded-load ε.
    pub epsilon: f64,
}

/// A measured figure with its standard error over the trials, and the exact prediction if
/// there is one.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The measurement.
    pub measured: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// The prediction.
    pub expected: Option<f64>,
}

impl Estimate {
    fn mean_of(spread: Spread, trials: u32, expected: Option<f64>) -> Estimate {
        Estimate {
            measured: spread.mean,
            standard_error: spread.standard_error(trials as usize),
            expected,
        }
    }

    /// Whether the measurement is within `sigmas` standard errors of the prediction (true when
    /// there is no prediction).
    pub fn agrees(&self, sigmas: f64) -> bool {
        self.expected.is_none_or(|expected| {
            (self.measured - expected).abs() <= sigmas * self.standard_error + 1e-12
        })
    }
}

/// A pooled quantile of the members' shares (share × n).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct Quantile {
    /// Which quantile (0.005 or 0.995).
    pub p: f64,
    /// The pooled sample's quantile.
    pub measured: f64,
    /// The beta distribution's quantile.
    pub expected: f64,
    /// The fraction of shares beyond the expected quantile (below a low one, above a high one),
    /// whose prediction is `p` (or `1 - p`): this is the figure [`Estimate::agrees`] tests.
    pub beyond: Estimate,
}

/// How the ring spreads the key space itself (no keys sampled).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct SpaceSpread {
    /// sd/mean of a member's share, pooled over trials; predicted `√((n-1)/(nv+1))`.
    pub cv: Estimate,
    /// The textbook approximation 1/√v.
    pub approx_cv: f64,
    /// The largest share over the mean; predicted H_n for v = 1.
    pub max_over_mean: Estimate,
    /// The pooled 0.5% quantile of share/mean.
    pub low: Quantile,
    /// The pooled 99.5% quantile of share/mean.
    pub high: Quantile,
}

/// One measured row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// What was measured.
    pub spec: RowSpec,
    /// Fraction of the keys whose member changed when member n joined.
    pub join_moved: Estimate,
    /// Whether every key that moved on a join moved to the newcomer, in every trial.
    pub all_to_newcomer: bool,
    /// Fraction of the keys whose member changed when one member left.
    pub leave_moved: Estimate,
    /// sd/mean of a member's key count, pooled over trials.
    pub key_cv: Estimate,
    /// The largest key count over the mean.
    pub key_max_over_mean: Estimate,
    /// The largest key count over the mean in any trial.
    pub worst_key_max_over_mean: f64,
    /// For bounded loads, the capacity over the mean: no member may exceed it.
    pub key_max_bound: Option<f64>,
    /// The ring's spread of the key space (ring only).
    pub space: Option<SpaceSpread>,
}

/// What one trial measured.
struct Trial {
    join_moved: f64,
    all_to_newcomer: bool,
    leave_moved: f64,
    /// `(1/n) Σ (count - K/n)²`: unbiased for a count's variance, since the counts sum to K.
    key_variance: f64,
    key_max_over_mean: f64,
    space: Option<SpaceTrial>,
}

struct SpaceTrial {
    variance: f64,
    max_over_mean: f64,
    /// Every member's share × n.
    normalised: Vec<f64>,
}

/// Counts per member (members are 0..n, or the newcomer n).
fn variance_and_max(owners: &[u32], nodes: u32) -> (f64, f64) {
    let mut counts = vec![0u64; nodes as usize];
    for &o in owners {
        counts[o as usize] += 1;
    }
    let mean = owners.len() as f64 / f64::from(nodes);
    let variance = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / f64::from(nodes);
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    (variance, max / mean)
}

fn fraction_changed(before: &[u32], after: &[u32]) -> f64 {
    let moved = before.iter().zip(after).filter(|(a, b)| a != b).count();
    moved as f64 / before.len() as f64
}

/// Jump consistent hash (Lamping and Veach, 2014): the bucket in `0..buckets` for `key`.
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let (mut bucket, mut next) = (-1i64, 0i64);
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as u32
}

/// Rendezvous hashing's weight of `member` for the key at `point`.
fn rendezvous_weight(seed: u64, member: u32, point: Point) -> u64 {
    ring_hash(&[RENDEZVOUS_DOMAIN, seed, u64::from(member), point])
}

fn rendezvous_owner(seed: u64, members: impl Iterator<Item = u32>, point: Point) -> u32 {
    members
        .max_by_key(|&m| (rendezvous_weight(seed, m, point), m))
        .expect("at least one member")
}

fn trial(spec: &RowSpec, seed: u64) -> Trial {
    let n = spec.nodes;
    let keys: Vec<Point> = (0..u64::from(spec.keys))
        .map(|i| ring_hash(&[KEYS_DOMAIN, seed, i]))
        .collect();
    let leaver = (ring_hash(&[LEAVER_DOMAIN, seed]) % u64::from(n)) as u32;
    let mut space = None;
    let (before, joined, left): (Vec<u32>, Vec<u32>, Vec<u32>) = match spec.strategy {
        Strategy::Ring | Strategy::BoundedLoads => {
            let ring = Ring::with_members(seed, spec.vnodes, 0..n);
            let mut bigger = ring.clone();
            bigger.join(n);
            let mut smaller = ring.clone();
            smaller.leave(leaver);
            if spec.strategy == Strategy::Ring {
                let owners = |r: &Ring| -> Vec<u32> {
                    keys.iter().map(|&k| r.owner(k).expect("members")).collect()
                };
                space = Some(space_trial(&ring));
                (owners(&ring), owners(&bigger), owners(&smaller))
            } else {
                (
                    ring.assign_bounded(&keys, spec.epsilon),
                    bigger.assign_bounded(&keys, spec.epsilon),
                    smaller.assign_bounded(&keys, spec.epsilon),
                )
            }
        }
        Strategy::Rendezvous => {
            let before: Vec<u32> = keys
                .iter()
                .map(|&k| rendezvous_owner(seed, 0..n, k))
                .collect();
            // The newcomer takes exactly the keys where it outweighs the current owner, and a
            // leaver's keys go to their next-heaviest member: no need to rescan every member
            // for the other keys.
            let joined = keys
                .iter()
                .zip(&before)
                .map(|(&k, &o)| {
                    let current = (rendezvous_weight(seed, o, k), o);
                    if (rendezvous_weight(seed, n, k), n) > current {
                        n
                    } else {
                        o
                    }
                })
                .collect();
            let left = keys
                .iter()
                .zip(&before)
                .map(|(&k, &o)| {
                    if o == leaver {
                        rendezvous_owner(seed, (0..n).filter(|&m| m != leaver), k)
                    } else {
                        o
                    }
                })
                .collect();
            (before, joined, left)
        }
        Strategy::Jump => {
            let place = |buckets: u32| keys.iter().map(|&k| jump_hash(k, buckets)).collect();
            (place(n), place(n + 1), place(n - 1))
        }
        Strategy::Modulo => {
            let place = |m: u32| keys.iter().map(|&k| (k % u64::from(m)) as u32).collect();
            (place(n), place(n + 1), place(n - 1))
        }
    };
    let (key_variance, key_max_over_mean) = variance_and_max(&before, n);
    let all_to_newcomer = before.iter().zip(&joined).all(|(a, b)| a == b || *b == n);
    Trial {
        join_moved: fraction_changed(&before, &joined),
        all_to_newcomer,
        leave_moved: fraction_changed(&before, &left),
        key_variance,
        key_max_over_mean,
        space,
    }
}

fn space_trial(ring: &Ring) -> SpaceTrial {
    let n = ring.members().len() as f64;
    let normalised: Vec<f64> = ring.shares().iter().map(|s| s * n).collect();
    let variance = normalised.iter().map(|x| (x - 1.0).powi(2)).sum::<f64>() / n;
    let max_over_mean = normalised.iter().copied().fold(0.0, f64::max);
    SpaceTrial {
        variance,
        max_over_mean,
        normalised,
    }
}

/// The sd/mean estimate from per-trial variances of share/mean (mean 1): the square root of
/// their mean, with the standard error carried through the square root.
fn cv_from_variances(variances: impl Iterator<Item = f64>, trials: u32, expected: f64) -> Estimate {
    let spread = Spread::of(variances);
    let cv = spread.mean.sqrt();
    Estimate {
        measured: cv,
        standard_error: if cv > 0.0 {
            spread.standard_error(trials as usize) / (2.0 * cv)
        } else {
            0.0
        },
        expected: Some(expected),
    }
}

/// The share distribution of one of `n` ring members with `v` virtual nodes each.
pub fn share_distribution(nodes: u32, vnodes: u32) -> Beta {
    Beta {
        a: f64::from(vnodes),
        b: f64::from(nodes - 1) * f64::from(vnodes),
    }
}

/// The predicted sd/mean of a member's key count with `keys` keys, when its share of the key
/// space has mean 1/n and variance `share_variance`.
pub fn key_cv(nodes: u32, keys: u32, share_variance: f64) -> f64 {
    let (mu, k) = (1.0 / f64::from(nodes), f64::from(keys));
    let variance = k * (mu - mu * mu - share_variance) + k * k * share_variance;
    variance.sqrt() / (k * mu)
}

/// Measures one row, calling `progress` after each trial.
///
/// # Panics
/// If the spec has fewer than 2 nodes or trials, no keys, or no virtual nodes.
pub fn row(spec: RowSpec, mut progress: impl FnMut()) -> Row {
    assert!(spec.nodes >= 2 && spec.trials >= 2 && spec.keys >= 1 && spec.vnodes >= 1);
    let trials: Vec<Trial> = (0..u64::from(spec.trials))
        .map(|t| {
            let measured = trial(&spec, spec.first_seed.wrapping_add(t));
            progress();
            measured
        })
        .collect();
    let (n, t) = (spec.nodes, spec.trials);
    let nf = f64::from(n);
    let (join_expected, leave_expected) = match spec.strategy {
        Strategy::Ring | Strategy::Rendezvous | Strategy::Jump => {
            (Some(1.0 / (nf + 1.0)), Some(1.0 / nf))
        }
        Strategy::Modulo => (Some(nf / (nf + 1.0)), Some((nf - 1.0) / nf)),
        Strategy::BoundedLoads => (None, None),
    };
    let share = share_distribution(n, spec.vnodes);
    let key_cv_expected = match spec.strategy {
        Strategy::Ring => Some(key_cv(n, spec.keys, share.variance())),
        Strategy::Rendezvous | Strategy::Jump | Strategy::Modulo => Some(key_cv(n, spec.keys, 0.0)),
        Strategy::BoundedLoads => None,
    };
    let mean_k = f64::from(spec.keys) / nf;
    let space = (spec.strategy == Strategy::Ring).then(|| {
        let spaces: Vec<&SpaceTrial> = trials.iter().filter_map(|x| x.space.as_ref()).collect();
        let mut pooled: Vec<f64> = spaces
            .iter()
            .flat_map(|s| s.normalised.iter().copied())
            .collect();
        pooled.sort_unstable_by(f64::total_cmp);
        let quantile = |p: f64, low: bool| {
            let expected = share.quantile(p) * nf;
            let beyond = Spread::of(spaces.iter().map(|s| {
                let count = s
                    .normalised
                    .iter()
                    .filter(|&&x| if low { x < expected } else { x > expected })
                    .count();
                count as f64 / nf
            }));
            let index = ((pooled.len() - 1) as f64 * p).round() as usize;
            Quantile {
                p,
                measured: pooled[index],
                expected,
                beyond: Estimate::mean_of(beyond, t, Some(if low { p } else { 1.0 - p })),
            }
        };
        SpaceSpread {
            cv: cv_from_variances(
                spaces.iter().map(|s| s.variance),
                t,
                share.variance().sqrt() * nf,
            ),
            approx_cv: 1.0 / f64::from(spec.vnodes).sqrt(),
            max_over_mean: Estimate::mean_of(
                Spread::of(spaces.iter().map(|s| s.max_over_mean)),
                t,
                (spec.vnodes == 1).then(|| harmonic(n)),
            ),
            low: quantile(LOW_QUANTILE, true),
            high: quantile(HIGH_QUANTILE, false),
        }
    });
    Row {
        spec,
        join_moved: Estimate::mean_of(
            Spread::of(trials.iter().map(|x| x.join_moved)),
            t,
            join_expected,
        ),
        all_to_newcomer: trials.iter().all(|x| x.all_to_newcomer),
        leave_moved: Estimate::mean_of(
            Spread::of(trials.iter().map(|x| x.leave_moved)),
            t,
            leave_expected,
        ),
        key_cv: match key_cv_expected {
            Some(expected) => cv_from_variances(
                trials.iter().map(|x| x.key_variance / (mean_k * mean_k)),
                t,
                expected,
            ),
            None => Estimate {
                expected: None,
                ..cv_from_variances(
                    trials.iter().map(|x| x.key_variance / (mean_k * mean_k)),
                    t,
                    0.0,
                )
            },
        },
        key_max_over_mean: Estimate::mean_of(
            Spread::of(trials.iter().map(|x| x.key_max_over_mean)),
            t,
            None,
        ),
        worst_key_max_over_mean: trials
            .iter()
            .map(|x| x.key_max_over_mean)
            .fold(0.0, f64::max),
        key_max_bound: (spec.strategy == Strategy::BoundedLoads).then(|| {
            bounded_capacity(spec.keys as usize, n as usize, spec.epsilon) as f64 / mean_k
        }),
        space,
    }
}

/// A trial count that keeps one row to about the same work whatever its size: many seeds for
/// small rings, fewer (but at least 4) for a thousand members with a thousand vnodes each.
pub fn default_trials(strategy: Strategy, nodes: u32, vnodes: u32, keys: u32) -> u32 {
    const WORK_PER_ROW: u64 = 100_000_000;
    let (n, v, k) = (u64::from(nodes), u64::from(vnodes), u64::from(keys));
    let work = match strategy {
        Strategy::Ring | Strategy::BoundedLoads => 3 * (k + 2 * n * v),
        Strategy::Rendezvous => k * (n + 2),
        Strategy::Jump | Strategy::Modulo => 3 * k,
    };
    (WORK_PER_ROW / work.max(1)).clamp(4, 200) as u32
}

/// The rows of the table for these sizes: for each n, the ring and bounded loads at each v,
/// then rendezvous, jump and modulo.
pub fn specs(
    nodes: &[u32],
    vnodes: &[u32],
    keys: u32,
    trials: Option<u32>,
    first_seed: u64,
    epsilon: f64,
) -> Vec<RowSpec> {
    let mut specs = Vec::new();
    let spec = |strategy: Strategy, n: u32, v: u32| RowSpec {
        strategy,
        nodes: n,
        vnodes: v,
        keys,
        trials: trials.unwrap_or_else(|| default_trials(strategy, n, v, keys)),
        first_seed,
        epsilon,
    };
    for &n in nodes {
        for strategy in [Strategy::Ring, Strategy::BoundedLoads] {
            for &v in vnodes {
                specs.push(spec(strategy, n, v));
            }
        }
        for strategy in [Strategy::Rendezvous, Strategy::Jump, Strategy::Modulo] {
            specs.push(spec(strategy, n, 1));
        }
    }
    specs
}
