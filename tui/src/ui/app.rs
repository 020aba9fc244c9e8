//! The TUI's state and everything that changes it: keys become [`Action`]s, and [`update`]
//! applies them. Drawing is separate (`render`) and reads the state only.

use super::replay::{Moment, Replay};
use simlab_sim::{StepKind, Time};

/// Which events the timeline lists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KindFilter {
    /// Everything.
    All,
    /// Message deliveries and drops.
    Messages,
    /// Timers.
    Timers,
    /// Client requests, replies, timeouts.
    Clients,
    /// Faults.
    Faults,
}

impl KindFilter {
    fn next(self) -> KindFilter {
        match self {
            KindFilter::All => KindFilter::Messages,
            KindFilter::Messages => KindFilter::Timers,
            KindFilter::Timers => KindFilter::Clients,
            KindFilter::Clients => KindFilter::Faults,
            KindFilter::Faults => KindFilter::All,
        }
    }

    /// Whether a step of this kind is listed.
    pub fn admits(self, kind: StepKind) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::Messages => matches!(kind, StepKind::Deliver | StepKind::Drop),
            KindFilter::Timers => kind == StepKind::Timer,
            KindFilter::Clients => {
                matches!(
                    kind,
                    StepKind::Request
                        | StepKind::Reply
                        | StepKind::ClientTimeout
                        | StepKind::ClientInvoke
                )
            }
            KindFilter::Faults => kind == StepKind::Fault,
        }
    }

    /// Its name in the header.
    pub fn label(self) -> &'static str {
        match self {
            KindFilter::All => "all events",
            KindFilter::Messages => "messages",
            KindFilter::Timers => "timers",
            KindFilter::Clients => "clients",
            KindFilter::Faults => "faults",
        }
    }
}

/// What "go to" asks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GotoKind {
    /// A step number.
    Step,
    /// A virtual time in milliseconds.
    TimeMs,
    /// A node number to select.
    Node,
    /// Text the node list must contain (a node's name, role, status or `field=value`).
    NodeFilter,
}

/// A window over the main screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// None.
    None,
    /// The key list.
    Help,
    /// Typing a step number or a time.
    Goto(GotoKind, String),
}

/// Stop playing when something happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breakpoint {
    /// The node watched.
    pub node: u32,
    /// The view field whose change stops play (e.g. `term`).
    pub field: String,
}

/// Something the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Move the cursor forward this many (listed) steps.
    Forward(u64),
    /// Move it back.
    Back(u64),
    /// To the first step.
    First,
    /// To the last step.
    Last,
    /// Next step of the selected node.
    NextOfNode,
    /// Previous step of the selected node.
    PrevOfNode,
    /// Next fault.
    NextFault,
    /// Previous fault.
    PrevFault,
    /// The first violation.
    FirstViolation,
    /// A step number.
    GotoStep(u64),
    /// The first step at or after a virtual time.
    GotoTime(Time),
    /// Select a node.
    SelectNode(u32),
    /// Select the next node by number.
    SelectNext,
    /// Select the previous node by number.
    SelectPrev,
    /// Select the node below the selected one in the node list as shown (filtered).
    SelectDown,
    /// Select the node above it.
    SelectUp,
    /// List only the nodes that acted or changed in this step, or all.
    ToggleChangedNodes,
    /// List only the selected node's steps, or all.
    ToggleNodeFilter,
    /// Cycle the kinds of step listed.
    CycleKindFilter,
    /// Play or pause.
    TogglePlay,
    /// Play faster.
    Faster,
    /// Play slower.
    Slower,
    /// Time passed while playing.
    Tick,
    /// Set (or cycle, or clear) a breakpoint on a field of the selected node.
    CycleFieldBreakpoint,
    /// Stop at violations while playing, or not.
    ToggleViolationBreakpoint,
    /// Show the lane view (a space-time diagram around the cursor) in place of the
    /// timeline, or the timeline again.
    ToggleLanes,
    /// Show the keys.
    Help,
    /// Start typing where to go.
    OpenGoto(GotoKind),
    /// A typed character.
    Input(char),
    /// Delete the last typed character.
    Backspace,
    /// Go where typed.
    Submit,
    /// Close the overlay.
    Close,
    /// Leave.
    Quit,
}

/// Playback speeds, in steps per tick (a tick is a tenth of a second).
pub const SPEEDS: [u64; 5] = [1, 10, 100, 1_000, 10_000];

