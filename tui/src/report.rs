//! `simlab report` and `sweep --report`: one self-contained HTML page (inline SVG and CSS, no
//! scripts, no fonts or images from anywhere) that a person can open, mail or attach to a bug.
//!
//! A page is a function of the scenario and seed alone: the wall-clock line of the run summary
//! is left out, so the same run always writes the same bytes.

use crate::diagram;
use crate::diagram::svg::esc;
use crate::summary::{RunSummary, inspect_command, replay_command};
use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::trace::OutputFile;
use simlab_sim::{Ended, FaultRecord, OpTiming, Side, TraceMode};
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

/// Buckets in the availability chart.
const BUCKETS: u64 = 40;
/// Chart size.
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 180.0;
const CHART_LEFT: f64 = 50.0;
const CHART_TOP: f64 = 20.0;

/// The start of a page: its title and the stylesheet.
pub fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(title),
        concat!(
            "body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }\n",
            "pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 13px; }\n",
            "table { border-collapse: collapse; font-size: 14px; }\n",
            "td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }\n",
            ".diagram { overflow-x: auto; border: 1px solid #ddd; }\n",
            ".bad { color: #b00000; font-weight: bold; } .good { color: #1d7a2d; font-weight: bold; }\n",
        ),
        esc(title)
    )
}

fn side_color(side: Side) -> &'static str {
    match side {
        Side::Healthy => "#1f5fa8",
        Side::Majority => "#2a7a3a",
        Side::Minority => "#c03030",
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Healthy => "no partition",
        Side::Majority => "majority side",
        Side::Minority => "minority side",
    }
}

/// Availability over time: per bucket of invocation time and per side, the share of the
/// operations invoked then that succeeded.
pub fn availability_chart(ops: &[OpTiming], end_us: u64, faults: &[FaultRecord]) -> String {
    let end_us = end_us.max(1);
    let width_us = end_us.div_ceil(BUCKETS).max(1);
    let x = |t: u64| CHART_LEFT + CHART_W * t as f64 / end_us as f64;
    let y = |share: f64| CHART_TOP + CHART_H * (1.0 - share);
    let mut s = chart_frame(
        "availability (share of operations invoked in each interval that succeeded)",
        end_us,
        "100%",
        "0%",
    );
    for side in [Side::Healthy, Side::Majority, Side::Minority] {
        let mut points = Vec::new();
        for b in 0..BUCKETS {
            let (lo, hi) = (b * width_us, (b + 1) * width_us);
            let bucket: Vec<&OpTiming> = ops
                .iter()
                .filter(|o| o.side == side && o.ended != Ended::Pending)
                .filter(|o| (lo..hi).contains(&o.invoked.as_micros()))
                .collect();
            if bucket.is_empty() {
                continue;
            }
            let ok = bucket.iter().filter(|o| o.ended == Ended::Ok).count();
            let share = ok as f64 / bucket.len() as f64;
            points.push((x(lo + width_us / 2), y(share), ok, bucket.len(), lo));
        }
        if points.is_empty() {
            continue;
        }
        // One line per run of consecutive intervals: a gap is drawn as a gap.
        let mut runs: Vec<Vec<String>> = Vec::new();
        let mut last_lo = None;
        for (px, py, _, _, lo) in &points {
            if last_lo.is_none_or(|l: u64| l + width_us != *lo) {
                runs.push(Vec::new());
            }
            runs.last_mut()
                .expect("pushed")
                .push(format!("{px:.1},{py:.1}"));
            last_lo = Some(*lo);
        }
        for run in runs {
            let _ = writeln!(
                s,
                r#"<polyline class="series" data-side="{}" points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
                side_name(side),
                run.join(" "),
                side_color(side)
            );
        }
        for (px, py, ok, n, lo) in points {
            let _ = writeln!(
                s,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.5" fill="{}"><title>{}: {ok} of {n} succeeded, invoked from {}</title></circle>"#,
                side_color(side),
                side_name(side),
                diagram::svg::ms(lo)
            );
        }
    }
    fault_lines(&mut s, faults, end_us);
    legend(&mut s, ops);
    s.push_str("</svg>\n");
    s
}

