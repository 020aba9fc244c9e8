//! Exhaustive exploration, proven on a small counter whose writers either increment it at the
//! store (correct) or read it and write back one more (a lost update, when two interleave).

use serde::Serialize;
use simlab_sim::explore::{ExploreLimits, Search, explore};
use simlab_sim::*;

/// Node 0 stores a counter; every other node adds one to it, once, `delay_ms` × its number
/// after it starts.
#[derive(Clone, Debug, Default)]
struct Counter {
    id: u32,
    value: u64,
    writes: u64,
    /// Read the value, then write it back plus one (the planted bug); else ask the store to
    /// increment.
    racy: bool,
    delay_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
enum Msg {
    Read,
    Value(u64),
    Write(u64),
    Increment,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
enum Timer {
    Go,
}

impl Node for Counter {
    type Msg = Msg;
    type Timer = Timer;
    type Request = u64;
    type Response = u64;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.id != 0 {
            ctx.set_timer(
                Time::from_millis(self.delay_ms * u64::from(self.id)),
                Timer::Go,
            );
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Read => ctx.send(from, Msg::Value(self.value)),
            Msg::Value(v) => ctx.send(NodeId(0), Msg::Write(v + 1)),
            Msg::Write(v) => {
                self.value = v;
                self.writes += 1;
            }
            Msg::Increment => {
                self.value += 1;
                self.writes += 1;
            }
        }
    }

    fn on_timer(&mut self, _: Timer, ctx: &mut Ctx<'_, Self>) {
        let ask = if self.racy { Msg::Read } else { Msg::Increment };
        ctx.send(NodeId(0), ask);
    }

    fn on_request(&mut self, _: ReplyTo, _: u64, _: &mut Ctx<'_, Self>) {}

    fn classify(_: &u64) -> ResponseClass {
        ResponseClass::Ok
    }

    fn view(&self, _: &()) -> NodeView {
        NodeView::new("counter").field("value", self.value)
    }
}

fn store<'a>(world: &World<'a, Counter>) -> Option<&'a Counter> {
    world.node(NodeId(0))
}

fn counter(nodes: u32, racy: bool) -> Simulation<Counter> {
    counter_checking(nodes, racy, Vec::new())
}

/// [`counter`] with `more` invariants besides its own.
fn counter_checking(
    nodes: u32,
    racy: bool,
    more: Vec<Box<dyn Invariant<Counter>>>,
) -> Simulation<Counter> {
    let mut c = SimConfig::new(nodes, 1, Time::from_secs(10));
    c.network.latency_ms = LatencyMs::Constant(1);
    let mut invariants = vec![
        FnInvariant::boxed("NoLostUpdate", InvariantKind::Always, |w| match store(w) {
            Some(s) if s.value != s.writes => Err(format!(
                "{} writes left the counter at {}",
                s.writes, s.value
            )),
            _ => Ok(()),
        }),
        FnInvariant::boxed("EveryoneWrote", InvariantKind::Sometimes, |w| {
            match store(w) {
                Some(s) if s.writes + 1 == u64::from(w.cluster_size()) => Ok(()),
                _ => Err("not every writer wrote".into()),
            }
        }),
        FnInvariant::boxed("NeverThree", InvariantKind::Sometimes, |w| match store(w) {
            Some(s) if s.value == 3 => Ok(()),
            _ => Err("never three".into()),
        }),
    ];
    invariants.extend(more);
    let node = move |id: NodeId| Counter {
        id: id.0,
        racy,
        delay_ms: 100,
        ..Counter::default()
    };
    Simulation::new(c, node, None, invariants).expect("valid config")
}

const WIDE: ExploreLimits = ExploreLimits {
    max_depth: 100,
    max_states: 100_000,
};

#[test]
fn random_runs_miss_the_lost_update_that_exploration_finds_at_the_shortest_depth() {
    // The writers go 100 ms apart: on time, the first write lands long before the second read.
    let mut run = counter(3, true);
    assert!(!run.run().violated("NoLostUpdate"));
    // Three writers; two of them suffice.
    let report = explore(&counter(4, true), Search::BreadthFirst, &WIDE);
    let found = report.counterexample.expect("the lost update is found");
    assert_eq!(found.violation.invariant, "NoLostUpdate");
    // The store's start and two writers' (three), their timers, reads, answers and writes
    // (two each): eleven steps, and no shorter schedule loses an update.
    assert_eq!(found.schedule.len(), 11, "{:#?}", found.schedule);
    assert!(!report.complete);

    // Replaying the schedule's choices from the start reproduces it.
    let mut replay = counter(4, true);
    for step in &found.schedule {
        assert!(replay.violations().is_empty());
        replay
            .step_chosen(step.choice)
            .expect("the schedule replays");
    }
    assert_eq!(replay.violations()[0].message, found.violation.message);

    // Depth-first finds it too, by a schedule no shorter.
    let deep = explore(&counter(4, true), Search::DepthFirst, &WIDE);
    assert!(deep.counterexample.expect("found").schedule.len() > 11);
}

