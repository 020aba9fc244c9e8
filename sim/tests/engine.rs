//! Engine behaviour, proven with small test nodes (the engine knows no real protocol).

use rand_core::Rng;
use serde::Serialize;
use simlab_sim::faults::ScheduledFault;
use simlab_sim::rng::SimRng;
use simlab_sim::*;

/// A node that gossips a counter: a periodic tick sends a ping to a random peer.
#[derive(Clone, Debug, Default)]
struct Pinger {
    id: u32,
    /// Volatile: pings received since the last (re)start.
    received: u64,
    /// From whom, in order.
    log: Vec<(u32, u64)>,
    first_draw: Option<u64>,
    tick_ms: u64,
    /// Send one message to node 1 at start, then stay quiet (for in-flight tests).
    one_shot: bool,
    /// Reply to requests with a redirect instead of an answer.
    redirect: bool,
    /// Never answer requests.
    mute: bool,
    /// Send this many messages per received message (message storms).
    fan_out: u32,
    /// When asked to leave, exit 50 ms later instead of at once (a handoff).
    slow_leave: bool,
    /// Serve only the keys (request mod 4) this node owns (key mod cluster size); redirect the
    /// others to their owner.
    shard: bool,
    started_at: Vec<Time>,
}

#[derive(Clone, Debug, Serialize)]
enum Msg {
    Ping(u64),
}

#[derive(Clone, Debug, Serialize, PartialEq)]
enum Timer {
    Tick,
    Far,
    LeaveDone,
}

#[derive(Clone, Debug, Default, Serialize)]
struct Durable {
    boots: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
enum Resp {
    Done(u64),
    NotHere,
    Owner(u32),
}

impl Node for Pinger {
    type Msg = Msg;
    type Timer = Timer;
    type Request = u64;
    type Response = Resp;
    type Durable = Durable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.durable_mut().boots += 1;
        self.first_draw = Some(ctx.rng().next_u64());
        self.started_at.push(ctx.now());
        ctx.note(format!("boot {}", ctx.durable().boots));
        if self.one_shot {
            if self.id == 0 {
                ctx.send(NodeId(1), Msg::Ping(7));
            }
            return;
        }
        ctx.set_timer(Time::from_millis(self.tick_ms), Timer::Tick);
        ctx.set_timer(Time::from_secs(3600), Timer::Far);
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        let Msg::Ping(n) = msg;
        self.received += 1;
        self.log.push((from.0, n));
        for i in 0..self.fan_out {
            ctx.send(from, Msg::Ping(n + u64::from(i)));
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.slow_leave {
            ctx.set_timer(Time::from_millis(50), Timer::LeaveDone);
        } else {
            ctx.exit();
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        if timer == Timer::LeaveDone {
            ctx.exit();
            return;
        }
        if timer == Timer::Tick {
            let peers: Vec<NodeId> = ctx.peers().collect();
            if !peers.is_empty() {
                let to = peers[ctx.random_between(0, peers.len() as u64 - 1) as usize];
                ctx.send(to, Msg::Ping(self.received));
            }
            ctx.set_timer(Time::from_millis(self.tick_ms), Timer::Tick);
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: u64, ctx: &mut Ctx<'_, Self>) {
        if self.mute {
            return;
        }
        let owner = (request % 4) as u32 % ctx.cluster_size();
        let resp = if self.redirect {
            Resp::NotHere
        } else if self.shard && owner != self.id {
            Resp::Owner(owner)
        } else {
            Resp::Done(request * 2)
        };
        ctx.reply(reply_to, resp);
    }

    fn classify(response: &Resp) -> ResponseClass {
        match response {
            Resp::Done(_) => ResponseClass::Ok,
            Resp::NotHere => ResponseClass::Redirect(None),
            Resp::Owner(n) => ResponseClass::Redirect(Some(NodeId(*n))),
        }
    }

    fn is_leader(&self) -> bool {
        self.id == 2
    }

    fn view(&self, _durable: &Durable) -> NodeView {
        NodeView::new("pinger").field("received", self.received)
    }
}

#[derive(Clone)]
struct Counting;

impl Workload<u64> for Counting {
    fn next_request(&mut self, client: ClientId, seq: u64, _rng: &mut SimRng) -> u64 {
        u64::from(client.0) * 1_000 + seq
    }

    fn routing_key(&self, request: &u64) -> Option<u64> {
        Some(request % 4)
    }
}

fn pinger(tick_ms: u64) -> impl Fn(NodeId) -> Pinger + Clone {
    move |id| Pinger {
        id: id.0,
        tick_ms,
        ..Pinger::default()
    }
}

fn config(nodes: u32, seed: u64, stop_ms: u64) -> SimConfig {
    let mut c = SimConfig::new(nodes, seed, Time::from_millis(stop_ms));
    c.trace = TraceMode::Full;
    c
}

fn chaos(seed: u64) -> SimConfig {
    let mut c = config(5, seed, 3_000);
    c.network.drop = Probability::new(0.05).unwrap();
    c.network.duplicate = Probability::new(0.05).unwrap();
    c.network.reorder = Probability::new(0.1).unwrap();
    c.network.latency_ms = LatencyMs::Exponential { mean: 5, cap: 40 };
    c.nemesis = Some(NemesisConfig {
        kinds: NemesisKind::ALL.to_vec(),
        interval_ms: (50, 200),
        duration_ms: (50, 300),
        start_ms: 100,
        end_ms: 2_500,
    });
    c.clients = ClientConfig {
        count: 3,
        ops: 50,
        ..ClientConfig::default()
    };
    c
}

fn build(
    c: SimConfig,
    node: impl Fn(NodeId) -> Pinger + Send + Sync + 'static,
) -> Simulation<Pinger> {
    let workload: Box<dyn Workload<u64>> = Box::new(Counting);
    Simulation::new(c, node, Some(workload), vec![]).expect("valid config")
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let a = build(chaos(7), pinger(10)).run();
    let b = build(chaos(7), pinger(10)).run();
    let c = build(chaos(8), pinger(10)).run();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats, b.stats);
    assert_ne!(a.trace_hash, c.trace_hash);
    assert!(a.stats.steps > 1_000, "a busy run: {}", a.stats.steps);
    assert!(
        a.faults.iter().filter(|f| f.random).count() >= 10,
        "the nemesis was active"
    );
    assert!(a.stats.dropped_loss > 0 && a.stats.duplicated > 0 && a.stats.dropped_partition > 0);
}

#[test]
fn trace_mode_does_not_change_the_run() {
    let full = build(chaos(3), pinger(10)).run();
    let mut c = chaos(3);
    c.trace = TraceMode::HashOnly;
    let hash_only = build(c, pinger(10)).run();
    assert_eq!(full.trace_hash, hash_only.trace_hash);
}

#[test]
fn adding_a_node_leaves_other_streams_alone() {
    let mut small = build(config(3, 5, 50), pinger(10));
    let mut large = build(config(4, 5, 50), pinger(10));
    small.run();
    large.run();
    for id in 0..3 {
        let a = small.world().node(NodeId(id)).unwrap().first_draw;
        let b = large.world().node(NodeId(id)).unwrap().first_draw;
        assert_eq!(a, b, "node {id}'s stream moved when a node was added");
    }
}

#[test]
fn removing_a_scheduled_fault_leaves_the_nemesis_alone() {
    let random_faults = |extra: bool| {
        let mut c = chaos(11);
        c.nemesis.as_mut().unwrap().kinds = vec![
            NemesisKind::Partition,
            NemesisKind::Crash,
            NemesisKind::ClockSkew,
        ];
        if extra {
            c.faults.push(ScheduledFault {
                at_ms: 700,
                fault: Fault::Crash(4),
            });
        }
        let outcome = build(c, pinger(10)).run();
        outcome
            .faults
            .into_iter()
            .filter(|f| f.random)
            .map(|f| (f.at, f.fault))
            .collect::<Vec<_>>()
    };
    assert_eq!(random_faults(true), random_faults(false));
}

#[test]
fn events_at_the_same_time_run_in_insertion_order() {
    let mut sim = build(config(4, 1, 1), pinger(1_000));
    while sim.step() {}
    let starts: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| r.kind == StepKind::Start)
        .collect();
    assert_eq!(starts.len(), 4);
    for (i, r) in starts.iter().enumerate() {
        assert_eq!(r.node, Some(NodeId(i as u32)));
        assert_eq!(r.time_us, 0);
    }
}

#[test]
fn crash_loses_volatile_state_and_timers_restart_reads_durable() {
    let mut c = config(3, 2, 1_000);
    c.faults = vec![
        ScheduledFault {
            at_ms: 300,
            fault: Fault::Crash(1),
        },
        ScheduledFault {
            at_ms: 600,
            fault: Fault::Restart(1),
        },
    ];
    let mut sim = build(c, pinger(10));
    while sim.now() < Time::from_millis(299) && sim.step() {}
    assert!(sim.world().node(NodeId(1)).unwrap().received > 0);
    while sim.now() < Time::from_millis(300) && sim.step() {}
    while sim.now() < Time::from_millis(590) && sim.step() {}
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Crashed);
    assert!(sim.world().node(NodeId(1)).is_none());
    assert_eq!(
        sim.world().durable(NodeId(1)).boots,
        1,
        "durable survives the crash"
    );
    // While down, nothing ran on n1: no timer fired and no message was handled.
    let acted_while_down = sim.records().iter().any(|r| {
        r.node == Some(NodeId(1))
            && matches!(r.kind, StepKind::Timer | StepKind::Deliver)
            && (300_000..590_000).contains(&r.time_us)
    });
    assert!(!acted_while_down);
    assert!(
        sim.stats().dropped_crashed > 0,
        "messages to a crashed node are lost"
    );
    sim.run();
    let n1 = sim.world().node(NodeId(1)).unwrap();
    assert_eq!(sim.world().durable(NodeId(1)).boots, 2);
    assert_eq!(
        n1.started_at,
        vec![Time::from_millis(600)],
        "rebuilt from scratch at restart"
    );
    let delivered_since_restart = sim
        .records()
        .iter()
        .filter(|r| {
            r.node == Some(NodeId(1)) && r.kind == StepKind::Deliver && r.time_us >= 600_000
        })
        .count() as u64;
    assert!(delivered_since_restart > 0);
    assert_eq!(
        n1.received, delivered_since_restart,
        "the counter restarted from zero"
    );
}