/// The whole state of the TUI.
pub struct App {
    /// The scenario's name.
    pub scenario: String,
    /// The protocol's name.
    pub protocol: String,
    /// The seed.
    pub seed: u64,
    /// The recorded run.
    pub replay: Replay,
    /// The step under the cursor.
    pub cursor: u64,
    /// The world at the cursor.
    pub moment: Moment,
    /// The selected node.
    pub selected: u32,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// List only the selected node's steps.
    pub node_filter: bool,
    /// Which kinds of step are listed.
    pub kind_filter: KindFilter,
    /// Whether play is on.
    pub playing: bool,
    /// Index into [`SPEEDS`].
    pub speed: usize,
    /// The overlay shown, if any.
    pub overlay: Overlay,
    /// Stop playing when this field changes.
    pub breakpoint: Option<Breakpoint>,
    /// Stop playing at a violation.
    pub break_on_violation: bool,
    /// A one-line message for the status bar.
    pub message: String,
    /// Whether to leave.
    pub quit: bool,
    /// The lane view is shown instead of the timeline.
    pub lanes: bool,
    /// The lane view around the cursor, while it is shown.
    pub lane_view: Option<LaneView>,
    /// The node list shows only nodes whose line contains this (empty: every node).
    pub node_query: String,
    /// The node list shows only the nodes that acted or changed in this step.
    pub changed_nodes_only: bool,
}

/// The lane view's content: the text diagram of the steps around the cursor.
pub struct LaneView {
    /// Lane names over their columns.
    pub header: String,
    /// One row per step of the window.
    pub rows: Vec<crate::diagram::text::Row>,
}

/// Steps either side of the cursor the lane view draws.
pub const LANE_VIEW_REACH: u64 = 40;

impl App {
    /// The TUI over a recorded run, at its first step.
    pub fn new(
        scenario: String,
        protocol: String,
        seed: u64,
        nodes: u32,
        mut replay: Replay,
    ) -> App {
        let moment = replay.moment(0);
        App {
            scenario,
            protocol,
            seed,
            replay,
            cursor: 0,
            moment,
            selected: 0,
            nodes,
            node_filter: false,
            kind_filter: KindFilter::All,
            playing: false,
            speed: 1,
            overlay: Overlay::None,
            breakpoint: None,
            break_on_violation: true,
            message: "? for help".into(),
            quit: false,
            lanes: false,
            lane_view: None,
            node_query: String::new(),
            changed_nodes_only: false,
        }
    }

    /// The nodes the node list shows, in order, under its filters.
    pub fn listed_nodes(&self) -> Vec<u32> {
        let query = self.node_query.to_lowercase();
        (0..self.moment.views.len() as u32)
            .filter(|&id| !self.changed_nodes_only || self.moment.changed(id))
            .filter(|&id| query.is_empty() || self.moment.node_text(id).contains(&query))
            .collect()
    }

    /// Keeps the selection on a listed node when the list's filters hide it.
    fn select_listed(&mut self) {
        let listed = self.listed_nodes();
        if !listed.is_empty() && !listed.contains(&self.selected) {
            self.selected = listed
                .iter()
                .copied()
                .find(|&id| id > self.selected)
                .unwrap_or(listed[0]);
        }
    }

    /// Moves the selection one listed node down (or up), staying at the ends.
    fn step_selection(&mut self, down: bool) {
        let listed = self.listed_nodes();
        let next = if down {
            listed.iter().copied().find(|&id| id > self.selected)
        } else {
            listed.iter().rev().copied().find(|&id| id < self.selected)
        };
        if let Some(id) = next {
            self.selected = id;
        }
    }

    /// Draws the lane view around the cursor again (after the cursor moved).
    fn refresh_lanes(&mut self) {
        if !self.lanes || self.replay.is_empty() {
            self.lane_view = None;
            return;
        }
        let first = self.cursor.saturating_sub(LANE_VIEW_REACH);
        let last = self.cursor.saturating_add(LANE_VIEW_REACH);
        let capture = self.replay.capture(first, last, true);
        let diagram = crate::diagram::Diagram::build(
            &capture,
            String::new(),
            &crate::diagram::Options {
                max_arrows: 0,
                ..crate::diagram::Options::default()
            },
        );
        self.lane_view = Some(LaneView {
            header: diagram.text_header(),
            rows: diagram.rows(),
        });
    }

    /// Whether the step at `index` is listed under the current filters.
    pub fn listed(&self, index: u64) -> bool {
        let Some(step) = self.replay.steps.get(index as usize) else {
            return false;
        };
        self.kind_filter.admits(step.kind)
            && (!self.node_filter
                || u32::from(step.node) == self.selected
                || u32::from(step.peer) == self.selected && step.kind == StepKind::Deliver)
    }

    fn last(&self) -> u64 {
        self.replay.len().saturating_sub(1)
    }

    fn go(&mut self, step: u64) {
        self.cursor = step.min(self.last());
        self.moment = self.replay.moment(self.cursor);
        self.refresh_lanes();
    }

    /// The next listed step after `from` (or before it, going back), within `limit` steps.
    fn find(&self, from: u64, forward: bool, pred: impl Fn(u64) -> bool) -> Option<u64> {
        if forward {
            (from + 1..self.replay.len()).find(|&i| pred(i))
        } else {
            (0..from).rev().find(|&i| pred(i))
        }
    }

