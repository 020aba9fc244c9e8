//! Space-time (Lamport) diagrams of a run: nodes (and clients) as lanes, time flowing down,
//! every message an arrow from the step that sent it to the step that received it.
//!
//! [`capture`] takes the steps of a window from a recorded run; [`Diagram::build`] turns them
//! into lanes, arrows and marks, independent of how they are drawn; [`svg`], [`mermaid`] and
//! [`text`] draw them. The TUI's lane view is the text drawing of a window around its cursor.

pub mod capture;
pub mod mermaid;
pub mod svg;
pub mod text;

use capture::Capture;
use simlab_sim::{DropReason, NodeStatus, StepKind, StepRecord};
use std::collections::BTreeMap;

/// What to draw of a captured window.
#[derive(Clone, Debug)]
pub struct Options {
    /// The nodes to draw (`None`: all).
    pub nodes: Option<Vec<u32>>,
    /// Draw a lane per client, with requests and replies.
    pub clients: bool,
    /// Above this many arrows, quiet messages (delivered, with no note and no violation at
    /// their delivery) are hidden, the most frequent kinds first; 0 draws every arrow.
    pub max_arrows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: None,
            clients: false,
            max_arrows: 120,
        }
    }
}

/// A vertical line: a node or a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// `n3` or `c0`.
    pub name: String,
}

/// How an arrow ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Handled by its recipient at this step.
    Delivered {
        /// The step.
        step: u64,
        /// Its time (µs).
        at_us: u64,
    },
    /// Reached its delivery time and was lost (cut while in flight, recipient down).
    Dropped {
        /// The step.
        step: u64,
        /// Its time (µs).
        at_us: u64,
        /// Why.
        reason: DropReason,
    },
    /// The network lost it as it was sent.
    LostAtSend(DropReason),
    /// Still travelling when the drawing stops.
    InFlight,
}

/// A message, request or reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// Sending lane.
    pub from: usize,
    /// Receiving lane.
    pub to: usize,
    /// The step that sent it.
    pub sent_step: u64,
    /// When (µs).
    pub sent_us: u64,
    /// How it ended.
    pub end: End,
    /// Its kind (the message's name), e.g. `AppendEntries`.
    pub kind: String,
    /// The message in full, as the trace prints it.
    pub text: String,
    /// The network's second copy of a message.
    pub duplicate: bool,
    /// Delivered with no note and no violation at the delivery: routine traffic.
    pub quiet: bool,
}

impl Arrow {
    /// A short label: the kind and the start of its fields.
    pub fn label(&self) -> String {
        short(&self.text, 34)
    }

    /// When it ended, if it did at a step.
    pub fn end_us(&self) -> Option<u64> {
        match self.end {
            End::Delivered { at_us, .. } | End::Dropped { at_us, .. } => Some(at_us),
            End::LostAtSend(_) => Some(self.sent_us),
            End::InFlight => None,
        }
    }

    /// The step it ended at, if any.
    pub fn end_step(&self) -> Option<u64> {
        match self.end {
            End::Delivered { step, .. } | End::Dropped { step, .. } => Some(step),
            End::LostAtSend(_) => Some(self.sent_step),
            End::InFlight => None,
        }
    }
}

/// What a mark on a lane (or across all lanes) says.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// A protocol note, e.g. "becomes leader in term 3".
    Note,
    /// A fault or repair.
    Fault,
    /// An invariant first seen violated.
    Violation,
}

/// A labelled point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The lane, or `None` for the whole cluster.
    pub lane: Option<usize>,
    /// The step.
    pub step: u64,
    /// Its time (µs).
    pub at_us: u64,
    /// What kind.
    pub kind: MarkKind,
    /// The words.
    pub text: String,
}

/// A stretch of time a node was not running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The lane.
    pub lane: usize,
    /// From (µs).
    pub from_us: u64,
    /// To (µs).
    pub to_us: u64,
    /// Paused or crashed.
    pub status: NodeStatus,
}

