//! The diagram as text: a row per step, a column per lane, so it fits a terminal (the TUI's
//! lane view) and a plain file. A delivery is drawn on the row of the step that handled it,
//! from its sender's column (`○`, where it came from) to an arrowhead at its recipient; the
//! row of the step that sent messages marks the sender `●` and says where they went.

use super::{Diagram, End, MarkKind};
use simlab_sim::NodeStatus;
use std::collections::BTreeMap;

// The order of a row's words: what matters most first, since a narrow panel cuts the end.
const VIOLATION: u8 = 0;
const FAULT: u8 = 1;
const ARRIVAL: u8 = 2;
const NOTE: u8 = 3;
const SEND: u8 = 4;
const STEP: u8 = 5;

/// A row being drawn: its time, its cells, its words, whether it holds a violation.
type Cells = (u64, Vec<char>, Vec<(u8, String)>, bool);

/// Characters per lane column.
pub const COLUMN: usize = 6;

/// One row of the text drawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The step.
    pub step: u64,
    /// Its time (µs).
    pub at_us: u64,
    /// The lanes, drawn.
    pub lanes: String,
    /// What happened, in words.
    pub text: String,
    /// Whether a violation was found at this step.
    pub violation: bool,
}

impl Diagram {
    /// The header line: lane names over their columns.
    pub fn text_header(&self) -> String {
        let mut head = String::new();
        for lane in &self.lanes {
            let name = super::short(&lane.name, COLUMN - 1);
            let pad = COLUMN / 2;
            let before = pad.saturating_sub(name.chars().count() / 2);
            let mut cell = " ".repeat(before);
            cell.push_str(&name);
            while cell.chars().count() < COLUMN {
                cell.push(' ');
            }
            head.push_str(&cell);
        }
        head
    }

    fn status_at(&self, lane: usize, t: u64) -> NodeStatus {
        self.segments
            .iter()
            .find(|s| s.lane == lane && s.from_us <= t && t < s.to_us.max(s.from_us + 1))
            .map_or(NodeStatus::Up, |s| s.status)
    }

