//! One module per `hoist` subcommand.

pub mod build;
pub mod cloud_init;
pub mod history;
pub mod iam_policy;
pub mod keygen;
pub mod release;
pub mod rollback;

/// Runs an async subcommand on a fresh multi-threaded tokio runtime.
pub fn run_async<F>(fut: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(fut)
}