#[test]
fn a_partition_loses_messages_already_in_flight() {
    let run = |faults: Vec<ScheduledFault>| {
        let mut c = config(2, 1, 100);
        c.network.latency_ms = LatencyMs::Constant(10);
        c.faults = faults;
        let node = |id: NodeId| Pinger {
            id: id.0,
            one_shot: true,
            ..Pinger::default()
        };
        let mut sim = build(c, node);
        let outcome = sim.run();
        (outcome, sim.world().node(NodeId(1)).unwrap().received)
    };
    let (clean, received) = run(vec![]);
    assert_eq!((clean.stats.messages_delivered, received), (1, 1));
    // Cut at 5 ms while the message is on the wire, heal at 6 ms: it is still lost.
    let (cut, received) = run(vec![
        ScheduledFault {
            at_ms: 5,
            fault: Fault::Isolate(1),
        },
        ScheduledFault {
            at_ms: 6,
            fault: Fault::Heal,
        },
    ]);
    assert_eq!((cut.stats.messages_delivered, received), (0, 0));
    assert_eq!(cut.stats.dropped_partition, 1);
}

#[test]
fn a_one_way_cut_blocks_one_direction_only() {
    let mut c = config(2, 4, 1_000);
    c.faults = vec![ScheduledFault {
        at_ms: 0,
        fault: Fault::CutOneWay { from: 0, to: 1 },
    }];
    let mut sim = build(c, pinger(10));
    sim.run();
    let heard_by_1 = &sim.world().node(NodeId(1)).unwrap().log;
    let heard_by_0 = &sim.world().node(NodeId(0)).unwrap().log;
    assert!(heard_by_1.is_empty(), "n0's messages never reach n1");
    assert!(heard_by_0.len() > 50, "n1's messages reach n0");
}

/// Two pingers; n1 is paused from 200 ms to 500 ms.
fn paused_from_200_to_500_ms() -> Simulation<Pinger> {
    let mut c = config(2, 4, 1_000);
    c.network.latency_ms = LatencyMs::Constant(1);
    c.faults = vec![
        ScheduledFault {
            at_ms: 200,
            fault: Fault::Pause(1),
        },
        ScheduledFault {
            at_ms: 500,
            fault: Fault::Resume(1),
        },
    ];
    build(c, pinger(10))
}

#[test]
fn a_paused_node_handles_what_waited_when_it_resumes() {
    let mut sim = paused_from_200_to_500_ms();
    while sim.now() < Time::from_millis(490) && sim.step() {}
    let during = sim.world().node(NodeId(1)).unwrap().received;
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Paused);
    while sim.now() <= Time::from_millis(500) && sim.step() {}
    let after = sim.world().node(NodeId(1)).unwrap().received;
    assert!(
        after >= during + 25,
        "the backlog of ~30 pings ran at resume: {during} -> {after}"
    );
    let n1_acted_while_paused = sim.records().iter().any(|r| {
        r.node == Some(NodeId(1))
            && r.kind != StepKind::Fault
            && (200_001..500_000).contains(&r.time_us)
    });
    assert!(!n1_acted_while_paused);
}

#[test]
fn clock_skew_shifts_now_and_drift_changes_timer_speed() {
    let ticks = |drift_ppm: i32| {
        let mut c = config(2, 4, 1_000);
        c.faults = vec![ScheduledFault {
            at_ms: 0,
            fault: Fault::ClockSkew {
                node: 0,
                offset_ms: 250,
                drift_ppm,
            },
        }];
        let mut sim = build(c, pinger(10));
        sim.run();
        let started = sim.world().node(NodeId(0)).unwrap().started_at.clone();
        let fired = sim
            .records()
            .iter()
            .filter(|r| r.node == Some(NodeId(0)) && r.kind == StepKind::Timer)
            .count();
        (started, fired)
    };
    // The skew fault comes after the start events, so the first start read an unskewed clock;
    // a restart would read the skewed one. Drift is what changes timer rates.
    let (_, normal) = ticks(0);
    let (_, fast) = ticks(100_000);
    let (_, slow) = ticks(-100_000);
    assert!((99..=101).contains(&normal), "{normal}");
    assert!(fast >= 108 && slow <= 92, "fast {fast}, slow {slow}");
}

