//! A linearizability checker: Wing & Gong's search with Lowe's memoization, as in Porcupine
//! (Athalye, 2017), with P-compositionality (each key checked on its own).
//!
//! A history is linearizable when every operation can be given a single point in time between
//! its call and its return such that, taken in that order, the operations are a legal run of the
//! sequential model. The search walks the history in real-time order, tries to linearize each
//! pending call that the model accepts, and backtracks on a return whose call it could not
//! place. Lowe's memoization skips any `(set of linearized operations, model state)` pair seen
//! before, which is what makes the search practical.
//!
//! An operation that never returned (the client timed out) has an *unknown* output and returns
//! "at infinity": it may be linearized at any point after its call (and so may take effect, or
//! in effect not, by being placed after everything it could influence).
//!
//! On a violation the checker explains itself with a small set of operations that still cannot
//! be linearized (greedily shrunk from the failing key's history) drawn as a timeline.

pub mod formats;
pub mod models;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};

/// A sequential specification.
pub trait Model {
    /// The model's state (e.g. a register's value). Ordered, for the memo table.
    type State: Clone + Ord + Debug;
    /// What an operation asks.
    type Input: Clone + Debug;
    /// What it answered.
    type Output: Clone + Debug;

    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `input` answered `output` in `state`, or `None` if that answer is
    /// impossible there. `output` is `None` when unknown: any answer is acceptable.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
    /// The key that partitions the history (operations on different keys are independent);
    /// `None` for models with a single object.
    fn key(&self, input: &Self::Input) -> Option<String> {
        let _ = input;
        None
    }
    /// Whether an operation only reads (so one that never answered can be left out).
    fn read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }
    /// Whether `other` helps explain the answer `output` to `input` (e.g. it wrote a value the
    /// read returned). Explanations keep such operations, so a reader sees where a value came
    /// from. By default, nothing is.
    fn witnesses(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
        other: &Self::Input,
    ) -> bool {
        let _ = (input, output, other);
        false
    }
    /// Whether this operation can only extend the state, never undo or replace what is there
    /// (an append). By default, none is.
    fn only_extends(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }
    /// Whether a later read, `input` answering `output`, is reachable from `state` by
    /// operations that [only extend](Model::only_extends) it (e.g. the value read extends the
    /// state's value). When nothing that could still come before that read may replace the
    /// state, the search drops the candidates after which the read is unreachable: a burst of
    /// concurrent appends is then ordered by the read that shows their order instead of by
    /// trying their permutations. By default, always (nothing is dropped).
    fn leads_to(&self, state: &Self::State, input: &Self::Input, output: &Self::Output) -> bool {
        let _ = (state, input, output);
        true
    }
    /// The state this operation leaves when it replaces the state (a put's value), for an
    /// operation that neither only reads nor only extends; `None` when it cannot say. A later
    /// read is then reachable from a state if it extends that state or one of these (a put,
    /// then appends), so the search keeps dropping dead candidates while puts are pending.
    fn replaced_by(&self, input: &Self::Input) -> Option<Self::State> {
        let _ = input;
        None
    }
    /// Whether the state this operation leaves does not depend on the state before it (a
    /// put). When every operation of a history only reads, only extends or resets, a state that
    /// no remaining read can see by [extension](Model::leads_to) is as good as any other such
    /// state: whatever happens next must reset it before anyone looks. The search then counts
    /// all such states as one, so the orders of appends that a later put overwrites unseen are
    /// not told apart. By default, none does (and nothing is merged).
    fn resets(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }
    /// One operation for people, e.g. `put("x", "1") -> ok`.
    fn describe(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(o) => format!("{input:?} -> {o:?}"),
            None => format!("{input:?} -> ?"),
        }
    }
}

/// One operation of a history. Times are any totally ordered clock (virtual microseconds,
/// line numbers): only their order matters.
#[derive(Clone, Debug, PartialEq)]
pub struct Op<I, O> {
    /// The client (process) that issued it.
    pub client: u64,
    /// What it asked.
    pub input: I,
    /// What it answered; `None` when unknown (it never returned, or returned "unknown").
    pub output: Option<O>,
    /// When it was called.
    pub call: u64,
    /// When it returned; `None` if it never did.
    pub ret: Option<u64>,
}

/// An operation of model `M`'s history.
pub type ModelOp<M> = Op<<M as Model>::Input, <M as Model>::Output>;