    fn move_listed(&mut self, count: u64, forward: bool) {
        let mut at = self.cursor;
        for _ in 0..count {
            match self.find(at, forward, |i| self.listed(i)) {
                Some(next) => at = next,
                None => break,
            }
        }
        self.go(at);
    }

    fn field_value(
        &self,
        views: &[(simlab_sim::NodeStatus, simlab_sim::NodeView)],
        node: u32,
        field: &str,
    ) -> Option<String> {
        views.get(node as usize).and_then(|(_, v)| {
            v.fields
                .iter()
                .find(|f| f.name == field)
                .map(|f| f.value.clone())
        })
    }

    /// Plays forward up to `count` steps, stopping at a breakpoint.
    fn play(&mut self, count: u64) {
        let start = self.cursor;
        let mut at = start;
        let watch = self.breakpoint.clone();
        let mut value = watch
            .as_ref()
            .and_then(|b| self.field_value(&self.moment.views, b.node, &b.field));
        while at < self.last() && at - start < count {
            at += 1;
            if self.break_on_violation && self.replay.steps.at(at as usize).violation {
                self.go(at);
                self.playing = false;
                self.message = format!("stopped: an invariant was violated at step {at}");
                return;
            }
            if let Some(b) = &watch {
                let moment = self.replay.moment(at);
                let now = self.field_value(&moment.views, b.node, &b.field);
                if now != value {
                    self.cursor = at;
                    self.moment = moment;
                    self.playing = false;
                    self.message = format!(
                        "stopped: n{} {} changed to {}",
                        b.node,
                        b.field,
                        now.unwrap_or_else(|| "-".into())
                    );
                    return;
                }
                value = now;
            }
        }
        self.go(at);
        if at == self.last() {
            self.playing = false;
            self.message = "end of the run".into();
        }
    }
}

/// Flips `flag` and says what it is now.
fn toggle(flag: &mut bool, on: &str, off: &str) -> String {
    *flag = !*flag;
    if *flag { on } else { off }.to_string()
}