#[test]
fn skewed_clock_offsets_what_now_reports() {
    let mut c = config(2, 4, 1_000);
    c.faults = vec![
        ScheduledFault {
            at_ms: 10,
            fault: Fault::ClockSkew {
                node: 1,
                offset_ms: 250,
                drift_ppm: 0,
            },
        },
        ScheduledFault {
            at_ms: 20,
            fault: Fault::Crash(1),
        },
        ScheduledFault {
            at_ms: 30,
            fault: Fault::Restart(1),
        },
    ];
    let mut sim = build(c, pinger(10));
    sim.run();
    assert_eq!(
        sim.world().node(NodeId(1)).unwrap().started_at,
        vec![Time::from_millis(280)]
    );
}

#[test]
fn clients_retry_and_record_unknown_fail_and_ok() {
    let history = |node: fn(NodeId) -> Pinger| {
        let mut c = config(3, 9, 10_000);
        c.clients = ClientConfig {
            count: 2,
            ops: 3,
            attempts: 2,
            timeout_ms: 100,
            ..ClientConfig::default()
        };
        let mut sim = build(c, node);
        let outcome = sim.run();
        (sim.history().clone(), outcome)
    };
    let (ok, outcome) = history(|id| Pinger {
        id: id.0,
        tick_ms: 50,
        ..Pinger::default()
    });
    assert_eq!(ok.ops.len(), 6);
    assert!(ok.ops.iter().all(
        |op| matches!(op.completion, Some(Completion::Ok(Resp::Done(v))) if v == op.request * 2)
    ));
    assert_eq!(outcome.cap.ops.ok, 6);
    assert_eq!(outcome.cap.ops.availability(), Some(1.0));

    let (mute, outcome) = history(|id| Pinger {
        id: id.0,
        tick_ms: 50,
        mute: true,
        ..Pinger::default()
    });
    assert!(
        mute.ops
            .iter()
            .all(|op| op.completion == Some(Completion::Unknown) && op.attempts == 2)
    );
    assert_eq!(outcome.cap.ops.unknown, 6);
    assert_eq!(outcome.cap.ops.availability(), Some(0.0));

    let (redirected, _) = history(|id| Pinger {
        id: id.0,
        tick_ms: 50,
        redirect: true,
        ..Pinger::default()
    });
    assert!(
        redirected
            .ops
            .iter()
            .all(|op| matches!(op.completion, Some(Completion::Fail(_))))
    );
}

#[test]
fn availability_is_reported_per_side_of_a_partition() {
    let mut c = config(5, 9, 3_000);
    c.clients = ClientConfig {
        count: 4,
        ops: 200,
        think_ms: (5, 10),
        timeout_ms: 100,
        ..ClientConfig::default()
    };
    c.faults = vec![
        ScheduledFault {
            at_ms: 500,
            fault: Fault::Partition(vec![vec![0, 1, 2], vec![3, 4]]),
        },
        ScheduledFault {
            at_ms: 2_000,
            fault: Fault::Heal,
        },
    ];
    let outcome = build(c, pinger(10)).run();
    let sides: Vec<Side> = outcome.cap.by_side.iter().map(|(s, _)| *s).collect();
    assert_eq!(sides, vec![Side::Healthy, Side::Majority, Side::Minority]);
    assert_eq!(outcome.cap.partitions_injected, 1);
}

#[derive(Clone, Default)]
struct ReceivedAtMost(u64);

impl Invariant<Pinger> for ReceivedAtMost {
    fn name(&self) -> &str {
        "ReceivedAtMost"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Pinger>) -> Result<(), String> {
        for (id, node) in world.live_nodes() {
            if node.received > self.0 {
                return Err(format!(
                    "{id} received {} pings, more than {}",
                    node.received, self.0
                ));
            }
        }
        Ok(())
    }
}

fn invariants() -> Vec<Box<dyn Invariant<Pinger>>> {
    vec![
        Box::new(ReceivedAtMost(20)),
        FnInvariant::boxed("SomeoneHeardTen", InvariantKind::Sometimes, |w| {
            if w.live_nodes().any(|(_, n)| n.received >= 10) {
                Ok(())
            } else {
                Err("no".into())
            }
        }),
        FnInvariant::boxed("SomeoneHeardAMillion", InvariantKind::Sometimes, |w| {
            if w.live_nodes().any(|(_, n)| n.received >= 1_000_000) {
                Ok(())
            } else {
                Err("no".into())
            }
        }),
        FnInvariant::boxed("AllUp", InvariantKind::Eventually, |w| {
            match (0..w.cluster_size()).find(|&i| w.status(NodeId(i)) != NodeStatus::Up) {
                Some(i) => Err(format!("n{i} is not up")),
                None => Ok(()),
            }
        }),
        HistoryInvariant::boxed("NoUnknownOps", |h| {
            match h
                .ops
                .iter()
                .find(|op| op.completion == Some(Completion::Unknown))
            {
                Some(op) => Err(format!("{} op {} is unknown", op.client, op.seq)),
                None => Ok(()),
            }
        }),
    ]
}

#[test]
fn invariants_of_every_kind_catch_what_they_should() {
    let mut c = config(3, 1, 2_000);
    c.faults = vec![ScheduledFault {
        at_ms: 1_000,
        fault: Fault::Crash(2),
    }];
    c.clients = ClientConfig {
        count: 1,
        ops: 3,
        ..ClientConfig::default()
    };
    let node = |id: NodeId| Pinger {
        id: id.0,
        tick_ms: 10,
        mute: id.0 == 0,
        ..Pinger::default()
    };
    let workload: Box<dyn Workload<u64>> = Box::new(Counting);
    let mut sim = Simulation::new(c, node, Some(workload), invariants()).unwrap();
    let outcome = sim.run();
    let names: Vec<&str> = outcome
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect();
    assert!(names.contains(&"ReceivedAtMost"), "{names:?}");
    assert!(names.contains(&"SomeoneHeardAMillion"));
    assert!(names.contains(&"AllUp"), "n2 stays crashed");
    assert!(!names.contains(&"SomeoneHeardTen"));
    assert_eq!(outcome.reached.len(), 1);
    // The always-invariant is reported at the first step where it failed, exactly once.
    let v = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "ReceivedAtMost")
        .unwrap();
    assert_eq!(
        outcome
            .violations
            .iter()
            .filter(|v| v.invariant == "ReceivedAtMost")
            .count(),
        1
    );
    let record = &sim.records()[v.step as usize];
    assert_eq!(record.kind, StepKind::Deliver);
    assert!(record.violations[0].starts_with("ReceivedAtMost"));
    let before = &sim.records()[..v.step as usize];
    assert!(before.iter().all(|r| r.violations.is_empty()));
    assert!(v.message.contains("received 21 pings"), "{}", v.message);
    // Client 0's ops that went to the mute node became unknown, which the history check sees.
    let unknown = sim
        .history()
        .ops
        .iter()
        .any(|op| op.completion == Some(Completion::Unknown));
    assert_eq!(outcome.violated("NoUnknownOps"), unknown);
}