/// A stretch of time the network was partitioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// From (µs).
    pub from_us: u64,
    /// To (µs).
    pub to_us: u64,
    /// The groups that reached each other, by lane name.
    pub groups: Vec<Vec<String>>,
}

/// A diagram of a window of a run.
#[derive(Clone, Debug)]
pub struct Diagram {
    /// A title line.
    pub title: String,
    /// Lanes, left to right.
    pub lanes: Vec<Lane>,
    /// The window's first step.
    pub first_step: u64,
    /// Its last step.
    pub last_step: u64,
    /// Its start (µs).
    pub start_us: u64,
    /// Its end (µs).
    pub end_us: u64,
    /// Messages drawn, in order of sending.
    pub arrows: Vec<Arrow>,
    /// Notes, faults, violations, in step order.
    pub marks: Vec<Mark>,
    /// Nodes down or paused.
    pub segments: Vec<Segment>,
    /// Partitions.
    pub bands: Vec<Band>,
    /// Arrows not drawn: `(what, how many)`.
    pub hidden: Vec<(String, usize)>,
    /// Every step of the window: `(step, time µs, one line)`, for the text drawing's rows.
    pub steps: Vec<(u64, u64, String)>,
}

/// A message's kind: the name its printed form starts with.
pub fn kind_of(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    if end == 0 { "message" } else { &text[..end] }
}

/// `text` cut to `max` characters, with an ellipsis if cut.
pub fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The message part of a delivery's summary (`n0 → n1: <message>`).
fn message_text(record: &StepRecord) -> &str {
    record
        .summary
        .split_once(": ")
        .map_or(record.summary.as_str(), |(_, m)| m)
}