/// The operations on one key (`None` for models without keys).
pub type Partition<M> = (Option<String>, Vec<ModelOp<M>>);

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose history failed, if the model has keys.
    pub key: Option<String>,
    /// Operations on that key.
    pub ops_on_key: usize,
    /// A small subset of them that on its own cannot be linearized, as a timeline.
    pub explanation: String,
    /// Whether the subset was shrunk to a minimum (false if the shrinking budget ran out).
    pub minimal: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => writeln!(
                f,
                "key {key:?} ({} operations) is not linearizable:",
                self.ops_on_key
            )?,
            None => writeln!(
                f,
                "the history ({} operations) is not linearizable:",
                self.ops_on_key
            )?,
        }
        write!(f, "{}", self.explanation)
    }
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition linearizes.
    Linearizable,
    /// Some partition does not.
    NotLinearizable(Violation),
    /// The search for this key outgrew [`MAX_SEARCH`] states without an answer (many
    /// operations with unknown outcomes make the space explode).
    Undecided {
        /// The key.
        key: Option<String>,
        /// Operations on it.
        ops_on_key: usize,
    },
}

/// The most memo entries one key's search may hold before the checker gives up on it
/// (a few hundred megabytes at worst).
pub const MAX_SEARCH: usize = 3_000_000;

impl Verdict {
    /// Whether the history is linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// Checks a whole history, key by key.
///
/// Keys are searched in rounds with a growing budget, like a race between parallel searches:
/// a cheap violation on one key is found before an expensive proof on another, yet the answer
/// and the key reported never depend on timing.
pub fn check<M: Model>(model: &M, ops: &[ModelOp<M>]) -> Verdict {
    check_within(model, ops, MAX_SEARCH)
}

/// [`check`] with a different limit on each key's search (tests use a small one).
pub fn check_within<M: Model>(model: &M, ops: &[ModelOp<M>], max_search: usize) -> Verdict {
    check_counting(model, ops, max_search).0
}

/// [`check_within`], also counting the search states it visited over every key and round
/// (the cost of the answer, for benchmarks).
pub fn check_counting<M: Model>(
    model: &M,
    ops: &[ModelOp<M>],
    max_search: usize,
) -> (Verdict, usize) {
    let mut states = 0;
    let verdict = check_rounds(model, ops.to_vec(), max_search, &mut states);
    (verdict, states)
}

/// [`check_within`] over a history the caller no longer needs: the operations are moved into
/// their partitions rather than copied.
pub fn check_owned<M: Model>(model: &M, ops: Vec<ModelOp<M>>, max_search: usize) -> Verdict {
    check_rounds(model, ops, max_search, &mut 0)
}

fn check_rounds<M: Model>(
    model: &M,
    ops: Vec<ModelOp<M>>,
    max_search: usize,
    states: &mut usize,
) -> Verdict {
    let mut open: Vec<Partition<M>> = partition_owned(model, prune(model, ops));
    let mut budget = 20_000usize.min(max_search);
    while !open.is_empty() {
        let mut still_open = Vec::new();
        for (key, part) in open {
            let (answer, visited) = search_counting(model, &part, budget);
            *states += visited;
            match answer {
                Some(true) => {}
                Some(false) => {
                    let (subset, minimal) = shrink(model, part.clone());
                    return Verdict::NotLinearizable(Violation {
                        key,
                        ops_on_key: part.len(),
                        explanation: timeline(model, &subset),
                        minimal,
                    });
                }
                None if budget >= max_search => {
                    return Verdict::Undecided {
                        key,
                        ops_on_key: part.len(),
                    };
                }
                None => still_open.push((key, part)),
            }
        }
        open = still_open;
        budget = (budget * 8).min(max_search);
    }
    Verdict::Linearizable
}

/// Leaves out operations that cannot change the verdict, which keeps histories with many
/// timed-out operations tractable:
/// - a read that never answered changes nothing and showed nothing;
/// - a write that never answered and whose value no answered operation shows (per
///   [`Model::witnesses`]): it may always be placed after everything else, where it affects
///   nothing, so the history is linearizable with it exactly when it is without it.
fn prune<M: Model>(model: &M, ops: Vec<ModelOp<M>>) -> Vec<ModelOp<M>> {
    let keep: Vec<bool> = {
        let answered: Vec<&ModelOp<M>> = ops.iter().filter(|op| op.output.is_some()).collect();
        ops.iter()
            .map(|op| {
                op.output.is_some()
                    || (!model.read_only(&op.input)
                        && (op.ret.is_some()
                            || answered
                                .iter()
                                .any(|r| model.witnesses(&r.input, r.output.as_ref(), &op.input))))
            })
            .collect()
    };
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, keep)| keep.then_some(op))
        .collect()
}