/// A history check that cannot decide: neither held nor violated.
#[derive(Clone)]
struct Undecidable;

impl Invariant<Pinger> for Undecidable {
    fn name(&self) -> &str {
        "Undecidable"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::History
    }
    fn check_history(&mut self, _: &History<u64, Resp>) -> Result<(), String> {
        Ok(())
    }
    fn undecided(&self) -> Option<String> {
        Some("out of budget".into())
    }
}

#[test]
fn an_undecided_check_is_reported_as_undecided_not_held_or_violated() {
    let c = config(3, 1, 500);
    let node = |id: NodeId| Pinger {
        id: id.0,
        tick_ms: 10,
        ..Pinger::default()
    };
    let invariants: Vec<Box<dyn Invariant<Pinger>>> = vec![Box::new(Undecidable)];
    let outcome = Simulation::new(c, node, None, invariants).unwrap().run();
    assert!(outcome.violations.is_empty());
    assert_eq!(
        outcome.undecided,
        vec![("Undecidable".to_string(), "out of budget".to_string())]
    );
    assert_eq!(outcome.cap.consistency_undecided, ["Undecidable"]);
    assert!(outcome.cap.consistency_held.is_empty());
    assert_eq!(outcome.cap.consistency_verdict(), "undecided: Undecidable");
    assert_eq!(Expect::AllHold.verdict(&outcome), ExpectVerdict::Undecided);
    assert!(!Expect::AllHold.is_met(&outcome));
    let violates = Expect::Violates("Undecidable".into());
    assert_eq!(violates.verdict(&outcome), ExpectVerdict::Undecided);
    let others = Expect::Holds(vec!["SomethingElse".into()]);
    assert_eq!(others.verdict(&outcome), ExpectVerdict::Met);
}

#[test]
fn a_run_asked_to_stop_at_the_first_violation_says_so() {
    let mut c = config(3, 1, 2_000);
    c.faults = vec![ScheduledFault {
        at_ms: 1_000,
        fault: Fault::Crash(2),
    }];
    c.stop_on_violation = true;
    let node = |id: NodeId| Pinger {
        id: id.0,
        tick_ms: 10,
        ..Pinger::default()
    };
    let mut sim = Simulation::new(c, node, None, invariants()).unwrap();
    let outcome = sim.run();
    assert_eq!(outcome.stop_reason, StopReason::FirstViolation);
    assert_eq!(
        outcome.stop_reason.to_string(),
        "stopped at the first violation"
    );
    assert!(!outcome.stop_reason.is_normal());
    // Only the violation that stopped it: no end-of-run verdicts on a run cut short (n2 is
    // down, but AllUp is not judged).
    let names: Vec<&str> = outcome
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect();
    assert_eq!(names, ["ReceivedAtMost"]);
    assert!(outcome.stats.end_time < Time::from_millis(2_000));
}

#[test]
fn eventually_invariants_report_convergence_time() {
    let mut c = config(3, 1, 2_000);
    c.faults = vec![
        ScheduledFault {
            at_ms: 500,
            fault: Fault::Crash(2),
        },
        ScheduledFault {
            at_ms: 800,
            fault: Fault::Heal,
        },
        ScheduledFault {
            at_ms: 1_000,
            fault: Fault::Restart(2),
        },
    ];
    let invariants = invariants()
        .into_iter()
        .filter(|i| i.name() == "AllUp")
        .collect();
    let mut sim = Simulation::new(c, pinger(10), None, invariants).unwrap();
    let outcome = sim.run();
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert_eq!(outcome.cap.faults_over_at, Some(Time::from_millis(1_000)));
    assert_eq!(outcome.cap.convergence, Some(Time::ZERO));
}

#[test]
fn step_and_queue_limits_stop_the_run_with_a_reason() {
    let mut c = config(3, 1, 10_000);
    c.limits.max_steps = 500;
    let outcome = build(c, pinger(1)).run();
    assert_eq!(outcome.stop_reason, StopReason::StepLimit(500));
    assert_eq!(outcome.stats.steps, 500);
    assert!(outcome.stop_reason.to_string().contains("max_steps"));
    assert!(
        !Expect::AllHold.is_met(&outcome),
        "a cut-short run proves nothing"
    );

    let mut c = config(3, 1, 10_000);
    c.limits.max_queue = 1_000;
    let storm = |id: NodeId| Pinger {
        id: id.0,
        tick_ms: 10,
        fan_out: 2,
        ..Pinger::default()
    };
    let outcome = build(c, storm).run();
    assert_eq!(outcome.stop_reason, StopReason::QueueLimit(1_000));
}

#[test]
fn impossible_configurations_are_errors_not_panics() {
    let err = |c: SimConfig| Simulation::new(c, pinger(10), None, vec![]).unwrap_err();
    assert_eq!(err(config(0, 1, 10)).field, "nodes");
    let mut c = config(5, 1, 100);
    c.faults.push(ScheduledFault {
        at_ms: 1,
        fault: Fault::Crash(7),
    });
    let e = err(c);
    assert_eq!(e.field, "faults[0].fault");
    assert!(e.rule.contains("node 7 does not exist"), "{e}");
    let mut c = config(5, 1, 100);
    c.faults.push(ScheduledFault {
        at_ms: 500,
        fault: Fault::Heal,
    });
    assert_eq!(err(c).field, "faults[0].at_ms");
    assert_eq!(err(config(5, 1, 0)).field, "stop_ms");
    let mut c = config(5, 1, 100);
    c.clients.count = 1;
    assert_eq!(
        err(c.clone()).field,
        "clients.ops",
        "clients with nothing to do"
    );
    c.clients.ops = 1;
    assert_eq!(err(c).field, "clients", "clients without a workload");
}

#[test]
fn faults_on_the_leader_resolve_to_a_node_or_are_skipped() {
    let mut c = config(3, 1, 100);
    c.faults = vec![ScheduledFault {
        at_ms: 10,
        fault: Fault::CrashLeader,
    }];
    let outcome = build(c, pinger(10)).run();
    assert_eq!(
        outcome.faults[0].fault,
        Fault::Crash(2),
        "Pinger n2 claims to lead"
    );
    let mut c = config(2, 1, 100);
    c.faults = vec![ScheduledFault {
        at_ms: 10,
        fault: Fault::IsolateLeader,
    }];
    let outcome = build(c, pinger(10)).run();
    assert!(outcome.faults[0].skipped.is_some());
}

#[test]
fn snapshots_continue_exactly_like_the_original() {
    let mut sim = build(chaos(21), pinger(10));
    for _ in 0..700 {
        sim.step();
    }
    let mut copy = sim.clone();
    let a = sim.run();
    let b = copy.run();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats, b.stats);
}

