//! Benchmark driver for `bench/handoff.sh`: N upgrades of `hello` with handoff
//! under steady load, then N naive restarts (SIGTERM, wait for exit, start a
//! new process on the same port) under the same load. Prints failed requests,
//! latency percentiles in steady state and inside upgrade windows, and the time
//! from signal to the new process serving.
//!
//! Every `hello` runs under a guard that kills its process group on drop;
//! SIGINT/SIGTERM stop the run early and still clean up.

mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hoist_testkit::hello::{
    HelloCommand, HelloProcess, Load, LoadConfig, LoadReport, RequestKind, get, pid_alive,
    wait_until,
};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::stats::{Summary, Window, millis, percentile, split};

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Parser)]
struct Args {
    /// The `hello` binary (a release build).
    #[arg(long)]
    hello: PathBuf,
    /// Upgrades (and restarts) per mode.
    #[arg(long, default_value_t = 100)]
    upgrades: usize,
    /// Workers on keep-alive connections.
    #[arg(long, default_value_t = 8)]
    keep_alive: usize,
    /// Workers opening a new connection per request.
    #[arg(long, default_value_t = 4)]
    new_connection: usize,
    /// Pause between a worker's requests, in microseconds.
    #[arg(long, default_value_t = 1000)]
    pause_us: u64,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Steady time between upgrades, in milliseconds.
    #[arg(long, default_value_t = 300)]
    gap_ms: u64,
    /// Extra argument for every hello process (repeatable), e.g.
    /// `--hello-arg=--idle-grace=0s` to see the keep-alive race.
    #[arg(long = "hello-arg", allow_hyphen_values = true)]
    hello_args: Vec<String>,
    /// Modes to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "handoff,naive"
    )]
    modes: Vec<Mode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// SIGUSR2: the running process hands its listener to a new one.
    Handoff,
    /// SIGTERM, wait for the exit, start a new process binding the port.
    Naive,
}

const WARMUP: Duration = Duration::from_secs(1);
const START: Duration = Duration::from_secs(30);

fn main() {
    let args = Args::parse();
    stop_on_signals();
    let mut results = Vec::new();
    for &mode in &args.modes {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        eprintln!("running {} {mode:?} cycles under load…", args.upgrades);
        results.push((mode, run(mode, &args)));
    }
    print_results(&args, &results);
}

/// What one mode measured.
struct Run {
    report: LoadReport,
    windows: Vec<Window>,
    /// Signal until the old process exited (handoff only).
    drains: Vec<Duration>,
}

fn run(mode: Mode, args: &Args) -> Run {
    let command = hello_command(args, None);
    let addr = command.listen_addr();
    let mut hello = command.spawn();
    hello.wait_serving(START);
    let load = Load::start(
        addr,
        LoadConfig {
            keep_alive: args.keep_alive,
            new_connection: args.new_connection,
            slow: 0,
            pause: Duration::from_micros(args.pause_us),
            request_timeout: Duration::from_secs(30),
            threads: args.threads,
            ..LoadConfig::default()
        },
    );
    let clock = load.started_at();
    std::thread::sleep(WARMUP);

    let mut windows = Vec::with_capacity(args.upgrades);
    let mut drains = Vec::new();
    for _ in 0..args.upgrades {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let start = clock.elapsed();
        let signalled = Instant::now();
        let window_end = match mode {
            Mode::Handoff => {
                let old = hello.pidfile_pid().expect("hello keeps its pidfile");
                hello.signal(old, Signal::SIGUSR2);
                let to_serving = until_served_by_other_than(&hello, old, signalled);
                wait_until(&format!("pid {old} to exit"), START, || {
                    (!pid_alive(old)).then_some(())
                });
                drains.push(signalled.elapsed());
                (to_serving, clock.elapsed())
            }
            Mode::Naive => {
                let old = hello.pid();
                hello.signal(old, Signal::SIGTERM);
                hello.wait_exit(START);
                hello = hello_command(args, Some(addr)).spawn();
                let to_serving = until_served_by_other_than(&hello, old, signalled);
                (to_serving, clock.elapsed())
            }
        };
        windows.push(Window {
            start,
            end: window_end.1,
            to_serving: window_end.0,
        });
        std::thread::sleep(Duration::from_millis(args.gap_ms));
    }
    let report = load.stop();
    drop(hello);
    Run {
        report,
        windows,
        drains,
    }
}

