//! The diagram as Mermaid sequence-diagram text, for small windows pasted into Markdown.
//! A sequence diagram has no time axis: messages are listed in the order they arrive (a lost
//! one where it was lost), so slant and overtaking are only visible in the SVG.

use super::{Diagram, End, MarkKind};
use std::fmt::Write;

/// Mermaid breaks on these in message text.
fn clean(text: &str) -> String {
    text.replace([';', '#', ':'], " ")
        .replace(['{', '}'], "")
        .replace("  ", " ")
}

impl Diagram {
    /// The diagram as a Mermaid `sequenceDiagram`.
    pub fn mermaid(&self) -> String {
        let mut s = String::from("sequenceDiagram\n");
        let _ = writeln!(s, "    %% {}", clean(&self.title));
        for lane in &self.lanes {
            let _ = writeln!(s, "    participant {}", lane.name);
        }
        // Events in step order: an arrow where it ended, a mark where it happened.
        let mut events: Vec<(u64, u8, String)> = Vec::new();
        for a in &self.arrows {
            let (from, to) = (&self.lanes[a.from].name, &self.lanes[a.to].name);
            let label = clean(&super::short(&a.text, 48));
            let (at, line) = match a.end {
                End::Delivered { step, .. } => (
                    step,
                    format!(
                        "{from}->>{to}: {}{label}",
                        if a.duplicate { "dup " } else { "" }
                    ),
                ),
                End::Dropped { step, reason, .. } => (
                    step,
                    format!("{from}-x{to}: {label} (lost, {})", reason.label()),
                ),
                End::LostAtSend(reason) => (
                    a.sent_step,
                    format!("{from}-x{to}: {label} (lost as sent, {})", reason.label()),
                ),
                End::InFlight => (u64::MAX, format!("{from}--){to}: {label} (in flight)")),
            };
            events.push((at, 1, line));
        }
        let all = match (self.lanes.first(), self.lanes.last()) {
            (Some(a), Some(b)) if self.lanes.len() > 1 => format!("{},{}", a.name, b.name),
            (Some(a), _) => a.name.clone(),
            _ => String::new(),
        };
        for m in &self.marks {
            let text = clean(&super::short(&m.text, 60));
            let line = match (m.kind, m.lane) {
                (MarkKind::Note, Some(lane)) => {
                    format!("Note right of {}: {text}", self.lanes[lane].name)
                }
                (MarkKind::Violation, _) => format!("Note over {all}: VIOLATED {text}"),
                _ => format!("Note over {all}: {text}"),
            };
            // Marks come after the arrow of their step: a note is what the delivery caused.
            events.push((m.step, 2, line));
        }
        events.sort_by_key(|e| (e.0, e.1));
        for (_, _, line) in events {
            let _ = writeln!(s, "    {line}");
        }
        let hidden = self.hidden_count();
        if hidden > 0 {
            let _ = writeln!(s, "    %% {hidden} messages not drawn");
        }
        s
    }
}