    /// One row per step of the window: what is drawn at it, or the step's own line when
    /// nothing is (a timer that did nothing visible, a client starting an operation).
    pub fn rows(&self) -> Vec<Row> {
        let mut by_step: BTreeMap<u64, Cells> = BTreeMap::new();
        let width = self.lanes.len() * COLUMN;
        let centre = |lane: usize| lane * COLUMN + COLUMN / 2;
        let in_window = |step: u64| (self.first_step..=self.last_step).contains(&step);
        let blank = |at_us: u64| -> Cells {
            let mut cells = vec![' '; width];
            for lane in 0..self.lanes.len() {
                cells[centre(lane)] = match self.status_at(lane, at_us) {
                    NodeStatus::Up | NodeStatus::Leaving => '│',
                    NodeStatus::Paused => '┆',
                    NodeStatus::Crashed => '·',
                    NodeStatus::Absent | NodeStatus::Left => ' ',
                };
            }
            (at_us, cells, Vec::new(), false)
        };

        for a in &self.arrows {
            let (from, to) = (&self.lanes[a.from].name, &self.lanes[a.to].name);
            if in_window(a.sent_step) {
                let r = by_step
                    .entry(a.sent_step)
                    .or_insert_with(|| blank(a.sent_us));
                // A node that receives and sends in one step keeps its arrowhead.
                if !matches!(r.1[centre(a.from)], '▶' | '◀' | '✕') {
                    r.1[centre(a.from)] = '●';
                }
                let kind = super::kind_of(&a.text);
                let what = match a.end {
                    End::LostAtSend(reason) => (
                        SEND,
                        format!("{from} {kind} lost as sent ({}) to {to}", reason.label()),
                    ),
                    End::InFlight => (
                        SEND,
                        format!("{from} sends {kind} (in flight past the window) to {to}"),
                    ),
                    _ => (SEND, format!("{from} sends {kind} to {to}")),
                };
                if matches!(a.end, End::LostAtSend(_)) {
                    let toward: isize = if a.to > a.from { 1 } else { -1 };
                    let x = centre(a.from) as isize + toward * 2;
                    if (0..width as isize).contains(&x) {
                        r.1[(centre(a.from) as isize + toward) as usize] = '─';
                        r.1[x as usize] = '✕';
                    }
                }
                r.2.push(what);
            }
            let (step, at_us, lost) = match a.end {
                End::Delivered { step, at_us } => (step, at_us, None),
                End::Dropped {
                    step,
                    at_us,
                    reason,
                } => (step, at_us, Some(reason)),
                _ => continue,
            };
            if !in_window(step) {
                continue;
            }
            let r = by_step.entry(step).or_insert_with(|| blank(at_us));
            let (a_x, b_x) = (centre(a.from), centre(a.to));
            let (lo, hi) = (a_x.min(b_x), a_x.max(b_x));
            for cell in &mut r.1[lo + 1..hi] {
                *cell = if lost.is_some() { '╌' } else { '─' };
            }
            if r.1[a_x] != '●' {
                r.1[a_x] = '○';
            }
            r.1[b_x] = match (lost, b_x > a_x) {
                (Some(_), _) => '✕',
                (None, true) => '▶',
                (None, false) => '◀',
            };
            let dup = if a.duplicate { " (duplicate)" } else { "" };
            let sent = format!(
                "sent at step {}, {}",
                a.sent_step,
                super::svg::ms(at_us - a.sent_us.min(at_us))
            );
            r.2.push((
                ARRIVAL,
                match lost {
                    None => format!("{from} → {to}{dup}: {} [{sent}]", a.text),
                    Some(reason) => format!(
                        "{from} → {to}{dup} lost ({}): {} [{sent}]",
                        reason.label(),
                        a.text
                    ),
                },
            ));
        }
        for m in &self.marks {
            if !in_window(m.step) {
                continue;
            }
            let r = by_step.entry(m.step).or_insert_with(|| blank(m.at_us));
            match (m.kind, m.lane) {
                (MarkKind::Note, Some(lane)) => {
                    if r.1[centre(lane)] == '│' {
                        r.1[centre(lane)] = '◆';
                    }
                    r.2.push((NOTE, format!("{}: {}", self.lanes[lane].name, m.text)));
                }
                (MarkKind::Violation, _) => {
                    r.3 = true;
                    r.2.push((VIOLATION, format!("VIOLATED {}", m.text)));
                }
                _ => r.2.push((FAULT, format!("fault: {}", m.text))),
            }
        }
        for (step, at_us, summary) in &self.steps {
            let r = by_step.entry(*step).or_insert_with(|| blank(*at_us));
            if r.2.is_empty() && !summary.is_empty() {
                r.2.push((STEP, summary.clone()));
            }
        }
        by_step
            .into_iter()
            .map(|(step, (at_us, cells, words, violation))| Row {
                step,
                at_us,
                lanes: cells.into_iter().collect(),
                text: join_words(words),
                violation,
            })
            .collect()
    }

    /// The whole text drawing: a title, the lane header, then a line per row.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        out.push_str(&format!(
            "{:>7} {:>11}  {}\n",
            "step",
            "time",
            self.text_header()
        ));
        for row in self.rows() {
            out.push_str(&format!(
                "{:>7} {:>11}  {}  {}\n",
                row.step,
                super::svg::ms(row.at_us),
                row.lanes,
                row.text
            ));
        }
        let hidden = self.hidden_count();
        if hidden > 0 {
            let kinds: Vec<String> = self
                .hidden
                .iter()
                .map(|(what, n)| format!("{n} {what}"))
                .collect();
            out.push_str(&format!("not drawn: {}\n", kinds.join(", ")));
        }
        out
    }
}

/// A row's words in order of importance; sends and losses as one clause per sender and kind
/// ("n0 sends Prepare to n1, n2").
fn join_words(mut words: Vec<(u8, String)>) -> String {
    words.sort_by_key(|w| w.0);
    let mut out: Vec<String> = Vec::new();
    let mut last_send: Option<String> = None;
    for (priority, text) in words {
        if priority == SEND
            && let Some((head, to)) = text.rsplit_once(" to ")
        {
            if last_send.as_deref() == Some(head)
                && let Some(prev) = out.last_mut()
            {
                prev.push_str(", ");
                prev.push_str(to);
                continue;
            }
            last_send = Some(head.to_string());
        } else {
            last_send = None;
        }
        out.push(text);
    }
    out.join("; ")
}