#[test]
fn compact_records_match_full_records_step_for_step() {
    let mut full = build(chaos(13), pinger(10));
    full.run();
    let mut c = chaos(13);
    c.trace = TraceMode::Compact;
    let mut compact = build(c, pinger(10));
    compact.run();
    assert_eq!(full.trace_hash(), compact.trace_hash());
    let (a, b) = (full.records(), compact.compact_records());
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    for (f, c) in a.iter().zip(&b) {
        assert_eq!((f.time_us, f.kind), (c.time_us, c.kind));
        assert_eq!(f.node.map_or(CompactStep::NONE, |n| n.0 as u16), c.node);
    }
    // Eight bytes a step, and the vector's growth at most doubles that.
    assert!(compact.compact_trace_bytes() <= 16 * b.len());
}

#[test]
fn a_drifting_clock_moves_what_now_reports() {
    let mut c = config(2, 4, 1_000);
    c.faults = vec![
        ScheduledFault {
            at_ms: 0,
            fault: Fault::ClockDrift {
                node: 1,
                drift_ppm: 500_000,
            },
        },
        ScheduledFault {
            at_ms: 100,
            fault: Fault::Crash(1),
        },
        ScheduledFault {
            at_ms: 200,
            fault: Fault::Restart(1),
        },
    ];
    let mut sim = build(c, pinger(10));
    sim.run();
    // 200 ms of true time on a clock running 50% fast reads 300 ms.
    assert_eq!(
        sim.world().node(NodeId(1)).unwrap().started_at,
        vec![Time::from_millis(300)]
    );
    assert_eq!(
        sim.world().node(NodeId(0)).unwrap().started_at,
        vec![Time::ZERO],
        "the other clock is untouched"
    );
}

#[test]
fn the_nemesis_drifts_a_clock_and_stops_the_drift() {
    let mut c = config(3, 9, 3_000);
    c.nemesis = Some(NemesisConfig {
        kinds: vec![NemesisKind::ClockDrift],
        interval_ms: (50, 100),
        duration_ms: (100, 200),
        start_ms: 0,
        end_ms: 2_000,
    });
    let mut sim = build(c, pinger(10));
    sim.run();
    let log = sim.fault_log();
    assert!(log.len() >= 10, "{log:?}");
    for pair in log.chunks(2) {
        let [drift, repair] = pair else {
            panic!("a drift without its repair: {pair:?}")
        };
        let Fault::ClockDrift { node, drift_ppm } = drift.fault else {
            panic!("{drift:?}")
        };
        assert!(drift_ppm != 0 && drift_ppm.abs() <= 100_000, "{drift_ppm}");
        assert_eq!(repair.fault, Fault::ClockDrift { node, drift_ppm: 0 });
    }
}

/// Fails when a node's state (in memory or durable) changed in a step that `World::changed`
/// said could not have touched it; counts the kinds of step it saw.
#[derive(Clone, Default)]
struct ChangedIsComplete {
    /// Per node, what it looked like after the last step: `None` while crashed.
    last: Vec<Option<(u64, usize, usize, u64)>>,
    seen: [u64; 3],
}

impl Invariant<Pinger> for ChangedIsComplete {
    fn name(&self) -> &str {
        "ChangedIsComplete"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Pinger>) -> Result<(), String> {
        let n = world.cluster_size() as usize;
        let state = |id: NodeId| {
            world.node(id).map(|p| {
                (
                    p.received,
                    p.log.len(),
                    p.started_at.len(),
                    world.durable(id).boots,
                )
            })
        };
        if self.last.is_empty() {
            // The first look, after step 0: nothing to compare with yet.
            self.last = (0..n).map(|i| state(NodeId(i as u32))).collect();
            return Ok(());
        }
        self.seen[match world.changed() {
            Changed::Nothing => 0,
            Changed::Only(_) => 1,
            Changed::Everything => 2,
        }] += 1;
        let may: Vec<NodeId> = world.changed_live_nodes().map(|(id, _)| id).collect();
        for i in 0..n {
            let id = NodeId(i as u32);
            let now = state(id);
            let was_live_and_changed = now.is_some() && now != self.last[i];
            let crashed_or_restarted = now.is_none() != self.last[i].is_none();
            if (was_live_and_changed && !may.contains(&id))
                || (crashed_or_restarted && world.changed() != Changed::Everything)
            {
                return Err(format!(
                    "{id} changed at step {} but the engine said {:?}",
                    world.step(),
                    world.changed()
                ));
            }
            self.last[i] = now;
        }
        Ok(())
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("changed_kinds", serde_json::json!(self.seen))]
    }
}

#[test]
fn the_engine_says_whose_state_a_step_may_have_changed() {
    for seed in 0..5 {
        let workload: Box<dyn Workload<u64>> = Box::new(Counting);
        let invariants: Vec<Box<dyn Invariant<Pinger>>> =
            vec![Box::new(ChangedIsComplete::default())];
        let mut sim = Simulation::new(chaos(seed), pinger(10), Some(workload), invariants)
            .expect("valid config");
        let outcome = sim.run();
        assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
        let seen = sim
            .observations()
            .into_iter()
            .find(|(k, _)| *k == "changed_kinds")
            .unwrap()
            .1;
        // Client steps and drops change nobody, handlers one node, faults anyone.
        for kind in 0..3 {
            assert!(seen[kind].as_u64().unwrap() > 0, "seed {seed}: {seen}");
        }
    }
}

fn at(at_ms: u64, fault: Fault) -> ScheduledFault {
    ScheduledFault { at_ms, fault }
}

fn run_until(sim: &mut Simulation<Pinger>, ms: u64) {
    while sim.now() < Time::from_millis(ms) && sim.step() {}
}

fn slow_leaver(tick_ms: u64) -> impl Fn(NodeId) -> Pinger + Clone {
    move |id| Pinger {
        id: id.0,
        tick_ms,
        slow_leave: true,
        ..Pinger::default()
    }
}

#[test]
fn absent_nodes_start_when_they_join_and_leavers_exit_when_they_say() {
    let mut c = config(4, 5, 1_000);
    c.absent = vec![3];
    c.faults = vec![
        at(200, Fault::Join(3)),
        at(400, Fault::Leave(1)),
        at(700, Fault::Restart(1)),
        at(700, Fault::Crash(1)),
    ];
    let mut sim = build(c, slow_leaver(10));
    run_until(&mut sim, 150);
    assert_eq!(sim.status(NodeId(3)), NodeStatus::Absent);
    assert!(sim.world().node(NodeId(3)).is_none());
    assert!(
        !sim.records()
            .iter()
            .any(|r| r.node == Some(NodeId(3)) && r.kind == StepKind::Start),
        "an absent node does not start"
    );
    let lost: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| r.node == Some(NodeId(3)) && r.kind == StepKind::Drop)
        .collect();
    assert!(!lost.is_empty(), "peers ping n3 and lose the pings");
    assert!(lost.iter().all(|r| r.lost == Some(DropReason::NotMember)));

    run_until(&mut sim, 350);
    assert_eq!(sim.status(NodeId(3)), NodeStatus::Up);
    let n3 = sim.world().node(NodeId(3)).unwrap();
    assert_eq!(
        n3.started_at,
        vec![Time::from_millis(200)],
        "started by the join"
    );
    assert!(n3.received > 0, "a member hears from its peers");
    assert_eq!(sim.world().durable(NodeId(3)).boots, 1);

    // Asked to leave at 400, n1 keeps running until its handoff timer exits it at 450.
    run_until(&mut sim, 420);
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Leaving);
    let received = sim.world().node(NodeId(1)).unwrap().received;
    run_until(&mut sim, 440);
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Leaving);
    assert!(
        sim.world().node(NodeId(1)).unwrap().received > received,
        "serves while leaving"
    );
    run_until(&mut sim, 460);
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Left);
    assert!(sim.world().node(NodeId(1)).is_none());
    sim.run();
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Left);
    let acted_after = sim.records().iter().any(|r| {
        r.node == Some(NodeId(1))
            && matches!(r.kind, StepKind::Timer | StepKind::Deliver)
            && r.time_us > 450_000
    });
    assert!(!acted_after, "a node that left does nothing");
    let skipped: Vec<_> = sim
        .fault_log()
        .iter()
        .filter_map(|f| f.skipped.clone())
        .collect();
    assert_eq!(skipped, ["n1 is not a member", "n1 is not a member"]);
}

