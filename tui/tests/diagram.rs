//! Diagrams of real runs: golden files, the SVG's structure checked against the trace, and the
//! picture rendered by a real SVG renderer; the HTML report checked for being self-contained.

use simlab::diagram::capture::Window;
use simlab::diagram::{self, Diagram, End, Options};
use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::{StepRecord, TraceMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.ron"))
}

fn scenario(name: &str) -> Scenario {
    Scenario::load(&path(name)).unwrap().scenario
}

fn draw(name: &str, seed: u64, window: Option<Window>, options: &Options) -> Diagram {
    diagram::draw_run(&scenario(name), seed, window, options)
        .unwrap()
        .0
}

/// The run's full trace, to check the drawing against.
fn trace(name: &str, seed: u64) -> Vec<StepRecord> {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::Full,
        stop_on_violation: false,
    };
    registry::run(&scenario(name), &options)
        .1
        .records()
        .to_vec()
}

#[test]
fn golden_3pc_partition() {
    let d = draw("3pc-partition", 1, None, &Options::default());
    insta::assert_snapshot!("3pc_partition_svg", d.svg());
    insta::assert_snapshot!("3pc_partition_mermaid", d.mermaid());
    insta::assert_snapshot!("3pc_partition_text", d.text());
}

#[test]
fn golden_2pc_coordinator_crash_with_clients() {
    let options = Options {
        clients: true,
        ..Options::default()
    };
    let d = draw(
        "2pc-coordinator-crash-before-decision",
        1,
        Some(Window::Steps(0, 24)),
        &options,
    );
    insta::assert_snapshot!("2pc_crash_svg", d.svg());
    insta::assert_snapshot!("2pc_crash_text", d.text());
}

fn attr(node: roxmltree::Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name)
        .unwrap_or_else(|| panic!("{name} missing on {node:?}"))
        .parse()
        .unwrap()
}

/// Parses the SVG and checks every arrow against the lanes, the time scale and the trace.
fn check_structure(name: &str, seed: u64, window: Option<Window>, options: &Options) {
    let d = draw(name, seed, window, options);
    let svg = d.svg();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
    let class = |n: &roxmltree::Node<'_, '_>, c: &str| n.attribute("class") == Some(c);
    // Lanes: one vertical line each, in order, named like the diagram's lanes.
    let mut lane_x = BTreeMap::new();
    for g in doc.descendants().filter(|n| class(n, "lane")) {
        let lane: usize = g.attribute("data-lane").unwrap().parse().unwrap();
        let line = g.children().find(|c| c.has_tag_name("line")).unwrap();
        assert_eq!(attr(line, "x1"), attr(line, "x2"), "lanes are vertical");
        assert_eq!(g.attribute("data-name"), Some(d.lanes[lane].name.as_str()));
        lane_x.insert(lane, attr(line, "x1"));
    }
    assert_eq!(
        lane_x.len(),
        d.lanes.len(),
        "{name}: one lane line per lane"
    );
    let records = trace(name, seed);
    // Time → height must be one increasing function: collect every endpoint.
    let mut heights: Vec<(u64, f64)> = Vec::new();
    let mut arrows = 0;
    for g in doc
        .descendants()
        .filter(|n| class(n, "arrow") || class(n, "drop") || class(n, "in-flight"))
    {
        arrows += 1;
        let line = g.children().find(|c| c.has_tag_name("line")).unwrap();
        let from: usize = g.attribute("data-from").unwrap().parse().unwrap();
        let to: usize = g.attribute("data-to").unwrap().parse().unwrap();
        let sent_step: usize = g.attribute("data-sent-step").unwrap().parse().unwrap();
        let sent_us: u64 = g.attribute("data-sent-us").unwrap().parse().unwrap();
        assert_eq!(
            attr(line, "x1"),
            lane_x[&from],
            "{name}: arrow starts on its sender's lane"
        );
        assert_eq!(
            records[sent_step].time_us, sent_us,
            "{name}: arrow leaves at its sending step's time"
        );
        if sent_us >= d.start_us {
            heights.push((sent_us, attr(line, "y1")));
        }
        let (y1, y2) = (attr(line, "y1"), attr(line, "y2"));
        assert!(y2 >= y1, "{name}: time flows down ({y1} -> {y2})");
        let end = g.attribute("data-end-step").unwrap();
        if class(&g, "arrow") || (class(&g, "drop") && end.parse::<usize>().unwrap() != sent_step) {
            // Arrived (or dropped on arrival): ends on the recipient's lane at that step's time.
            let end: usize = end.parse().unwrap();
            let end_us: u64 = g.attribute("data-end-us").unwrap().parse().unwrap();
            assert_eq!(
                attr(line, "x2"),
                lane_x[&to],
                "{name}: arrow ends on its recipient"
            );
            assert_eq!(
                records[end].time_us, end_us,
                "{name}: arrival at its step's time"
            );
            assert_eq!(records[end].sent_step, Some(sent_step as u64));
            heights.push((end_us, y2));
        }
    }
    assert_eq!(arrows, d.arrows.len(), "{name}: every arrow drawn once");
    // Heights are written to 0.1 px: equal times, equal heights; later never higher, and
    // lower as soon as the scale separates them by more than that.
    let scale = d.scale();
    heights.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for &(t, y) in &heights {
        assert!(
            (scale.y(t) - y).abs() <= 0.051,
            "{name}: {t} µs drawn at {y}"
        );
    }
    for pair in heights.windows(2) {
        let ((t0, y0), (t1, y1)) = (pair[0], pair[1]);
        if t0 == t1 {
            assert!(
                (y0 - y1).abs() < 0.11,
                "{name}: same time, same height ({t0} µs)"
            );
        } else {
            assert!(
                y1 >= y0,
                "{name}: later is lower ({t0} µs at {y0}, {t1} µs at {y1})"
            );
            if scale.y(t1) - scale.y(t0) > 0.2 {
                assert!(y1 > y0, "{name}: {t0} µs and {t1} µs drawn apart");
            }
        }
    }
}

