//! `hoist-agent`: keeps a host on the latest release of its services in S3.
//!
//! It polls each watched object (HEAD, If-None-Match), downloads a changed one by its
//! VersionId while hashing it (after authenticating its signed release statement from the
//! HEAD, see `freshness`), verifies SHA-256 and MD5 against it, installs it
//! with `dpkg -i`, signals the service to hand over to the new binary, checks its health,
//! and reinstalls the previous package if anything fails. See `config` for the file format.

mod backoff;
mod cache;
mod commands;
mod config;
mod diskspace;
mod download;
mod dpkg;
mod duration;
mod freshness;
mod fsutil;
mod logging;
mod recover;
mod s3_condition;
mod selfexec;
mod selftest;
mod service;
mod shared_state;
mod signing;
mod size;
mod state;
mod statelock;
mod status;
mod sync;
mod verify;
mod watcher;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::commands::RunEnd;
use crate::config::AgentConfig;

/// Command line of `hoist-agent`.
#[derive(Debug, Parser)]
#[command(name = "hoist-agent", version, about, long_about = None)]
struct Cli {
    /// The agent's configuration file.
    #[arg(long, global = true, env = "HOIST_AGENT_CONFIG", default_value = config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a service: poll every watched object until SIGTERM.
    Run,
    /// Sync every watched object once, then exit (non-zero if any sync failed).
    Once,
    /// Show what is installed, the rollback target and the bad versions.
    Status {
        /// Print the state file as JSON.
        #[arg(long)]
        json: bool,
        /// Read this state directory instead of the config's `state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Validate the configuration file and exit.
    CheckConfig,
    /// Prove that this binary can run the agent: load the configuration and the state,
    /// run dpkg; exit 0 when it can. A running agent runs this on a newly installed agent
    /// before it re-executes into it.
    SelfTest,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread is plenty for a handful of watches and keeps the resident size small.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load_config(path: &std::path::Path) -> anyhow::Result<AgentConfig> {
    Ok(AgentConfig::load(path)?)
}

/// `check-config`: the file parses and validates, every watch has a public key or says
/// `allow_unsigned = true` (listed as unsigned); a watch with neither fails the check.
fn check_config_report(path: &std::path::Path, config: &AgentConfig) -> anyhow::Result<ExitCode> {
    use signing::Policy;
    let mut refused = Vec::new();
    let mut lines = Vec::new();
    for watch in &config.watches {
        match Policy::of(watch) {
            Policy::Signed(_) => lines.push(format!("  {}: signed (public key set)", watch.name)),
            Policy::Unsigned => lines.push(format!(
                "  {}: UNSIGNED (allow_unsigned = true): packages are installed without a signature check",
                watch.name
            )),
            Policy::Refused(why) => refused.push(why),
        }
    }
    if !refused.is_empty() {
        anyhow::bail!("{}: {}", path.display(), refused.join("; "));
    }
    println!(
        "{}: OK ({} watch{})",
        path.display(),
        config.watches.len(),
        if config.watches.len() == 1 { "" } else { "es" }
    );
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Run | Command::Once => "info",
        Command::Status { .. } | Command::CheckConfig | Command::SelfTest => "warn",
    };
    logging::init(level);
    // Resolved before anything can replace the binary.
    let start = selfexec::StartCommand::current();
    let result: anyhow::Result<ExitCode> = (|| match cli.command {
        Command::CheckConfig => {
            let config = load_config(&cli.config)?;
            check_config_report(&cli.config, &config)
        }
        Command::SelfTest => {
            println!("{}", selftest::run_self_test(&cli.config)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json, state_dir } => {
            let state_dir = match state_dir {
                Some(dir) => dir,
                None => load_config(&cli.config)?.state_dir,
            };
            print!("{}", status::render(&state_dir, json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Once => {
            let config = load_config(&cli.config)?;
            let self_test = start.ok().map(|start| selftest::SelfTest {
                program: start.path,
                config: cli.config.clone(),
            });
            let ok = runtime()?.block_on(commands::once(config, self_test))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run => {
            let config = load_config(&cli.config)?;
            let start = start.context("cannot resolve the agent's own path for self-updates")?;
            let self_test = selftest::SelfTest {
                program: start.path.clone(),
                config: cli.config.clone(),
            };
            let end = runtime()?.block_on(commands::run(config, self_test))?;
            match end {
                RunEnd::Stopped => Ok(ExitCode::SUCCESS),
                RunEnd::Reexec => {
                    tracing::info!(path = %start.path.display(), "re-executing the new hoist-agent");
                    Err(start.exec())
                }
            }
        }
    })();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