/// Client latency over time: one dot per successful operation, at its invocation time.
pub fn latency_chart(ops: &[OpTiming], end_us: u64, faults: &[FaultRecord]) -> String {
    let end_us = end_us.max(1);
    let done: Vec<(&OpTiming, u64)> = ops
        .iter()
        .filter(|o| o.ended == Ended::Ok)
        .filter_map(|o| {
            o.completed
                .map(|c| (o, c.as_micros().saturating_sub(o.invoked.as_micros())))
        })
        .collect();
    let max = done.iter().map(|(_, l)| *l).max().unwrap_or(1).max(1);
    let x = |t: u64| CHART_LEFT + CHART_W * t as f64 / end_us as f64;
    let y = |l: u64| CHART_TOP + CHART_H * (1.0 - l as f64 / max as f64);
    let mut s = chart_frame(
        "latency of successful operations (virtual time, by invocation time)",
        end_us,
        &diagram::svg::ms(max),
        "0",
    );
    for (op, latency) in &done {
        let _ = writeln!(
            s,
            r#"<circle class="op" cx="{:.1}" cy="{:.1}" r="1.8" fill="{}" fill-opacity="0.7"><title>{} at {}: {}</title></circle>"#,
            x(op.invoked.as_micros()),
            y(*latency),
            side_color(op.side),
            side_name(op.side),
            diagram::svg::ms(op.invoked.as_micros()),
            diagram::svg::ms(*latency)
        );
    }
    fault_lines(&mut s, faults, end_us);
    legend(&mut s, ops);
    s.push_str("</svg>\n");
    s
}

fn chart_frame(title: &str, end_us: u64, top_label: &str, bottom_label: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="sans-serif" font-size="11"><text x="{CHART_LEFT}" y="12">{}</text><rect x="{CHART_LEFT}" y="{CHART_TOP}" width="{CHART_W}" height="{CHART_H}" fill="none" stroke="#bbb"/><text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><text x="{CHART_LEFT}" y="{:.0}">0 ms</text><text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"##,
        CHART_LEFT + CHART_W + 20.0,
        CHART_TOP + CHART_H + 50.0,
        esc(title),
        CHART_LEFT - 4.0,
        CHART_TOP + 8.0,
        esc(top_label),
        CHART_LEFT - 4.0,
        CHART_TOP + CHART_H,
        esc(bottom_label),
        CHART_TOP + CHART_H + 14.0,
        CHART_LEFT + CHART_W,
        CHART_TOP + CHART_H + 14.0,
        diagram::svg::ms(end_us)
    );
    s
}

fn fault_lines(s: &mut String, faults: &[FaultRecord], end_us: u64) {
    for f in faults.iter().filter(|f| f.skipped.is_none()) {
        let fx = CHART_LEFT + CHART_W * f.at.as_micros().min(end_us) as f64 / end_us as f64;
        let _ = writeln!(
            s,
            r##"<line class="fault" x1="{fx:.1}" y1="{CHART_TOP}" x2="{fx:.1}" y2="{:.1}" stroke="#b05000" stroke-dasharray="3 3"><title>{} at {}</title></line>"##,
            CHART_TOP + CHART_H,
            esc(&f.fault.to_string()),
            f.at
        );
    }
}

fn legend(s: &mut String, ops: &[OpTiming]) {
    let mut lx = CHART_LEFT;
    for side in [Side::Healthy, Side::Majority, Side::Minority] {
        if ops.iter().any(|o| o.side == side) {
            let _ = write!(
                s,
                r#"<rect x="{lx:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
                CHART_TOP + CHART_H + 24.0,
                side_color(side),
                lx + 14.0,
                CHART_TOP + CHART_H + 33.0,
                side_name(side)
            );
            lx += 130.0;
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{lx:.0}" y1="{0:.0}" x2="{1:.0}" y2="{0:.0}" stroke="#b05000" stroke-dasharray="3 3"/><text x="{2:.0}" y="{3:.0}">fault</text>"##,
        CHART_TOP + CHART_H + 29.0,
        lx + 16.0,
        lx + 20.0,
        CHART_TOP + CHART_H + 33.0
    );
}

/// The fault timeline as a table.
pub fn fault_table(faults: &[FaultRecord]) -> String {
    if faults.is_empty() {
        return "<p>No faults.</p>\n".into();
    }
    let mut s = String::from(
        "<table class=\"faults\">\n<tr><th>time</th><th>fault</th><th>from</th><th>note</th></tr>\n",
    );
    for f in faults {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.at,
            esc(&f.fault.to_string()),
            if f.random { "nemesis" } else { "schedule" },
            f.skipped
                .as_deref()
                .map(|why| format!("skipped: {}", esc(why)))
                .unwrap_or_default()
        );
    }
    s.push_str("</table>\n");
    s
}

