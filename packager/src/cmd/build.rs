//! `hoist build` (stub; to be written).

/// Arguments of `hoist build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {}

/// Runs `hoist build`.
pub fn run(_args: BuildArgs) -> anyhow::Result<()> {
    anyhow::bail!("hoist build is not implemented yet")
}
