//! The book is tested like code: its commands run and print what it shows, the scenarios and
//! chapters it names exist, and the scenario reference covers every field the code accepts.

mod common;

use common::shell_words;
use simlab_protocols::shrink::to_ron;
use simlab_protocols::{ProtocolConfig, Scenario};
use simlab_sim::{Fault, NemesisConfig, NemesisKind, ScheduledFault};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A chapter's text.
fn chapter(name: &str) -> String {
    std::fs::read_to_string(root().join(format!("book/src/{name}.md"))).unwrap()
}

/// A scenario of the repository, run with the full trace kept.
fn traced(name: &str) -> (simlab_sim::Outcome, Box<dyn simlab_protocols::Run>) {
    let scenario = Scenario::load(&root().join(format!("scenarios/{name}.ron")))
        .unwrap()
        .scenario;
    let options = simlab_protocols::RunOptions {
        trace: simlab_sim::TraceMode::Full,
        ..Default::default()
    };
    simlab_protocols::registry::run(&scenario, &options)
}

fn chapters() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(root().join("book/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Runs `simlab` from the repository root, as the book's reader does.
fn simlab(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// A scratch directory for what one test's commands write, removed with everything in it
/// when the test ends, however it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("simlab-book-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The book's commands write their `--out FILE` into the reader's directory; here a bare file
/// name goes to `scratch` instead, so a test run never writes into the repository.
fn outputs_elsewhere(mut args: Vec<String>, scratch: &Scratch) -> Vec<String> {
    if let Some(i) = args.iter().position(|a| a == "--out")
        && let Some(value) = args.get_mut(i + 1)
        && !value.contains('/')
        && value != "-"
    {
        *value = scratch.0.join(&*value).to_string_lossy().into_owned();
    }
    args
}

#[test]
fn every_command_runs_and_prints_what_the_book_shows() {
    let scratch = Scratch::new("commands");
    let mut ran = 0;
    for (path, text) in chapters() {
        let mut in_console = false;
        let mut last: Option<(String, String)> = None; // (command, stdout)
        for line in text.lines() {
            if line.starts_with("```") {
                in_console = line.trim() == "```console";
                last = None;
                continue;
            }
            if !in_console {
                continue;
            }
            if let Some(command) = line.strip_prefix("simlab ") {
                let (args, comment) = command.split_once('#').unwrap_or((command, ""));
                let args = outputs_elsewhere(shell_words(args), &scratch);
                let expected = comment
                    .trim()
                    .strip_prefix("exits ")
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .map_or(0, |n| n.parse::<i32>().unwrap());
                let out = simlab(&args);
                assert_eq!(
                    out.status.code(),
                    Some(expected),
                    "{}: simlab {}\n{}",
                    path.display(),
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                last = Some((
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                ));
                ran += 1;
            } else if !line.trim().is_empty() {
                let (command, stdout) = last.as_ref().unwrap_or_else(|| {
                    panic!("{}: output before a command: {line}", path.display())
                });
                assert!(
                    stdout.lines().any(|l| l.trim_end() == line.trim_end()),
                    "{}: `simlab {command}` did not print\n{line}\nit printed:\n{stdout}",
                    path.display()
                );
            }
        }
    }
    assert!(ran >= 12, "only {ran} commands found in the book");
}

#[test]
fn named_scenarios_and_chapters_exist() {
    let summary = std::fs::read_to_string(root().join("book/src/SUMMARY.md")).unwrap();
    for (path, text) in chapters() {
        for (i, _) in text.match_indices("scenarios/") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '`' && *c != ')' && *c != ',')
                .collect();
            if name.ends_with(".ron") {
                assert!(
                    root().join(&name).exists(),
                    "{}: {name} does not exist",
                    path.display()
                );
            }
        }
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|c| *c != ')').collect();
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                root().join("book/src").join(file).exists(),
                "{}: broken link {target}",
                path.display()
            );
        }
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            name == "SUMMARY.md" || summary.contains(&format!("({name})")),
            "{name} is not in SUMMARY.md"
        );
    }
}