impl Diagram {
    /// Lays out a captured window.
    pub fn build(capture: &Capture, title: String, options: &Options) -> Diagram {
        let shown = |n: u32| options.nodes.as_ref().is_none_or(|list| list.contains(&n));
        let mut lanes = Vec::new();
        let mut node_lane = vec![None; capture.nodes as usize];
        for n in 0..capture.nodes {
            if shown(n) {
                node_lane[n as usize] = Some(lanes.len());
                lanes.push(Lane {
                    name: format!("n{n}"),
                });
            }
        }
        let mut client_lane = vec![None; capture.clients as usize];
        if options.clients {
            for c in 0..capture.clients {
                client_lane[c as usize] = Some(lanes.len());
                lanes.push(Lane {
                    name: format!("c{c}"),
                });
            }
        }
        let node = |id: Option<simlab_sim::NodeId>| id.and_then(|n| node_lane[n.index()]);
        let client = |id: Option<simlab_sim::ClientId>| id.and_then(|c| client_lane[c.0 as usize]);
        let start_us = capture.records.first().map_or(0, |r| r.time_us);
        let end_us = capture.records.last().map_or(start_us, |r| r.time_us);
        let window = capture.first..=capture.last;

        let mut arrows = Vec::new();
        let mut off_lanes = 0;
        // Arrivals of first copies per (sending step, recipient lane): a send without one is
        // still travelling when the capture ends.
        let mut arrivals: BTreeMap<(u64, usize), usize> = BTreeMap::new();
        for record in capture.records.iter().chain(&capture.later) {
            let Some(sent_step) = record.sent_step else {
                continue;
            };
            let (from, to) = match record.kind {
                StepKind::Deliver | StepKind::Drop => (node(record.from), node(record.node)),
                StepKind::Request => (client(record.client), node(record.node)),
                StepKind::Reply => (node(record.node), client(record.client)),
                _ => continue,
            };
            let (Some(from), Some(to)) = (from, to) else {
                let involves_client = matches!(record.kind, StepKind::Request | StepKind::Reply);
                if !involves_client || options.clients {
                    off_lanes += 1;
                }
                continue;
            };
            if window.contains(&record.step) || window.contains(&sent_step) {
                if !record.duplicate {
                    *arrivals.entry((sent_step, to)).or_default() += 1;
                }
                let text = message_text(record).to_string();
                let end = match record.lost {
                    None => End::Delivered {
                        step: record.step,
                        at_us: record.time_us,
                    },
                    Some(reason) => End::Dropped {
                        step: record.step,
                        at_us: record.time_us,
                        reason,
                    },
                };
                let quiet = record.lost.is_none()
                    && record.notes.is_empty()
                    && record.violations.is_empty()
                    && !record.duplicate;
                arrows.push(Arrow {
                    from,
                    to,
                    sent_step,
                    sent_us: record.sent_us.unwrap_or(record.time_us),
                    end,
                    kind: kind_of(&text).to_string(),
                    text,
                    duplicate: record.duplicate,
                    quiet,
                });
            }
        }
        // Sends in the window whose arrival was not found: lost at send, or still travelling.
        for record in &capture.records {
            let Some(from) = node(record.node) else {
                continue;
            };
            let mut per_recipient: BTreeMap<usize, usize> = BTreeMap::new();
            for to in &record.sent_to {
                let Some(to) = node(Some(*to)) else {
                    continue;
                };
                let seen = per_recipient.entry(to).or_default();
                *seen += 1;
                let arrived = arrivals.get(&(record.step, to)).copied().unwrap_or(0);
                if *seen > arrived {
                    let text = effect_message(record, to, &lanes).unwrap_or_default();
                    arrows.push(Arrow {
                        from,
                        to,
                        sent_step: record.step,
                        sent_us: record.time_us,
                        end: End::InFlight,
                        kind: kind_of(&text).to_string(),
                        text,
                        duplicate: false,
                        quiet: false,
                    });
                }
            }
            for lost in &record.lost_at_send {
                let Some(to) = node(Some(lost.to)) else {
                    off_lanes += 1;
                    continue;
                };
                arrows.push(Arrow {
                    from,
                    to,
                    sent_step: record.step,
                    sent_us: record.time_us,
                    end: End::LostAtSend(lost.reason),
                    kind: kind_of(&lost.message).to_string(),
                    text: lost.message.clone(),
                    duplicate: false,
                    quiet: false,
                });
            }
        }
        arrows.sort_by_key(|a| (a.sent_step, a.end_step().unwrap_or(u64::MAX), a.to));

        let mut hidden = Vec::new();
        if off_lanes > 0 {
            hidden.push(("to or from lanes not drawn".to_string(), off_lanes));
        }
        if options.max_arrows > 0 && arrows.len() > options.max_arrows {
            let mut quiet_kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for a in arrows.iter().filter(|a| a.quiet) {
                *quiet_kinds.entry(a.kind.as_str()).or_default() += 1;
            }
            let mut kinds: Vec<(String, usize)> = quiet_kinds
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
            // Most frequent first; ties by name, so the choice is stable.
            kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut count = arrows.len();
            let mut hide = Vec::new();
            for (kind, n) in kinds {
                if count <= options.max_arrows {
                    break;
                }
                count -= n;
                hidden.push((format!("quiet {kind}"), n));
                hide.push(kind);
            }
            arrows.retain(|a| !(a.quiet && hide.contains(&a.kind)));
        }

        let mut marks = Vec::new();
        for record in &capture.records {
            let lane = match record.kind {
                StepKind::Reply | StepKind::ClientInvoke | StepKind::ClientTimeout => {
                    client(record.client)
                }
                _ => node(record.node),
            };
            if record.kind == StepKind::Fault {
                marks.push(Mark {
                    lane: None,
                    step: record.step,
                    at_us: record.time_us,
                    kind: MarkKind::Fault,
                    text: record
                        .summary
                        .strip_prefix("fault: ")
                        .unwrap_or(&record.summary)
                        .to_string(),
                });
            }
            if let Some(lane) = lane {
                for note in &record.notes {
                    marks.push(Mark {
                        lane: Some(lane),
                        step: record.step,
                        at_us: record.time_us,
                        kind: MarkKind::Note,
                        text: note.clone(),
                    });
                }
            }
            for violation in &record.violations {
                marks.push(Mark {
                    lane: None,
                    step: record.step,
                    at_us: record.time_us,
                    kind: MarkKind::Violation,
                    text: violation.clone(),
                });
            }
        }
        for v in &capture.end_violations {
            let text = format!("{}: {}", v.invariant, v.message);
            if !marks.iter().any(|m| m.text == text) {
                marks.push(Mark {
                    lane: None,
                    step: v.step,
                    at_us: v.time.as_micros().clamp(start_us, end_us),
                    kind: MarkKind::Violation,
                    text,
                });
            }
        }

        let mut segments = Vec::new();
        for (n, lane) in node_lane.iter().enumerate() {
            let Some(lane) = *lane else { continue };
            let mut open: Option<(u64, NodeStatus)> = None;
            for (at, statuses) in &capture.statuses {
                let status = statuses.get(n).copied().unwrap_or(NodeStatus::Up);
                if let Some((from, was)) = open
                    && was != status
                {
                    segments.push(Segment {
                        lane,
                        from_us: from,
                        to_us: *at,
                        status: was,
                    });
                    open = None;
                }
                if status != NodeStatus::Up && open.is_none() {
                    open = Some((*at, status));
                }
            }
            if let Some((from, status)) = open {
                segments.push(Segment {
                    lane,
                    from_us: from,
                    to_us: end_us,
                    status,
                });
            }
        }

        let mut bands = Vec::new();
        let mut open: Option<(u64, &Vec<Vec<u32>>)> = None;
        for (at, groups) in &capture.partitions {
            if let Some((from, was)) = open {
                bands.push(band(from, *at, was));
                open = None;
            }
            if groups.len() > 1 {
                open = Some((*at, groups));
            }
        }
        if let Some((from, was)) = open {
            bands.push(band(from, end_us, was));
        }

        Diagram {
            title,
            lanes,
            first_step: capture.first,
            last_step: capture.last,
            start_us,
            end_us,
            arrows,
            marks,
            segments,
            bands,
            hidden,
            steps: capture
                .records
                .iter()
                .map(|r| (r.step, r.time_us, r.summary.clone()))
                .collect(),
        }
    }