/// Applies an action; may return a follow-up action.
pub fn update(app: &mut App, action: Action) -> Option<Action> {
    match action {
        Action::Forward(n) => app.move_listed(n, true),
        Action::Back(n) => app.move_listed(n, false),
        Action::First => app.go(0),
        Action::Last => app.go(app.last()),
        Action::NextOfNode | Action::PrevOfNode => {
            let node = app.selected;
            let forward = action == Action::NextOfNode;
            match app.find(app.cursor, forward, |i| {
                u32::from(app.replay.steps.at(i as usize).node) == node
            }) {
                Some(i) => app.go(i),
                None => {
                    app.message = format!(
                        "no {} step of n{node}",
                        if forward { "later" } else { "earlier" }
                    )
                }
            }
        }
        Action::NextFault | Action::PrevFault => {
            let forward = action == Action::NextFault;
            match app.find(app.cursor, forward, |i| {
                app.replay.steps.at(i as usize).kind == StepKind::Fault
            }) {
                Some(i) => app.go(i),
                None => {
                    app.message = format!("no {} fault", if forward { "later" } else { "earlier" })
                }
            }
        }
        Action::FirstViolation => match app.replay.first_violation() {
            Some(i) => {
                app.go(i);
                app.message = format!("first violation, at step {i}");
            }
            None if !app.replay.violations.is_empty() => {
                app.go(app.last());
                app.message = "violated at the end of the run (an end-of-run check)".into();
            }
            None => app.message = "no invariant was violated".into(),
        },
        Action::GotoStep(n) => app.go(n),
        Action::GotoTime(t) => {
            let index = app.replay.steps.first_at(t.as_micros()) as u64;
            app.go(index);
        }
        Action::SelectNode(n) if n < app.nodes => app.selected = n,
        Action::SelectNode(n) => app.message = format!("no node n{n}"),
        Action::SelectNext => app.selected = (app.selected + 1) % app.nodes.max(1),
        Action::SelectPrev => {
            app.selected = app
                .selected
                .checked_sub(1)
                .unwrap_or(app.nodes.saturating_sub(1))
        }
        Action::SelectDown => app.step_selection(true),
        Action::SelectUp => app.step_selection(false),
        Action::ToggleChangedNodes => {
            app.message = toggle(
                &mut app.changed_nodes_only,
                "nodes: only those that acted or changed in this step",
                "nodes: all",
            );
            app.select_listed();
        }
        Action::ToggleNodeFilter => app.node_filter = !app.node_filter,
        Action::CycleKindFilter => app.kind_filter = app.kind_filter.next(),
        Action::TogglePlay => {
            app.message = toggle(&mut app.playing, "playing", "paused");
        }
        Action::Faster => app.speed = (app.speed + 1).min(SPEEDS.len() - 1),
        Action::Slower => app.speed = app.speed.saturating_sub(1),
        Action::Tick if app.playing => app.play(SPEEDS[app.speed]),
        Action::Tick => {}
        Action::CycleFieldBreakpoint => {
            let fields: Vec<String> = app
                .moment
                .views
                .get(app.selected as usize)
                .map(|(_, v)| v.fields.iter().map(|f| f.name.clone()).collect())
                .unwrap_or_default();
            let next = match &app.breakpoint {
                Some(b) if b.node == app.selected => fields
                    .iter()
                    .position(|f| *f == b.field)
                    .and_then(|i| fields.get(i + 1)),
                _ => fields.first(),
            };
            app.breakpoint = next.map(|field| Breakpoint {
                node: app.selected,
                field: field.clone(),
            });
            app.message = match &app.breakpoint {
                Some(b) => format!("breakpoint: n{} {} changes", b.node, b.field),
                None => "breakpoint cleared".into(),
            };
        }
        Action::ToggleViolationBreakpoint => {
            app.break_on_violation = !app.break_on_violation;
            app.message = format!(
                "stop at violations: {}",
                if app.break_on_violation { "on" } else { "off" }
            );
        }
        Action::ToggleLanes => {
            app.message = toggle(
                &mut app.lanes,
                "lane view: arrows from sender (○) to receiver (▶), ● sends, ✕ lost",
                "timeline",
            );
            app.refresh_lanes();
        }
        Action::Help => app.overlay = Overlay::Help,
        Action::OpenGoto(kind) => app.overlay = Overlay::Goto(kind, String::new()),
        Action::Input(c) => {
            if let Overlay::Goto(kind, text) = &mut app.overlay {
                let fits = match kind {
                    GotoKind::NodeFilter => !c.is_control() && text.len() < 40,
                    _ => c.is_ascii_digit() && text.len() < 12,
                };
                if fits {
                    text.push(c);
                }
            }
        }
        Action::Backspace => {
            if let Overlay::Goto(_, text) = &mut app.overlay {
                text.pop();
            }
        }
        Action::Submit => {
            let Overlay::Goto(kind, text) = std::mem::replace(&mut app.overlay, Overlay::None)
            else {
                return None;
            };
            let number = text.parse::<u64>();
            let next = match kind {
                GotoKind::NodeFilter => {
                    app.node_query = text.trim().to_string();
                    app.select_listed();
                    app.message = match (app.node_query.is_empty(), app.listed_nodes().len()) {
                        (true, _) => "nodes: all".into(),
                        (false, 0) => format!("no node matches \"{}\"", app.node_query),
                        (false, n) => format!("{n} nodes match \"{}\"", app.node_query),
                    };
                    return None;
                }
                GotoKind::Step => number.map(Action::GotoStep),
                GotoKind::TimeMs => number.map(|n| Action::GotoTime(Time::from_millis(n))),
                GotoKind::Node => {
                    number.map(|n| Action::SelectNode(u32::try_from(n).unwrap_or(u32::MAX)))
                }
            };
            let Ok(next) = next else {
                app.message = "type a number".into();
                return None;
            };
            return Some(next);
        }
        Action::Close => app.overlay = Overlay::None,
        Action::Quit => app.quit = true,
    }
    None
}

/// The keys, for the help overlay (and the book).
pub const KEYS: &[(&str, &str)] = &[
    ("Right / l", "next step"),
    ("Left / h", "previous step"),
    ("] / [", "10 steps forward / back"),
    ("} / {  PgDn / PgUp", "100 steps forward / back"),
    ("Home g / End G", "first / last step"),
    (
        "Tab / Shift-Tab, 0-9",
        "select the next / previous node, or node 0-9",
    ),
    ("#", "select a node by number"),
    ("Down j / Up k", "select the next / previous node listed"),
    ("/", "list only nodes whose line contains a text"),
    ("c", "list only nodes that acted or changed (toggle)"),
    ("n / N", "next / previous step of the selected node"),
    ("f / F", "next / previous fault"),
    ("v", "first violation"),
    (":", "go to a step number"),
    ("t", "go to a virtual time (ms)"),
    ("s", "list only the selected node's steps (toggle)"),
    ("e", "cycle the kinds of step listed"),
    (
        "d",
        "lane view: messages as arrows between node lanes around the cursor (toggle)",
    ),
    ("Space", "play / pause"),
    ("+ / -", "play faster / slower"),
    (
        "b",
        "breakpoint on a field of the selected node (cycle, then clear)",
    ),
    ("B", "stop at violations while playing (toggle)"),
    ("?", "this help"),
    ("Esc", "close an overlay"),
    ("q / Ctrl-C", "quit"),
];
