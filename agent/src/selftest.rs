//! The self-test a newly installed agent passes before the running agent re-executes
//! into it: `hoist-agent self-test --config FILE` loads the configuration (public keys
//! included) and the state file, and runs dpkg, in a bounded time. [`run_self_test`] is
//! that command's body; [`SelfTest`] runs it as a separate process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::config::AgentConfig;
use crate::dpkg::Dpkg;
use crate::state::{Loaded, StateStore};

/// How long a new agent gets to pass its self-test.
pub const SELF_TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the self-test of a newly installed agent binary.
#[derive(Debug, Clone)]
pub struct SelfTest {
    /// The agent's executable path (what is re-executed after a self-update).
    pub program: PathBuf,
    /// The configuration file the running agent was started with.
    pub config: PathBuf,
}

/// Why a new agent binary failed its self-test.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// It could not be started at all.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The error.
        source: std::io::Error,
    },
    /// It exited with failure (or was killed by a signal).
    #[error("`{command}` failed ({status}): {output}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// It did not finish in time (it was killed).
    #[error("`{command}` did not finish within {timeout:?}")]
    Timeout {
        /// The command line.
        command: String,
        /// The bound.
        timeout: Duration,
    },
}

impl SelfTest {
    /// Runs `PROGRAM self-test --config CONFIG` (at most `timeout`, killed after it).
    pub async fn run(&self, timeout: Duration) -> Result<(), SelfTestError> {
        let command = format!(
            "{} self-test --config {}",
            self.program.display(),
            self.config.display()
        );
        let child = Command::new(&self.program)
            .arg("self-test")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SelfTestError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(SelfTestError::Spawn {
                    program: self.program.display().to_string(),
                    source,
                });
            }
            Err(_) => return Err(SelfTestError::Timeout { command, timeout }),
        };
        if output.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let output_tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        Err(SelfTestError::Failed {
            command,
            status: output.status.to_string(),
            output: if output_tail.is_empty() {
                "no output".to_owned()
            } else {
                output_tail
            },
        })
    }
}

/// `hoist-agent self-test`: loads the configuration at `config_path` and the state file
/// (which must parse: a new agent that cannot read it would rebuild it and lose its bad
/// marks) and runs `dpkg --print-architecture`. Takes no lock and changes nothing.
pub fn run_self_test(config_path: &Path) -> anyhow::Result<String> {
    let config = AgentConfig::load(config_path)?;
    let store = StateStore::new(&config.state_dir);
    match store
        .load()
        .with_context(|| format!("cannot read the state file `{}`", store.path().display()))?
    {
        Loaded::Ok(_) | Loaded::Missing => {}
        Loaded::Corrupt(why) => anyhow::bail!(
            "this agent cannot read the state file `{}`: {why}",
            store.path().display()
        ),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let arch = runtime
        .block_on(Dpkg::new(&config.dpkg).host_architecture())
        .context("cannot run dpkg")?;
    Ok(format!(
        "hoist-agent {} self-test OK ({} watch(es), {arch})",
        env!("CARGO_PKG_VERSION"),
        config.watches.len()
    ))
}
