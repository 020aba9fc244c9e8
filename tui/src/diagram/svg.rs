//! The diagram as SVG: one self-contained file (no scripts, no external fonts or images).
//!
//! Time flows down on a linear scale chosen so a typical message's slant is visible; a stretch
//! with nothing happening that would take more than [`MAX_GAP_PX`] is drawn shorter and marked on
//! the axis as a break, so a long quiet spell does not push the rest off the page. Every element
//! a test or a reader looks for carries a `class` (`lane`, `arrow`, `drop`, `note`, `fault`,
//! `violation`, `down`, `paused`, `partition`) and `data-` attributes with its steps and lanes.

use super::{Diagram, End, MarkKind};
use simlab_sim::NodeStatus;
use std::fmt::Write;

/// Pixels between lanes.
pub const LANE_GAP: f64 = 170.0;
/// The left edge of the first lane.
pub const LEFT: f64 = 120.0;
/// The top of the lanes (time `start_us`).
pub const TOP: f64 = 70.0;
/// The most a quiet stretch takes before it is drawn as a break.
pub const MAX_GAP_PX: f64 = 90.0;
/// How long a break is drawn.
const BREAK_PX: f64 = 28.0;
/// Room on the right for notes.
const RIGHT: f64 = 320.0;

/// Maps virtual time to a height, linear with quiet stretches shortened.
#[derive(Clone, Debug)]
pub struct TimeScale {
    /// Pixels per microsecond.
    pub px_per_us: f64,
    /// `(time µs, y)` knots, increasing in both.
    knots: Vec<(u64, f64)>,
    /// Breaks: `(from µs, to µs, y_from, y_to)`.
    pub breaks: Vec<(u64, u64, f64, f64)>,
}

impl TimeScale {
    /// A scale over the times things happen at.
    pub fn new(mut times: Vec<u64>, typical_latency_us: u64) -> TimeScale {
        times.sort_unstable();
        times.dedup();
        // A typical message falls 40 px; clamped so extreme latencies still give a usable page.
        let px_per_us = (40.0 / typical_latency_us.max(1) as f64).clamp(0.000_05, 0.5);
        let mut knots = Vec::with_capacity(times.len());
        let mut breaks = Vec::new();
        let mut y = TOP;
        for (i, &t) in times.iter().enumerate() {
            if i > 0 {
                let prev = times[i - 1];
                let dy = (t - prev) as f64 * px_per_us;
                if dy > MAX_GAP_PX {
                    breaks.push((prev, t, y, y + BREAK_PX));
                    y += BREAK_PX;
                } else {
                    y += dy;
                }
            }
            knots.push((t, y));
        }
        if knots.is_empty() {
            knots.push((0, TOP));
        }
        TimeScale {
            px_per_us,
            knots,
            breaks,
        }
    }

    /// The height of time `t` (clamped to the scale's range).
    pub fn y(&self, t: u64) -> f64 {
        let i = self.knots.partition_point(|&(k, _)| k <= t);
        if i == 0 {
            return self.knots[0].1;
        }
        let (t0, y0) = self.knots[i - 1];
        match self.knots.get(i) {
            None => y0,
            Some(&(t1, y1)) => y0 + (y1 - y0) * (t - t0) as f64 / (t1 - t0) as f64,
        }
    }

    /// The lowest height.
    pub fn bottom(&self) -> f64 {
        self.knots.last().map_or(TOP, |k| k.1)
    }
}

/// The x of a lane.
pub fn lane_x(lane: usize) -> f64 {
    LEFT + lane as f64 * LANE_GAP
}

/// Escapes text for XML and HTML (element content and attribute values).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A time as a short label in milliseconds.
pub fn ms(us: u64) -> String {
    if us.is_multiple_of(1_000) {
        format!("{} ms", us / 1_000)
    } else if us < 10_000_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{} ms", us / 1_000)
    }
}

impl Diagram {
    /// The scale this diagram is drawn with.
    pub fn scale(&self) -> TimeScale {
        let mut times = vec![self.start_us, self.end_us];
        let mut latencies = Vec::new();
        for a in &self.arrows {
            times.push(a.sent_us.max(self.start_us));
            if let Some(end) = a.end_us() {
                times.push(end);
                if end > a.sent_us {
                    latencies.push(end - a.sent_us);
                }
            }
        }
        times.extend(self.marks.iter().map(|m| m.at_us));
        for s in &self.segments {
            times.extend([s.from_us.max(self.start_us), s.to_us]);
        }
        for b in &self.bands {
            times.extend([b.from_us.max(self.start_us), b.to_us]);
        }
        latencies.sort_unstable();
        let typical = latencies.get(latencies.len() / 2).copied().unwrap_or(1_000);
        TimeScale::new(times, typical)
    }