#[test]
fn the_correct_counter_is_explored_completely() {
    let bfs = explore(&counter(3, false), Search::BreadthFirst, &WIDE);
    assert!(bfs.counterexample.is_none());
    assert!(bfs.complete);
    assert!(bfs.terminal_states >= 1);
    // Every order of the same events reaches the same final state: one terminal state.
    assert_eq!(bfs.terminal_states, 1);
    let dfs = explore(&counter(3, false), Search::DepthFirst, &WIDE);
    assert!(dfs.complete);
    assert_eq!(dfs.unique_states, bfs.unique_states, "the same state space");
    assert_eq!(
        bfs.sometimes,
        vec![
            ("EveryoneWrote".to_string(), true),
            ("NeverThree".to_string(), false)
        ]
    );
    // Four writers reach three and more states.
    let four = explore(&counter(4, false), Search::BreadthFirst, &WIDE);
    assert!(four.complete && four.unique_states > bfs.unique_states);
    assert!(four.sometimes.iter().all(|(_, held)| *held));
}

#[test]
fn limits_cut_the_search_short_and_say_so() {
    let shallow = explore(
        &counter(3, false),
        Search::BreadthFirst,
        &ExploreLimits {
            max_depth: 4,
            max_states: 100_000,
        },
    );
    assert!(!shallow.complete);
    assert_eq!(shallow.deepest, 4);
    assert_eq!(shallow.terminal_states, 0);
    let few = explore(
        &counter(3, false),
        Search::BreadthFirst,
        &ExploreLimits {
            max_depth: 100,
            max_states: 10,
        },
    );
    assert!(!few.complete);
    assert_eq!(few.unique_states, 10);
}

/// Everything a report says, to compare reports whole.
fn whole(report: &simlab_sim::explore::Report) -> String {
    format!("{report:?}")
}

/// A breadth-first search on `jobs` threads: the whole report, with the unique states at each
/// call of the observer, and the unique states.
fn explore_on(sim: &Simulation<Counter>, limits: &ExploreLimits, jobs: usize) -> (String, u64) {
    let mut progress = Vec::new();
    let report = simlab_sim::explore::explore_observed(
        sim,
        Search::BreadthFirst,
        limits,
        jobs,
        &mut |report| {
            progress.push(report.unique_states);
            std::ops::ControlFlow::Continue(())
        },
    );
    (
        format!("{} {progress:?}", whole(&report)),
        report.unique_states,
    )
}

#[test]
fn every_thread_count_gives_the_same_report() {
    let cut = ExploreLimits {
        max_depth: 8,
        max_states: 600,
    };
    // Seven writers have 18,571 states: the observer is called once, at 16,384.
    let mut observed = false;
    for (writers, racy) in [(4, false), (5, false), (4, true), (5, true), (7, false)] {
        for limits in [&WIDE, &cut] {
            let sim = counter(writers + 1, racy);
            let (alone, states) = explore_on(&sim, limits, 1);
            // More than one batch on four threads (64 states each), so batches are shared out
            // in chunks and merged back.
            assert!(states > 256, "{alone}");
            observed |= !alone.ends_with("[]");
            for jobs in 2..=4 {
                assert_eq!(
                    explore_on(&sim, limits, jobs).0,
                    alone,
                    "{writers} writers, racy {racy}, {limits:?}, {jobs} threads"
                );
            }
        }
    }
    assert!(observed, "some search is long enough to show its progress");
    // The racy counter's lost update, with its schedule, whatever the thread count.
    let sim = counter(5, true);
    let report =
        simlab_sim::explore::explore_observed(&sim, Search::BreadthFirst, &WIDE, 3, &mut |_| {
            std::ops::ControlFlow::Continue(())
        });
    assert_eq!(report.counterexample.expect("found").schedule.len(), 11);
    // Depth-first search runs on one thread whatever it is given: the same report.
    let deep = |jobs| {
        whole(&simlab_sim::explore::explore_observed(
            &counter(4, false),
            Search::DepthFirst,
            &WIDE,
            jobs,
            &mut |_| std::ops::ControlFlow::Continue(()),
        ))
    };
    assert_eq!(deep(3), deep(1));
}