    /// Arrows hidden in all.
    pub fn hidden_count(&self) -> usize {
        self.hidden.iter().map(|(_, n)| n).sum()
    }
}

fn band(from_us: u64, to_us: u64, groups: &[Vec<u32>]) -> Band {
    Band {
        from_us,
        to_us,
        groups: groups
            .iter()
            .map(|g| g.iter().map(|n| format!("n{n}")).collect())
            .collect(),
    }
}

/// The printed message of the send to lane `to` in a step's effects (`send → nX: <message>`),
/// for messages whose arrival lies beyond what was captured.
fn effect_message(record: &StepRecord, to: usize, lanes: &[Lane]) -> Option<String> {
    let prefix = format!("send → {}: ", lanes.get(to)?.name);
    record
        .effects
        .iter()
        .find_map(|e| e.strip_prefix(&prefix))
        .map(str::to_string)
}

/// Steps either side of the first violation drawn by default.
pub const DEFAULT_AROUND: u64 = 30;
/// Steps drawn by default from the start of a run that violates nothing.
pub const DEFAULT_STEPS: u64 = 60;

/// Runs a scenario with a seed and draws a window of the run (`None`: around the first
/// violation, or the start), saying in words which window it drew.
pub fn draw_run(
    scenario: &simlab_protocols::Scenario,
    seed: u64,
    window: Option<capture::Window>,
    options: &Options,
) -> Result<(Diagram, String), String> {
    let mut replay = crate::ui::replay::Replay::record(scenario, seed);
    use capture::Window;
    let violated = replay.first_violation().is_some() || !replay.violations.is_empty();
    let window = window.unwrap_or(if violated {
        Window::AroundViolation(DEFAULT_AROUND)
    } else {
        Window::Steps(0, DEFAULT_STEPS - 1)
    });
    let (first, last) = window.resolve(&replay)?;
    let capture = replay.capture(first, last, true);
    let title = format!(
        "{} ({}), seed {seed}",
        scenario.name,
        scenario.protocol.name()
    );
    let note = format!("drew steps {first}..={last} of {}", replay.len());
    Ok((Diagram::build(&capture, title, options), note))
}
