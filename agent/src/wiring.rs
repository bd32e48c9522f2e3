//! Building what the watch tasks share from the configuration: dpkg runner, host
//! architecture, state, each watch's signature policy, and (per watch, on demand) the
//! S3 client.

use std::sync::Arc;

use anyhow::Context;

use crate::cache::Dirs;
use crate::config::AgentConfig;
use crate::download;
use crate::dpkg::Dpkg;
use crate::selftest::SelfTest;
use crate::shared_state::SharedState;
use crate::signing::Policy;
use crate::sync::{SyncError, Syncer};

/// Everything the watch tasks share.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: AgentConfig,
    /// dpkg runner.
    pub dpkg: Dpkg,
    /// `dpkg --print-architecture`.
    pub host_arch: String,
    /// State directory layout.
    pub dirs: Dirs,
    /// The state file.
    pub state: Arc<SharedState>,
    /// One dpkg run at a time across watches.
    pub install_lock: Arc<tokio::sync::Mutex<()>>,
    /// What each watch accepts (same order as `config.watches`).
    pub policies: Vec<Policy>,
    /// How a newly installed agent proves itself; `None` when the agent's own path is
    /// unknown (a new agent then fails its self-test and is rolled back).
    pub self_test: Option<SelfTest>,
}

impl Shared {
    /// Prepares the state directory (creates it, empties `partial/`), asks dpkg for the
    /// host architecture and loads (or rebuilds) the state.
    pub async fn prepare(config: AgentConfig, self_test: Option<SelfTest>) -> anyhow::Result<Self> {
        let dirs = Dirs::new(&config.state_dir);
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "cannot create the state directory `{}`: run the agent as root or fix state_dir",
                config.state_dir.display()
            )
        })?;
        let removed = download::clean_partial_dir(&dirs.partial())
            .with_context(|| format!("cannot clean `{}`", dirs.partial().display()))?;
        if removed > 0 {
            tracing::info!(removed, "removed partial downloads left by a previous run");
        }
        let dpkg = Dpkg::new(&config.dpkg);
        let host_arch = dpkg
            .host_architecture()
            .await
            .context("cannot learn the host architecture")?;
        let state = Arc::new(SharedState::open(&config, &dpkg).await?);
        let policies = config.watches.iter().map(Policy::of).collect();
        let shared = Self {
            config,
            dpkg,
            host_arch,
            dirs,
            state,
            install_lock: Arc::new(tokio::sync::Mutex::new(())),
            policies,
            self_test,
        };
        shared.announce_policies().await?;
        Ok(shared)
    }

    /// Logs each watch's policy (a warning for every unsigned watch, an error for every
    /// refused one) and records the unsigned flag in the state for `status`.
    async fn announce_policies(&self) -> anyhow::Result<()> {
        for (watch, policy) in self.config.watches.iter().zip(&self.policies) {
            let unsigned = matches!(policy, Policy::Unsigned);
            match policy {
                Policy::Signed(_) => {}
                Policy::Unsigned => tracing::warn!("{}", Policy::unsigned_warning(watch)),
                Policy::Refused(why) => tracing::error!("{why}"),
            }
            if self.state.watch(&watch.name, &watch.package).await.unsigned != unsigned {
                self.state
                    .update(&watch.name, &watch.package, |w| w.unsigned = unsigned)
                    .await?;
            }
        }
        Ok(())
    }

    /// The indexes of the watches that may run (not refused for want of a key).
    pub fn runnable(&self) -> impl Iterator<Item = usize> + '_ {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p, Policy::Refused(_)))
            .map(|(i, _)| i)
    }

    /// Connects the S3 client of watch number `index` and returns its syncer. A watch
    /// refused by its policy gets no syncer.
    pub async fn syncer(&self, index: usize) -> Result<Syncer, SyncError> {
        let watch = &self.config.watches[index];
        let public_key = match &self.policies[index] {
            Policy::Signed(key) => Some(key.clone()),
            Policy::Unsigned => None,
            Policy::Refused(why) => return Err(SyncError::Local(anyhow::anyhow!("{why}"))),
        };
        let s3 = hoist_s3::S3::connect(&watch.s3).await?;
        Ok(Syncer {
            watch: watch.clone(),
            s3,
            public_key,
            dpkg: self.dpkg.clone(),
            host_arch: self.host_arch.clone(),
            dirs: self.dirs.clone(),
            keep_packages: self.config.keep_packages,
            max_package_size: watch.max_package_size(&self.config),
            state: Arc::clone(&self.state),
            install_lock: Arc::clone(&self.install_lock),
            reconciled: std::sync::atomic::AtomicBool::new(false),
            self_test: self.self_test.clone(),
        })
    }
}