/// The sections of a page about one run, after its heading.
pub fn run_sections(
    file: &Path,
    scenario: &Scenario,
    seed: u64,
    swarm: bool,
) -> Result<String, String> {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::HashOnly,
        stop_on_violation: false,
    };
    let (outcome, run) = registry::run(scenario, &options);
    let summary = RunSummary {
        file,
        scenario,
        outcome: &outcome,
        run: run.as_ref(),
        expect_met: scenario.expect.is_met(&outcome),
        elapsed: std::time::Duration::ZERO,
        swarm,
    };
    let text: String = summary
        .text()
        .lines()
        .filter(|l| !l.starts_with("wall time"))
        .map(|l| format!("{l}\n"))
        .collect();
    let ops = run.op_timings();
    let end_us = outcome.stats.end_time.as_micros();
    let mut s = String::new();
    let verdict = if outcome.violations.is_empty() {
        "<span class=\"good\">no invariant violated</span>".to_string()
    } else {
        format!(
            "<span class=\"bad\">{} violated: {}</span>",
            outcome.violations.len(),
            esc(&outcome
                .violations
                .iter()
                .map(|v| v.invariant.as_str())
                .collect::<Vec<_>>()
                .join(", "))
        )
    };
    let _ = writeln!(
        s,
        "<section id=\"summary\">\n<h2>Summary and CAP report</h2>\n<p>{verdict}</p>\n<pre>{}</pre>\n</section>",
        esc(&text)
    );
    let _ = writeln!(
        s,
        "<section id=\"availability\">\n<h2>Availability and latency over time</h2>\n<p>Per side of the network of the node each operation first went to (as in the CAP report); dashed lines are faults.</p>\n{}\n{}</section>",
        availability_chart(&ops, end_us, &outcome.faults),
        latency_chart(&ops, end_us, &outcome.faults)
    );
    let _ = writeln!(
        s,
        "<section id=\"faults\">\n<h2>Fault timeline</h2>\n{}</section>",
        fault_table(&outcome.faults)
    );
    let (drawing, note) = diagram::draw_run(scenario, seed, None, &diagram::Options::default())?;
    let _ = writeln!(
        s,
        "<section id=\"diagram\">\n<h2>Diagram{}</h2>\n<p>{} (hover over an arrow for the whole message).</p>\n<div class=\"diagram\">\n{}</div>\n</section>",
        if outcome.violations.is_empty() {
            ""
        } else {
            " around the first violation"
        },
        esc(&note),
        drawing.svg()
    );
    let swarm_flag = if swarm { " --swarm" } else { "" };
    let mut commands = vec![
        replay_command(file, seed, swarm),
        format!(
            "simlab diagram {} --seed {seed}{swarm_flag} --out run.svg",
            file.display()
        ),
    ];
    if !outcome.violations.is_empty() {
        commands.push(inspect_command(file, seed, swarm));
        commands.push(format!(
            "simlab shrink {} --seed {seed}{swarm_flag} --out min.ron",
            file.display()
        ));
    } else {
        commands.push(format!(
            "simlab tui {} --seed {seed}{swarm_flag}",
            file.display()
        ));
    }
    let _ = writeln!(
        s,
        "<section id=\"replay\">\n<h2>Replay</h2>\n<pre>{}</pre>\n</section>",
        esc(&commands.join("\n"))
    );
    Ok(s)
}

