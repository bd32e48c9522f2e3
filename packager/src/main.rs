//! `hoist`: build a service's `.deb`, release it to a versioned S3 bucket, list its
//! history and roll it back.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only parses the
//! command line, sets up logging and maps errors to exit codes.

mod agent_object;
mod binaries;
mod cmd;
mod depends;
mod elf;
mod manifest;
mod s3args;
mod sign;
mod strip;
mod userdata;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of `hoist`.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, long_about = None)]
struct Cli {
    /// More log output (repeat for more); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build NAME_VERSION_ARCH.deb from hoist.toml.
    Build(cmd::build::BuildArgs),
    /// Upload a .deb (building it first unless one is given) to s3://BUCKET/KEY.
    Release(cmd::release::ReleaseArgs),
    /// List the released versions of the key, newest first.
    History(cmd::history::HistoryArgs),
    /// Make an older version of the key current again.
    Rollback(cmd::rollback::RollbackArgs),
    /// Generate a minisign key pair for signing releases.
    Keygen(cmd::keygen::KeygenArgs),
    /// Render the cloud-init user-data that bootstraps a new host.
    CloudInit(cmd::cloud_init::CloudInitArgs),
    /// Print the least-privilege IAM policy for hosts or for releasing.
    IamPolicy(cmd::iam_policy::IamPolicyArgs),
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,hoist=info",
        1 => "info,hoist=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Build(args) => cmd::build::run(args),
        Command::Release(args) => cmd::run_async(cmd::release::run(args)),
        Command::History(args) => cmd::run_async(cmd::history::run(args)),
        Command::Rollback(args) => cmd::run_async(cmd::rollback::run(args)),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::CloudInit(args) => cmd::run_async(cmd::cloud_init::run(args)),
        Command::IamPolicy(args) => cmd::iam_policy::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what failed: why".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
