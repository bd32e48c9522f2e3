//! `hoist history` (stub; to be written).

/// Arguments of `hoist history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {}

/// Runs `hoist history`.
pub async fn run(_args: HistoryArgs) -> anyhow::Result<()> {
    anyhow::bail!("hoist history is not implemented yet")
}