/// Writes a page about one run, whole or not at all.
pub fn write_run_report(
    file: &Path,
    scenario: &Scenario,
    seed: u64,
    swarm: bool,
    out: &Path,
) -> Result<ExitCode, String> {
    let cannot = |e: std::io::Error| format!("{}: cannot write the report: {e}", out.display());
    let mut output = OutputFile::create(out).map_err(cannot)?;
    let mut page = page_head(&format!("{} — seed {seed}", scenario.name));
    page.push_str(&run_sections(file, scenario, seed, swarm)?);
    page.push_str("</body>\n</html>\n");
    use std::io::Write as _;
    output.writer().write_all(page.as_bytes()).map_err(cannot)?;
    output.commit().map_err(cannot)?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Failing seeds shrunk per invariant on a sweep's page: the first ones, since shrinking runs
/// the scenario many times.
pub const SHRINK_PER_INVARIANT: usize = 2;

/// Writes a page about a sweep, whole or not at all: failures by invariant with their seeds,
/// and for the first [`SHRINK_PER_INVARIANT`] failing seeds of each invariant the shrunk
/// scenario, its diagram around the violation, and the commands that replay it.
pub fn write_sweep_report(
    file: &Path,
    scenario: &Scenario,
    result: &crate::sweep::SweepResult,
    out: &Path,
) -> Result<(), String> {
    use simlab_protocols::shrink;
    let cannot = |e: std::io::Error| format!("{}: cannot write the report: {e}", out.display());
    let mut output = OutputFile::create(out).map_err(cannot)?;
    let mut page = page_head(&format!("sweep of {}", scenario.name));
    let total = result.outcomes.len();
    let failing: Vec<_> = result.failures().collect();
    let _ = writeln!(
        page,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<p>{} ({}), {total} seeds from {} to {}: {}.</p>\n</section>",
        esc(&file.display().to_string()),
        esc(scenario.protocol.name()),
        result.outcomes.first().map_or(0, |o| o.seed),
        result.outcomes.last().map_or(0, |o| o.seed),
        if failing.is_empty() {
            "<span class=\"good\">every seed passed</span>".to_string()
        } else {
            format!("<span class=\"bad\">{} failed</span>", failing.len())
        }
    );
    // Failures by invariant, in the order invariants first failed.
    let mut by_invariant: Vec<(String, Vec<u64>)> = Vec::new();
    for o in &failing {
        let mut names: Vec<&str> = o.violations.iter().map(|v| v.invariant.as_str()).collect();
        names.extend(o.undecided.iter().map(|(name, _)| name.as_str()));
        if names.is_empty() {
            names.push("(stopped early, or expectation not met)");
        }
        names.dedup();
        for name in names {
            match by_invariant.iter_mut().find(|(n, _)| n == name) {
                Some((_, seeds)) => seeds.push(o.seed),
                None => by_invariant.push((name.to_string(), vec![o.seed])),
            }
        }
    }
    page.push_str("<section id=\"failures\">\n<h2>Failures by invariant</h2>\n");
    if by_invariant.is_empty() {
        page.push_str("<p>None.</p>\n");
    } else {
        page.push_str("<table>\n<tr><th>invariant</th><th>failing seeds</th><th>seeds</th></tr>\n");
        for (name, seeds) in &by_invariant {
            let shown: Vec<String> = seeds.iter().take(40).map(u64::to_string).collect();
            let more = if seeds.len() > 40 {
                format!(" … and {} more", seeds.len() - 40)
            } else {
                String::new()
            };
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}{more}</td></tr>",
                esc(name),
                seeds.len(),
                shown.join(" ")
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n<section id=\"shrunk\">\n<h2>Shrunk failures</h2>\n");
    let _ = writeln!(
        page,
        "<p>The first {SHRINK_PER_INVARIANT} failing seeds of each invariant, shrunk to a smaller scenario that fails the same way.</p>"
    );
    for (name, seeds) in &by_invariant {
        let known = scenario.protocol.invariant_names(scenario.nodes);
        let invariant = known
            .iter()
            .any(|(k, _)| k == name)
            .then_some(name.as_str());
        for &seed in seeds.iter().take(SHRINK_PER_INVARIANT) {
            let _ = writeln!(page, "<h3>{} — seed {seed}</h3>", esc(name));
            let shrunk = match shrink::shrink(scenario, seed, invariant) {
                Ok(shrunk) => shrunk,
                Err(e) => {
                    let _ = writeln!(page, "<p>Not shrunk: {}</p>", esc(&e.to_string()));
                    continue;
                }
            };
            let text = shrink::to_ron(&shrunk.scenario);
            let _ = writeln!(
                page,
                "<p>{} faults (from {}), {} nodes, {} clients × {} operations, stop at {} ms; {} runs. Save it as <code>min.ron</code> and replay it:</p>\n<pre>simlab run min.ron --seed {seed}\nsimlab tui min.ron --seed {seed} --at-violation</pre>\n<pre>{}</pre>",
                shrunk.scenario.faults.len(),
                shrunk.faults_before,
                shrunk.scenario.nodes,
                shrunk.scenario.clients.count,
                shrunk.scenario.clients.ops,
                shrunk.scenario.stop_ms,
                shrunk.runs,
                esc(&text)
            );
            match diagram::draw_run(&shrunk.scenario, seed, None, &diagram::Options::default()) {
                Ok((drawing, note)) => {
                    let _ = writeln!(
                        page,
                        "<p>{}</p>\n<div class=\"diagram\">\n{}</div>",
                        esc(&note),
                        drawing.svg()
                    );
                }
                Err(e) => {
                    let _ = writeln!(page, "<p>No diagram: {}</p>", esc(&e));
                }
            }
        }
    }
    page.push_str("</section>\n</body>\n</html>\n");
    use std::io::Write as _;
    output.writer().write_all(page.as_bytes()).map_err(cannot)?;
    output.commit().map_err(cannot)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
