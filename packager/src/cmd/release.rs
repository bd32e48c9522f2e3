//! `hoist release` (stub; to be written).

/// Arguments of `hoist release`.
#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {}

/// Runs `hoist release`.
pub async fn run(_args: ReleaseArgs) -> anyhow::Result<()> {
    anyhow::bail!("hoist release is not implemented yet")
}