#[test]
fn every_arrow_lies_on_its_lanes_at_its_steps_times() {
    check_structure("3pc-partition", 1, None, &Options::default());
    check_structure(
        "raft-reelection",
        1,
        Some(Window::Time(995_000, 1_400_000)),
        &Options::default(),
    );
    check_structure(
        "raft-unreliable",
        2,
        Some(Window::Steps(300, 420)),
        &Options {
            max_arrows: 0,
            ..Options::default()
        },
    );
    check_structure(
        "2pc-coordinator-crash-before-decision",
        1,
        None,
        &Options {
            clients: true,
            ..Options::default()
        },
    );
}

#[test]
fn a_window_shows_drops_duplicates_faults_and_the_violation() {
    let d = draw("3pc-partition", 1, None, &Options::default());
    assert!(d.arrows.iter().any(|a| matches!(a.end, End::LostAtSend(_))));
    assert!(
        d.arrows
            .iter()
            .any(|a| matches!(a.end, End::Dropped { .. }))
    );
    assert_eq!(d.bands.len(), 1, "one partition, healed inside the window");
    let svg = d.svg();
    assert!(svg.contains("class=\"violation\"") && svg.contains("n0 decided commit but n2"));
    assert!(svg.contains("class=\"partition\"") && svg.contains("partition {n0 n1} | {n2}"));
    // A crash shades the lane.
    let d = draw(
        "2pc-coordinator-crash-before-decision",
        1,
        None,
        &Options::default(),
    );
    assert!(d.segments.iter().any(|s| s.lane == 0));
    assert!(d.svg().contains("class=\"down\""));
    // Duplicates are marked.
    let d = draw(
        "raft-unreliable",
        1,
        Some(Window::Steps(0, 3_000)),
        &Options {
            max_arrows: 0,
            ..Options::default()
        },
    );
    assert!(d.arrows.iter().any(|a| a.duplicate));
    assert!(d.svg().contains(", a duplicate)"));
}