#[test]
fn a_leaver_that_crashes_is_asked_again_when_it_restarts() {
    let mut c = config(3, 2, 1_000);
    c.faults = vec![
        at(100, Fault::Leave(1)),
        at(120, Fault::Crash(1)),
        at(300, Fault::Restart(1)),
        at(310, Fault::Leave(1)),
    ];
    let mut sim = build(c, slow_leaver(10));
    run_until(&mut sim, 200);
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Crashed);
    run_until(&mut sim, 320);
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Leaving);
    run_until(&mut sim, 360);
    assert_eq!(
        sim.status(NodeId(1)),
        NodeStatus::Left,
        "the restart ran on_leave again, whose timer exited it at 350"
    );
    assert_eq!(
        sim.fault_log()[3].skipped.as_deref(),
        Some("n1 is already leaving")
    );
}

#[test]
fn a_paused_member_cannot_be_asked_to_leave() {
    let mut c = config(3, 6, 400);
    c.faults = vec![
        at(100, Fault::Pause(1)),
        at(150, Fault::Leave(1)),
        at(200, Fault::Resume(1)),
    ];
    let mut sim = build(c, slow_leaver(10));
    sim.run();
    assert_eq!(sim.fault_log()[1].skipped.as_deref(), Some("n1 is paused"));
    assert_eq!(
        sim.status(NodeId(1)),
        NodeStatus::Up,
        "the skipped leave left it a member"
    );
}

#[test]
fn a_node_that_left_rejoins_over_its_durable_store() {
    let mut c = config(3, 4, 600);
    c.faults = vec![
        at(100, Fault::Leave(2)),
        at(200, Fault::Join(2)),
        at(300, Fault::Join(2)),
        at(400, Fault::RepairAll),
    ];
    c.absent = vec![1];
    let mut sim = build(c, pinger(10));
    run_until(&mut sim, 150);
    assert_eq!(
        sim.status(NodeId(2)),
        NodeStatus::Left,
        "the default on_leave exits at once"
    );
    assert_eq!(sim.world().durable(NodeId(2)).boots, 1);
    sim.run();
    assert_eq!(sim.status(NodeId(2)), NodeStatus::Up);
    assert_eq!(
        sim.world().durable(NodeId(2)).boots,
        2,
        "the engine keeps a leaver's disk: the protocol decides what to do with it"
    );
    assert_eq!(
        sim.world().node(NodeId(2)).unwrap().started_at,
        vec![Time::from_millis(200)]
    );
    assert_eq!(
        sim.fault_log()[2].skipped.as_deref(),
        Some("n2 is already a member")
    );
    assert_eq!(
        sim.status(NodeId(1)),
        NodeStatus::Absent,
        "RepairAll repairs faults; it does not add members"
    );
}

#[test]
fn the_churn_nemesis_is_deterministic_and_undoes_what_it_does() {
    let churn = |seed: u64| {
        let mut c = config(5, seed, 3_000);
        c.absent = vec![4];
        c.nemesis = Some(NemesisConfig {
            kinds: vec![NemesisKind::Churn],
            interval_ms: (50, 150),
            duration_ms: (50, 300),
            start_ms: 0,
            end_ms: 2_500,
        });
        c
    };
    let a = build(churn(9), slow_leaver(10)).run();
    let b = build(churn(9), slow_leaver(10)).run();
    assert_eq!(a.trace_hash, b.trace_hash);
    let mut sim = build(churn(9), slow_leaver(10));
    sim.run();
    let log = sim.fault_log();
    assert!(
        log.iter().any(|f| matches!(f.fault, Fault::Join(4))),
        "{log:?}"
    );
    assert!(
        log.iter().any(|f| matches!(f.fault, Fault::Leave(_))),
        "{log:?}"
    );
    // Every fault the nemesis made was repaired by 2.5 s: membership is as it began.
    for n in 0..4 {
        assert_ne!(sim.status(NodeId(n)), NodeStatus::Absent);
    }
    let joins = log
        .iter()
        .filter(|f| f.fault == Fault::Join(4) && f.skipped.is_none())
        .count();
    let leaves = log
        .iter()
        .filter(|f| f.fault == Fault::Leave(4) && f.skipped.is_none())
        .count();
    assert_eq!(joins, leaves, "n4 joined and left as often: {log:?}");
}