    /// The diagram as an SVG document.
    pub fn svg(&self) -> String {
        let scale = self.scale();
        let lanes = self.lanes.len().max(1);
        let width = LEFT + (lanes - 1) as f64 * LANE_GAP + RIGHT;
        let legend_lines = 3 + self.hidden.len();
        let bottom = scale.bottom() + 30.0;
        let height = bottom + 20.0 + legend_lines as f64 * 14.0;
        let y = |t: u64| scale.y(t.max(self.start_us));
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="11">"#
        );
        let _ = writeln!(s, "<title>{}</title>", esc(&self.title));
        // A white halo behind every label keeps it readable where it crosses a line.
        s.push_str("<style>text { paint-order: stroke; stroke: #ffffff; stroke-width: 3px; stroke-linejoin: round; }</style>\n");
        s.push_str(concat!(
            "<defs>",
            r##"<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f5fa8"/></marker>"##,
            r##"<marker id="head-client" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2a7a3a"/></marker>"##,
            r##"<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#e8a33d" fill-opacity="0.5"/></pattern>"##,
            "</defs>\n"
        ));
        let _ = writeln!(
            s,
            r##"<rect class="background" x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="18" font-size="13" font-weight="bold">{}</text>"#,
            esc(&self.title)
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="34">steps {}..{}, {} to {}; time flows down</text>"#,
            self.first_step,
            self.last_step,
            ms(self.start_us),
            ms(self.end_us)
        );

        // Partitions: bands behind everything.
        let right = LEFT + (lanes - 1) as f64 * LANE_GAP + 40.0;
        for b in &self.bands {
            let (y0, y1) = (y(b.from_us), y(b.to_us));
            let groups: Vec<String> = b.groups.iter().map(|g| g.join(" ")).collect();
            let label = format!("partition {{{}}}", groups.join("} | {"));
            let _ = writeln!(
                s,
                r##"<g class="partition" data-from-us="{}" data-to-us="{}"><title>{}</title><rect x="{:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="#d94040" fill-opacity="0.08"/><text x="{:.1}" y="{:.1}" fill="#a02020" font-size="10">{}</text></g>"##,
                b.from_us,
                b.to_us,
                esc(&label),
                LEFT - 40.0,
                right - (LEFT - 40.0),
                (y1 - y0).max(1.0),
                right + 4.0,
                y0 + 20.0,
                esc(&label)
            );
        }

        // The time axis.
        let _ = writeln!(
            s,
            r##"<line class="axis" x1="60" y1="{TOP:.1}" x2="60" y2="{:.1}" stroke="#888"/>"##,
            scale.bottom()
        );
        for (t, label) in ticks(&scale, self.start_us, self.end_us) {
            let _ = writeln!(
                s,
                r##"<g class="tick"><line x1="56" y1="{0:.1}" x2="60" y2="{0:.1}" stroke="#888"/><text x="52" y="{1:.1}" text-anchor="end" fill="#555" font-size="9">{2}</text></g>"##,
                scale.y(t),
                scale.y(t) + 3.0,
                label
            );
        }
        for &(from, to, y0, y1) in &scale.breaks {
            let mid = (y0 + y1) / 2.0;
            let _ = writeln!(
                s,
                r##"<g class="break"><path d="M50,{:.1} L70,{:.1} M50,{:.1} L70,{:.1}" stroke="#888"/><text x="52" y="{:.1}" text-anchor="end" fill="#888" font-size="9">+{}</text></g>"##,
                mid - 4.0,
                mid - 8.0,
                mid + 4.0,
                mid,
                mid + 3.0,
                ms(to - from)
            );
        }

        // Lanes, and the stretches their nodes were down or paused.
        for (i, lane) in self.lanes.iter().enumerate() {
            let x = lane_x(i);
            let _ = writeln!(
                s,
                r##"<g class="lane" data-lane="{i}" data-name="{0}"><text x="{x:.1}" y="{1:.1}" text-anchor="middle" font-weight="bold">{0}</text><line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{2:.1}" stroke="#444" stroke-width="1.5"/></g>"##,
                esc(&lane.name),
                TOP - 12.0,
                scale.bottom()
            );
        }
        for seg in &self.segments {
            let x = lane_x(seg.lane);
            let (y0, y1) = (y(seg.from_us), y(seg.to_us));
            let (class, fill, what) = match seg.status {
                NodeStatus::Crashed => ("down", "#777777", "down"),
                NodeStatus::Absent | NodeStatus::Left => ("absent", "#dddddd", seg.status.label()),
                NodeStatus::Leaving => ("leaving", "#b3d1ff", "leaving"),
                NodeStatus::Paused | NodeStatus::Up => ("paused", "url(#hatch)", "paused"),
            };
            let _ = writeln!(
                s,
                r##"<rect class="{class}" data-lane="{}" x="{:.1}" y="{y0:.1}" width="12" height="{:.1}" fill="{fill}" fill-opacity="0.8"><title>{} {what} from {} to {}</title></rect>"##,
                seg.lane,
                x - 6.0,
                (y1 - y0).max(2.0),
                esc(&self.lanes[seg.lane].name),
                ms(seg.from_us),
                ms(seg.to_us)
            );
        }