/// Splits a history by key, keys in order.
pub fn partition<M: Model>(model: &M, ops: &[ModelOp<M>]) -> Vec<Partition<M>> {
    partition_owned(model, ops.to_vec())
}

/// [`partition`], moving the operations.
fn partition_owned<M: Model>(model: &M, ops: Vec<ModelOp<M>>) -> Vec<Partition<M>> {
    let mut parts: BTreeMap<Option<String>, Vec<ModelOp<M>>> = BTreeMap::new();
    for op in ops {
        parts.entry(model.key(&op.input)).or_default().push(op);
    }
    parts.into_iter().collect()
}

/// A call or return in the search's doubly linked list.
#[derive(Clone, Copy, Debug)]
struct Entry {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

/// Whether one partition linearizes (the search itself).
pub fn linearizable<M: Model>(model: &M, ops: &[ModelOp<M>]) -> bool {
    search(model, ops, usize::MAX).expect("an unlimited search always answers")
}

/// The search, giving up (`None`) once its memo table holds `budget` entries.
pub fn search<M: Model>(model: &M, ops: &[ModelOp<M>], budget: usize) -> Option<bool> {
    search_counting(model, ops, budget).0
}

/// [`search`], also returning how many states (memo entries) it visited.
fn search_counting<M: Model>(
    model: &M,
    ops: &[ModelOp<M>],
    budget: usize,
) -> (Option<bool>, usize) {
    let n = ops.len();
    if n == 0 {
        return (Some(true), 0);
    }
    // Events in time order; at equal times calls come first, so such operations count as
    // concurrent (the permissive reading of a tie).
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, 0, i));
        events.push((op.ret.unwrap_or(u64::MAX), 1, i));
    }
    events.sort_unstable();
    // entries[0] is a sentinel head.
    let mut entries: Vec<Entry> = Vec::with_capacity(events.len() + 1);
    entries.push(Entry {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: 1,
    });
    let mut return_of = vec![0usize; n];
    for (k, &(_, kind, op)) in events.iter().enumerate() {
        let index = k + 1;
        entries.push(Entry {
            op,
            is_call: kind == 0,
            prev: index - 1,
            next: if k + 1 < events.len() { index + 1 } else { NIL },
        });
        if kind == 1 {
            return_of[op] = index;
        }
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    // The memo table keys states by number: a state (e.g. a long appended string) is stored
    // once, however many sets of linearized operations reach it.
    let mut state_ids: BTreeMap<M::State, u32> = BTreeMap::new();
    let mut cache: BTreeSet<(Vec<u64>, u32)> = BTreeSet::new();
    let mut state = model.init();

    let lift = |entries: &mut Vec<Entry>, call: usize, ret: usize| {
        for i in [call, ret] {
            let Entry { prev, next, .. } = entries[i];
            entries[prev].next = next;
            if next != NIL {
                entries[next].prev = prev;
            }
        }
    };
    let unlift = |entries: &mut Vec<Entry>, call: usize, ret: usize| {
        for i in [ret, call] {
            let Entry { prev, next, .. } = entries[i];
            entries[prev].next = i;
            if next != NIL {
                entries[next].prev = i;
            }
        }
    };
    // The operations that may come next: calls before the first pending return (an operation
    // whose return comes first must be linearized before anything called after it), each with
    // the state it would leave; impossible ones are left out, and so are those the next read
    // rules out (below). They are tried in call order: measured on twenty-client Raft
    // histories, trying them by return time, or the read's favourites first, was slower.
    let candidates = |entries: &Vec<Entry>, state: &M::State| -> Vec<(usize, M::State)> {
        let mut out = Vec::new();
        let mut i = entries[0].next;
        while i != NIL && entries[i].is_call {
            let op = &ops[entries[i].op];
            if let Some(next) = model.step(state, &op.input, op.output.as_ref()) {
                out.push((i, next));
            }
            i = entries[i].next;
        }
        // The next read with a known answer, and whether everything that could still come
        // before it (called before it returned, not yet linearized) only reads or extends.
        let mut guide = None;
        let mut j = entries[0].next;
        for _ in 0..GUIDE_HORIZON {
            if j == NIL {
                break;
            }
            let op = &ops[entries[j].op];
            if entries[j].is_call
                && model.read_only(&op.input)
                && let Some(output) = &op.output
            {
                guide = Some((entries[j].op, &op.input, output));
                break;
            }
            j = entries[j].next;
        }
        let Some((read, input, output)) = guide else {
            return out;
        };
        // What may come before the read besides reads and extensions: states that replace
        // the value (puts). If one of them leads to the read, any candidate may; if some
        // operation cannot say what it leaves, nothing is ruled out.
        let mut k = entries[0].next;
        while k != NIL && k != return_of[read] {
            let op = &ops[entries[k].op];
            if entries[k].is_call && !model.read_only(&op.input) && !model.only_extends(&op.input) {
                match model.replaced_by(&op.input) {
                    Some(reset) if !model.leads_to(&reset, input, output) => {}
                    Some(_) => {
                        // The read may start from this put: try the candidates that lead to
                        // it first (the put itself), before orders of operations it would
                        // overwrite.
                        out.sort_by_key(|(_, next)| !model.leads_to(next, input, output));
                        return out;
                    }
                    None => return out,
                }
            }
            k = entries[k].next;
        }
        // The read's state is a candidate's extended: a candidate it cannot extend is dead.
        out.retain(|(_, next)| model.leads_to(next, input, output));
        out
    };

    // Unseen states (see Model::resets): only where every operation reads, extends or resets.
    let merge_unseen = ops.iter().all(|op| {
        model.read_only(&op.input) || model.only_extends(&op.input) || model.resets(&op.input)
    });
    let observers: Vec<usize> = (0..n)
        .filter(|&i| model.read_only(&ops[i].input) && ops[i].output.is_some())
        .collect();
    let unseen = |state: &M::State, linearized: &[u64]| {
        merge_unseen
            && observers.iter().all(|&o| {
                linearized[o / 64] & (1u64 << (o % 64)) != 0
                    || !model.leads_to(
                        state,
                        &ops[o].input,
                        ops[o].output.as_ref().expect("observers answered"),
                    )
            })
    };
    // The memo's number for every unseen state.
    const UNSEEN: u32 = u32::MAX;
    let mut state_unseen = false;

    /// One level of the search: the candidates, the next one to try, and (once one was
    /// chosen) the call chosen and the state before it, with whether that state was unseen.
    struct Level<S> {
        candidates: Vec<(usize, S)>,
        next: usize,
        chosen: Option<(usize, S, bool)>,
    }
    let mut levels: Vec<Level<M::State>> = vec![Level {
        candidates: candidates(&entries, &state),
        next: 0,
        chosen: None,
    }];
    while let Some(level) = levels.last_mut() {
        if let Some((call, old, old_unseen)) = level.chosen.take() {
            // Back from a choice that led nowhere: undo it.
            let op = entries[call].op;
            state = old;
            state_unseen = old_unseen;
            linearized[op / 64] &= !(1u64 << (op % 64));
            unlift(&mut entries, call, return_of[op]);
        }
        let Some((call, next_state)) = level.candidates.get(level.next) else {
            levels.pop();
            continue;
        };
        let (call, next_state) = (*call, next_state.clone());
        level.next += 1;
        let op_index = entries[call].op;
        if cache.len() >= budget {
            return (None, cache.len());
        }
        // Linearized with this call; the bit is cleared again if the state was seen before,
        // or on the way back from it.
        linearized[op_index / 64] |= 1u64 << (op_index % 64);
        // An unseen state stays unseen through reads and extensions (a read linearized only
        // leaves fewer readers to see it).
        let input = &ops[op_index].input;
        let next_unseen = if state_unseen && (model.read_only(input) || model.only_extends(input)) {
            true
        } else {
            unseen(&next_state, &linearized)
        };
        let id = if next_unseen {
            UNSEEN
        } else {
            match state_ids.get(&next_state) {
                Some(&id) => id,
                None => {
                    let fresh = state_ids.len() as u32;
                    state_ids.insert(next_state.clone(), fresh);
                    fresh
                }
            }
        };
        if !cache.insert((linearized.clone(), id)) {
            linearized[op_index / 64] &= !(1u64 << (op_index % 64));
            continue;
        }
        let old_unseen = std::mem::replace(&mut state_unseen, next_unseen);
        level.chosen = Some((call, std::mem::replace(&mut state, next_state), old_unseen));
        lift(&mut entries, call, return_of[op_index]);
        if entries[0].next == NIL {
            return (Some(true), cache.len());
        }
        levels.push(Level {
            candidates: candidates(&entries, &state),
            next: 0,
            chosen: None,
        });
    }
    (Some(false), cache.len())
}