#[test]
fn a_panic_on_a_worker_thread_reaches_the_caller_and_nothing_hangs() {
    let panics_at_three =
        FnInvariant::boxed("PanicsAtThree", InvariantKind::Always, |w| match store(w) {
            Some(s) if s.value == 3 => panic!("a planted panic at three"),
            _ => Ok(()),
        });
    let sim = counter_checking(6, false, vec![panics_at_three]);
    for jobs in [1, 2, 4] {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            explore_on(&sim, &WIDE, jobs)
        }));
        let panic = caught.expect_err("the invariant panics");
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned());
        assert_eq!(
            message.as_deref(),
            Some("a planted panic at three"),
            "{jobs} threads"
        );
    }
}

/// Answers every request at once.
#[derive(Clone, Debug, Default)]
struct Echo;

impl Node for Echo {
    type Msg = ();
    type Timer = ();
    type Request = u64;
    type Response = u64;
    type Durable = ();

    fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}

    fn on_message(&mut self, _: NodeId, _: (), _: &mut Ctx<'_, Self>) {}

    fn on_timer(&mut self, _: (), _: &mut Ctx<'_, Self>) {}

    fn on_request(&mut self, to: ReplyTo, request: u64, ctx: &mut Ctx<'_, Self>) {
        ctx.reply(to, request);
    }

    fn classify(_: &u64) -> ResponseClass {
        ResponseClass::Ok
    }

    fn view(&self, _: &()) -> NodeView {
        NodeView::new("echo")
    }
}

#[derive(Clone, Debug)]
struct Seven;

impl Workload<u64> for Seven {
    fn next_request(&mut self, _: ClientId, _: u64, _: &mut SimRng) -> u64 {
        7
    }
}

/// Two echo nodes and one client with one operation of `attempts` sends.
fn echo(attempts: u32, explore_mode: bool) -> Simulation<Echo> {
    let mut c = SimConfig::new(2, 1, Time::from_secs(10));
    c.clients = ClientConfig {
        count: 1,
        ops: 1,
        attempts,
        spread: true,
        ..ClientConfig::default()
    };
    let mut sim =
        Simulation::new(c, |_| Echo, Some(Box::new(Seven)), Vec::new()).expect("valid config");
    if explore_mode {
        sim.explore_mode();
    }
    sim
}

/// Runs the first enabled event of each kind in `steps`, in turn; returns the kinds enabled
/// after them.
fn run_kinds(sim: &mut Simulation<Echo>, steps: &[StepKind]) -> Vec<StepKind> {
    for kind in steps {
        let choice = sim
            .enabled()
            .into_iter()
            .find(|e| e.kind == *kind)
            .unwrap_or_else(|| panic!("no {kind:?} enabled: {:?}", sim.enabled()))
            .choice;
        sim.step_chosen(choice).unwrap();
    }
    sim.enabled().into_iter().map(|e| e.kind).collect()
}

#[test]
fn an_answer_nobody_waits_for_is_no_choice_in_an_exploration() {
    use StepKind::*;
    // The only send times out (the operation ends unknown), then the node answers it.
    let late_answer = [Start, Start, ClientInvoke, ClientTimeout, Request];
    assert_eq!(run_kinds(&mut echo(1, false), &late_answer), vec![Reply]);
    let mut explored = echo(1, true);
    assert_eq!(run_kinds(&mut explored, &late_answer), vec![]);
    explored.end_chosen();
    assert!(explored.is_done());

    // The first send times out and the client tries again; both sends are answered, and the
    // first answer ends the operation: the second answer and the retry's timeout are left.
    let two_answers = [
        Start,
        Start,
        ClientInvoke,
        ClientTimeout,
        Request,
        Request,
        Reply,
    ];
    let mut left = run_kinds(&mut echo(2, false), &two_answers);
    left.sort_by_key(|kind| format!("{kind:?}"));
    assert_eq!(left, vec![ClientTimeout, Reply]);
    assert_eq!(run_kinds(&mut echo(2, true), &two_answers), vec![]);
}

#[test]
fn a_search_that_starts_mid_run_fingerprints_the_messages_already_in_flight() {
    let mut sim = counter(3, true);
    while sim.in_flight().is_empty() {
        assert!(sim.step(), "the writers send before the run ends");
    }
    // Messages queued by a random run carry no hash; explore mode must give them theirs.
    let before = sim.fingerprint();
    sim.explore_mode();
    assert_eq!(sim.fingerprint(), before);
}

/// Incremented by every [`Unrepeatable`] handler, in whatever process runs it.
static DRAWN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Nodes that ping each other back and forth and keep a number read from a process-wide
/// counter: the mistake (like a thread RNG or the wall clock) that makes a step reach another
/// state each time it runs.
#[derive(Clone, Debug, Default)]
struct Unrepeatable {
    drawn: u64,
}

impl Node for Unrepeatable {
    type Msg = ();
    type Timer = ();
    type Request = ();
    type Response = ();
    type Durable = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        for peer in ctx.peers().collect::<Vec<_>>() {
            ctx.send(peer, ());
        }
    }

    fn on_message(&mut self, from: NodeId, _: (), ctx: &mut Ctx<'_, Self>) {
        self.drawn = DRAWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ctx.send(from, ());
    }

    fn on_timer(&mut self, _: (), _: &mut Ctx<'_, Self>) {}

    fn on_request(&mut self, _: ReplyTo, _: (), _: &mut Ctx<'_, Self>) {}

    fn classify(_: &()) -> ResponseClass {
        ResponseClass::Ok
    }
}

/// A search keeps a waiting state as its parent and the step that reaches it, and runs the
/// step again in its turn; a step that reaches another state then is a protocol that is
/// not deterministic, and the search says so rather than explore states it never fingerprinted.
#[test]
#[should_panic(expected = "not deterministic")]
fn a_step_that_reaches_another_state_when_run_again_stops_the_search() {
    let config = SimConfig::new(4, 1, Time::from_secs(10));
    let sim = Simulation::new(config, |_| Unrepeatable::default(), None, Vec::new())
        .expect("valid config");
    // Every state but the start is reached again from its parent, so the first delivery run
    // again stops the search.
    let limits = ExploreLimits {
        max_depth: 100,
        max_states: 1_000_000,
    };
    let report = explore(&sim, Search::BreadthFirst, &limits);
    panic!("{} states, and no step ran again", report.unique_states);
}

/// Walks a path of `sim`'s schedules and, at every state on it, runs each enabled event twice:
/// on a fresh copy, and on a copy made over the simulation the previous event left (with
/// [`Clone::clone_from`], which keeps what the two already share, as a search's scratch copy
/// does). Both must then agree on everything a search or a run reads.
/// Returns how many events it tried.
fn copies_made_over_others_agree<P: simlab_sim::Node>(
    mut sim: Simulation<P>,
    steps: usize,
) -> usize {
    let mut scratch = sim.clone();
    let mut tried = 0;
    for depth in 0..steps {
        let enabled = sim.enabled();
        if enabled.is_empty() {
            break;
        }
        // Share the parts, as a search's expanded state does: the scratch copy then holds
        // some of them as the same `Arc`, and some changed by the last step it ran.
        let _shares = sim.snapshot();
        for event in &enabled {
            scratch.clone_from(&sim);
            let mut fresh = sim.clone();
            scratch.step_chosen(event.choice).unwrap();
            fresh.step_chosen(event.choice).unwrap();
            assert_eq!(scratch.fingerprint(), fresh.fingerprint(), "{event:?}");
            assert_eq!(scratch.trace_hash(), fresh.trace_hash(), "{event:?}");
            assert_eq!(scratch.enabled(), fresh.enabled(), "{event:?}");
            assert_eq!(scratch.violations(), fresh.violations(), "{event:?}");
            assert_eq!(scratch.stats(), fresh.stats(), "{event:?}");
            assert_eq!(
                scratch.sometimes_held(),
                fresh.sometimes_held(),
                "{event:?}"
            );
            tried += 1;
        }
        sim.step_chosen(enabled[depth * 7 % enabled.len()].choice)
            .unwrap();
    }
    let mut fresh = sim.clone();
    scratch.clone_from(&sim);
    let (a, b) = (scratch.finish(), fresh.finish());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    tried
}

#[test]
fn a_copy_made_over_another_simulation_runs_as_a_fresh_copy_does() {
    // Messages, timers, durable writes and invariants that settle and fail.
    let mut racy = counter(5, true);
    racy.explore_mode();
    let tried = copies_made_over_others_agree(racy, 30);
    assert!(tried >= 60, "the counters tried {tried} events");
    // A client, its workload and history, replies and timeouts.
    let tried = copies_made_over_others_agree(echo(2, true), 30);
    assert!(tried >= 15, "the echo tried {tried} events");
}
