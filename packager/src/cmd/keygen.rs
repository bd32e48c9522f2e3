//! `hoist keygen` (stub; to be written).

/// Arguments of `hoist keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {}

/// Runs `hoist keygen`.
pub fn run(_args: KeygenArgs) -> anyhow::Result<()> {
    anyhow::bail!("hoist keygen is not implemented yet")
}