/// How far ahead (calls and returns) the search looks for the next read that rules out orders.
const GUIDE_HORIZON: usize = 64;

/// Shrinks a failing partition to a small subset that explains the violation, and says
/// whether the subset is minimal (false if the shrinking budget ran out first).
///
/// 1. Cut the history after the shortest failing prefix (in call order); its last call is the
///    *culprit*, the operation that cannot be placed.
/// 2. Drop other operations one at a time, keeping a drop only if the rest still fails, the rest
///    without the culprit still linearizes (so the culprit stays the reason), and, when the
///    culprit's answer was possible at all, it stays possible in some order of the others (so
///    the write that produced a stale value is kept, and the reader sees where it came from).
fn shrink<M: Model>(model: &M, mut ops: Vec<ModelOp<M>>) -> (Vec<ModelOp<M>>, bool) {
    const BUDGET: usize = 2_000;
    const SEARCH: usize = 200_000;
    // Only definite answers count: an undecided search keeps the operation.
    let fails = |ops: &[ModelOp<M>]| search(model, ops, SEARCH) == Some(false);
    let passes = |ops: &[ModelOp<M>]| search(model, ops, SEARCH) == Some(true);
    let mut checks = 0;
    ops.sort_by_key(|op| (op.call, op.ret));
    let (mut lo, mut hi) = (1, ops.len());
    while lo < hi && checks < BUDGET {
        let mid = (lo + hi) / 2;
        checks += 1;
        if !fails(&ops[..mid]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    // Adding operations can make a history linearizable again, so the search above is a
    // heuristic: keep its prefix only if it really fails.
    if fails(&ops[..hi]) {
        ops.truncate(hi);
    }
    let mut culprit = ops.len() - 1;
    let without = |ops: &[ModelOp<M>], skip: usize| -> Vec<ModelOp<M>> {
        ops.iter()
            .enumerate()
            .filter(|(k, _)| *k != skip)
            .map(|(_, op)| op.clone())
            .collect()
    };
    let keep_plausible = plausible(model, &without(&ops, culprit), &ops[culprit]) == Some(true);
    // Delta debugging: try dropping large chunks first (cheap searches on small histories),
    // then ever smaller ones, down to single operations.
    let mut chunk = (ops.len() / 2).max(1);
    loop {
        let mut start = 0;
        while start < ops.len() {
            if checks >= BUDGET {
                return (ops, false);
            }
            let end = (start + chunk).min(ops.len());
            // Drop ops[start..end], except the culprit and the operations that witness its answer.
            let keep = |k: usize| {
                k == culprit
                    || model.witnesses(
                        &ops[culprit].input,
                        ops[culprit].output.as_ref(),
                        &ops[k].input,
                    )
            };
            let dropped: Vec<usize> = (start..end).filter(|&k| !keep(k)).collect();
            if dropped.is_empty() {
                start = end;
                continue;
            }
            let candidate: Vec<ModelOp<M>> = ops
                .iter()
                .enumerate()
                .filter(|(k, _)| !dropped.contains(k))
                .map(|(_, op)| op.clone())
                .collect();
            let culprit_there = culprit - dropped.iter().filter(|&&k| k < culprit).count();
            checks += 1;
            let others = without(&candidate, culprit_there);
            let explains = fails(&candidate)
                && passes(&others)
                && (!keep_plausible
                    || plausible(model, &others, &candidate[culprit_there]) == Some(true));
            if explains {
                ops = candidate;
                culprit = culprit_there;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    (ops, true)
}

/// Whether `culprit`'s answer is legal in some state reachable by linearizing some prefix of
/// `others` (its timing aside). `None` when there are too many orders to tell.
fn plausible<M: Model>(model: &M, others: &[ModelOp<M>], culprit: &ModelOp<M>) -> Option<bool> {
    const LIMIT: usize = 100_000;
    let n = others.len();
    let words = n.div_ceil(64).max(1);
    let mut seen: BTreeSet<(Vec<u64>, M::State)> = BTreeSet::new();
    let mut stack = vec![(vec![0u64; words], model.init())];
    while let Some((done, state)) = stack.pop() {
        if model
            .step(&state, &culprit.input, culprit.output.as_ref())
            .is_some()
        {
            return Some(true);
        }
        if !seen.insert((done.clone(), state.clone())) {
            continue;
        }
        if seen.len() > LIMIT {
            return None;
        }
        let is_done = |k: usize| done[k / 64] & (1 << (k % 64)) != 0;
        // An operation can come next if no other pending one returned before it was called.
        let first_return = (0..n)
            .filter(|&k| !is_done(k))
            .filter_map(|k| others[k].ret)
            .min()
            .unwrap_or(u64::MAX);
        for k in (0..n).filter(|&k| !is_done(k) && others[k].call <= first_return) {
            if let Some(next) = model.step(&state, &others[k].input, others[k].output.as_ref()) {
                let mut bits = done.clone();
                bits[k / 64] |= 1 << (k % 64);
                stack.push((bits, next));
            }
        }
    }
    Some(false)
}

/// Draws operations as bars on a shared time axis, one per line, in call order.
pub fn timeline<M: Model>(model: &M, ops: &[ModelOp<M>]) -> String {
    let mut times: Vec<u64> = ops
        .iter()
        .flat_map(|op| [op.call, op.ret.unwrap_or(u64::MAX)])
        .collect();
    times.sort_unstable();
    times.dedup();
    let column = |t: u64| times.binary_search(&t).expect("collected") * 3;
    let width = times.len() * 3;
    let mut sorted: Vec<&ModelOp<M>> = ops.iter().collect();
    sorted.sort_by_key(|op| (op.call, op.ret));
    let mut out = String::new();
    for op in sorted {
        let start = column(op.call);
        let end = op.ret.map_or(width, column);
        let mut bar = " ".repeat(start);
        bar.push('|');
        bar.push_str(&"-".repeat(end.saturating_sub(start + 1)));
        bar.push(if op.ret.is_some() { '|' } else { '>' });
        let ret = op.ret.map_or("never".to_string(), |r| r.to_string());
        out.push_str(&format!(
            "  client {:>3} {:<width$}  {}  [{} .. {}]\n",
            op.client,
            bar,
            model.describe(&op.input, op.output.as_ref()),
            op.call,
            ret,
            width = width + 1
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::models::{Kv, KvInput, KvOutput, Register, RegisterInput, RegisterOutput};
    use super::*;

    fn op(
        client: u64,
        input: RegisterInput,
        output: Option<RegisterOutput>,
        call: u64,
        ret: Option<u64>,
    ) -> Op<RegisterInput, RegisterOutput> {
        Op {
            client,
            input,
            output,
            call,
            ret,
        }
    }

    /// Porcupine's hand-written cases (from MIT 6.824's 2017 quiz).
    #[test]
    fn quiz_histories() {
        let model = Register::with_initial(Some(0));
        let ok = vec![
            op(
                0,
                RegisterInput::Write(100),
                Some(RegisterOutput::Written),
                0,
                Some(100),
            ),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(100))),
                25,
                Some(75),
            ),
            op(
                2,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(0))),
                30,
                Some(60),
            ),
        ];
        assert!(check(&model, &ok).is_linearizable());
        let bad = vec![
            op(
                0,
                RegisterInput::Write(200),
                Some(RegisterOutput::Written),
                0,
                Some(100),
            ),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(200))),
                10,
                Some(30),
            ),
            op(
                2,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(0))),
                40,
                Some(90),
            ),
        ];
        let Verdict::NotLinearizable(v) = check(&model, &bad) else {
            panic!("not linearizable")
        };
        assert!(v.minimal);
        assert_eq!(
            v.explanation.lines().count(),
            3,
            "all three are needed:\n{v}"
        );
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_take_effect() {
        let model = Register::with_initial(Some(0));
        // A write that timed out, then a read of its value: it took effect.
        let took_effect = vec![
            op(0, RegisterInput::Write(7), None, 0, None),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(7))),
                10,
                Some(20),
            ),
        ];
        assert!(check(&model, &took_effect).is_linearizable());
        // The same write, then a read of the old value: it did not (yet).
        let did_not = vec![
            op(0, RegisterInput::Write(7), None, 0, None),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(0))),
                10,
                Some(20),
            ),
        ];
        assert!(check(&model, &did_not).is_linearizable());
        // But it cannot take effect and then be undone.
        let flicker = vec![
            op(0, RegisterInput::Write(7), None, 0, None),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(7))),
                10,
                Some(20),
            ),
            op(
                1,
                RegisterInput::Read,
                Some(RegisterOutput::Read(Some(0))),
                30,
                Some(40),
            ),
        ];
        assert!(!check(&model, &flicker).is_linearizable());
    }

    #[test]
    fn unanswered_operations_that_cannot_matter_are_left_out() {
        let model = Register::with_initial(Some(0));
        let mut ops = vec![op(0, RegisterInput::Read, None, 0, None)];
        for i in 1..40u64 {
            // Writes that never answered and whose values nobody read.
            ops.push(op(i, RegisterInput::Write(100 + i as i64), None, i, None));
        }
        ops.push(op(
            50,
            RegisterInput::Read,
            Some(RegisterOutput::Read(Some(0))),
            60,
            Some(70),
        ));
        assert_eq!(
            prune(&model, ops.clone()).len(),
            1,
            "only the answered read matters"
        );
        assert!(check(&model, &ops).is_linearizable());
        // A write whose value was read stays: without it the read would be unexplained.
        ops.push(op(
            60,
            RegisterInput::Read,
            Some(RegisterOutput::Read(Some(105))),
            80,
            Some(90),
        ));
        assert_eq!(prune(&model, ops.clone()).len(), 3);
        assert!(check(&model, &ops).is_linearizable());
    }

    #[test]
    fn a_search_too_large_is_undecided_not_guessed() {
        let model = Kv;
        // Twelve concurrent appends that never answered, each seen twice by a final read, so no
        // order explains it; and a put that never answered, whose value the read starts with,
        // so it might have replaced the value at any point and the read cannot rule orders out:
        // the search must try many.
        let mut ops = vec![Op {
            client: 98,
            input: KvInput::Put("k".into(), "[11]".into()),
            output: None,
            call: 0,
            ret: None,
        }];
        let mut read = String::new();
        for i in 0..12u64 {
            let input = KvInput::Append("k".into(), format!("[{i}]"));
            ops.push(Op {
                client: i,
                input,
                output: None,
                call: i,
                ret: None,
            });
            read = format!("[{i}]{read}[{i}]");
        }
        let get = KvInput::Get("k".into());
        ops.push(Op {
            client: 99,
            input: get,
            output: Some(KvOutput::Value(read)),
            call: 100,
            ret: Some(101),
        });
        assert!(matches!(
            check_within(&model, &ops, 1_000),
            Verdict::Undecided { .. }
        ));
    }

    /// Concurrent appends (answered or not), each `(call, ret)`, then a read at `read_at`
    /// showing `shown` in that order.
    fn appends_then_read(
        appends: &[(u64, Option<u64>)],
        shown: &[usize],
        read_at: u64,
    ) -> Vec<Op<KvInput, KvOutput>> {
        let mut ops: Vec<Op<KvInput, KvOutput>> = appends
            .iter()
            .enumerate()
            .map(|(i, &(call, ret))| Op {
                client: i as u64,
                input: KvInput::Append("k".into(), format!("[{i}]")),
                output: ret.map(|_| KvOutput::Written),
                call,
                ret,
            })
            .collect();
        let value: String = shown.iter().map(|i| format!("[{i}]")).collect();
        ops.push(Op {
            client: 99,
            input: KvInput::Get("k".into()),
            output: Some(KvOutput::Value(value)),
            call: read_at,
            ret: Some(read_at + 1),
        });
        ops
    }

    #[test]
    fn a_read_orders_a_burst_of_concurrent_appends_without_trying_their_permutations() {
        // Twelve appends, all concurrent, answered in the reverse of the order they took
        // effect (as replies overtake each other): 12! orders, but the read shows the one.
        let appends: Vec<(u64, Option<u64>)> = (0..12).map(|i| (i, Some(50 - i))).collect();
        let order: Vec<usize> = vec![3, 0, 11, 7, 1, 9, 4, 10, 2, 8, 5, 6];
        let ops = appends_then_read(&appends, &order, 60);
        assert_eq!(check_within(&Kv, &ops, 1_000), Verdict::Linearizable);
        // The read shows one append twice: no order explains it, and that is found as fast.
        let mut twice = order.clone();
        twice.push(3);
        let ops = appends_then_read(&appends, &twice, 60);
        assert!(matches!(
            check_within(&Kv, &ops, 1_000),
            Verdict::NotLinearizable(_)
        ));
        // A read that missed an append which returned before it was called is caught too.
        let ops = appends_then_read(&appends, &order[..11], 60);
        assert!(matches!(
            check_within(&Kv, &ops, 1_000),
            Verdict::NotLinearizable(_)
        ));
        // An append that never answered may be left out of what the read shows.
        let mut unanswered = appends.clone();
        unanswered[6] = (6, None);
        let ops = appends_then_read(&unanswered, &order[..11], 60);
        assert_eq!(check_within(&Kv, &ops, 1_000), Verdict::Linearizable);
    }

    #[test]
    fn a_pending_put_the_read_cannot_show_does_not_stop_the_read_ordering_appends() {
        // The burst of twelve appends, and a put concurrent with all of them whose value the
        // read does not start with: the read still shows the appends' order (the put, if it
        // came first, was overwritten by nothing: it must come after the read).
        let appends: Vec<(u64, Option<u64>)> = (0..12).map(|i| (i, Some(50 - i))).collect();
        let order: Vec<usize> = vec![3, 0, 11, 7, 1, 9, 4, 10, 2, 8, 5, 6];
        let mut ops = appends_then_read(&appends, &order, 60);
        ops.push(Op {
            client: 50,
            input: KvInput::Put("k".into(), "p".into()),
            output: Some(KvOutput::Written),
            call: 0,
            ret: Some(70),
        });
        assert_eq!(check_within(&Kv, &ops, 1_000), Verdict::Linearizable);
        // A put the read does start with may reset the state before any of the appends, so
        // every order of those it overwrites stays possible: the put is tried first, and the
        // read orders the appends after it.
        let shown: String = order.iter().map(|i| format!("[{i}]")).collect();
        let get = ops.iter_mut().find(|o| o.client == 99).unwrap();
        get.output = Some(KvOutput::Value(format!("p{shown}")));
        assert_eq!(check_within(&Kv, &ops, 1_000), Verdict::Linearizable);
    }

    #[test]
    fn orders_of_appends_a_put_overwrites_unseen_count_as_one() {
        // Eight concurrent appends no read shows, then a put, then a read of that put plus
        // something never written. Nothing explains the read, and to be sure the search must
        // rule out every way of placing the appends: 8! orders, each a different string, but
        // only 2^8 sets once states no remaining read can see are one state.
        let mut ops: Vec<Op<KvInput, KvOutput>> = (0..8u64)
            .map(|i| Op {
                client: i,
                input: KvInput::Append("k".into(), format!("[{i}]")),
                output: Some(KvOutput::Written),
                call: i,
                ret: Some(20 + i),
            })
            .collect();
        ops.push(Op {
            client: 8,
            input: KvInput::Put("k".into(), "p".into()),
            output: Some(KvOutput::Written),
            call: 30,
            ret: Some(31),
        });
        ops.push(Op {
            client: 9,
            input: KvInput::Get("k".into()),
            output: Some(KvOutput::Value("p[9]".into())),
            call: 40,
            ret: Some(41),
        });
        let (verdict, states) = check_counting(&Kv, &ops, 1_000);
        assert!(
            matches!(verdict, Verdict::NotLinearizable(_)),
            "{verdict:?}"
        );
        assert!(states <= 2 * 256, "{states} states");
        // A read that does see one of the appends keeps its states apart (and is explained).
        ops[9].output = Some(KvOutput::Value("[3]".into()));
        ops[9].call = 25;
        ops[9].ret = Some(26);
        assert!(matches!(
            check_within(&Kv, &ops, 1_000),
            Verdict::NotLinearizable(_)
        ));
        ops[9].output = Some(KvOutput::Value("p".into()));
        ops[9].call = 40;
        ops[9].ret = Some(41);
        assert_eq!(check_within(&Kv, &ops, 1_000), Verdict::Linearizable);
    }

    #[test]
    fn the_explanation_is_a_small_timeline() {
        let model = Register::with_initial(Some(0));
        let mut ops = Vec::new();
        // Twenty harmless sequential writes and reads, then a stale read.
        for i in 0..20u64 {
            ops.push(op(
                0,
                RegisterInput::Write(i as i64 + 1),
                Some(RegisterOutput::Written),
                i * 10,
                Some(i * 10 + 5),
            ));
        }
        ops.push(op(
            1,
            RegisterInput::Read,
            Some(RegisterOutput::Read(Some(3))),
            300,
            Some(310),
        ));
        let Verdict::NotLinearizable(v) = check(&model, &ops) else {
            panic!()
        };
        assert_eq!(v.ops_on_key, 21);
        let lines: Vec<&str> = v.explanation.lines().collect();
        // The stale read, the write it read from, and a later write it missed.
        assert_eq!(lines.len(), 3, "{}", v.explanation);
        assert!(lines[0].contains("write 3 -> ok"), "{}", v.explanation);
        assert!(
            lines[1].contains("write ") && !lines[1].contains("write 3 "),
            "{}",
            v.explanation
        );
        assert!(lines[2].contains("read -> 3"), "{}", v.explanation);
        assert!(v.minimal);
        println!("{v}");
    }
}
