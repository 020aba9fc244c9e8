//! Property tests: arbitrary fault schedules never panic the engine, and any seed replays exactly.

use proptest::prelude::*;
use serde::Serialize;
use simlab_sim::faults::ScheduledFault;
use simlab_sim::rng::SimRng;
use simlab_sim::*;

/// Every node pings every other node on a timer and answers every request.
#[derive(Clone, Debug)]
struct Chatter {
    heard: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
struct Tick;

impl Node for Chatter {
    type Msg = u64;
    type Timer = Tick;
    type Request = u64;
    type Response = u64;
    type Durable = u64;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        *ctx.durable_mut() += 1;
        let after = ctx.random_between(1_000, 20_000);
        ctx.set_timer(Time::from_micros(after), Tick);
    }
    fn on_message(&mut self, _from: NodeId, msg: u64, _ctx: &mut Ctx<'_, Self>) {
        self.heard = self.heard.wrapping_add(msg);
    }
    fn on_timer(&mut self, _timer: Tick, ctx: &mut Ctx<'_, Self>) {
        ctx.broadcast(self.heard);
        let after = ctx.random_between(1_000, 20_000);
        ctx.set_timer(Time::from_micros(after), Tick);
    }
    fn on_request(&mut self, reply_to: ReplyTo, request: u64, ctx: &mut Ctx<'_, Self>) {
        ctx.reply(reply_to, request + self.heard);
    }
    fn classify(_response: &u64) -> ResponseClass {
        ResponseClass::Ok
    }
}

#[derive(Clone)]
struct Numbers;

impl Workload<u64> for Numbers {
    fn next_request(&mut self, _client: ClientId, seq: u64, _rng: &mut SimRng) -> u64 {
        seq
    }
}

fn fault(nodes: u32) -> impl Strategy<Value = Fault> {
    let node = 0..nodes;
    prop_oneof![
        proptest::collection::vec(node.clone(), 0..nodes as usize).prop_map(move |v| {
            let mut left: Vec<u32> = v;
            left.sort_unstable();
            left.dedup();
            Fault::Partition(vec![left])
        }),
        node.clone().prop_map(Fault::Isolate),
        (node.clone(), node.clone()).prop_map(|(from, to)| Fault::CutOneWay { from, to }),
        Just(Fault::Heal),
        node.clone().prop_map(Fault::Crash),
        node.clone().prop_map(Fault::Restart),
        node.clone().prop_map(Fault::Pause),
        node.clone().prop_map(Fault::Resume),
        (node, -300i64..300, -200_000i32..200_000).prop_map(|(node, offset_ms, drift_ppm)| {
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            }
        }),
        Just(Fault::CrashLeader),
        Just(Fault::RepairAll),
    ]
}

fn run(nodes: u32, seed: u64, faults: Vec<ScheduledFault>) -> Result<Outcome, FieldError> {
    let mut config = SimConfig::new(nodes, seed, Time::from_millis(1_000));
    config.network.drop = Probability::new(0.05).unwrap();
    config.network.duplicate = Probability::new(0.05).unwrap();
    config.faults = faults;
    config.clients = ClientConfig {
        count: 2,
        ops: 20,
        ..ClientConfig::default()
    };
    let workload: Box<dyn Workload<u64>> = Box::new(Numbers);
    let mut sim = Simulation::new(config, |_| Chatter { heard: 0 }, Some(workload), vec![])?;
    Ok(sim.run())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_never_panic(
        nodes in 1u32..6,
        seed in any::<u64>(),
        schedule in proptest::collection::vec((0u64..1_000, 0u32..6), 0..25),
    ) {
        // Draw faults for a 6-node universe, then keep those valid for this cluster: invalid
        // ones must be rejected with an error, never a panic.
        let faults: Vec<ScheduledFault> = schedule
            .into_iter()
            .map(|(at_ms, n)| ScheduledFault { at_ms, fault: Fault::Crash(n) })
            .collect();
        let result = run(nodes, seed, faults.clone());
        let all_valid = faults.iter().all(|f| f.fault.validate(nodes).is_ok());
        prop_assert_eq!(result.is_ok(), all_valid);
    }

    #[test]
    fn arbitrary_faults_run_or_are_rejected(
        seed in any::<u64>(),
        faults in proptest::collection::vec((0u64..1_000, fault(4)), 0..30),
    ) {
        let faults: Vec<ScheduledFault> =
            faults.into_iter().map(|(at_ms, fault)| ScheduledFault { at_ms, fault }).collect();
        match run(4, seed, faults.clone()) {
            Ok(outcome) => prop_assert!(outcome.stop_reason.is_normal()),
            Err(e) => prop_assert!(faults.iter().any(|f| f.fault.validate(4).is_err()), "{e}"),
        }
    }

    #[test]
    fn any_seed_replays_exactly(
        seed in any::<u64>(),
        faults in proptest::collection::vec((0u64..1_000, fault(3)), 0..10),
    ) {
        let faults: Vec<ScheduledFault> = faults
            .into_iter()
            .map(|(at_ms, fault)| ScheduledFault { at_ms, fault })
            .filter(|f| f.fault.validate(3).is_ok())
            .collect();
        let a = run(3, seed, faults.clone()).unwrap();
        let b = run(3, seed, faults).unwrap();
        prop_assert_eq!(a.trace_hash, b.trace_hash);
        prop_assert_eq!(a.stats, b.stats);
    }
}