        // Messages.
        let labelled = self.arrows.len() <= 80;
        // Where the last loss-at-send label of each sender was: repeats close below it are
        // left unlabelled (a partitioned leader loses a burst each heartbeat).
        let mut last_loss_label = vec![f64::MIN; self.lanes.len()];
        for a in &self.arrows {
            let client =
                self.lanes[a.from].name.starts_with('c') || self.lanes[a.to].name.starts_with('c');
            let (x0, y0) = (lane_x(a.from), y(a.sent_us));
            let dir = if a.to >= a.from { 1.0 } else { -1.0 };
            let (x1, y1, class, color) = match a.end {
                End::Delivered { at_us, .. } => (
                    lane_x(a.to),
                    y(at_us),
                    "arrow",
                    if client { "#2a7a3a" } else { "#1f5fa8" },
                ),
                End::Dropped { at_us, .. } => (lane_x(a.to), y(at_us), "drop", "#c03030"),
                // A short stub aimed at its recipient: a quarter of the way, a little down.
                End::LostAtSend(_) => (
                    x0 + (lane_x(a.to) - x0) * 0.25,
                    y0 + 12.0,
                    "drop",
                    "#c03030",
                ),
                End::InFlight => {
                    let x_to = lane_x(a.to);
                    let y_end = scale.bottom();
                    // Aim along its slant as far as the bottom edge.
                    let x1 = x0 + (x_to - x0) * 0.5;
                    (x1, y_end, "in-flight", "#999999")
                }
            };
            let dash = match (a.duplicate, &a.end) {
                (true, _) => r#" stroke-dasharray="2 3""#,
                (_, End::InFlight) => r#" stroke-dasharray="4 4""#,
                (_, End::Dropped { .. } | End::LostAtSend(_)) => r#" stroke-dasharray="5 3""#,
                _ => "",
            };
            let head = match a.end {
                End::Delivered { .. } if client => r#" marker-end="url(#head-client)""#,
                End::Delivered { .. } => r#" marker-end="url(#head)""#,
                _ => "",
            };
            let fate = match a.end {
                End::Delivered { step, .. } => format!("delivered at step {step}"),
                End::Dropped { step, reason, .. } => {
                    format!("lost at step {step} ({})", reason.label())
                }
                End::LostAtSend(reason) => format!("lost as sent ({})", reason.label()),
                End::InFlight => "still in flight".to_string(),
            };
            let title = format!(
                "{} → {}: {} (sent at step {}, {}{})",
                self.lanes[a.from].name,
                self.lanes[a.to].name,
                a.text,
                a.sent_step,
                fate,
                if a.duplicate { ", a duplicate" } else { "" }
            );
            let end_step = a.end_step().map_or(String::new(), |e| e.to_string());
            let _ = write!(
                s,
                r#"<g class="{class}" data-from="{}" data-to="{}" data-sent-step="{}" data-sent-us="{}" data-end-step="{end_step}" data-end-us="{}"><title>{}</title><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="{color}" stroke-width="1.2"{dash}{head}/>"#,
                a.from,
                a.to,
                a.sent_step,
                a.sent_us,
                a.end_us().map_or(String::new(), |t| t.to_string()),
                esc(&title)
            );
            let quiet_loss = matches!(a.end, End::LostAtSend(_)) && {
                let close = y0 - last_loss_label[a.from] < 40.0;
                if !close {
                    last_loss_label[a.from] = y0;
                }
                close
            };
            if matches!(a.end, End::Dropped { .. } | End::LostAtSend(_)) {
                let _ = write!(
                    s,
                    r#"<path d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="{color}" stroke-width="2"/>"#,
                    x1 - 4.0,
                    y1 - 4.0,
                    x1 + 4.0,
                    y1 + 4.0,
                    x1 - 4.0,
                    y1 + 4.0,
                    x1 + 4.0,
                    y1 - 4.0
                );
                let reason = match a.end {
                    End::Dropped { reason, .. } | End::LostAtSend(reason) => reason.label(),
                    _ => "",
                };
                if !quiet_loss {
                    let _ = write!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" fill="{color}" font-size="9">{}</text>"#,
                        x1 + 6.0 * dir,
                        y1 + 12.0,
                        esc(reason)
                    );
                }
            }
            if labelled && !quiet_loss {
                let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 - 3.0);
                let label = if a.duplicate {
                    format!("{} (dup)", a.kind)
                } else {
                    a.kind.clone()
                };
                let _ = write!(
                    s,
                    r#"<text x="{mx:.1}" y="{my:.1}" text-anchor="middle" fill="{color}" font-size="9">{}</text>"#,
                    esc(&label)
                );
            }
            s.push_str("</g>\n");
        }

        // Notes on their lanes, faults and violations across the cluster.
        let mut next_free = vec![0.0_f64; self.lanes.len()];
        let mut next_free_global = 0.0_f64;
        for m in &self.marks {
            let at = y(m.at_us);
            match (m.kind, m.lane) {
                (MarkKind::Note, Some(lane)) => {
                    let x = lane_x(lane);
                    let ty = (at + 4.0).max(next_free[lane]);
                    next_free[lane] = ty + 12.0;
                    // A note fits between its lane and the next (the last lane has the margin).
                    let room = if lane + 1 == self.lanes.len() { 48 } else { 26 };
                    let _ = writeln!(
                        s,
                        r##"<g class="note" data-lane="{lane}" data-step="{}"><title>step {}: {}</title><circle cx="{x:.1}" cy="{at:.1}" r="3" fill="#333"/><text x="{:.1}" y="{ty:.1}" fill="#333" font-size="10">{}</text></g>"##,
                        m.step,
                        m.step,
                        esc(&m.text),
                        x + 6.0,
                        esc(&super::short(&m.text, room))
                    );
                }
                (kind, _) => {
                    let (class, color, width) = match kind {
                        MarkKind::Violation => ("violation", "#d00000", 2.5),
                        _ => ("fault", "#b05000", 1.0),
                    };
                    let ty = (at - 4.0).max(next_free_global);
                    next_free_global = ty + 12.0;
                    let _ = writeln!(
                        s,
                        r#"<g class="{class}" data-step="{}"><title>step {}: {}</title><line x1="{:.1}" y1="{at:.1}" x2="{right:.1}" y2="{at:.1}" stroke="{color}" stroke-width="{width}" stroke-dasharray="6 3"/><text x="{:.1}" y="{ty:.1}" fill="{color}" font-size="10" font-weight="bold">{}</text></g>"#,
                        m.step,
                        m.step,
                        esc(&m.text),
                        LEFT - 40.0,
                        LEFT - 36.0,
                        esc(&super::short(
                            &format!(
                                "{}{}",
                                if kind == MarkKind::Violation {
                                    "✗ "
                                } else {
                                    ""
                                },
                                m.text
                            ),
                            90
                        ))
                    );
                }
            }
        }

        // The legend.
        let mut ly = bottom + 10.0;
        let mut line = |s: &mut String, text: &str| {
            let _ = writeln!(
                s,
                r##"<text class="legend" x="10" y="{ly:.1}" fill="#444" font-size="10">{}</text>"##,
                esc(text)
            );
            ly += 14.0;
        };
        line(
            &mut s,
            "solid: delivered · dashed red ending in ✕: lost (why beside it) · dotted: the network's duplicate · dashed grey: still in flight",
        );
        line(
            &mut s,
            "grey bar: node down · hatched bar: node paused · red band: partition · orange line: fault · red line: violation",
        );
        line(
            &mut s,
            &format!(
                "{} messages drawn{}; hover for the full message",
                self.arrows.len(),
                if labelled {
                    ""
                } else {
                    " (labels only on hover, there are many)"
                }
            ),
        );
        for (what, n) in &self.hidden {
            line(&mut s, &format!("not drawn: {n} {what}"));
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Tick positions and labels: round times at least 40 px apart, none inside a break.
fn ticks(scale: &TimeScale, start: u64, end: u64) -> Vec<(u64, String)> {
    let min_us = 40.0 / scale.px_per_us;
    let mut step = 1u64;
    'find: for exp in 0..12 {
        for m in [1u64, 2, 5] {
            step = m * 10u64.pow(exp);
            if step as f64 >= min_us {
                break 'find;
            }
        }
    }
    let mut out = Vec::new();
    let mut t = start.div_ceil(step) * step;
    let mut last_y = f64::MIN;
    while t <= end && out.len() < 400 {
        let inside_break = scale.breaks.iter().any(|&(a, b, _, _)| t > a && t < b);
        let y = scale.y(t);
        if !inside_break && y - last_y >= 20.0 {
            out.push((t, ms(t)));
            last_y = y;
        }
        t += step;
        if let Some(&(_, b, _, _)) = scale.breaks.iter().find(|&&(a, b, _, _)| t > a && t < b) {
            t = b.div_ceil(step) * step;
        }
    }
    out
}
