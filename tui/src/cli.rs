//! Command-line parsing and dispatch.

use crate::schedule::{Driver, Schedule};
use crate::summary;
use crate::sweep;
use crate::wall::Stopwatch;
use clap::{Parser, Subcommand};
use simlab_protocols::registry::ExploreStart;
use simlab_protocols::{
    LearnerCode, LoadedScenario, ProtocolConfig, RunOptions, Scenario, registry,
};
use simlab_sim::explore::{ExploreLimits, Report as ExploreReport, Search};
use simlab_sim::trace::{OutputFile, write_record};
use simlab_sim::{FaultBudget, TraceMode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Deterministic distributed-systems simulator and teaching lab.
#[derive(Parser, Debug)]
#[command(name = "simlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario with one seed and report what happened.
    ///
    /// Exit code 0 when the scenario's `expect` is met, 1 when it is not, 2 for bad input.
    Run {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Print one JSON object instead of the readable summary.
        #[arg(long)]
        json: bool,
        /// Write every step as JSON lines to this file, streamed as the run goes. A regular file
        /// is written whole or not at all (a temporary file beside it is renamed over it at
        /// the end); a special file such as a pipe is written directly; a symbolic link is
        /// followed. `-` (or /dev/stdout) streams to standard output and moves the summary to
        /// standard error.
        #[arg(long, value_name = "OUT.jsonl")]
        trace: Option<PathBuf>,
        /// Run with this seed's swarm fault mix (as `sweep --swarm` did).
        #[arg(long)]
        swarm: bool,
        /// Write the clients' history as JSON lines that `simlab lincheck --model kv` reads
        /// (stores that speak the key-value API). Written whole or not at all.
        #[arg(long, value_name = "OUT.jsonl")]
        history: Option<PathBuf>,
        /// Replay a schedule `simlab explore --out` wrote: the scenario as explored, each
        /// step the event the search chose, up to its violation.
        #[arg(long, value_name = "SCHEDULE.json", conflicts_with = "swarm")]
        schedule: Option<PathBuf>,
    },
    /// Explore every order of a scenario's events (model checking the same protocol code):
    /// breadth-first by default, so a violation comes with a shortest schedule. Exit code 0
    /// when no violation was found (the summary says whether the search was complete), 1 when
    /// one was, 2 for bad input.
    Explore {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own): it decides the clients' operations and what
        /// nodes draw at random.
        #[arg(long)]
        seed: Option<u64>,
        /// Depth-first instead of breadth-first.
        #[arg(long)]
        dfs: bool,
        /// Steps from the start beyond which no state is expanded.
        #[arg(long, default_value_t = 60)]
        depth: usize,
        /// Distinct states to visit before giving up.
        #[arg(long, default_value_t = 1_000_000)]
        max_states: usize,
        /// Stop once the process holds this much memory (MiB; checked every 16,384 new
        /// states, on Linux). Breadth-first search of paxos-explore holds about 1 KiB per
        /// state visited (the states waiting states were reached from are whole simulations);
        /// depth-first, under 100 bytes.
        #[arg(long, value_name = "MIB", default_value_t = 4096)]
        max_memory: u64,
        /// Threads expanding states, breadth-first (default: every core). The result (states,
        /// verdict, schedule) is the same for every --jobs; depth-first search runs on one.
        #[arg(long)]
        jobs: Option<usize>,
        /// Print one JSON object instead of the readable summary.
        #[arg(long)]
        json: bool,
        /// Write the first violation's schedule here, for `simlab run FILE --schedule` and
        /// `simlab tui FILE --schedule` (written whole or not at all; nothing is written when
        /// no violation is found).
        #[arg(long, value_name = "SCHEDULE.json")]
        out: Option<PathBuf>,
        /// Messages a schedule may lose, each loss a step of its own.
        #[arg(long, default_value_t = 0)]
        drops: u32,
        /// Messages a schedule may deliver twice.
        #[arg(long, default_value_t = 0)]
        duplicates: u32,
        /// Crashes a schedule may hold; a crashed node may be restarted at any later step.
        #[arg(long, default_value_t = 0)]
        crashes: u32,
        /// Nodes a schedule may isolate from the others; a cut may be healed at any step.
        #[arg(long, default_value_t = 0)]
        partitions: u32,
        /// Explore around this seed: run the scenario as written (its network, its nemesis)
        /// for --prefix steps, then branch into every order of what may happen next.
        #[arg(
            long,
            value_name = "SEED",
            requires = "prefix",
            conflicts_with = "seed"
        )]
        around_seed: Option<u64>,
        /// The steps the seed's run takes before the branch (with --around-seed).
        #[arg(long, value_name = "STEPS", requires = "around_seed")]
        prefix: Option<u64>,
        /// Assume a synchronous network: no timer or client timeout fires while a message
        /// is in flight (the bound on delay that three-phase commit relies on).
        #[arg(long)]
        synchronous: bool,
    },
    /// Open the time-travel terminal UI on one run: step forwards and backwards through it.
    #[command(visible_alias = "replay")]
    Tui {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Start at the first violation.
        #[arg(long)]
        at_violation: bool,
        /// Use this seed's swarm fault mix.
        #[arg(long)]
        swarm: bool,
        /// Step through a schedule `simlab explore --out` wrote: the scenario as explored,
        /// each step the event the search chose, up to its violation.
        #[arg(long, value_name = "SCHEDULE.json", conflicts_with_all = ["swarm", "seed"])]
        schedule: Option<PathBuf>,
    },
    /// Check a recorded history for linearizability.
    ///
    /// Reads Jepsen register logs, Porcupine key-value logs, or simlab's JSON lines (the format
    /// is detected from the content). Exit code 0 when linearizable, 1 when not, 2 for bad input.
    Lincheck {
        /// The model to check against.
        #[arg(long, value_enum)]
        model: LincheckModel,
        /// The history file.
        file: PathBuf,
    },
    /// Measure the simulator: engine and Raft events per second, sweep scaling, trace memory,
    /// the linearizability checker and exhaustive search. Build with --release for meaningful
    /// numbers.
    Bench {
        /// One JSON object instead of a table (throughputs are named `*_per_sec`).
        #[arg(long)]
        json: bool,
        /// Runs per case; each reported value is their median.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Print only the resident-memory growth of recording one TUI case, in bytes: the
        /// suite runs this in a fresh process, where freed pages cannot hide the growth.
        #[arg(long, value_enum, hide = true)]
        tui_memory: Option<crate::bench::TuiCase>,
    },
    /// Reproduce Demers et al.'s epidemic tables (anti-entropy, Tables 1 and 2) on the gossip
    /// cache: one update at one node, measured beside the published figures.
    GossipTable {
        /// Cluster size (the paper's is 1000).
        #[arg(long, default_value_t = 1000)]
        nodes: u32,
        /// Trials per row; each figure is their mean and standard deviation.
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// The first trial's seed; the others follow.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Nodes gossip at their own random phases instead of in synchronous rounds.
        #[arg(long)]
        random_phases: bool,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Measure consistent hashing beside its theory: keys moved on a join and a leave, and how
    /// evenly keys spread, for the ring (plain and with bounded loads), rendezvous hashing, jump
    /// hash and modulo n.
    RingStats(crate::ring_stats::Request),
    /// Run one scenario over a range of seeds and group the failures by invariant.
    ///
    /// Exit code 0 when every seed ran without a violation, 1 when some seed violated an
    /// invariant, 2 for bad input.
    Sweep {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seeds: `A..B` (B excluded) or `A..=B`.
        #[arg(long, default_value = "0..1000")]
        seeds: String,
        /// Worker threads (default: every core). The results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only slice K of N interleaved slices of the range (K from 0), e.g. a batch
        /// job's index: the outputs of all N slices concatenate to the whole sweep.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// One JSON line per failing seed, then a summary line.
        #[arg(long)]
        json: bool,
        /// Stop at the first (smallest) failing seed.
        #[arg(long)]
        stop_on_first: bool,
        /// Swarm testing: each seed draws its own subset of the nemesis's fault kinds and its
        /// own pace (recorded in the output; `run --swarm --seed N` replays it).
        #[arg(long)]
        swarm: bool,
        /// Also write one self-contained HTML page: failures by invariant with their seeds,
        /// and the first two failing seeds of each invariant shrunk, with a diagram of each.
        /// Written whole or not at all.
        #[arg(long, value_name = "OUT.html")]
        report: Option<PathBuf>,
    },
    /// Run one scenario with several protocols in the same world, and compare them.
    ///
    /// Each protocol runs the scenario with the same seeds: the same network draws, clients,
    /// scheduled faults and nemesis draws (kinds and times). Faults aimed at the leader hit each
    /// protocol's own leader. The scenario's `expect` is replaced by the invariants every
    /// protocol has. Prints one row per protocol (availability overall and per partition side,
    /// client latency, messages per successful operation, leaders elected, failing seeds;
    /// medians over the seeds) and the seeds where the protocols disagree on an invariant.
    /// Exit code 0 when every run kept the shared invariants, 1 when one did not, 2 for bad
    /// input or an undecided check.
    Compare {
        /// The scenario file (RON).
        file: PathBuf,
        /// The protocols, comma-separated, e.g. `raft,multi-paxos`. The scenario's own
        /// protocol keeps its settings; the others run with their defaults.
        #[arg(long)]
        protocols: String,
        /// Settings for one of the protocols, as a scenario writes them, e.g.
        /// `--protocol 'MultiPaxos(heartbeat_ms: 20)'`. May be repeated.
        #[arg(long)]
        protocol: Vec<String>,
        /// The seeds: `A..B` (B excluded) or `A..=B` (default: the scenario's own seed).
        #[arg(long)]
        seeds: Option<String>,
        /// Worker threads (default: every core). The results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// One JSON line per protocol and seed, then a summary line.
        #[arg(long)]
        json: bool,
        /// Give every protocol the first protocol's faults with their nodes resolved (its
        /// leader, not each protocol's own).
        #[arg(long)]
        same_nodes: bool,
    },
    /// Sweep several scenarios with several protocol settings and tabulate what each keeps.
    ///
    /// Every scenario runs with every `--protocol` (which replaces the scenario's own settings)
    /// over the same seeds. Prints a Markdown table: per scenario and setting, each invariant's
    /// failing seeds, the first failure, and (unless --no-shrink) how many faults the shrunk
    /// schedule of that failure keeps. `expect` is ignored. Exit code 0 when the table was
    /// made (whatever it shows), 2 for bad input.
    Matrix {
        /// The scenario files (RON), one row each per setting.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Protocol settings for every scenario, as a scenario writes them, e.g.
        /// `--protocol 'Locks(design: FencingTokens)'`. May be repeated; default: each
        /// scenario's own.
        #[arg(long)]
        protocol: Vec<String>,
        /// The seeds: `A..B` (B excluded) or `A..=B`.
        #[arg(long, default_value = "0..100")]
        seeds: String,
        /// The invariants to show, comma-separated (default: every always, eventually and
        /// history invariant of the first scenario's protocol).
        #[arg(long)]
        invariants: Option<String>,
        /// Do not shrink the first failure of each combination.
        #[arg(long)]
        no_shrink: bool,
        /// Worker threads (default: every core). The results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// One JSON line per scenario and setting instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Draw a space-time (Lamport) diagram of part of one run: a lane per node, time flowing
    /// down, every message an arrow from the step that sent it to the step that received it.
    ///
    /// Drops end in a cross with the reason, duplicates are dotted, crashes and pauses shade
    /// their lanes, partitions are red bands, faults and violations are lines across, protocol
    /// notes are labels. The window defaults to 30 steps either side of the first violation, or
    /// the first 60 steps of a run that violates nothing. The file is written whole or not at
    /// all.
    Diagram {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// The steps to draw: `A..B` (B excluded) or `A..=B`.
        #[arg(long, conflicts_with_all = ["around_violation", "time"])]
        steps: Option<String>,
        /// Draw N steps either side of the first violation.
        #[arg(long, value_name = "N", conflicts_with = "time")]
        around_violation: Option<u64>,
        /// The stretch of virtual time to draw, in milliseconds: `T1..T2`.
        #[arg(long)]
        time: Option<String>,
        /// The nodes to draw, comma-separated numbers (default: all), e.g. `0,1,4`.
        #[arg(long)]
        nodes: Option<String>,
        /// Draw a lane per client, with its requests and the replies.
        #[arg(long)]
        clients: bool,
        /// Above this many messages, routine ones (delivered with no note and no violation)
        /// are left out, most frequent kind first, and counted under the drawing; 0 draws all.
        #[arg(long, default_value_t = 120)]
        max_arrows: usize,
        /// The drawing's format (default: from the file's extension; svg otherwise).
        #[arg(long, value_enum)]
        format: Option<DiagramFormat>,
        /// Where to write it (`-` for standard output).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Use this seed's swarm fault mix.
        #[arg(long)]
        swarm: bool,
    },
    /// Write one self-contained HTML page about one run: its summary and CAP report,
    /// availability and client latency over time per partition side, the fault timeline, the
    /// diagram around the first violation, and the commands that replay it.
    Report {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the page. Written whole or not at all.
        #[arg(long, value_name = "run.html")]
        out: PathBuf,
        /// Use this seed's swarm fault mix.
        #[arg(long)]
        swarm: bool,
    },
    /// Shrink a failing run to a small scenario that fails the same way.
    ///
    /// Keeps the seed, turns the nemesis into an explicit fault schedule, then removes faults,
    /// time, clients, operations and nodes while the same invariant still fails. Exit code 0
    /// when a shrunk scenario was produced, 1 when the seed violates nothing, 2 for bad input.
    Shrink {
        /// The scenario file (RON).
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// The invariant to keep failing (default: the first one the run violates).
        #[arg(long)]
        invariant: Option<String>,
        /// Apply the seed's swarm fault mix first (for seeds found by `sweep --swarm`).
        #[arg(long)]
        swarm: bool,
        /// Where to write the shrunk scenario (default: print it). Written whole or not at all;
        /// a special file is written directly; a symbolic link is followed.
        #[arg(long, value_name = "MIN.ron")]
        out: Option<PathBuf>,
    },
}

/// How `diagram` draws.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagramFormat {
    /// A picture (SVG): real slant of every message, shaded faults.
    Svg,
    /// Mermaid sequence-diagram text (order only, for small windows in Markdown).
    Mermaid,
    /// Text: a row per step, a column per lane (what the TUI's lane view shows).
    Text,
}

