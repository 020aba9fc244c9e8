//! Drawing: a pure function of the [`App`] state.

use super::app::{App, GotoKind, KEYS, Overlay, SPEEDS};
use super::replay::Step;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use simlab_sim::{CompactStep, InvariantKind, NodeStatus, StepKind, Time};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    let [header, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_line(app)), header);
    frame.render_widget(
        Paragraph::new(footer_line(app)).style(Style::new().fg(Color::DarkGray)),
        footer,
    );

    let [top, network, bottom] = Layout::vertical([
        Constraint::Percentage(50),
        Constraint::Length(4),
        Constraint::Min(5),
    ])
    .areas(main);
    // The lane view needs room for its columns and words: it takes more of the top half.
    let left = if app.lanes { 62 } else { 42 };
    let [timeline, nodes] = Layout::horizontal([
        Constraint::Percentage(left),
        Constraint::Percentage(100 - left),
    ])
    .areas(top);
    let [detail, invariants] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(bottom);
    if app.lanes {
        draw_lanes(frame, app, timeline);
    } else {
        draw_timeline(frame, app, timeline);
    }
    draw_nodes(frame, app, nodes);
    draw_network(frame, app, network);
    draw_detail(frame, app, detail);
    draw_invariants(frame, app, invariants);

    match &app.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(frame, area),
        Overlay::Goto(kind, text) => draw_goto(frame, area, *kind, text),
    }
}

fn header_line(app: &App) -> Line<'static> {
    let total = app.replay.len();
    let hash = app
        .moment
        .record
        .as_ref()
        .map_or_else(|| "-".to_string(), |r| r.hash.clone());
    let play = if app.playing {
        format!("playing x{}", SPEEDS[app.speed])
    } else {
        "paused".to_string()
    };
    Line::from(vec![
        Span::styled(" simlab ", Style::new().add_modifier(Modifier::REVERSED)),
        Span::raw(format!(
            " {} ({}) seed {} ",
            app.scenario, app.protocol, app.seed
        )),
        Span::styled(
            format!("step {}/{} ", app.cursor, total),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("t={} hash {hash} {play}", app.moment.time)),
    ])
}

fn footer_line(app: &App) -> Line<'static> {
    let mut parts = vec![format!("listing {}", app.kind_filter.label())];
    if app.node_filter {
        parts.push(format!("of n{}", app.selected));
    }
    if let Some(b) = &app.breakpoint {
        parts.push(format!("break on n{} {}", b.node, b.field));
    }
    Line::from(format!(
        " {}  |  {}  |  ? help  q quit",
        app.message,
        parts.join(" ")
    ))
}

fn node_name(id: u16) -> String {
    if id == CompactStep::NONE {
        "-".to_string()
    } else {
        format!("n{id}")
    }
}

fn step_line(index: u64, step: &Step) -> String {
    let who = match step.kind {
        StepKind::Deliver | StepKind::Drop => {
            format!("{} <- {}", node_name(step.node), node_name(step.peer))
        }
        StepKind::Request | StepKind::Reply | StepKind::ClientTimeout | StepKind::ClientInvoke => {
            format!(
                "{} c{}",
                node_name(step.node),
                if step.peer == CompactStep::NONE {
                    "?".into()
                } else {
                    step.peer.to_string()
                }
            )
        }
        _ => node_name(step.node),
    };
    format!(
        "{index:>7} {:>11} {:<8} {who}",
        Time::from_micros(step.time_us).to_string(),
        step.kind.label()
    )
}

