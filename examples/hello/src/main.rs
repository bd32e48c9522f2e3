//! `hello`: a small HTTP service that upgrades itself without downtime.
//!
//! It answers with its version and pid, and uses `handoff` to pass its
//! listeners to a new binary on SIGUSR2 and to drain on SIGTERM. See
//! [`routes`] for the endpoints and [`build_info`] for the compile-time
//! variants (`HELLO_VERSION`, `HELLO_BROKEN`).

mod build_info;
mod routes;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use handoff::http::{DrainPolicy, HttpServer};
use handoff::{Endpoint, Handoff, Started};
use hyper::service::service_fn;

use crate::build_info::Broken;

/// Example service for hoist: answers with its version and pid; SIGUSR2
/// upgrades to the binary at its path without dropping a request; SIGTERM
/// drains and exits.
#[derive(Debug, Parser)]
#[command(version = build_info::VERSION)]
struct Cli {
    /// Where to listen: IP:PORT or unix:/path. Repeat (or separate with commas)
    /// for several listeners.
    #[arg(
        long = "listen",
        value_name = "ADDR",
        env = "HELLO_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    listen: Vec<Endpoint>,

    /// Keep a pidfile naming the process currently serving.
    #[arg(long, value_name = "PATH", env = "HELLO_PIDFILE")]
    pidfile: Option<PathBuf>,

    /// On shutdown or after an upgrade, close connections still busy after this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_deadline: Duration,

    /// While draining, give idle keep-alive connections this long to send one
    /// more request (answered with `Connection: close`) before closing them.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    idle_grace: Duration,

    /// How long to wait for the new process to be ready during an upgrade.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    ready_timeout: Duration,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(pid = std::process::id(), "{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut builder = Handoff::builder().ready_timeout(cli.ready_timeout);
    if let Some(pidfile) = &cli.pidfile {
        builder = builder.pidfile(pidfile);
    }
    let handoff = builder.start().context("cannot start")?;
    let mut listeners = Vec::with_capacity(cli.listen.len());
    for endpoint in &cli.listen {
        listeners.push(
            handoff
                .listen(endpoint)
                .with_context(|| format!("cannot listen on {endpoint}"))?,
        );
    }

    match build_info::broken() {
        Some(Broken::Crash) => bail!("this is a HELLO_BROKEN=crash build: exiting before ready"),
        Some(Broken::Hang) => {
            tracing::warn!("this is a HELLO_BROKEN=hang build: never reporting ready");
            handoff.draining().wait().await;
            return Ok(());
        }
        Some(Broken::Status500) | None => {}
    }

    let started = handoff.ready().await.context("cannot report ready")?;
    tracing::info!(
        version = build_info::VERSION,
        pid = std::process::id(),
        predecessor = match started {
            Started::TookOver { predecessor } => Some(predecessor),
            Started::Fresh => None,
        },
        "hello serving"
    );

    let upgrader = handoff.clone();
    tokio::spawn(async move { upgrader.upgrade_when_requested().await });

    HttpServer::new(service_fn(routes::handle))
        .drain_policy(DrainPolicy {
            idle_grace: cli.idle_grace,
            deadline: cli.drain_deadline,
        })
        .serve(listeners, handoff.draining())
        .await;
    handoff.finish();
    Ok(())
}
