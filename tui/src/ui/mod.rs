//! The time-travel terminal UI: `simlab tui FILE [--seed N] [--at-violation]`.

pub mod app;
pub mod render;
pub mod replay;

use app::{Action, App, GotoKind, Overlay};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::time::Duration;

/// The action a key asks for, given what is on screen.
pub fn action_for(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::Quit);
    }
    match (&app.overlay, key.code) {
        (Overlay::Goto(..), KeyCode::Enter) => Some(Action::Submit),
        (Overlay::Goto(..), KeyCode::Backspace) => Some(Action::Backspace),
        (Overlay::Goto(..), KeyCode::Esc) => Some(Action::Close),
        (Overlay::Goto(..), KeyCode::Char(c)) => Some(Action::Input(c)),
        (Overlay::Goto(..), _) => None,
        (Overlay::Help, KeyCode::Esc | KeyCode::Char('?')) => Some(Action::Close),
        (Overlay::Help, KeyCode::Char('q')) => Some(Action::Quit),
        (Overlay::Help, _) => None,
        (Overlay::None, code) => match code {
            KeyCode::Right | KeyCode::Char('l') => Some(Action::Forward(1)),
            KeyCode::Left | KeyCode::Char('h') => Some(Action::Back(1)),
            KeyCode::Char(']') => Some(Action::Forward(10)),
            KeyCode::Char('[') => Some(Action::Back(10)),
            KeyCode::Char('}') | KeyCode::PageDown => Some(Action::Forward(100)),
            KeyCode::Char('{') | KeyCode::PageUp => Some(Action::Back(100)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::First),
            KeyCode::End | KeyCode::Char('G') => Some(Action::Last),
            KeyCode::Tab => Some(Action::SelectNext),
            KeyCode::BackTab => Some(Action::SelectPrev),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::SelectDown),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::SelectUp),
            KeyCode::Char('#') => Some(Action::OpenGoto(GotoKind::Node)),
            KeyCode::Char('/') => Some(Action::OpenGoto(GotoKind::NodeFilter)),
            KeyCode::Char('c') => Some(Action::ToggleChangedNodes),
            KeyCode::Char(c @ '0'..='9') => Some(Action::SelectNode(c as u32 - '0' as u32)),
            KeyCode::Char('n') => Some(Action::NextOfNode),
            KeyCode::Char('N') => Some(Action::PrevOfNode),
            KeyCode::Char('f') => Some(Action::NextFault),
            KeyCode::Char('F') => Some(Action::PrevFault),
            KeyCode::Char('v') => Some(Action::FirstViolation),
            KeyCode::Char(':') => Some(Action::OpenGoto(GotoKind::Step)),
            KeyCode::Char('t') => Some(Action::OpenGoto(GotoKind::TimeMs)),
            KeyCode::Char('s') => Some(Action::ToggleNodeFilter),
            KeyCode::Char('e') => Some(Action::CycleKindFilter),
            KeyCode::Char('d') => Some(Action::ToggleLanes),
            KeyCode::Char(' ') => Some(Action::TogglePlay),
            KeyCode::Char('+') | KeyCode::Char('=') => Some(Action::Faster),
            KeyCode::Char('-') => Some(Action::Slower),
            KeyCode::Char('b') => Some(Action::CycleFieldBreakpoint),
            KeyCode::Char('B') => Some(Action::ToggleViolationBreakpoint),
            KeyCode::Char('?') => Some(Action::Help),
            KeyCode::Esc => Some(Action::Close),
            KeyCode::Char('q') => Some(Action::Quit),
            _ => None,
        },
    }
}