/// The sequential models `lincheck` knows.
#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum LincheckModel {
    /// One register: read, write, compare-and-set.
    Register,
    /// Keys of strings: get, put, append (checked key by key).
    Kv,
}

/// Runs the command; `Err` is bad input (exit code 2).
pub fn dispatch(cli: Cli, code: &LearnerCode) -> Result<ExitCode, String> {
    if !code.is_empty() {
        eprintln!(
            "simlab: running learner code for {}",
            code.names().join(", ")
        );
    }
    match cli.command {
        Command::Run {
            file,
            seed,
            json,
            trace,
            swarm,
            history,
            schedule,
        } => run(
            file,
            seed,
            json,
            trace,
            swarm,
            history,
            schedule.as_deref(),
            code,
        ),
        Command::Explore {
            file,
            seed,
            dfs,
            depth,
            max_states,
            max_memory,
            jobs,
            json,
            out,
            drops,
            duplicates,
            crashes,
            partitions,
            around_seed,
            prefix,
            synchronous,
        } => explore(
            &file,
            &ExploreStart {
                seed: around_seed.or(seed),
                faults: FaultBudget {
                    drops,
                    duplicates,
                    crashes,
                    partitions,
                },
                prefix,
                synchronous,
            },
            (dfs, depth, max_states, max_memory, jobs),
            json,
            out.as_deref(),
            code,
        ),
        Command::Shrink {
            file,
            seed,
            invariant,
            swarm,
            out,
        } => shrink(
            &file,
            seed,
            invariant.as_deref(),
            swarm,
            out.as_deref(),
            code,
        ),
        Command::Sweep {
            file,
            seeds,
            jobs,
            shard,
            json,
            stop_on_first,
            swarm,
            report,
        } => sweep(
            file,
            &seeds,
            jobs,
            shard.as_deref(),
            report.as_deref(),
            json,
            stop_on_first,
            swarm,
            code,
        ),
        Command::Compare {
            file,
            protocols,
            protocol,
            seeds,
            jobs,
            json,
            same_nodes,
        } => compare(
            &file,
            &protocols,
            &protocol,
            seeds.as_deref(),
            jobs,
            json,
            same_nodes,
            code,
        ),
        Command::Matrix {
            files,
            protocol,
            seeds,
            invariants,
            no_shrink,
            jobs,
            json,
        } => matrix(
            &files,
            &protocol,
            &seeds,
            invariants.as_deref(),
            !no_shrink,
            jobs,
            json,
            code,
        ),
        Command::Lincheck { model, file } => lincheck(model, &file),
        Command::GossipTable {
            nodes,
            runs,
            seed,
            random_phases,
            json,
        } => crate::epidemic::run(nodes, runs, seed, random_phases, json),
        Command::RingStats(request) => crate::ring_stats::run(&request),
        Command::Diagram {
            file,
            seed,
            steps,
            around_violation,
            time,
            nodes,
            clients,
            max_arrows,
            format,
            out,
            swarm,
        } => {
            let window = diagram_window(steps.as_deref(), around_violation, time.as_deref())?;
            let loaded = load(&file, code)?;
            let seed = seed.unwrap_or(loaded.scenario.seed);
            let scenario = with_swarm(&file, loaded.scenario, seed, swarm)?;
            let options = crate::diagram::Options {
                nodes: diagram_nodes(nodes.as_deref(), scenario.nodes)?,
                clients,
                max_arrows,
            };
            let format = format.unwrap_or_else(|| format_from_extension(&out));
            diagram(&scenario, seed, window, &options, format, &out)
        }
        Command::Report {
            file,
            seed,
            out,
            swarm,
        } => {
            let loaded = load(&file, code)?;
            let seed = seed.unwrap_or(loaded.scenario.seed);
            let scenario = with_swarm(&file, loaded.scenario, seed, swarm)?;
            crate::report::write_run_report(&file, &scenario, seed, swarm, &out)
        }
        Command::Tui {
            file,
            seed,
            at_violation,
            swarm,
            schedule,
        } => tui(&file, seed, at_violation, swarm, schedule.as_deref(), code),
        Command::Bench {
            json,
            repeats,
            tui_memory,
        } => {
            if let Some(case) = tui_memory {
                println!(
                    "{}",
                    crate::bench::tui_memory(std::path::Path::new("."), case)?
                );
                return Ok(ExitCode::SUCCESS);
            }
            if repeats == 0 {
                return Err("--repeats must be at least 1".into());
            }
            let cases = crate::bench::run(std::path::Path::new("."), repeats, !json)?;
            if json {
                let object: serde_json::Map<String, serde_json::Value> = cases
                    .iter()
                    .map(|c| (c.name.to_string(), serde_json::json!(c.value)))
                    .chain([
                        ("cases".to_string(), serde_json::json!(cases)),
                        (
                            "targets".to_string(),
                            crate::bench::targets(&cases)
                                .into_iter()
                                .map(|t| (t.name.to_string(), serde_json::json!(t)))
                                .collect::<serde_json::Map<_, _>>()
                                .into(),
                        ),
                    ])
                    .collect();
                println!("{}", serde_json::Value::Object(object));
            } else {
                print!("{}", crate::bench::text(&cases));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn tui(
    file: &std::path::Path,
    seed: Option<u64>,
    at_violation: bool,
    swarm: bool,
    schedule: Option<&std::path::Path>,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    let loaded = load(file, code)?;
    let (scenario, driver) = match schedule {
        Some(path) => {
            let (scenario, schedule) = scheduled(file, path, loaded.scenario, seed)?;
            (scenario, Driver::Schedule(Arc::new(schedule)))
        }
        None => {
            let seed = seed.unwrap_or(loaded.scenario.seed);
            let mut scenario = with_swarm(file, loaded.scenario, seed, swarm)?;
            scenario.seed = seed;
            (scenario, Driver::Default)
        }
    };
    let seed = scenario.seed;
    if !std::io::stdout().is_terminal() {
        return Err(
            "the TUI needs a terminal; use `simlab run --trace OUT.jsonl` to record a run instead"
                .into(),
        );
    }
    eprintln!("recording {} with seed {seed}…", scenario.name);
    let replay = crate::ui::replay::Replay::record_driven(&scenario, seed, driver)
        .map_err(|e| schedule_mismatch(schedule, file, e))?;
    let mut app = crate::ui::app::App::new(
        scenario.name.clone(),
        scenario.protocol.name().to_string(),
        seed,
        scenario.nodes,
        replay,
    );
    if at_violation {
        crate::ui::app::update(&mut app, crate::ui::app::Action::FirstViolation);
    }
    crate::ui::run(app).map_err(|e| format!("terminal error: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn lincheck(model: LincheckModel, file: &std::path::Path) -> Result<ExitCode, String> {
    use simlab_sim::linearizability::Verdict;
    use simlab_sim::linearizability::formats::{ModelKind, check_text};
    let text = simlab_sim::load::read_text(file, simlab_sim::load::MAX_HISTORY_BYTES)
        .map_err(|e| e.to_string())?;
    let kind = match model {
        LincheckModel::Register => ModelKind::Register,
        LincheckModel::Kv => ModelKind::Kv,
    };
    let clock = crate::wall::Stopwatch::start();
    let result = check_text(kind, &text).map_err(|e| match e.line {
        0 => format!("{}: {}", file.display(), e.message),
        line => format!("{}:{line}: {}", file.display(), e.message),
    })?;
    let seconds = clock.elapsed().as_secs_f64();
    let what = format!(
        "{} operations, {}, checked in {seconds:.3}s",
        result.operations, result.format
    );
    match result.verdict {
        Verdict::Linearizable => {
            println!("{}: linearizable ({what})", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Undecided { key, ops_on_key } => {
            println!(
                "{}: undecided ({what}): the search for key {key:?} ({ops_on_key} operations) outgrew its budget",
                file.display()
            );
            Ok(ExitCode::from(2))
        }
        Verdict::NotLinearizable(violation) => {
            println!("{}: NOT linearizable ({what})", file.display());
            print!("{violation}");
            if !violation.minimal {
                println!("(shrinking stopped at its budget: this subset may not be the smallest)");
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sweep(
    file: PathBuf,
    seeds: &str,
    jobs: Option<usize>,
    shard: Option<&str>,
    report: Option<&std::path::Path>,
    json: bool,
    stop_on_first: bool,
    swarm: bool,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    let loaded = load(&file, code)?;
    if report.is_some() && swarm {
        return Err(
            "--report with --swarm: shrink a swarm seed with `simlab shrink --swarm` instead"
                .into(),
        );
    }
    // Checked before the sweep, so a path that cannot be written fails first.
    if let Some(path) = report {
        drop(
            OutputFile::create(path)
                .map_err(|e| format!("{}: cannot write the report: {e}", path.display()))?,
        );
    }
    if swarm && loaded.scenario.nemesis.is_none() {
        return Err(format!(
            "{}: --swarm varies the nemesis, and this scenario has none",
            file.display()
        ));
    }
    let (start, last) = sweep::parse_range(seeds)?;
    let shard = shard.map(sweep::parse_shard).transpose()?.unwrap_or((0, 1));
    let jobs = job_count(jobs)?;
    let plan = sweep::SeedPlan { start, last, shard };
    let result = sweep::run(&loaded.scenario, &plan, jobs, stop_on_first, swarm, !json);
    if json {
        for line in sweep::json_lines(&file, &result) {
            println!("{line}");
        }
    } else {
        print!("{}", sweep::text(&file, &result));
    }
    if let Some(path) = report {
        crate::report::write_sweep_report(&file, &loaded.scenario, &result, path)?;
    }
    // 1 if a seed failed; else 2 if a seed could not be decided (as `lincheck` says).
    Ok(if result.failures().any(|o| o.failed()) {
        ExitCode::from(1)
    } else if result.failures().next().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--jobs`, checked; every core when not given.
fn job_count(jobs: Option<usize>) -> Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match jobs {
        Some(0) => Err("--jobs must be at least 1".into()),
        Some(n) if n > sweep::MAX_JOBS => Err(format!(
            "--jobs {n} is more than {}: each job is a thread, and this machine has {cores} cores",
            sweep::MAX_JOBS
        )),
        Some(n) => Ok(n),
        None => Ok(cores),
    }
}

#[allow(clippy::too_many_arguments)]
fn compare(
    file: &std::path::Path,
    protocols: &str,
    settings: &[String],
    seeds: Option<&str>,
    jobs: Option<usize>,
    json: bool,
    same_nodes: bool,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    use crate::compare;
    let loaded = load(file, code)?;
    let scenario = loaded.scenario;
    let mut protocols = compare::parse_protocols(protocols, &scenario)?;
    for text in settings {
        compare::apply_settings(&mut protocols, text)?;
    }
    let seeds = match seeds {
        Some(range) => {
            let (start, last) = sweep::parse_range_within(
                range,
                compare::MAX_SEEDS,
                &format!(
                    "a comparison keeps every run's figures and takes at most {}",
                    compare::MAX_SEEDS
                ),
            )?;
            sweep::SeedPlan {
                start,
                last,
                shard: (0, 1),
            }
            .seeds()
        }
        None => vec![scenario.seed],
    };
    let jobs = job_count(jobs)?;
    let plan = compare::Plan {
        scenario,
        protocols,
        seeds,
        same_nodes,
    };
    compare::validate(&plan, file)?;
    let result = compare::run(&plan, jobs);
    if json {
        for line in result.json_lines(file) {
            println!("{line}");
        }
    } else {
        print!("{}", result.text(file));
    }
    Ok(if result.any_failed() {
        ExitCode::from(1)
    } else if result.any_undecided() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[allow(clippy::too_many_arguments)]
fn matrix(
    files: &[PathBuf],
    protocols: &[String],
    seeds: &str,
    invariants: Option<&str>,
    shrink: bool,
    jobs: Option<usize>,
    json: bool,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    use crate::matrix;
    let rows = matrix::load_rows(files, |path| Ok(load(path, code)?.scenario))?;
    let protocols: Vec<(String, Option<ProtocolConfig>)> = if protocols.is_empty() {
        vec![(matrix::OWN.to_string(), None)]
    } else {
        protocols
            .iter()
            .map(|text| {
                let config =
                    ProtocolConfig::parse(text).map_err(|e| format!("--protocol {text:?}: {e}"))?;
                Ok((text.clone(), Some(config)))
            })
            .collect::<Result<_, String>>()?
    };
    let (start, last) = sweep::parse_range_within(
        seeds,
        matrix::MAX_RUNS,
        &format!("a matrix makes at most {} runs", matrix::MAX_RUNS),
    )?;
    let seeds = sweep::SeedPlan {
        start,
        last,
        shard: (0, 1),
    };
    let first = {
        let mut s = rows[0].scenario.clone();
        if let Some((_, Some(p))) = protocols.first() {
            s.protocol = p.clone();
        }
        s
    };
    let invariants = match invariants {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
        None => matrix::default_invariants(&first),
    };
    if invariants.is_empty() {
        return Err("--invariants names no invariant".into());
    }
    let plan = matrix::Plan {
        rows,
        protocols,
        seeds: seeds.seeds(),
        invariants,
        shrink,
    };
    plan.validate()?;
    let result = matrix::run(&plan, job_count(jobs)?);
    if json {
        for line in result.json_lines(&plan) {
            println!("{line}");
        }
    } else {
        print!("{}", result.markdown(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

fn shrink(
    file: &std::path::Path,
    seed: u64,
    invariant: Option<&str>,
    swarm: bool,
    out: Option<&std::path::Path>,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    use simlab_protocols::shrink;
    let loaded = load(file, code)?;
    let scenario = with_swarm(file, loaded.scenario, seed, swarm)?;
    if let Some(name) = invariant {
        let known = scenario.protocol.invariant_names(scenario.nodes);
        if !known.iter().any(|(k, _)| k == name) {
            let names: Vec<&str> = known.iter().map(|(k, _)| k.as_str()).collect();
            return Err(format!(
                "--invariant {name:?}: {} has no such invariant; it has: {}",
                scenario.protocol.name(),
                names.join(", ")
            ));
        }
    }
    let clock = crate::wall::Stopwatch::start();
    let shrunk = match shrink::shrink(&scenario, seed, invariant) {
        Ok(shrunk) => shrunk,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let text = shrink::to_ron(&shrunk.scenario);
    let header = format!(
        "// Shrunk by `simlab shrink {} --seed {seed}`: still violates {}.\n",
        file.display(),
        shrunk.invariant
    );
    match out {
        Some(path) => {
            simlab_sim::trace::write_atomically(path, |w| {
                use std::io::Write;
                w.write_all(header.as_bytes())?;
                w.write_all(text.as_bytes())?;
                w.write_all(b"\n")
            })
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
        None => println!("{header}{text}"),
    }
    let s = &shrunk.scenario;
    eprintln!(
        "shrunk      {} with seed {seed}, violating {}",
        file.display(),
        shrunk.invariant
    );
    for line in &shrunk.removed {
        eprintln!("removed     {line}");
    }
    eprintln!(
        "result      {} faults (from {}), {} nodes, {} clients x {} ops, stop at {} ms",
        s.faults.len(),
        shrunk.faults_before,
        s.nodes,
        s.clients.count,
        s.clients.ops,
        s.stop_ms
    );
    eprintln!(
        "took        {} runs in {:.2}s",
        shrunk.runs,
        clock.elapsed().as_secs_f64()
    );
    if let Some(path) = out {
        eprintln!(
            "written     {} (replay: simlab run {})",
            path.display(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The scenario, or in swarm mode the scenario with this seed's fault mix.
fn with_swarm(
    file: &std::path::Path,
    scenario: Scenario,
    seed: u64,
    swarm: bool,
) -> Result<Scenario, String> {
    if !swarm {
        return Ok(scenario);
    }
    match simlab_protocols::swarm::swarm(&scenario, seed) {
        Some((mixed, mix)) => {
            eprintln!(
                "swarm mix   {:?}, interval {:?} ms",
                mix.kinds, mix.interval_ms
            );
            Ok(mixed)
        }
        None => Err(format!(
            "{}: --swarm varies the nemesis, and this scenario has none",
            file.display()
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    file: PathBuf,
    seed: Option<u64>,
    json: bool,
    trace: Option<PathBuf>,
    swarm: bool,
    history: Option<PathBuf>,
    schedule: Option<&std::path::Path>,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    let mut loaded = load(&file, code)?;
    let driver = match schedule {
        Some(path) => {
            let (scenario, schedule) = scheduled(&file, path, loaded.scenario, seed)?;
            loaded.scenario = scenario;
            Driver::Schedule(Arc::new(schedule))
        }
        None => Driver::Default,
    };
    // Opened before the run, so a path that cannot be written fails first.
    let history_out = match &history {
        Some(path) => Some((
            path,
            OutputFile::create(path)
                .map_err(|e| format!("{}: cannot write the history: {e}", path.display()))?,
        )),
        None => None,
    };
    let default_seed = loaded.scenario.seed;
    let scenario = &with_swarm(&file, loaded.scenario, seed.unwrap_or(default_seed), swarm)?;
    let options = RunOptions {
        seed,
        trace: if trace.is_some() {
            TraceMode::Full
        } else {
            TraceMode::HashOnly
        },
        stop_on_violation: false,
    };
    // The trace streams to its file as the run goes (constant memory); the file is opened
    // first, so a path that cannot be written fails before the run, not after it.
    let cannot = |path: &std::path::Path, e: std::io::Error| {
        format!("{}: cannot write the trace: {e}", path.display())
    };
    // `-` (or /dev/stdout) streams the trace to standard output; the summary then goes to
    // standard error, so the stream stays clean JSON lines.
    let trace = trace.map(|p| {
        if p.as_os_str() == "-" {
            PathBuf::from("/dev/stdout")
        } else {
            p
        }
    });
    let summary_to_stderr = trace
        .as_ref()
        .is_some_and(|p| p.as_os_str() == "/dev/stdout");
    let mut output = match &trace {
        Some(path) => Some((path, OutputFile::create(path).map_err(|e| cannot(path, e))?)),
        None => None,
    };
    let clock = Stopwatch::start();
    let mut run = registry::build(scenario, &options);
    if history.is_some() && run.kv_history().is_none() {
        // The files opened are dropped uncommitted: nothing is left behind.
        return Err(format!(
            "--history: {} does not speak the key-value API, so it has no history for lincheck",
            scenario.protocol.name()
        ));
    }
    loop {
        let more = driver
            .step(&mut *run)
            .map_err(|e| schedule_mismatch(schedule, &file, e))?;
        if let Some((path, out)) = &mut output {
            for record in run.drain_records() {
                write_record(out.writer(), &record).map_err(|e| cannot(path, e))?;
            }
        }
        if !more {
            break;
        }
    }
    let outcome = run.finish();
    let elapsed = clock.elapsed();
    if let Some((path, out)) = output {
        out.commit().map_err(|e| cannot(path, e))?;
    }
    if let Some((path, mut out)) = history_out {
        let cannot =
            |e: std::io::Error| format!("{}: cannot write the history: {e}", path.display());
        let ops = run.kv_history().expect("checked before the run");
        use std::io::Write;
        let text = simlab_sim::linearizability::formats::write_json_kv(&ops);
        out.writer().write_all(text.as_bytes()).map_err(cannot)?;
        out.commit().map_err(cannot)?;
    }
    let expect_met = scenario.expect.is_met(&outcome);
    let summary = summary::RunSummary {
        file: &file,
        scenario,
        outcome: &outcome,
        run: run.as_ref(),
        expect_met,
        elapsed,
        swarm,
    };
    let shown = if json {
        format!("{}\n", summary.json())
    } else {
        summary.text()
    };
    if summary_to_stderr {
        eprint!("{shown}");
    } else {
        print!("{shown}");
    }
    // 0 met, 1 not met, 2 undecided (a check the expectation needs could not decide).
    Ok(match scenario.expect.verdict(&outcome) {
        simlab_sim::ExpectVerdict::Met => ExitCode::SUCCESS,
        simlab_sim::ExpectVerdict::NotMet => ExitCode::from(1),
        simlab_sim::ExpectVerdict::Undecided => ExitCode::from(2),
    })
}

/// The window `diagram` draws, from its options (`None`: the default).
fn diagram_window(
    steps: Option<&str>,
    around_violation: Option<u64>,
    time: Option<&str>,
) -> Result<Option<crate::diagram::capture::Window>, String> {
    use crate::diagram::capture::Window;
    if let Some(text) = steps {
        let (a, b) = sweep::parse_span("--steps", text, "a step number")?;
        return Ok(Some(Window::Steps(a, b)));
    }
    if let Some(n) = around_violation {
        return Ok(Some(Window::AroundViolation(n)));
    }
    if let Some(text) = time {
        let (a, b) = sweep::parse_span("--time", text, "a time in milliseconds")?;
        let us = |ms: u64| {
            ms.checked_mul(1_000).ok_or_else(|| {
                format!("--time {text:?}: {ms} ms is beyond the longest run simlab can simulate")
            })
        };
        return Ok(Some(Window::Time(us(a)?, us(b)?)));
    }
    Ok(None)
}

/// `--nodes 0,1,4` as node numbers, each checked against the cluster.
fn diagram_nodes(list: Option<&str>, nodes: u32) -> Result<Option<Vec<u32>>, String> {
    let Some(list) = list else { return Ok(None) };
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim().trim_start_matches('n');
        let n: u32 = part
            .parse()
            .map_err(|_| format!("--nodes {list:?}: {part:?} is not a node number"))?;
        if n >= nodes {
            return Err(format!(
                "--nodes {list:?}: there is no n{n}; the cluster has {nodes} nodes (n0..n{})",
                nodes - 1
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        return Err(format!("--nodes {list:?} names no node"));
    }
    out.sort_unstable();
    Ok(Some(out))
}

fn format_from_extension(out: &std::path::Path) -> DiagramFormat {
    match out.extension().and_then(|e| e.to_str()) {
        Some("mmd" | "mermaid") => DiagramFormat::Mermaid,
        Some("txt") => DiagramFormat::Text,
        _ => DiagramFormat::Svg,
    }
}

/// Above this many messages a Mermaid sequence diagram (no time axis) is hard to read.
const MERMAID_READABLE: usize = 60;

/// Records the run, draws the window and writes it whole.
fn diagram(
    scenario: &Scenario,
    seed: u64,
    window: Option<crate::diagram::capture::Window>,
    options: &crate::diagram::Options,
    format: DiagramFormat,
    out: &std::path::Path,
) -> Result<ExitCode, String> {
    let out = if out.as_os_str() == "-" {
        std::path::Path::new("/dev/stdout")
    } else {
        out
    };
    let cannot = |e: std::io::Error| format!("{}: cannot write the diagram: {e}", out.display());
    // Opened first, so a path that cannot be written fails before the run.
    let mut file = OutputFile::create(out).map_err(cannot)?;
    let (diagram, note) = crate::diagram::draw_run(scenario, seed, window, options)?;
    let text = match format {
        DiagramFormat::Svg => diagram.svg(),
        DiagramFormat::Mermaid => diagram.mermaid(),
        DiagramFormat::Text => diagram.text(),
    };
    use std::io::Write;
    file.writer().write_all(text.as_bytes()).map_err(cannot)?;
    file.commit().map_err(cannot)?;
    if format == DiagramFormat::Mermaid && diagram.arrows.len() > MERMAID_READABLE {
        eprintln!(
            "note: a sequence diagram of {} messages is a long list; the SVG shows the same window on a time axis",
            diagram.arrows.len()
        );
    }
    eprintln!(
        "{note}: {} lanes, {} messages drawn{}",
        diagram.lanes.len(),
        diagram.arrows.len(),
        match diagram.hidden_count() {
            0 => String::new(),
            n => format!(", {n} not drawn (see the legend)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `simlab explore`.
fn explore(
    file: &std::path::Path,
    start: &ExploreStart,
    (dfs, depth, max_states, max_memory, jobs): (bool, usize, usize, u64, Option<usize>),
    json: bool,
    out: Option<&std::path::Path>,
    code: &LearnerCode,
) -> Result<ExitCode, String> {
    let jobs = match (dfs, jobs) {
        (true, Some(n)) if n > 1 => {
            return Err(format!(
                "--jobs {n}: depth-first search follows one path at a time, so it runs on one \
                 thread (leave out --dfs to search breadth-first on {n} threads)"
            ));
        }
        (true, _) => 1,
        (false, jobs) => job_count(jobs)?,
    };
    if max_states == 0 {
        return Err("--max-states: must be at least 1 (the start is a state)".into());
    }
    if max_memory == 0 {
        return Err("--max-memory: must be at least 1 MiB".into());
    }
    let loaded = load(file, code)?;
    let scenario = &loaded.scenario;
    let cannot = |path: &std::path::Path, e: std::io::Error| {
        format!("{}: cannot write the schedule: {e}", path.display())
    };
    // Opened first, so a path that cannot be written fails before the search.
    let mut out_file = match out {
        Some(path) => Some((path, OutputFile::create(path).map_err(|e| cannot(path, e))?)),
        None => None,
    };
    let search = if dfs {
        Search::DepthFirst
    } else {
        Search::BreadthFirst
    };
    let limits = ExploreLimits {
        max_depth: depth,
        max_states,
    };
    let clock = crate::wall::Stopwatch::start();
    let mut progress = |report: &ExploreReport| {
        let seconds = clock.elapsed().as_secs_f64();
        eprintln!(
            "explore: {} states, {} transitions, depth {}, {:.0} states/s",
            report.unique_states,
            report.transitions,
            report.deepest,
            report.unique_states as f64 / seconds.max(1e-9)
        );
        match crate::wall::resident_bytes().map(|bytes| bytes >> 20) {
            Some(mib) if mib >= max_memory => {
                eprintln!("explore: {mib} MiB in use, the limit is {max_memory} MiB: stopping");
                std::ops::ControlFlow::Break(())
            }
            _ => std::ops::ControlFlow::Continue(()),
        }
    };
    let report = registry::explore(scenario, start, search, &limits, jobs, &mut progress)?;
    let seed = start.seed.unwrap_or(scenario.seed);
    let seconds = clock.elapsed().as_secs_f64();
    let rate = report.unique_states as f64 / seconds.max(1e-9);
    if json {
        let value = serde_json::json!({
            "file": file.display().to_string(),
            "scenario": scenario.name,
            "protocol": scenario.protocol.name(),
            "seed": seed,
            "prefix": start.prefix,
            "faults": start.faults,
            "synchronous": start.synchronous,
            "search": if dfs { "dfs" } else { "bfs" },
            "max_depth": depth,
            "max_states": max_states,
            "max_memory_mib": max_memory,
            "jobs": jobs,
            "seconds": seconds,
            "states_per_sec": rate,
            "changes": registry::EXPLORATION_CHANGES,
            "report": report,
        });
        println!("{value}");
    } else {
        print!(
            "{}",
            explore_text(
                file,
                scenario,
                start,
                &report,
                (dfs, &limits, max_memory, jobs),
                seconds
            )
        );
    }
    if let (Some((path, mut output)), Some(found)) = (out_file.take(), &report.counterexample) {
        let schedule = Schedule::new(&scenario.name, start, seed, found);
        use std::io::Write;
        let text = schedule.to_json(file, found);
        output
            .writer()
            .write_all(text.as_bytes())
            .map_err(|e| cannot(path, e))?;
        output.commit().map_err(|e| cannot(path, e))?;
        eprintln!(
            "explore: schedule written to {}; replay it with simlab run {} --schedule {} \
             or step through it with simlab tui {} --schedule {}",
            path.display(),
            file.display(),
            path.display(),
            file.display(),
            path.display()
        );
    } else if let Some((path, _)) = out_file {
        eprintln!(
            "explore: no violation, so no schedule written to {}",
            path.display()
        );
    }
    Ok(if report.counterexample.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The readable summary of an exploration.
fn explore_text(
    file: &std::path::Path,
    scenario: &Scenario,
    start: &ExploreStart,
    report: &ExploreReport,
    (dfs, limits, max_memory, jobs): (bool, &ExploreLimits, u64, usize),
    seconds: f64,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let order = match (dfs, jobs) {
        (true, _) => "depth-first".to_string(),
        (false, 1) => "breadth-first".to_string(),
        (false, n) => format!("breadth-first on {n} threads"),
    };
    let _ = writeln!(
        out,
        "{}: {} ({}, {} nodes), {order}, depth <= {}, <= {} states",
        file.display(),
        scenario.name,
        scenario.protocol.name(),
        scenario.nodes,
        limits.max_depth,
        limits.max_states
    );
    let _ = writeln!(
        out,
        "  {} unique states, {} transitions, {} terminal, deepest {}, {seconds:.2}s ({:.0} states/s)",
        report.unique_states,
        report.transitions,
        report.terminal_states,
        report.deepest,
        report.unique_states as f64 / seconds.max(1e-9)
    );
    match &report.counterexample {
        Some(found) => {
            let _ = writeln!(
                out,
                "VIOLATION of {} ({}) after {} steps: {}",
                found.violation.invariant,
                found.violation.kind,
                found.schedule.len(),
                found.violation.message
            );
            for (i, step) in found.schedule.iter().enumerate() {
                let _ = writeln!(out, "  {:>3}. {}", i + 1, crate::schedule::describe(step));
            }
        }
        None if report.complete => {
            let _ = writeln!(
                out,
                "no violation in any schedule: every reachable state was explored"
            );
        }
        None if report.stopped => {
            let _ = writeln!(
                out,
                "no violation found, but the memory limit ({max_memory} MiB) stopped the search \
                 (raise --max-memory, or lower --depth or --max-states)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "no violation found, but a limit cut the search short (raise --depth or --max-states)"
            );
        }
    }
    for (name, held) in &report.sometimes {
        let _ = writeln!(
            out,
            "  sometimes {name}: {}",
            if *held {
                "held in some state"
            } else {
                "held in no state explored"
            }
        );
    }
    let _ = writeln!(out, "what this covers:");
    let mut changes = registry::EXPLORATION_CHANGES;
    if start.synchronous {
        changes[2] = registry::SYNCHRONOUS_TIME;
    }
    match start.prefix {
        None => {
            for change in changes {
                let _ = writeln!(out, "  - {change}");
            }
        }
        Some(prefix) => {
            let _ = writeln!(
                out,
                "  - around seed {}: its first {prefix} steps as the seed ran them, then every \
                 order of what may happen next; the seed's streams still decide what the network \
                 does to each message and when the nemesis strikes",
                start.seed.unwrap_or(scenario.seed)
            );
            for change in &changes[2..] {
                let _ = writeln!(out, "  - {change}");
            }
        }
    }
    let _ = writeln!(out, "  - faults chosen as steps: {}", start.faults);
    out
}

/// The scenario a schedule was explored on, with the schedule: an error, naming the file,
/// when the schedule belongs to another scenario or another seed than `--seed` names.
fn scheduled(
    file: &std::path::Path,
    path: &std::path::Path,
    scenario: Scenario,
    seed: Option<u64>,
) -> Result<(Scenario, Schedule), String> {
    let schedule = Schedule::read(path)?;
    if schedule.scenario != scenario.name {
        return Err(format!(
            "{}: a schedule of scenario {:?}, not of {:?} ({})",
            path.display(),
            schedule.scenario,
            scenario.name,
            file.display()
        ));
    }
    if let Some(seed) = seed.filter(|&s| s != schedule.seed()) {
        return Err(format!(
            "--seed {seed}: {} was explored with seed {}",
            path.display(),
            schedule.seed()
        ));
    }
    let mut explored = schedule.start.scenario(&scenario);
    explored.seed = schedule.seed();
    Ok((explored, schedule))
}

/// The error for a schedule step that is not enabled in the run it is replayed on.
fn schedule_mismatch(
    schedule: Option<&std::path::Path>,
    file: &std::path::Path,
    (step, e): (usize, simlab_sim::NotEnabled),
) -> String {
    format!(
        "{}: step {step} of the schedule: {e}; was it explored from {}?",
        schedule.map_or("the schedule".into(), |p| p.display().to_string()),
        file.display()
    )
}

/// Loads a scenario and attaches the learner code this program runs with.
fn load(file: &std::path::Path, code: &LearnerCode) -> Result<LoadedScenario, String> {
    let mut loaded = Scenario::load(file).map_err(|e| e.to_string())?;
    loaded.scenario.code = code.clone();
    Ok(loaded)
}