/// The lane view: the text diagram's rows around the cursor, the cursor's row highlighted.
fn draw_lanes(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(view) = &app.lane_view else {
        return;
    };
    let rows = area.height.saturating_sub(3) as usize;
    let at = view
        .rows
        .iter()
        .position(|r| r.step >= app.cursor)
        .unwrap_or(view.rows.len().saturating_sub(1));
    let start = at.saturating_sub(rows / 2);
    let mut lines = vec![Line::styled(
        format!("{:>7} {}", "step", view.header),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for row in view.rows.iter().skip(start).take(rows) {
        let mut style = Style::new();
        if row.violation {
            style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
        } else if row.text.starts_with("fault: ") {
            style = style.fg(Color::Magenta);
        }
        if row.step == app.cursor {
            style = style.add_modifier(Modifier::REVERSED);
        }
        let marker = if row.step == app.cursor { ">" } else { " " };
        lines.push(Line::styled(
            format!("{marker}{:>6} {} {}", row.step, row.lanes, row.text),
            style,
        ));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Lanes (d: timeline) ")),
        area,
    );
}

fn draw_timeline(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = area.height.saturating_sub(2) as usize;
    let before = rows / 2;
    // Listed steps around the cursor: up to `before` earlier ones, then the cursor and later.
    let mut earlier: Vec<u64> = Vec::new();
    let mut i = app.cursor;
    let mut scanned = 0;
    while earlier.len() < before && i > 0 && scanned < 200_000 {
        i -= 1;
        scanned += 1;
        if app.listed(i) {
            earlier.push(i);
        }
    }
    earlier.reverse();
    let mut shown = earlier;
    shown.push(app.cursor);
    let mut j = app.cursor;
    scanned = 0;
    while shown.len() < rows && j + 1 < app.replay.len() && scanned < 200_000 {
        j += 1;
        scanned += 1;
        if app.listed(j) {
            shown.push(j);
        }
    }
    let lines: Vec<Line<'_>> = shown
        .iter()
        .filter_map(|&index| app.replay.steps.get(index as usize).map(|s| (index, s)))
        .map(|(index, step)| {
            let mut style = Style::new();
            if step.kind == StepKind::Fault {
                style = style.fg(Color::Magenta);
            }
            if step.violation {
                style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
            }
            if index == app.cursor {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let marker = if index == app.cursor { ">" } else { " " };
            Line::styled(format!("{marker}{}", step_line(index, &step)), style)
        })
        .collect();
    let title = format!(" Timeline ({}) ", app.kind_filter.label());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn draw_nodes(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let acting = app.replay.steps.get(app.cursor as usize).map(|s| s.node);
    let listed = app.listed_nodes();
    // A window over the listed nodes that keeps the selected one in view, near the middle.
    let rows = area.height.saturating_sub(2) as usize;
    let at = listed
        .iter()
        .position(|&id| id >= app.selected)
        .unwrap_or(listed.len());
    let first = at
        .saturating_sub(rows / 2)
        .min(listed.len().saturating_sub(rows));
    let mut lines = Vec::new();
    for &id in listed.iter().skip(first).take(rows) {
        let Some((status, view)) = app.moment.views.get(id as usize) else {
            continue;
        };
        let before = app.moment.before.get(id as usize).map(|(_, v)| v);
        let mut spans = Vec::new();
        let mut name_style = Style::new().add_modifier(Modifier::BOLD);
        if acting.map(u32::from) == Some(id) {
            name_style = name_style.add_modifier(Modifier::REVERSED);
        }
        let select = if id == app.selected { ">" } else { " " };
        spans.push(Span::styled(format!("{select}n{id} "), name_style));
        match status {
            NodeStatus::Crashed => spans.push(Span::styled(
                "DOWN ",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )),
            NodeStatus::Paused => spans.push(Span::styled(
                "PAUSED ",
                Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
            )),
            NodeStatus::Absent | NodeStatus::Left => spans.push(Span::styled(
                format!("{} ", status.label().to_uppercase()),
                Style::new()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::BOLD),
            )),
            NodeStatus::Leaving => spans.push(Span::styled(
                "LEAVING ",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )),
            NodeStatus::Up => {}
        }
        if !status.is_down() {
            let role_style = if view.role == "leader" || view.role == "coordinator" {
                Style::new().fg(Color::Green)
            } else {
                Style::new()
            };
            spans.push(Span::styled(format!("{} ", view.role), role_style));
            for field in &view.fields {
                let old = before.and_then(|b| b.fields.iter().find(|f| f.name == field.name));
                let changed = old.is_some_and(|o| o.value != field.value);
                let style = if changed {
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                spans.push(Span::styled(
                    format!(
                        "{}={}{} ",
                        field.name,
                        field.value,
                        if changed { "*" } else { "" }
                    ),
                    style,
                ));
            }
        }
        lines.push(Line::from(spans));
    }
    let all = app.moment.views.len();
    let mut filters = Vec::new();
    if app.changed_nodes_only {
        filters.push("changed".to_string());
    }
    if !app.node_query.is_empty() {
        filters.push(format!("\"{}\"", app.node_query));
    }
    let title = if listed.is_empty() {
        format!(" Nodes: none of {all} match {} ", filters.join(" "))
    } else if filters.is_empty() && listed.len() <= rows {
        " Nodes (* changed in this step) ".to_string()
    } else {
        let matching = if filters.is_empty() {
            String::new()
        } else {
            format!(" {} match {}", listed.len(), filters.join(" "))
        };
        format!(
            " Nodes {}-{} of {all}{matching} (* changed) ",
            listed[first],
            listed[(first + rows).min(listed.len()) - 1],
        )
    };
    // One line per node, cut at the panel's edge; the selected node's full view is in Detail.
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

/// Joins `items` with `sep` while they fit in `width` characters, then says how many are left
/// out (`... +3 more`); an item too long on its own is cut.
fn fit_list(items: &[String], sep: &str, width: usize) -> String {
    let mut text = String::new();
    for (i, item) in items.iter().enumerate() {
        let later = items.len() - i - 1;
        let tail = if later > 0 {
            format!("{sep}... +{later} more")
        } else {
            String::new()
        };
        let piece = if i == 0 {
            item.clone()
        } else {
            format!("{sep}{item}")
        };
        if text.len() + piece.len() + tail.len() > width {
            if i == 0 {
                let room = width.saturating_sub(tail.len() + 3);
                text = format!("{}...", item.chars().take(room).collect::<String>());
                text.push_str(&tail);
            } else {
                text.push_str(&format!("{sep}... +{} more", later + 1));
            }
            return text;
        }
        text.push_str(&piece);
    }
    text
}

fn draw_network(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let width = area.width.saturating_sub(2) as usize;
    let summary = &app.moment.partition;
    let reach = if summary.cut_links == 0 {
        "fully connected".to_string()
    } else {
        let plural = if summary.cut_links == 1 { "" } else { "s" };
        let mut text = format!("{} link{plural} cut", summary.cut_links);
        text = if summary.groups.len() > 1 {
            format!("partitioned into {} groups, {text}", summary.groups.len())
        } else {
            format!("connected, {text}")
        };
        if !summary.one_way.is_empty() {
            let one_way: Vec<String> = summary
                .one_way
                .iter()
                .map(|(a, b)| format!("{a}->{b}"))
                .collect();
            text.push_str(", one way: ");
            let room = width.saturating_sub(text.len()) / 2;
            text.push_str(&fit_list(&one_way, " ", room));
        }
        if summary.groups.len() > 1 {
            let groups: Vec<String> = summary
                .groups
                .iter()
                .map(|g| format!("{{{}}}", simlab_sim::faults::node_ranges(g)))
                .collect();
            text.push_str(": ");
            let room = width.saturating_sub(text.len());
            text.push_str(&fit_list(&groups, " | ", room));
        }
        text
    };
    let messages: usize = app.moment.in_flight.iter().map(|(_, _, n)| n).sum();
    let flight = if messages == 0 {
        "in flight: none".to_string()
    } else {
        let links: Vec<String> = app
            .moment
            .in_flight
            .iter()
            .map(|(a, b, n)| format!("{a}->{b}:{n}"))
            .collect();
        let head = if links.len() > 1 {
            format!("in flight: {messages} messages on {} links: ", links.len())
        } else {
            "in flight: ".to_string()
        };
        let room = width.saturating_sub(head.len());
        format!("{head}{}", fit_list(&links, " ", room))
    };
    let style = if summary.cut_links == 0 {
        Style::new()
    } else {
        Style::new().fg(Color::Magenta)
    };
    let lines = vec![Line::styled(reach, style), Line::from(flight)];
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" Network "))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_detail(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let mut lines = Vec::new();
    match &app.moment.record {
        None => lines.push(Line::from("nothing happened in this run")),
        Some(r) => {
            lines.push(Line::styled(
                format!("step {} at {} ({})", r.step, r.time(), r.kind.label()),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            lines.push(Line::from(r.summary.clone()));
            for e in &r.effects {
                lines.push(Line::from(format!("  -> {e}")));
            }
            for n in &r.notes {
                lines.push(Line::styled(
                    format!("  note: {n}"),
                    Style::new().fg(Color::Cyan),
                ));
            }
            for v in &r.violations {
                lines.push(Line::styled(
                    format!("  VIOLATED {v}"),
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ));
            }
        }
    }
    if let Some((status, view)) = app.moment.views.get(app.selected as usize) {
        let fields: Vec<String> = view
            .fields
            .iter()
            .map(|f| format!("{}={}", f.name, f.value))
            .collect();
        let state = match status {
            NodeStatus::Crashed | NodeStatus::Absent | NodeStatus::Left => {
                status.label().to_string()
            }
            NodeStatus::Paused | NodeStatus::Leaving => format!("{} {}", status.label(), view.role),
            NodeStatus::Up => view.role.clone(),
        };
        lines.push(Line::styled(
            format!("selected n{}: {state} {}", app.selected, fields.join(" ")),
            Style::new().fg(Color::Blue),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" Detail "))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_invariants(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let width = app
        .replay
        .invariants
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (name, kind) in &app.replay.invariants {
        let violation = app.replay.violations.iter().find(|v| &v.invariant == name);
        let red = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
        let (text, style) = match (kind, violation) {
            (InvariantKind::Always, Some(v)) if v.step <= app.cursor => {
                (format!("VIOLATED @{}", v.step), red)
            }
            (InvariantKind::Always, Some(v)) => (
                format!("holds (fails @{})", v.step),
                Style::new().fg(Color::Yellow),
            ),
            (InvariantKind::Always, None) => ("holds".to_string(), Style::new().fg(Color::Green)),
            (_, Some(_)) => (format!("{kind}: VIOLATED at end"), red),
            (_, None) => (format!("{kind}: ok at end"), Style::new().fg(Color::Green)),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{name:<width$} ")),
            Span::styled(text, style),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Invariants ")),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| Line::from(format!(" {k:<20} {what}")))
        .collect();
    let rect = centered(area, 78, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (Esc closes) ")),
        rect,
    );
}

fn draw_goto(frame: &mut Frame<'_>, area: Rect, kind: GotoKind, text: &str) {
    let prompt = match kind {
        GotoKind::Step => "Go to step",
        GotoKind::TimeMs => "Go to virtual time (ms)",
        GotoKind::Node => "Select node",
        GotoKind::NodeFilter => "List nodes containing",
    };
    let rect = centered(area, 44, 3);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(format!("{prompt}: {text}_"))
            .block(Block::bordered().title(" Enter to go, Esc to cancel ")),
        rect,
    );
}