#[test]
fn long_windows_hide_routine_messages_and_say_how_many() {
    let all = draw(
        "raft-basic-agreement",
        1,
        Some(Window::Steps(1_000, 1_999)),
        &Options {
            max_arrows: 0,
            ..Options::default()
        },
    );
    let some = draw(
        "raft-basic-agreement",
        1,
        Some(Window::Steps(1_000, 1_999)),
        &Options::default(),
    );
    assert!(all.arrows.len() > 120, "{}", all.arrows.len());
    assert!(some.arrows.len() <= 120 || some.arrows.iter().all(|a| !a.quiet));
    assert_eq!(
        some.arrows.len() + some.hidden_count(),
        all.arrows.len(),
        "every arrow is drawn or counted"
    );
    assert!(some.svg().contains("not drawn: "));
    // Only quiet messages are hidden: every note and arrow with a consequence stays.
    assert!(
        some.arrows.iter().filter(|a| !a.quiet).count()
            == all.arrows.iter().filter(|a| !a.quiet).count()
    );
}

/// Renders an SVG with resvg (text off: shapes only) and returns the pixmap.
fn render(svg: &str) -> resvg::tiny_skia::Pixmap {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
}

/// Dark vertical runs crossing row `y`: the lanes, where no arrow or band crosses.
fn dark_columns(pixmap: &resvg::tiny_skia::Pixmap, y: u32) -> Vec<u32> {
    let width = pixmap.width();
    let mut columns = Vec::new();
    let mut inside = false;
    for x in 0..width {
        let p = pixmap.pixel(x, y).unwrap();
        let dark = p.alpha() > 200
            && u32::from(p.red()) + u32::from(p.green()) + u32::from(p.blue()) < 3 * 170;
        if dark && !inside {
            columns.push(x);
        }
        inside = dark;
    }
    columns
}

#[test]
fn a_real_renderer_draws_the_lanes() {
    for (name, window, lanes) in [
        ("3pc-partition", None, 3),
        ("raft-reelection", Some(Window::Time(995_000, 1_400_000)), 5),
    ] {
        let d = draw(name, 1, window, &Options::default());
        let pixmap = render(&d.svg());
        let painted = pixmap
            .pixels()
            .iter()
            .filter(|p| p.red() < 250 || p.green() < 250 || p.blue() < 250)
            .count();
        assert!(
            painted > 5_000,
            "{name}: the picture is not empty ({painted} pixels)"
        );
        // Just above the bottom of the lanes nothing but the lanes crosses.
        let y = (d.scale().bottom() - 1.0) as u32;
        let columns = dark_columns(&pixmap, y);
        assert_eq!(columns.len(), lanes, "{name}: lanes at x = {columns:?}");
    }
}

#[test]
fn the_report_is_self_contained_and_has_every_section() {
    let dir = std::env::temp_dir().join(format!("simlab-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run.html");
    let file = path("raft-cap-partition");
    simlab::report::write_run_report(&file, &scenario("raft-cap-partition"), 1, false, &out)
        .unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    for id in ["summary", "availability", "faults", "diagram", "replay"] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    assert!(html.contains("CAP report") && html.contains("minority side"));
    assert!(html.contains("simlab run ") && html.contains("--seed 1"));
    assert_self_contained(&html);
    // The same run writes the same bytes.
    let again = dir.join("again.html");
    simlab::report::write_run_report(&file, &scenario("raft-cap-partition"), 1, false, &again)
        .unwrap();
    assert_eq!(html, std::fs::read_to_string(&again).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// No script, no stylesheet, font or image from elsewhere: the SVG namespace is the only URL.
pub fn assert_self_contained(html: &str) {
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("<link"), "no linked stylesheets");
    assert!(!html.contains("@import"));
    let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in [
        "http://",
        "https://",
        "src=",
        "href=\"http",
        "url(http",
        "//cdn",
    ] {
        assert!(!without_namespace.contains(needle), "found {needle}");
    }
}