#[test]
fn absent_lists_are_checked() {
    for (absent, field) in [
        (vec![7], "absent[0]"),
        (vec![1, 1], "absent[1]"),
        (vec![0, 1, 2], "absent"),
    ] {
        let mut c = config(3, 1, 100);
        c.absent = absent;
        let err = Simulation::new(c, pinger(10), None, vec![]).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn clients_routing_by_key_learn_each_keys_owner() {
    let redirects = |route_by_key: bool| {
        let mut c = config(4, 3, 5_000);
        c.clients = ClientConfig {
            count: 3,
            ops: 40,
            route_by_key,
            ..ClientConfig::default()
        };
        let mut sim = build(c, move |id| Pinger {
            id: id.0,
            tick_ms: 100,
            shard: true,
            ..Pinger::default()
        });
        sim.run();
        let history = sim.world().history();
        assert!(
            history
                .ops
                .iter()
                .all(|op| matches!(op.completion, Some(Completion::Ok(_)))),
            "a redirect that ends at the owner is no failure"
        );
        sim.records()
            .iter()
            .filter(|r| r.kind == StepKind::Reply && r.summary.contains("Owner"))
            .count()
    };
    let (one_hint, per_key) = (redirects(false), redirects(true));
    // Each client is redirected at most once per key (4 keys) when it routes by key; with one
    // hint for everything, it is sent back and forth whenever the next key's owner differs.
    assert!(per_key <= 3 * 4, "{per_key}");
    assert!(one_hint > 3 * per_key, "{one_hint} vs {per_key}");
}

/// A node that re-arms a far timer on every tick for `ticks` ticks, as a Raft follower
/// re-arms its election timer on every heartbeat, then cancels it for good and, for `flickers`
/// more ticks, sets a timer and cancels it at once.
#[derive(Clone, Debug)]
struct Rearming {
    ticks: u32,
    flickers: u32,
    far: Time,
    armed: Option<TimerId>,
}

impl Node for Rearming {
    type Msg = Msg;
    type Timer = Timer;
    type Request = u64;
    type Response = Resp;
    type Durable = Durable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Time::from_millis(1), Timer::Tick);
        self.armed = Some(ctx.set_timer(self.far, Timer::Far));
    }

    fn on_message(&mut self, _: NodeId, _: Msg, _: &mut Ctx<'_, Self>) {}

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        if timer != Timer::Tick {
            return;
        }
        if let Some(old) = self.armed.take() {
            ctx.cancel_timer(old);
        }
        if self.ticks > 1 {
            self.ticks -= 1;
            self.armed = Some(ctx.set_timer(self.far, Timer::Far));
        } else if self.flickers > 0 {
            self.flickers -= 1;
            let flicker = ctx.set_timer(Time::ZERO, Timer::Far);
            ctx.cancel_timer(flicker);
        } else {
            return;
        }
        ctx.set_timer(Time::from_millis(1), Timer::Tick);
    }

    fn on_request(&mut self, _: ReplyTo, _: u64, _: &mut Ctx<'_, Self>) {}

    fn classify(_: &Resp) -> ResponseClass {
        ResponseClass::Ok
    }

    fn view(&self, _durable: &Durable) -> NodeView {
        NodeView::new("rearming")
    }
}

/// A cancelled timer still waits in the queue until its time: the queue limit counts it, and
/// one due after the stop time ends the run at the time limit rather than as quiescent. Runs
/// that hit either are pinned by this, so a faster queue (one that drops cancelled timers
/// early, say) must keep both.
#[test]
fn cancelled_timers_count_until_their_time() {
    let run = |ticks: u32, far_ms: u64, max_queue: usize| {
        let mut c = config(1, 1, 1_000);
        c.limits.max_queue = max_queue;
        let node = move |_| Rearming {
            ticks,
            flickers: 200,
            far: Time::from_millis(far_ms),
            armed: None,
        };
        Simulation::new(c, node, None, vec![])
            .expect("valid config")
            .run()
    };
    // Only cancelled timers are left, the last due at 300 + 2,000 ms.
    let outcome = run(300, 2_000, 1_000);
    assert_eq!(outcome.stop_reason, StopReason::TimeLimit);
    assert_eq!(outcome.stats.steps, 501, "the start and 500 ticks");
    // Due before the stop time, every cancelled timer is passed: nothing is left to happen.
    let outcome = run(300, 500, 1_000);
    assert_eq!(outcome.stop_reason, StopReason::Quiescent);
    assert_eq!(outcome.stats.steps, 501);
    // After the start and k ticks the queue holds the next tick, the armed timer and the k
    // cancelled ones: 2 + k > 100 first after tick 99, the hundredth step.
    let outcome = run(300, 2_000, 100);
    assert_eq!(outcome.stop_reason, StopReason::QueueLimit(100));
    assert_eq!(outcome.stats.steps, 100);
}

/// Runs `sim` to the end choosing with `pick` among the enabled events; returns how many
/// steps it chose.
fn run_choosing(sim: &mut Simulation<Pinger>, mut pick: impl FnMut(&[Enabled]) -> usize) -> u64 {
    let mut chosen = 0;
    loop {
        let enabled = sim.enabled();
        if enabled.is_empty() {
            sim.end_chosen();
            return chosen;
        }
        let before = sim.now();
        sim.step_chosen(enabled[pick(&enabled)].choice)
            .expect("an enabled choice runs");
        assert!(sim.now() >= before, "time never goes back");
        chosen += 1;
    }
}

fn chaos_without_pauses(seed: u64) -> SimConfig {
    let mut c = chaos(seed);
    let nemesis = c.nemesis.as_mut().expect("chaos has a nemesis");
    nemesis
        .kinds
        .retain(|k| !matches!(k, NemesisKind::Pause | NemesisKind::PauseLeader));
    c
}

#[test]
fn choosing_the_earliest_event_every_time_is_the_default_run() {
    for seed in 0..6 {
        let mut default = build(chaos_without_pauses(seed), pinger(10));
        let expected = default.run();
        let mut chooser = build(chaos_without_pauses(seed), pinger(10));
        let chosen = run_choosing(&mut chooser, |_| 0);
        let outcome = chooser.finish();
        assert_eq!(chosen, expected.stats.steps, "seed {seed}");
        assert_eq!(chooser.trace_hash(), default.trace_hash(), "seed {seed}");
        assert_eq!(outcome.stop_reason, expected.stop_reason, "seed {seed}");
        assert_eq!(outcome.stats, expected.stats, "seed {seed}");
        assert_eq!(outcome.violations, expected.violations, "seed {seed}");
    }
}

#[test]
fn a_chooser_runs_events_out_of_time_order() {
    let mut default = build(chaos_without_pauses(3), pinger(10));
    default.run();
    let mut chooser = build(chaos_without_pauses(3), pinger(10));
    let mut out_of_order = 0;
    run_choosing(&mut chooser, |enabled| {
        // The latest event whenever three or more wait: later events overtake earlier ones.
        if enabled.len() >= 3 {
            out_of_order += 1;
            enabled.len() - 1
        } else {
            0
        }
    });
    assert!(out_of_order > 10, "{out_of_order} steps out of order");
    assert_ne!(chooser.trace_hash(), default.trace_hash());
    let outcome = chooser.finish();
    assert!(outcome.stats.messages_delivered > 0);
    // Nothing is enabled once the run is over, and no choice runs then.
    assert!(chooser.enabled().is_empty());
    assert_eq!(
        chooser.step_chosen(Choice::Run(0)),
        Err(NotEnabled(Choice::Run(0)))
    );
}

#[test]
fn a_choice_that_names_no_waiting_event_is_an_error() {
    let mut sim = build(config(3, 1, 1_000), pinger(10));
    let enabled = sim.enabled();
    assert_eq!(enabled.len(), 3, "three starts");
    assert!(enabled.iter().all(|e| e.kind == StepKind::Start));
    let unknown = Choice::Run(u32::MAX);
    let err = sim.step_chosen(unknown).unwrap_err();
    assert_eq!(err, NotEnabled(unknown));
    assert!(err.to_string().contains("not an enabled event"));
    assert_eq!(sim.stats().steps, 0, "nothing ran");
    // Node 2 may start first.
    sim.step_chosen(enabled[2].choice).unwrap();
    let started = |n: u32| !sim.world().node(NodeId(n)).unwrap().started_at.is_empty();
    assert!(started(2) && !started(0) && !started(1));
    // Ending here, with two starts still enabled, is no normal end.
    sim.end_chosen();
    assert_eq!(sim.finish().stop_reason, StopReason::ScheduleEnded);
    assert!(sim.enabled().is_empty());
}

#[test]
fn a_paused_nodes_events_are_not_enabled_until_it_resumes() {
    let mut sim = paused_from_200_to_500_ms();
    let for_n1 = |sim: &Simulation<Pinger>| {
        sim.enabled()
            .iter()
            .filter(|e| e.node == Some(NodeId(1)) && e.kind != StepKind::Fault)
            .count()
    };
    while sim.now() < Time::from_millis(300) {
        let first = sim.enabled()[0].choice;
        sim.step_chosen(first).unwrap();
    }
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Paused);
    assert_eq!(for_n1(&sim), 0, "nothing for a paused node is enabled");
    while sim.status(NodeId(1)) == NodeStatus::Paused {
        let first = sim.enabled()[0].choice;
        sim.step_chosen(first).unwrap();
    }
    assert!(
        for_n1(&sim) > 10,
        "what waited for n1 is enabled again: {:?}",
        sim.enabled()
    );
}