/// Runs the UI until the user quits. The terminal is restored on quit, on error and on panic
/// (ratatui's `init` installs a panic hook that restores it).
pub fn run(mut app: App) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let result = (|| {
        while !app.quit {
            terminal.draw(|f| render::draw(f, &app))?;
            let timeout = if app.playing {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(3600)
            };
            if event::poll(timeout)? {
                if let Event::Key(key) = event::read()?
                    && let Some(action) = action_for(&app, key)
                {
                    let mut next = Some(action);
                    while let Some(a) = next {
                        next = app::update(&mut app, a);
                    }
                }
            } else {
                app::update(&mut app, Action::Tick);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::app::{Action, App, update};
    use super::replay::Replay;
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use simlab_protocols::Scenario;
    use simlab_sim::Time;
    use std::path::Path;

    fn app(name: &str) -> App {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(format!("{name}.ron"));
        let scenario = Scenario::load(&path).unwrap().scenario;
        let replay = Replay::record(&scenario, scenario.seed);
        App::new(
            scenario.name.clone(),
            scenario.protocol.name().into(),
            scenario.seed,
            scenario.nodes,
            replay,
        )
    }

    #[test]
    fn a_schedule_with_a_chosen_crash_replays_forwards_and_backwards() {
        use crate::schedule::{Driver, Schedule};
        use simlab_protocols::registry::{self, ExploreStart};
        use simlab_sim::explore::{ExploreLimits, Search};
        use simlab_sim::{FaultBudget, StepKind};
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/2pc-explore-commit-before-log.ron");
        let scenario = Scenario::load(&path).unwrap().scenario;
        let start = ExploreStart {
            faults: FaultBudget {
                crashes: 1,
                ..FaultBudget::default()
            },
            ..ExploreStart::default()
        };
        let limits = ExploreLimits {
            max_depth: 20,
            max_states: 100_000,
        };
        let report =
            registry::explore_unobserved(&scenario, &start, Search::BreadthFirst, &limits, 1)
                .unwrap();
        let found = report.counterexample.expect("the planted bug");
        let schedule = Schedule::new(&scenario.name, &start, scenario.seed, &found);
        let explored = start.scenario(&scenario);
        let driver = Driver::Schedule(std::sync::Arc::new(schedule));
        let mut replay = Replay::record_driven(&explored, scenario.seed, driver).unwrap();
        assert_eq!(replay.len(), 11, "the schedule's steps, no more");
        assert_eq!(replay.first_violation(), Some(10));
        // Back to the crash (step 9 of the schedule, index 8), forwards to the violation.
        let crash = replay.moment(8);
        let record = crash.record.expect("a step");
        assert_eq!(record.kind, StepKind::Fault);
        assert_eq!(crash.views[0].0, simlab_sim::NodeStatus::Crashed);
        let last = replay.moment(10);
        assert!(!last.record.unwrap().violations.is_empty());
    }

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render::draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn press(app: &mut App, code: KeyCode) {
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        let mut next = action_for(app, key);
        while let Some(a) = next {
            next = update(app, a);
        }
    }

    #[test]
    fn start_screen() {
        let app = app("raft-reelection");
        insta::assert_snapshot!(screen(&app, 120, 32));
    }

    #[test]
    fn mid_run_with_a_partition() {
        let mut app = app("raft-reelection");
        press(&mut app, KeyCode::Char('f'));
        press(&mut app, KeyCode::Right);
        let text = screen(&app, 120, 32);
        assert!(
            text.contains("partitioned into 2 groups, 8 links cut: {n0-n3} | {n4}"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn at_the_first_violation() {
        let mut app = app("3pc-partition");
        press(&mut app, KeyCode::Char('v'));
        let text = screen(&app, 120, 32);
        assert!(text.contains("VIOLATED"), "{text}");
        assert_eq!(app.cursor, app.replay.first_violation().unwrap());
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_lane_view_shows_messages_leaving_and_arriving_as_the_cursor_steps() {
        let mut app = app("3pc-partition");
        press(&mut app, KeyCode::Char('v'));
        press(&mut app, KeyCode::Char('d'));
        assert!(app.lanes);
        let at_violation = screen(&app, 200, 36);
        // The cursor row is the violation: the backup coordinator's abort, lost to the cut.
        let cursor_line = at_violation
            .lines()
            .find(|l| l.contains(&format!(">{:>6}", app.cursor)))
            .unwrap_or_else(|| panic!("no cursor row in\n{at_violation}"));
        assert!(cursor_line.contains("VIOLATED Agreement"), "{cursor_line}");
        assert!(cursor_line.contains("✕─●"), "{cursor_line}");
        let row = app
            .lane_view
            .as_ref()
            .and_then(|v| v.rows.iter().find(|r| r.step == app.cursor))
            .unwrap();
        assert!(
            row.text
                .contains("n2 Decide lost as sent (partition) to n0, n1"),
            "{}",
            row.text
        );
        insta::assert_snapshot!(at_violation);
        // Back to the step where n1's PreCommitAck arrives at n0: an arrow from n1 to n0.
        press(&mut app, KeyCode::Char('g'));
        while !app
            .moment
            .record
            .as_ref()
            .is_some_and(|r| r.summary.starts_with("n1 → n0: PreCommitAck"))
        {
            press(&mut app, KeyCode::Right);
        }
        let text = screen(&app, 140, 36);
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("│>{:>6}", app.cursor)))
            .unwrap_or_else(|| panic!("no cursor row in\n{text}"));
        assert!(row.contains("◀─────○"), "{row}");
        // The toggle brings the timeline back.
        press(&mut app, KeyCode::Char('d'));
        assert!(screen(&app, 140, 36).contains("Timeline"));
    }

    #[test]
    fn help_overlay_lists_every_key_and_escape_closes_it() {
        let mut app = app("3pc-partition");
        press(&mut app, KeyCode::Char('?'));
        let text = screen(&app, 100, 30);
        for (key, _) in app::KEYS {
            assert!(text.contains(key), "{key} missing from help:\n{text}");
        }
        insta::assert_snapshot!(text);
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.overlay, Overlay::None);
    }

    #[test]
    fn a_multi_paxos_node_shows_its_ballot_promise_and_slots() {
        let mut app = app("multi-paxos-basic");
        update(&mut app, Action::Forward(2_000));
        let text = screen(&app, 160, 40);
        for field in [
            "leader",
            "ballot=",
            "promised=",
            "applied=",
            "slots=",
            ":chosen c",
        ] {
            assert!(text.contains(field), "{field} missing:\n{text}");
        }
    }

    #[test]
    fn the_lock_lab_shows_holders_leases_and_the_storage_at_the_violation() {
        let mut app = app("locks-gc-pause");
        press(&mut app, KeyCode::Char('v'));
        let text = screen(&app, 160, 40);
        for field in [
            "lock server lock=",
            "storage counter=",
            "phase=",
            "lease=token",
            "MutualExclusion",
            "n2's write of 42 (token 45)",
        ] {
            assert!(text.contains(field), "{field} missing:\n{text}");
        }
    }

    #[test]
    fn narrow_80_by_24() {
        let mut app = app("2pc-coordinator-crash-after-decision");
        press(&mut app, KeyCode::Char('f'));
        insta::assert_snapshot!(screen(&app, 80, 24));
    }

    #[test]
    fn forward_then_back_returns_to_the_same_view() {
        let mut app = app("raft-churn");
        press(&mut app, KeyCode::Char('}'));
        let (cursor, views, hash) = (
            app.cursor,
            app.moment.views.clone(),
            app.moment.record.as_ref().unwrap().hash.clone(),
        );
        for k in [1u64, 7, 10, 100, 1_234] {
            update(&mut app, Action::Forward(k));
            assert_eq!(app.cursor, cursor + k);
            update(&mut app, Action::Back(k));
            assert_eq!(app.cursor, cursor);
            assert_eq!(app.moment.views, views, "views after +{k} then -{k}");
            assert_eq!(app.moment.record.as_ref().unwrap().hash, hash);
        }
        // Stepping one at a time agrees with jumping.
        update(&mut app, Action::GotoStep(2_500));
        let jumped = app.moment.views.clone();
        update(&mut app, Action::GotoStep(2_499));
        update(&mut app, Action::Forward(1));
        assert_eq!(app.moment.views, jumped);
    }

    #[test]
    fn jumps_land_where_they_say() {
        let mut app = app("raft-churn");
        update(&mut app, Action::Last);
        assert_eq!(app.cursor, app.replay.len() - 1);
        update(&mut app, Action::First);
        assert_eq!(app.cursor, 0);
        update(&mut app, Action::NextFault);
        assert_eq!(
            app.replay.steps.at(app.cursor as usize).kind,
            simlab_sim::StepKind::Fault
        );
        let first_fault = app.cursor;
        update(&mut app, Action::NextFault);
        assert!(app.cursor > first_fault);
        update(&mut app, Action::PrevFault);
        assert_eq!(app.cursor, first_fault);
        update(&mut app, Action::SelectNode(3));
        update(&mut app, Action::NextOfNode);
        assert_eq!(app.replay.steps.at(app.cursor as usize).node, 3);
        update(&mut app, Action::GotoTime(Time::from_millis(2_000)));
        let t = app.replay.steps.at(app.cursor as usize).time_us;
        assert!(t >= 2_000_000 && app.replay.steps.at(app.cursor as usize - 1).time_us < 2_000_000);
        // Typing a step number.
        press(&mut app, KeyCode::Char(':'));
        for c in "1500".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.cursor, 1_500);
        // Filters: only the selected node's steps, only faults.
        update(&mut app, Action::CycleKindFilter);
        update(&mut app, Action::CycleKindFilter);
        update(&mut app, Action::CycleKindFilter);
        update(&mut app, Action::CycleKindFilter);
        update(&mut app, Action::First);
        update(&mut app, Action::Forward(1));
        assert_eq!(
            app.replay.steps.at(app.cursor as usize).kind,
            simlab_sim::StepKind::Fault
        );
    }

    #[test]
    fn play_stops_at_a_field_breakpoint_and_at_violations() {
        let mut app = app("raft-reelection");
        update(&mut app, Action::SelectNode(0));
        update(&mut app, Action::CycleFieldBreakpoint); // the first field: term
        assert_eq!(app.breakpoint.as_ref().unwrap().field, "term");
        update(&mut app, Action::TogglePlay);
        for _ in 0..1_000 {
            update(&mut app, Action::Tick);
            if !app.playing {
                break;
            }
        }
        assert!(
            !app.playing && app.message.contains("n0 term changed"),
            "{}",
            app.message
        );
        let term_now = |a: &App| a.moment.views[0].1.fields[0].value.clone();
        let before = app.replay.moment(app.cursor - 1).views[0].1.fields[0]
            .value
            .clone();
        assert_ne!(before, term_now(&app));

        let mut broken = super::tests::app("3pc-partition");
        update(&mut broken, Action::TogglePlay);
        for _ in 0..100 {
            update(&mut broken, Action::Tick);
        }
        assert_eq!(broken.cursor, broken.replay.first_violation().unwrap());
    }

    #[test]
    fn the_books_cli_reference_lists_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src/cli.md");
        let reference = std::fs::read_to_string(path).unwrap();
        for (keys, _) in app::KEYS {
            for key in keys.split_whitespace().filter(|k| *k != "/" && *k != ",") {
                let key = key.trim_end_matches(',');
                assert!(
                    reference.contains(&format!("`{key}`"))
                        || key == "0-9" && reference.contains("`0`-`9`"),
                    "{key} is not in book/src/cli.md"
                );
            }
        }
    }

    /// A gossip cache of 1,000 nodes split 500/500 from 100 ms to 300 ms.
    fn thousand_nodes() -> App {
        let half: Vec<String> = (0..500).map(|i| i.to_string()).collect();
        let text = format!(
            "Scenario(name: \"wide\", description: \"1,000 nodes\", protocol: Gossip(keys: 4), \
             nodes: 1000, seed: 0, clients: (count: 4, ops: 4, think_ms: (0, 40), spread: true), \
             faults: [(at_ms: 100, fault: Partition([[{}]])), (at_ms: 300, fault: Heal)], \
             stop_ms: 400, expect: AllHold)",
            half.join(", ")
        );
        let scenario = Scenario::parse(Path::new("wide.ron"), &text).unwrap();
        let replay = Replay::record(&scenario, 0);
        App::new("wide".into(), "gossip".into(), 0, 1000, replay)
    }

    #[test]
    fn absent_joining_leaving_and_left_nodes_say_so() {
        let text = "Scenario(name: \"members\", protocol: Counter(), nodes: 4, absent: [3], \
             faults: [(at_ms: 100, fault: Join(3)), (at_ms: 200, fault: Leave(1))], \
             stop_ms: 400, expect: AllHold)";
        let scenario = Scenario::parse(Path::new("members.ron"), text).unwrap();
        let replay = Replay::record(&scenario, 0);
        let mut app = App::new("members".into(), "counter".into(), 0, 4, replay);
        let start = screen(&app, 120, 32);
        assert!(start.contains("n3 ABSENT"), "{start}");
        type_text(&mut app, '/', "absent");
        assert_eq!(app.listed_nodes(), vec![3]);
        type_text(&mut app, '/', "");
        press(&mut app, KeyCode::Char('f'));
        let joined = screen(&app, 120, 32);
        assert!(joined.contains("n3 joins"), "{joined}");
        assert!(!joined.contains("ABSENT"), "{joined}");
        press(&mut app, KeyCode::Char('f'));
        let left = screen(&app, 120, 32);
        assert!(
            left.contains("n1 leaves") && left.contains("n1 LEFT"),
            "{left}"
        );
        assert!(app.moment.node_text(1).starts_with("n1 left "));
    }

    fn type_text(app: &mut App, open: char, text: &str) {
        press(app, KeyCode::Char(open));
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
        press(app, KeyCode::Enter);
    }

    #[test]
    fn a_thousand_nodes_scroll_filter_and_summarise_the_partition() {
        let mut app = thousand_nodes();
        press(&mut app, KeyCode::Char('f'));
        let text = screen(&app, 120, 32);
        assert!(
            text.contains("partitioned into 2 groups, 500000 links cut: {n0-n499} | {n500-n999}"),
            "{text}"
        );
        // The node list is a window of 13 rows over 1,000 nodes, around the selected one.
        assert!(text.contains("Nodes 0-12 of 1000"), "{text}");
        type_text(&mut app, '#', "700");
        assert_eq!(app.selected, 700);
        let text = screen(&app, 120, 32);
        assert!(text.contains("Nodes 694-706 of 1000"), "{text}");
        assert!(text.contains(">n700 "), "{text}");
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected, 702);
        press(&mut app, KeyCode::BackTab);
        assert_eq!(app.selected, 701);

        // A text filter: one node by name, then none, then all again.
        type_text(&mut app, '/', "n999 ");
        assert_eq!(app.listed_nodes(), vec![999]);
        assert_eq!(app.selected, 999);
        let text = screen(&app, 120, 32);
        assert!(
            text.contains("Nodes 999-999 of 1000 1 match \"n999\""),
            "{text}"
        );
        type_text(&mut app, '/', "no such text");
        assert!(app.listed_nodes().is_empty());
        assert!(screen(&app, 120, 32).contains("none of 1000 match"));
        type_text(&mut app, '/', "");
        assert_eq!(app.listed_nodes().len(), 1000);

        // Only the nodes that acted or changed: at a delivery, the receiver.
        let delivery = (app.cursor..app.replay.len())
            .find(|&i| app.replay.steps.at(i as usize).kind == simlab_sim::StepKind::Deliver)
            .unwrap();
        update(&mut app, Action::GotoStep(delivery));
        press(&mut app, KeyCode::Char('c'));
        let receiver = u32::from(app.replay.steps.at(delivery as usize).node);
        assert!(app.listed_nodes().contains(&receiver));
        assert!(app.listed_nodes().len() < 10, "{:?}", app.listed_nodes());
        assert!(
            app.listed_nodes().contains(&app.selected),
            "the selection follows the filter"
        );

        // After the heal, the network is whole again.
        press(&mut app, KeyCode::Char('f'));
        assert!(screen(&app, 120, 32).contains("fully connected"));
    }

    #[test]
    fn the_views_before_a_step_are_the_views_after_the_one_before() {
        // Deliveries, timers, requests, faults, crashes and restarts.
        for name in ["raft-churn-unreliable", "3pc-partition"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios")
                .join(format!("{name}.ron"));
            let scenario = Scenario::load(&path).unwrap().scenario;
            let mut replay = Replay::record(&scenario, scenario.seed);
            let mut after = replay.moment(0).views;
            for step in 1..replay.len().min(1_500) {
                let moment = replay.moment(step);
                assert_eq!(moment.before, after, "{name} step {step}");
                after = moment.views;
            }
        }
    }

    #[test]
    fn quit_and_ctrl_c_leave() {
        let mut app = app("3pc-partition");
        press(&mut app, KeyCode::Char('q'));
        assert!(app.quit);
        let mut app = super::tests::app("3pc-partition");
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&app, ctrl_c), Some(Action::Quit));
        update(&mut app, Action::Quit);
        assert!(app.quit);
    }
}
