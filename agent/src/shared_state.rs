//! The state shared by all watch tasks: one in-memory [`AgentState`] behind a mutex, saved
//! to the state file on every change.

use std::path::Path;

use tokio::sync::Mutex;

use crate::cache::Dirs;
use crate::config::AgentConfig;
use crate::dpkg::Dpkg;
use crate::recover;
use crate::state::{AgentState, Loaded, STATE_FORMAT, StateStore, WatchState};

/// The agent's state, loaded (or rebuilt) once at start.
#[derive(Debug)]
pub struct SharedState {
    store: StateStore,
    state: Mutex<AgentState>,
}

impl SharedState {
    /// Loads the state file of `config.state_dir`. A missing file, a corrupt one (moved
    /// aside to `state.json.corrupt` and reported at error level), or a watch the file does
    /// not know (or knows with another package) is rebuilt from `dpkg-query` and the
    /// cached packages. The result is saved before it is returned.
    pub async fn open(config: &AgentConfig, dpkg: &Dpkg) -> anyhow::Result<Self> {
        use anyhow::Context;
        let store = StateStore::new(&config.state_dir);
        let loaded = store
            .load()
            .with_context(|| format!("cannot read the state file `{}`", store.path().display()))?;
        let mut state = match loaded {
            Loaded::Ok(state) => state,
            Loaded::Missing => {
                tracing::info!(path = %store.path().display(), "no state file yet; starting from what dpkg reports");
                AgentState::default()
            }
            Loaded::Corrupt(why) => {
                let aside = store.set_aside_corrupt().with_context(|| {
                    format!(
                        "cannot move the corrupt state file `{}` aside",
                        store.path().display()
                    )
                })?;
                tracing::error!(
                    path = %store.path().display(),
                    kept_as = %aside.display(),
                    "state file is corrupt ({why}); rebuilding it from dpkg-query and the cached packages"
                );
                AgentState::default()
            }
        };
        state.format = STATE_FORMAT;
        let dirs = Dirs::new(&config.state_dir);
        for watch in &config.watches {
            let known = state
                .watches
                .get(&watch.name)
                .is_some_and(|w| w.package == watch.package);
            if !known {
                let rebuilt =
                    recover::rebuild_watch(dpkg, &watch.package, &dirs.cache(&watch.name))
                        .await
                        .with_context(|| {
                            format!("cannot rebuild the state of watch `{}`", watch.name)
                        })?;
                if let Some(installed) = &rebuilt.installed {
                    tracing::info!(
                        watch = %watch.name,
                        version = %installed.version,
                        deb = %installed.deb.display(),
                        "state rebuilt: {} {} is installed",
                        watch.package,
                        installed.version
                    );
                }
                state.watches.insert(watch.name.clone(), rebuilt);
            }
        }
        store
            .save(&state)
            .with_context(|| format!("cannot write the state file `{}`", store.path().display()))?;
        Ok(Self {
            store,
            state: Mutex::new(state),
        })
    }

    /// A copy of one watch's state (a fresh one when unknown).
    pub async fn watch(&self, name: &str, package: &str) -> WatchState {
        self.state
            .lock()
            .await
            .watches
            .get(name)
            .cloned()
            .unwrap_or_else(|| WatchState::new(package))
    }

    /// Applies `change` to one watch's state and saves the file atomically. On a save
    /// error the in-memory state keeps the change (the next save retries it).
    pub async fn update(
        &self,
        name: &str,
        package: &str,
        change: impl FnOnce(&mut WatchState),
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut state = self.state.lock().await;
        let entry = state
            .watches
            .entry(name.to_owned())
            .or_insert_with(|| WatchState::new(package));
        change(entry);
        self.store.save(&state).with_context(|| {
            format!(
                "cannot write the state file `{}`: check the state directory's free space and permissions",
                self.store.path().display()
            )
        })
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}