/// Every field and variant the scenario format accepts, as the code serializes them.
fn every_identifier() -> Vec<String> {
    let base = Scenario::parse(
        Path::new("x.ron"),
        "Scenario(name: \"x\", protocol: Raft(), nodes: 5, stop_ms: 10000, expect: AllHold)",
    )
    .unwrap();
    let faults = vec![
        Fault::Partition(vec![vec![0, 1]]),
        Fault::Isolate(1),
        Fault::IsolateLeader,
        Fault::IsolateFollower,
        Fault::CutOneWay { from: 0, to: 1 },
        Fault::Bridge {
            left: vec![0],
            right: vec![2],
            bridge: 1,
        },
        Fault::Heal,
        Fault::Crash(1),
        Fault::CrashLeader,
        Fault::CrashFollower,
        Fault::Restart(1),
        Fault::Pause(1),
        Fault::PauseLeader,
        Fault::Resume(1),
        Fault::ClockSkew {
            node: 1,
            offset_ms: 1,
            drift_ppm: 1,
        },
        Fault::RepairAll,
        Fault::Join(1),
        Fault::Leave(1),
        Fault::ClockDrift {
            node: 1,
            drift_ppm: 1,
        },
    ];
    let mut text = String::new();
    // Every protocol in the registry, so a new protocol's settings must be documented too.
    for protocol in ProtocolConfig::every_default() {
        let mut s = base.clone();
        s.absent = vec![4];
        s.clients.route_by_key = true;
        s.protocol = protocol;
        s.faults = faults
            .iter()
            .map(|f| ScheduledFault {
                at_ms: 1,
                fault: f.clone(),
            })
            .collect();
        s.nemesis = Some(NemesisConfig {
            kinds: NemesisKind::ALL.to_vec(),
            interval_ms: (1, 2),
            duration_ms: (1, 2),
            start_ms: 0,
            end_ms: 5,
        });
        s.network.links.push(simlab_sim::network::LinkOverride {
            from: 0,
            to: 1,
            link: Default::default(),
        });
        text.push_str(&to_ron(&s));
    }
    let mut names: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic()
            && (i == 0
                || !chars[i - 1].is_ascii_alphanumeric()
                    && chars[i - 1] != '_'
                    && chars[i - 1] != '"')
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if matches!(chars.get(i), Some(':') | Some('('))
                && !["Some", "None", "true", "false", "enable"].contains(&word.as_str())
            {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_scenario_reference_covers_every_field_and_variant() {
    let reference = chapter("scenarios");
    // Struct names (RON writes them before a struct's fields) are not part of the format, but
    // for `Scenario` itself; every protocol's settings struct is called `*Config`.
    let structs = ["ScheduledFault", "Limits", "LinkOverride"];
    let missing: Vec<String> = every_identifier()
        .into_iter()
        .filter(|n| !structs.contains(&n.as_str()) && !n.ends_with("Config"))
        .filter(|n| !reference.contains(&format!("`{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "book/src/scenarios.md does not document: {missing:?}"
    );
}

/// The observe exercises' answers, recomputed from the runs they describe.
#[test]
fn observe_answers_match_the_runs() {
    let raft_chapter = chapter("raft");
    let (_, run) = traced("raft-reelection");
    let second = run
        .records()
        .iter()
        .filter(|r| r.notes.iter().any(|n| n.starts_with("becomes leader")))
        .nth(1)
        .expect("a second leader");
    let expected = format!(
        "Step {}, at {}: n{} {}",
        second.step,
        second.time(),
        second.node.unwrap().0,
        second
            .notes
            .iter()
            .find(|n| n.starts_with("becomes leader"))
            .unwrap()
    );
    assert!(
        raft_chapter.contains(&expected),
        "raft.md should say: {expected}"
    );
    // The votes, in the order the answer names them, and no refusal.
    let leader = second.node.unwrap();
    let election = run
        .records()
        .iter()
        .rfind(|r| {
            r.step < second.step
                && r.node == Some(leader)
                && r.notes.iter().any(|n| n.starts_with("election for term"))
        })
        .expect("the election that won");
    let window = || {
        run.records()
            .iter()
            .filter(|r| r.step > election.step && r.step < second.step)
            .flat_map(|r| r.notes.iter().map(move |n| (r.node.unwrap(), n)))
    };
    let voters: Vec<String> = window()
        .filter(|(_, n)| n.starts_with(&format!("votes for {leader}")))
        .map(|(node, _)| node.to_string())
        .collect();
    assert!(
        !window().any(|(_, n)| n.starts_with("refuses")),
        "no vote was refused"
    );
    let claim = format!(
        "so {} and {} all granted their votes",
        voters[..voters.len() - 1].join(", "),
        voters[voters.len() - 1]
    );
    assert!(
        raft_chapter.contains(&claim),
        "raft.md should say: {claim:?}"
    );

    // The snapshot observe answer: who was cut off, who led after the heal, and the install.
    let (outcome, run) = traced("raft-snapshot-lagging-follower");
    let simlab_sim::Fault::Isolate(cut) = outcome.faults[0].fault else {
        panic!("the first fault isolates a follower")
    };
    let heal = simlab_sim::Time::from_millis(3000);
    let records = run.records();
    let install = records
        .iter()
        .find(|r| {
            r.node == Some(simlab_sim::NodeId(cut))
                && r.time() >= heal
                && r.notes.iter().any(|n| n.starts_with("installs a snapshot"))
        })
        .expect("the cut-off follower installs a snapshot after the heal");
    let leader = records
        .iter()
        .filter(|r| r.step < install.step)
        .rfind(|r| r.notes.iter().any(|n| n.starts_with("becomes leader")))
        .expect("a leader sent it");
    let claims = [
        format!("n{cut} is cut off"),
        format!(
            "n{} {} at step {}",
            leader.node.unwrap().0,
            leader
                .notes
                .iter()
                .find(|n| n.starts_with("becomes leader"))
                .unwrap(),
            leader.step
        ),
        format!(
            "at step {} ({}) n{cut} {}, sent by n{}",
            install.step,
            install.time(),
            install.notes[0],
            install.from.unwrap().0
        ),
    ];
    for claim in claims {
        assert!(raft_chapter.contains(&claim), "raft.md should say: {claim}");
    }

    // The counter's observe answer: the step, the message and the arithmetic.
    let own_chapter = chapter("own-protocol");
    let (outcome, run) = traced("counter-bug-merge-by-sum");
    let violation = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "NeverOvercounts")
        .expect("the planted bug is caught");
    let step = &run.records()[violation.step as usize];
    assert!(own_chapter.contains(&format!(
        "NeverOvercounts (always) at step {} ({}): {}",
        step.step,
        step.time(),
        violation.message
    )));
    let answer = format!(
        "Step {}, at {}: n{} receives n{}'s gossip `{}`",
        step.step,
        step.time(),
        step.node.unwrap().0,
        step.from.unwrap().0,
        step.summary.split(": ").nth(1).unwrap()
    );
    assert!(
        own_chapter.contains(&answer),
        "own-protocol.md should say: {answer}"
    );
    // "n1 counts 18 for n1, which added only 13" and "13 + 5 = 18", with 5 from the gossip.
    let numbers: Vec<u64> = violation
        .message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (counted, added) = (numbers[1], numbers[3]);
    assert!(own_chapter.contains(&format!("{added} + {} = {counted}", counted - added)));

    let commit_chapter = chapter("atomic-commit");
    let (_, run) = traced("2pc-coordinator-crash-before-decision");
    let crash = run
        .records()
        .iter()
        .find(|r| r.summary.contains("crash n0"))
        .unwrap();
    let ask = run
        .records()
        .iter()
        .find(|r| r.notes.iter().any(|n| n.contains("asking")))
        .unwrap();
    assert!(commit_chapter.contains(&format!(
        "The crash is step {}, at {} ms",
        crash.step,
        crash.time_us / 1000
    )));
    assert!(commit_chapter.contains(&format!(
        "At step {} ({} ms) n{}",
        ask.step,
        ask.time_us / 1000,
        ask.node.unwrap().0
    )));
}

/// The Paxos chapter's observe answer: the duel's rounds, its pre-emptions, and no decision.
#[test]
fn paxos_observe_answer_matches_the_run() {
    let chapter = chapter("paxos");
    let (_, run) = traced("paxos-dueling-proposers");
    let rounds = run
        .report()
        .iter()
        .find(|i| i.key == "rounds")
        .and_then(|i| i.value.as_u64())
        .expect("the rounds started");
    let claim = format!("The run ends with {rounds} rounds started\nand nothing decided.");
    assert!(chapter.contains(&claim), "paxos.md should say: {claim:?}");
    let notes: Vec<&String> = run.records().iter().flat_map(|r| &r.notes).collect();
    assert!(notes.iter().any(|n| n.starts_with("pre-empted by ballot")));
    assert!(
        !notes.iter().any(|n| n.starts_with("learns")),
        "nothing is learned"
    );
}

#[test]
fn locks_observe_answer_matches_the_run() {
    use simlab_protocols::locks::{LockNode, worker::Phase};
    use simlab_protocols::{RunOptions, registry};
    use simlab_sim::{Fault, NodeId, Time};
    let chapter = chapter("locks");
    let scenario = Scenario::load(&root().join("scenarios/locks-gc-pause.ron"))
        .unwrap()
        .scenario;
    let mut sim = registry::simulation::<LockNode>(&scenario, &RunOptions::default()).unwrap();
    let mut phase_when_paused = None;
    while sim.step() {
        if phase_when_paused.is_none()
            && let Some(f) = sim.fault_log().last()
            && f.fault == Fault::Pause(2)
            && f.at == Time::from_millis(2_940)
        {
            let n2 = sim.world().node(NodeId(2)).and_then(LockNode::worker);
            phase_when_paused = n2.map(|w| (w.phase(), w.lease().map(|l| l.token)));
        }
    }
    let outcome = sim.finish();
    // The pause and its repair, as the solution gives them.
    let log = sim.fault_log();
    let pause = log
        .iter()
        .position(|f| f.fault == Fault::Pause(2))
        .expect("n2 is paused");
    assert_eq!(log[pause].at, Time::from_millis(2_940));
    assert_eq!(log[pause + 1].fault, Fault::Resume(2));
    assert_eq!(log[pause + 1].at, Time::from_millis(3_332));
    assert!(chapter.contains("`pause n2` at 2.940000s and `resume n2` at 3.332000s"));
    // n2 held token 45 and was sending its write when it was paused.
    assert_eq!(phase_when_paused, Some((Phase::Sending, Some(45))));
    assert!(chapter.contains("token 45 and was sending its write (`sending 42`"));
    // Its write landed inside n5's section (token 50), undoing four increments.
    let v = &outcome.violations[0];
    assert_eq!(v.invariant, "MutualExclusion");
    assert!(
        v.message.starts_with("n2's write of 42 (token 45)"),
        "{}",
        v.message
    );
    assert!(v.message.contains("n5 (token 50) read the counter"));
    assert_eq!(v.time.to_string(), "3.333705s");
    assert!(chapter.contains("3.333705s, inside the critical section of n5 (token 50)"));
    let lost = &outcome.violations[1];
    assert!(
        lost.message.contains("replaced 45, undoing 4"),
        "{}",
        lost.message
    );
    assert!(chapter.contains("from 45 back to 42: the increments of tokens 46 to 49"));
}

#[test]
fn reading_a_run_answer_matches_the_run() {
    use simlab_sim::NodeId;
    let chapter = chapter("reading-a-run");
    let (_, run) = traced("raft-reelection");
    let records = run.records();
    let won = records
        .iter()
        .find(|r| r.notes.iter().any(|n| n == "becomes leader of term 1"))
        .expect("a first leader");
    assert_eq!(won.node, Some(NodeId(4)));
    let claim = format!(
        "n4 becomes leader of term 1 at step {} ({})",
        won.step,
        won.time()
    );
    assert!(chapter.contains(&claim), "{claim}");
    let voted: Vec<String> = records
        .iter()
        .filter(|r| r.notes.iter().any(|n| n == "votes for n4 in term 1"))
        .map(|r| format!("n{} (step {})", r.node.unwrap().0, r.step))
        .collect();
    assert_eq!(voted.len(), 4);
    let order = format!(
        "the order {}, {}, {}, {}",
        voted[0], voted[1], voted[2], voted[3]
    );
    assert!(chapter.contains(&order), "{order}");
    // The votes as they reached n4: the first two make the majority at the winning step.
    let arrivals: Vec<(u64, u32)> = records
        .iter()
        .filter(|r| {
            r.node == Some(NodeId(4)) && r.summary.contains("Vote { term: 1, granted: true")
        })
        .map(|r| (r.step, r.summary[1..2].parse().unwrap()))
        .collect();
    assert_eq!(arrivals[1].0, won.step);
    let claim = format!(
        "n{}'s at step {}, n{}'s at step {}",
        arrivals[0].1, arrivals[0].0, arrivals[1].1, arrivals[1].0
    );
    assert!(chapter.contains(&claim), "{claim}");
}

#[test]
fn linearizability_answers_match_the_checker() {
    let chapter = chapter("linearizability");
    let scratch = Scratch::new("lin");
    let dir = &scratch.0;
    let put = r#"{"client": 0, "call": 0, "return": 10, "op": "put", "key": "x", "value": "1"}"#;
    let get = r#"{"client": 1, "call": 20, "return": 30, "op": "get", "key": "x", "output": ""}"#;
    assert!(chapter.contains(put) && chapter.contains(get));
    let lincheck = |text: String| {
        let path = dir.join("stale.jsonl");
        std::fs::write(&path, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_simlab"))
            .args(["lincheck", "--model", "kv", path.to_str().unwrap()])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(
        lincheck(format!("{put}\n{get}\n")),
        Some(1),
        "stale read after the put"
    );
    let overlapping = get.replace("\"call\": 20", "\"call\": 5");
    assert_eq!(
        lincheck(format!("{put}\n{overlapping}\n")),
        Some(0),
        "overlapping"
    );
    // The break answer: seed 5 fails on k3 with client 2's append seen twice; seed 7 passes.
    let run = |seed: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
            .args([
                "run",
                "scenarios/raft-bug-apply-retry-twice.ron",
                "--seed",
                seed,
            ])
            .current_dir(root())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run("5").contains("key \"k3\""));
    assert!(run("7").contains("violations  none"));
    assert!(chapter.contains("client 2's append of `[2.57]` appears twice"));
}

#[test]
fn the_figure_8_story_matches_the_run() {
    use simlab_sim::NodeId;
    let chapter = chapter("raft");
    let (_, run) = traced("raft-bug-commit-previous-term");
    let records = run.records();
    let note_at = |node: u32, note: &str| {
        records
            .iter()
            .find(|r| r.node == Some(NodeId(node)) && r.notes.iter().any(|n| n == note))
            .map(|r| r.step)
    };
    let order = [
        note_at(2, "becomes leader of term 14"),
        note_at(1, "becomes leader of term 15"),
        note_at(2, "becomes leader of term 16"),
        note_at(
            2,
            "commits index 74 of term 14 by counting replicas (bug; was 70)",
        ),
        note_at(1, "becomes leader of term 18"),
    ];
    assert!(order.iter().all(Option::is_some), "{order:?}");
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert_eq!(order[3], Some(1747));
    assert_eq!(order[4], Some(1797));
    assert!(chapter.contains("at step\n1747, committed index 74"));
    assert!(records.iter().any(|r| {
        r.step < 1797
            && r.summary
                .contains("n1 → n0: RequestVote { term: 18, last_log_index: 79, last_log_term: 15")
    }));
    assert!(chapter.contains("a log ending at index 79 of\nterm 15"));
}

#[test]
fn the_shrink_answer_matches_the_shrinker() {
    let chapter = chapter("bugs-at-scale");
    let scenario = Scenario::load(&root().join("scenarios/3pc-partition-nemesis.ron"))
        .unwrap()
        .scenario;
    let shrunk = simlab_protocols::shrink::shrink(&scenario, 0, None).unwrap();
    let small = &shrunk.scenario;
    assert_eq!(
        (shrunk.faults_before, small.faults.len(), small.nodes),
        (18, 3, 4)
    );
    assert_eq!(small.stop_ms, 1900);
    let at: Vec<(u64, String)> = small
        .faults
        .iter()
        .map(|f| (f.at_ms, format!("{:?}", f.fault)))
        .collect();
    assert_eq!(at[0], (79, "Isolate(0)".to_string()));
    assert_eq!(at[1], (444, "Heal".to_string()));
    assert_eq!(at[2], (1610, "Partition([[1, 2], [0, 3]])".to_string()));
    assert!(chapter.contains("3 faults (from 18), 4 nodes, 4 clients x 51 ops, stop at 1900 ms"));
    assert!(chapter.contains("isolated at 79 ms and healed at 444 ms"));
}

#[test]
fn engine_and_faults_answers_match_the_run() {
    let engine = chapter("engine");
    let faults = chapter("faults");
    let (_, run) = traced("raft-reelection");
    let records = run.records();
    // The five start steps and their election timers, as the engine answer lists them.
    for (i, r) in records[..5].iter().enumerate() {
        let timer = r.effects[0]
            .split(" in ")
            .nth(1)
            .and_then(|t| t.strip_suffix(": Election"))
            .expect("an election timer");
        assert!(
            engine.contains(&format!("| n{i} | {timer} |")),
            "n{i} {timer}"
        );
    }
    let first = records
        .iter()
        .find(|r| r.notes.iter().any(|n| n == "election for term 1"))
        .unwrap();
    assert!(engine.contains(&format!(
        "n4 stands first, at step {} ({})",
        first.step,
        first.time()
    )));
    // The faults answer: the isolation, then the first message lost in flight.
    let cut = records
        .iter()
        .position(|r| r.summary == "fault: isolate n4")
        .unwrap();
    let lost = &records[cut + 1];
    assert!(
        lost.summary
            .starts_with("n4 → n1 lost in flight (partition)")
    );
    assert!(faults.contains(&format!(
        "Step {} is the fault (`isolate n4`, at {}). Step {}, at {}",
        records[cut].step,
        records[cut].time(),
        lost.step,
        lost.time()
    )));
}

#[test]
fn the_2pc_break_answer_matches_the_run() {
    use simlab_sim::{NodeId, Time};
    let chapter = chapter("atomic-commit");
    let (outcome, run) = traced("2pc-bug-unilateral-abort");
    let v = &outcome.violations[0];
    assert_eq!(v.message, "t3.15: n0 decided commit but n3 decided abort");
    let records = run.records();
    let gave_up = records
        .iter()
        .find(|r| {
            r.notes
                .iter()
                .any(|n| n == "t3.15: tired of waiting, aborting alone (bug)")
        })
        .unwrap();
    assert_eq!(gave_up.node, Some(NodeId(3)));
    assert!(chapter.contains(&format!("at step {} ({})", gave_up.step, gave_up.time())));
    let decide = "n0 → n3: Decide { tx: TxId { client: 3, seq: 15 }, decision: Commit }";
    let delivered: Vec<Time> = records
        .iter()
        .filter(|r| r.summary == decide)
        .map(|r| r.time())
        .collect();
    assert_eq!(
        delivered.first(),
        Some(&Time::from_micros(1_045_086)),
        "the first Decide to arrive"
    );
    assert!(
        outcome
            .faults
            .iter()
            .any(|f| f.fault == simlab_sim::Fault::Isolate(3) && f.at == Time::from_millis(788))
    );
    assert!(chapter.contains("isolation of n3 (0.788 s to 0.943 s)"));
}

#[test]
fn paxos_break_answers_match_the_shrunk_runs() {
    use simlab_protocols::shrink::shrink;
    let chapter = chapter("paxos");
    for (file, seed, faults) in [
        ("paxos-bug-ignore-accepted-value", 2, "2 faults of 10"),
        ("multi-paxos-bug-skip-phase1", 1, "2 faults of 22"),
    ] {
        let scenario = Scenario::load(&root().join(format!("scenarios/{file}.ron")))
            .unwrap()
            .scenario;
        let shrunk = shrink(&scenario, seed, Some("Agreement")).unwrap();
        let (outcome, _) = simlab_protocols::run(&shrunk.scenario, &Default::default());
        let message = &outcome
            .violations
            .iter()
            .find(|v| v.invariant == "Agreement")
            .unwrap()
            .message;
        let quoted = format!("`{}`", message);
        let flat: String = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&quoted), "{file}: {quoted}");
        assert!(flat.contains(faults), "{file}: {faults}");
        assert_eq!(
            format!(
                "{} faults of {}",
                shrunk.scenario.faults.len(),
                shrunk.faults_before
            ),
            faults
        );
    }
}

#[test]
fn the_redlock_story_matches_the_run() {
    let text = chapter("locks");
    let (outcome, run) = traced("locks-redlock-clock-jump");
    let holds = |node: u32| {
        run.records()
            .iter()
            .filter(|r| r.node == Some(simlab_sim::NodeId(node)))
            .filter(|r| {
                r.notes
                    .iter()
                    .any(|n| n.starts_with("holds the lock: 3 of 5"))
            })
            .map(|r| r.time())
            .collect::<Vec<_>>()
    };
    let jump = simlab_sim::Time::from_millis(1_000);
    let n7 = holds(7)
        .into_iter()
        .rfind(|&t| t < jump)
        .expect("n7 holds before the jump");
    let n6 = holds(6)
        .into_iter()
        .find(|&t| t > jump)
        .expect("n6 holds after it");
    assert_eq!(
        (n7.to_string(), n6.to_string()),
        ("0.974015s".into(), "1.010650s".into())
    );
    assert!(text.contains("At 0.974 s n7 holds the lock on n0, n2 and n4"));
    assert!(text.contains("At 1.011 s n6 is granted\nn1, n2 and n3"));
    let grants = |node: u32, worker: &str| {
        run.records().iter().any(|r| {
            r.node == Some(simlab_sim::NodeId(node))
                && r.time() <= n6
                && r.time() > jump
                && r.notes
                    .iter()
                    .any(|n| n.starts_with(&format!("grants the lock to {worker}")))
        })
    };
    assert!(grants(1, "n6") && grants(2, "n6") && grants(3, "n6"));
    assert_eq!(outcome.violations[0].invariant, "MutualExclusion");
}

/// Every picture in the book is drawn by the `simlab diagram` command shown above it, from a
/// real run, and is exactly what that command draws today: a change that moves a run, or the
/// drawing, fails here until the pictures are drawn again (`SIMLAB_BLESS=1` writes them).
#[test]
fn the_books_diagrams_are_what_their_commands_draw() {
    let scratch = Scratch::new("diagrams");
    let bless = std::env::var_os("SIMLAB_BLESS").is_some();
    let dir = root().join("book/src/diagrams");
    let mut drawn = Vec::new();
    for (path, text) in chapters() {
        let mut command: Option<Vec<String>> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("simlab diagram ") {
                command = Some(shell_words(&format!("diagram {rest}")));
            }
            let Some(start) = line.find("](diagrams/") else {
                continue;
            };
            let name = &line[start + "](diagrams/".len()..];
            let name = &name[..name.find(')').unwrap()];
            let args = command.take().unwrap_or_else(|| {
                panic!(
                    "{}: no `simlab diagram` command above {name}",
                    path.display()
                )
            });
            let out_at = args.iter().position(|a| a == "--out").unwrap() + 1;
            assert_eq!(
                args[out_at],
                name,
                "{}: the command above draws {name}",
                path.display()
            );
            let mut args = args.clone();
            let fresh = scratch.0.join(name);
            args[out_at] = fresh.to_string_lossy().into_owned();
            let out = simlab(&args);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let fresh = std::fs::read_to_string(&fresh).unwrap();
            let committed = dir.join(name);
            if bless {
                std::fs::write(&committed, &fresh).unwrap();
            }
            let old = std::fs::read_to_string(&committed).unwrap_or_default();
            assert!(
                old == fresh,
                "{}: book/src/diagrams/{name} is not what `simlab {}` draws now; redraw with SIMLAB_BLESS=1 cargo test -p simlab --test book diagrams",
                path.display(),
                args.join(" ")
            );
            drawn.push((
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                name.to_string(),
            ));
        }
    }
    // Every protocol chapter has at least one, and every picture in the folder is used.
    for chapter in ["raft", "paxos", "atomic-commit", "locks", "own-protocol"] {
        assert!(
            drawn.iter().any(|(c, _)| c == chapter),
            "{chapter}.md has no diagram"
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut used: Vec<String> = drawn.into_iter().map(|(_, n)| n).collect();
    used.sort();
    used.dedup();
    assert_eq!(
        files, used,
        "every file in book/src/diagrams is a picture the book shows"
    );
}

#[test]
fn the_diagram_answer_matches_the_run() {
    let text = chapter("reading-a-run");
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(
        "re-sent its Decide (commit) to n2 every 100 ms, 18 times (steps 22 and 25 to 41)"
    ));
    assert!(words.contains("step 13: n0's PreCommit to n2 was *lost in flight*"));
    let (_, run) = traced("3pc-partition");
    let r = run.records();
    let lost_in_flight = &r[13];
    assert_eq!(lost_in_flight.lost, Some(simlab_sim::DropReason::Partition));
    assert_eq!(lost_in_flight.sent_step, Some(10));
    assert!(lost_in_flight.summary.contains("PreCommit"));
    assert!(r[11].summary.contains("partition"));
    assert_eq!(r[21].lost_at_send.len(), 1);
    assert!(r[21].lost_at_send[0].message.starts_with("StateRequest"));
    assert_eq!(r[21].lost_at_send[0].to.0, 1);
    assert!(
        r[24]
            .notes
            .iter()
            .any(|n| n.contains("decides abort from {NodeId(2): (Uncertain, true)}"))
    );
    let mut to: Vec<u32> = r[24].lost_at_send.iter().map(|l| l.to.0).collect();
    to.sort();
    assert_eq!(to, [0, 1]);
    let resent: Vec<u64> = r
        .iter()
        .filter(|s| {
            s.node.map(|n| n.0) == Some(0)
                && s.lost_at_send
                    .iter()
                    .any(|l| l.to.0 == 2 && l.message.contains("Commit"))
        })
        .map(|s| s.step)
        .collect();
    let expected: Vec<u64> = [16, 22].into_iter().chain(25..=41).collect();
    assert_eq!(resent, expected);
    assert!(r[42].summary.contains("heal"));
    assert_eq!(r[44].sent_step, Some(43));
    assert_eq!(r[44].node.map(|n| n.0), Some(2));
}

/// The gossip chapter's observe answer: where the tombstone went and when each copy was
/// collected, from the run it describes.
#[test]
fn gossip_observe_answer_matches_the_run() {
    use simlab_sim::NodeId;
    let chapter = chapter("gossip");
    let (outcome, run) = traced("gossip-bug-early-tombstone-collection");
    let records = run.records();
    let delete = records
        .iter()
        .find(|r| {
            r.summary.contains("Delete(\"k1\")")
                && r.node == Some(NodeId(1))
                && r.time() > simlab_sim::Time::from_millis(1_300)
        })
        .expect("the delete at n1");
    let claim = format!(
        "deleted `k1` at n1 at {} (step {})",
        delete.time(),
        delete.step
    );
    assert!(chapter.contains(&claim), "{claim}");
    let tombstone = "(\"k1\", [Version { dot: Dot { node: 1, counter: 15 }";
    let to_n2 = records
        .iter()
        .find(|r| {
            r.node == Some(NodeId(2)) && r.from == Some(NodeId(1)) && r.summary.contains(tombstone)
        })
        .expect("the tombstone reaches n2");
    let claim = format!("(delivered at step {}, {})", to_n2.step, to_n2.time());
    assert!(chapter.contains(&claim), "{claim}");
    assert!(
        !records
            .iter()
            .any(|r| r.node == Some(NodeId(0)) && r.summary.contains(tombstone)),
        "n0 never receives it"
    );
    let collected: Vec<(u32, u64, String)> = records
        .iter()
        .filter(|r| r.step > delete.step && r.notes.iter().any(|n| n.contains("tombstones of k1")))
        .map(|r| (r.node.unwrap().0, r.step, r.time().to_string()))
        .take(2)
        .collect();
    assert_eq!(collected[0].0, 1);
    assert_eq!(collected[1].0, 2);
    let claim = format!(
        "n1\ncollected its copy at step {} ({})",
        collected[0].1, collected[0].2
    );
    assert!(chapter.contains(&claim), "{claim}");
    let v = &outcome.violations[0];
    assert_eq!(
        (v.invariant.as_str(), v.step),
        ("NoLostWrite", collected[1].1)
    );
    assert!(chapter.contains(&format!("n2 the last one at step {}", collected[1].1)));
}
