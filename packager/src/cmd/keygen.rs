//! `hoist keygen`: write a minisign key pair for signing releases, readable by the
//! `minisign` tool (`minisign -Vm FILE -p KEY.pub` verifies hoist's signatures, and
//! `minisign -S -s KEY.key` signs with the key). The secret key is encrypted with a
//! password from `HOIST_SIGN_PASSWORD` or asked on the terminal; the file is created
//! with mode 0600 and never overwritten without `--force`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::sign::{generate_key_pair, new_password};

/// Arguments of `hoist keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (keep it private; give it to `hoist release --sign-key`).
    #[arg(long, value_name = "PATH", default_value = "hoist.key")]
    pub secret_key: PathBuf,

    /// Where to write the public key (give it to the agents).
    #[arg(long, value_name = "PATH", default_value = "hoist.pub")]
    pub public_key: PathBuf,

    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// Writes `text` to a new file with `mode`; refuses to replace one unless `force`.
fn write_new(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists: pass --force to replace it (signatures made with the old key \
                 will no longer verify with the new public key)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `hoist keygen`.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    // Fail on existing files before asking for a password.
    for path in [&args.secret_key, &args.public_key] {
        if !args.force && path.exists() {
            anyhow::bail!(
                "{} already exists: pass --force to replace it, or choose other paths with \
                 --secret-key/--public-key",
                path.display()
            );
        }
    }
    let password = new_password()?;
    let (public, secret) = generate_key_pair(password)?;
    write_new(&args.secret_key, &secret, 0o600, args.force)?;
    if let Err(e) = write_new(&args.public_key, &public, 0o644, args.force) {
        // Leave no half-written pair behind.
        let _ = std::fs::remove_file(&args.secret_key);
        return Err(e);
    }
    let public_line = public.lines().nth(1).unwrap_or_default();
    eprintln!(
        "wrote the secret key {} (mode 0600) and the public key {}",
        args.secret_key.display(),
        args.public_key.display()
    );
    eprintln!(
        "sign releases with `hoist release --sign-key {}`; give agents the public key:",
        args.secret_key.display()
    );
    println!("{public_line}");
    Ok(())
}