fn hello_command(args: &Args, addr: Option<std::net::SocketAddr>) -> HelloCommand {
    let command = args
        .hello_args
        .iter()
        .fold(HelloCommand::new(&args.hello), |command, arg| {
            command.arg(arg)
        });
    match addr {
        Some(addr) => command.addr(addr),
        None => command,
    }
}

/// Polls `GET /` (new connection each time) until a process other than `old`
/// answers; returns the time since `since`.
fn until_served_by_other_than(hello: &HelloProcess, old: u32, since: Instant) -> Duration {
    wait_until("a new process to answer", START, || {
        let response = get(hello.addr(), "/", Duration::from_secs(2)).ok()?;
        let pid = response.hello_info()?.pid;
        (pid != old).then(|| since.elapsed())
    })
}

fn print_results(args: &Args, results: &[(Mode, Run)]) {
    println!();
    println!(
        "hello {}{} · {} keep-alive + {} new-connection workers, {} µs pause, {} cycles per mode",
        args.hello.display(),
        args.hello_args
            .iter()
            .map(|a| format!(" {a}"))
            .collect::<String>(),
        args.keep_alive,
        args.new_connection,
        args.pause_us,
        args.upgrades
    );
    println!(
        "{:<8} {:<15} {:<7} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "mode", "connections", "period", "requests", "failed", "p50", "p99", "max"
    );
    for (mode, run) in results {
        for kind in [RequestKind::KeepAlive, RequestKind::NewConnection] {
            let (steady, windows) = split(&run.report.samples, &run.windows, kind, WARMUP);
            for (period, samples) in [("steady", steady), ("upgrade", windows)] {
                println!(
                    "{:<8} {:<15} {:<7} {}",
                    format!("{mode:?}").to_lowercase(),
                    format!("{kind:?}"),
                    period,
                    Summary::of(samples.into_iter())
                );
            }
        }
    }
    println!();
    for (mode, run) in results {
        let mut to_serving: Vec<Duration> = run.windows.iter().map(|w| w.to_serving).collect();
        to_serving.sort_unstable();
        let mut drains = run.drains.clone();
        drains.sort_unstable();
        let window_time: Duration = run.windows.iter().map(|w| w.end - w.start).sum();
        println!(
            "{:<8} signal→new process serving: p50 {} p99 {} max {}{}; {} windows totalling {}",
            format!("{mode:?}").to_lowercase(),
            millis(percentile(&to_serving, 0.5)),
            millis(percentile(&to_serving, 0.99)),
            millis(to_serving.last().copied().unwrap_or_default()),
            if drains.is_empty() {
                String::new()
            } else {
                format!(
                    "; signal→old process exited: p50 {} max {}",
                    millis(percentile(&drains, 0.5)),
                    millis(drains.last().copied().unwrap_or_default())
                )
            },
            run.windows.len(),
            millis(window_time),
        );
        for error in run.report.errors.iter().take(3) {
            println!("         e.g. {error}");
        }
    }
    if let Some((_, run)) = results.iter().find(|(mode, _)| *mode == Mode::Handoff) {
        let failed = run.report.total_failed();
        let all: Vec<_> = run
            .report
            .samples
            .iter()
            .filter(|s| s.start >= WARMUP)
            .collect();
        let (steady, windows): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|s| !stats::in_windows(s, &run.windows));
        let steady = Summary::of(steady.into_iter());
        let windows = Summary::of(windows.into_iter());
        let ratio = windows.p99.as_secs_f64() / steady.p99.as_secs_f64().max(f64::EPSILON);
        println!();
        println!(
            "target (handoff): 0 failed requests → {failed} {}; upgrade-window p99 ≤ 2× steady p99 → {} vs {} = {ratio:.2}× {}",
            verdict(failed == 0),
            millis(windows.p99),
            millis(steady.p99),
            verdict(ratio <= 2.0)
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "(met)" } else { "(MISSED)" }
}

/// SIGINT/SIGTERM/SIGHUP end the run early; the guards then stop every
/// process. A handler (not a blocked mask, which children would inherit) sets
/// the flag.
fn stop_on_signals() {
    extern "C" fn request_stop(_signal: i32) {
        STOP.store(true, Ordering::SeqCst);
    }
    let action = SigAction::new(
        SigHandler::Handler(request_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            eprintln!(
                "cannot handle {signal} ({e}); an interrupted run may leave processes behind"
            );
        }
    }
}