/// Two nodes; n0 sends one ping to n1 at its start. Both have started when this returns, the
/// ping waits, and the scheduler may choose the faults `budget` allows.
fn one_ping_with(budget: FaultBudget) -> Simulation<Pinger> {
    let node = |id: NodeId| Pinger {
        id: id.0,
        one_shot: true,
        ..Pinger::default()
    };
    let mut sim = build(config(2, 1, 1_000), node);
    sim.choose_faults(budget);
    // No fault may hit a node before it has started.
    let enabled = sim.enabled();
    assert!(
        enabled.iter().all(|e| e.kind == StepKind::Start),
        "{enabled:?}"
    );
    for _ in 0..2 {
        let start = sim.enabled()[0].choice;
        sim.step_chosen(start).unwrap();
    }
    sim
}

fn choices(sim: &Simulation<Pinger>) -> Vec<Choice> {
    sim.enabled().iter().map(|e| e.choice).collect()
}

fn received(sim: &Simulation<Pinger>) -> u64 {
    sim.world().node(NodeId(1)).map_or(0, |n| n.received)
}

#[test]
fn a_chosen_loss_or_copy_is_a_step_the_budget_counts() {
    let budget = FaultBudget {
        drops: 1,
        duplicates: 1,
        ..FaultBudget::default()
    };
    let sim = one_ping_with(budget);
    let [
        Choice::Run(slot),
        Choice::Drop(drop),
        Choice::Duplicate(copy),
    ] = choices(&sim)[..]
    else {
        panic!("the ping, losing it, duplicating it: {:?}", choices(&sim));
    };
    assert!(slot == drop && slot == copy);

    let mut lost = sim.clone();
    lost.step_chosen(Choice::Drop(slot)).unwrap();
    assert_eq!(received(&lost), 0);
    assert_eq!(lost.stats().dropped_loss, 1);
    assert_eq!(lost.fault_budget().drops, 0);
    assert!(
        lost.enabled().is_empty(),
        "nothing waits once the ping is lost"
    );

    let mut twice = sim.clone();
    twice.step_chosen(Choice::Duplicate(slot)).unwrap();
    assert_eq!((received(&twice), twice.stats().duplicated), (1, 1));
    let left = choices(&twice);
    // The copy may still be lost, but no more copies may be made.
    assert!(
        matches!(left[..], [Choice::Run(_), Choice::Drop(_)]),
        "{left:?}"
    );
    twice.step_chosen(left[0]).unwrap();
    assert_eq!(received(&twice), 2);
    assert_eq!(twice.world().node(NodeId(1)).unwrap().log, [(0, 7), (0, 7)]);
}

#[test]
fn a_chosen_crash_may_be_followed_by_a_restart_at_any_step() {
    let mut sim = one_ping_with(FaultBudget {
        crashes: 1,
        ..FaultBudget::default()
    });
    let crash = Choice::Crash(NodeId(1));
    assert!(choices(&sim).contains(&crash), "{:?}", choices(&sim));
    sim.step_chosen(crash).unwrap();
    assert_eq!(sim.status(NodeId(1)), NodeStatus::Crashed);
    // The budget is spent: no other node may crash, n1 may come back, the ping may still go.
    let after = choices(&sim);
    assert!(
        !after.iter().any(|c| matches!(c, Choice::Crash(_))),
        "{after:?}"
    );
    assert!(after.contains(&Choice::Restart(NodeId(1))));
    // Delivered to a node that is down, the ping is lost, and losing it is no choice.
    assert!(!after.iter().any(|c| matches!(c, Choice::Drop(_))));
    sim.step_chosen(Choice::Restart(NodeId(1))).unwrap();
    sim.step_chosen(sim.enabled()[0].choice).unwrap();
    let n1 = sim.world().node(NodeId(1)).unwrap();
    assert_eq!(
        n1.started_at.len(),
        1,
        "a restart runs the start handler afresh"
    );
    assert_eq!(
        sim.world().durable(NodeId(1)).boots,
        2,
        "the durable store survived"
    );
    assert!(sim.fault_log().iter().any(|f| f.fault == Fault::Crash(1)));
}

#[test]
fn a_chosen_isolation_cuts_every_link_until_a_heal_is_chosen() {
    let mut sim = one_ping_with(FaultBudget {
        partitions: 1,
        ..FaultBudget::default()
    });
    assert!(!choices(&sim).contains(&Choice::Heal), "nothing is cut yet");
    sim.step_chosen(Choice::Isolate(NodeId(0))).unwrap();
    let after = choices(&sim);
    assert!(after.contains(&Choice::Heal), "{after:?}");
    assert!(
        !after.iter().any(|c| matches!(c, Choice::Isolate(_))),
        "the budget is spent"
    );
    let mut healed = sim.clone();
    // The ping crosses the cut and is lost.
    sim.step_chosen(after[0]).unwrap();
    assert_eq!((received(&sim), sim.stats().dropped_partition), (0, 1));
    // Healed first, nothing is left to heal, and the ping is lost all the same: it was on
    // the wire while the link was cut, as in a run the default scheduler takes.
    healed.step_chosen(Choice::Heal).unwrap();
    assert!(!choices(&healed).contains(&Choice::Heal));
    assert!(healed.reachability().can_reach(NodeId(0), NodeId(1)));
    healed.step_chosen(healed.enabled()[0].choice).unwrap();
    assert_eq!(
        (received(&healed), healed.stats().dropped_partition),
        (0, 1)
    );
}

#[test]
fn under_synchrony_no_timer_fires_while_a_message_is_in_flight() {
    let mut free = build(config(3, 2, 400), pinger(10));
    let mut synchronous = free.clone();
    synchronous.assume_synchrony();
    assert_ne!(free.fingerprint(), synchronous.fingerprint());
    // Every node starts, then a timer whenever one is enabled: timers overtake messages
    // whenever they may.
    let timers_over_messages = |sim: &mut Simulation<Pinger>| {
        let mut overtakes = 0;
        while !sim.enabled().is_empty() {
            let enabled = sim.enabled();
            let messages = enabled.iter().any(|e| e.kind == StepKind::Deliver);
            let timers = enabled.iter().any(|e| e.kind == StepKind::Timer);
            overtakes += u32::from(messages && timers);
            let first = |kind| enabled.iter().position(|e| e.kind == kind);
            let pick = first(StepKind::Start)
                .or_else(|| first(StepKind::Timer))
                .unwrap_or(0);
            sim.step_chosen(enabled[pick].choice).unwrap();
        }
        (overtakes, sim.stats().timers_fired)
    };
    let (overtakes, fired) = timers_over_messages(&mut free);
    assert!(overtakes > 10 && fired > 10, "{overtakes} {fired}");
    let (overtakes, fired) = timers_over_messages(&mut synchronous);
    assert_eq!(overtakes, 0);
    assert!(
        fired > 10,
        "timers still fire once the network is quiet: {fired}"
    );
}
