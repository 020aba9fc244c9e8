//! Swarm testing (Groce et al., *Swarm Testing*, ISSTA 2012) gives each seed its own fault
//! mix: a random subset of the nemesis's kinds and a random pace, drawn from the seed's own
//! stream, so the same seed always gets the same mix.

use crate::scenario::Scenario;
use serde::Serialize;
use simlab_sim::rng::{self, Stream};

/// The fault mix a seed gets in swarm mode, for the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SwarmMix {
    /// The nemesis kinds this seed enables.
    pub kinds: Vec<simlab_sim::NemesisKind>,
    /// Its quiet time between faults.
    pub interval_ms: (u64, u64),
    /// How long each fault lasts.
    pub duration_ms: (u64, u64),
}

/// The scenario as seed `seed` runs it in swarm mode: its nemesis restricted to a random,
/// non-empty subset of its kinds, at a random pace (between a third and three times as often).
/// `None` when the scenario has no nemesis to vary.
pub fn swarm(scenario: &Scenario, seed: u64) -> Option<(Scenario, SwarmMix)> {
    let nemesis = scenario.nemesis.as_ref()?;
    let mut r = rng::stream(seed, Stream::Swarm);
    let mut kinds: Vec<_> = nemesis
        .kinds
        .iter()
        .copied()
        .filter(|_| rng::below(&mut r, 2) == 1)
        .collect();
    if kinds.is_empty() {
        let pick = rng::below(&mut r, nemesis.kinds.len() as u64) as usize;
        kinds.push(nemesis.kinds[pick]);
    }
    // Pace factor in thirds: 1/3 .. 9/3.
    let pace = rng::between(&mut r, 1, 9);
    let scale = |(lo, hi): (u64, u64)| ((lo * pace / 3).max(1), (hi * pace / 3).max(1));
    let mix = SwarmMix {
        kinds,
        interval_ms: scale(nemesis.interval_ms),
        duration_ms: nemesis.duration_ms,
    };
    let mut out = scenario.clone();
    let n = out.nemesis.as_mut().expect("checked above");
    n.kinds = mix.kinds.clone();
    n.interval_ms = mix.interval_ms;
    Some((out, mix))
}
