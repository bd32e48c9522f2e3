//! `hoist rollback` (stub; to be written).

/// Arguments of `hoist rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {}

/// Runs `hoist rollback`.
pub async fn run(_args: RollbackArgs) -> anyhow::Result<()> {
    anyhow::bail!("hoist rollback is not implemented yet")
}
