//! Releases in a versioned bucket of a real S3 server (moto on 127.0.0.1), made with
//! the real `hoist release` and `hoist rollback`, every release signed with a key
//! pair made for the bucket by `hoist keygen` (the hosts' agents get its public key).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hoist_testkit::s3server::S3Server;

use crate::artifacts;
use crate::packages::Deb;

/// The object key the example service is released to.
pub const HELLO_KEY: &str = "releases/hello.deb";
/// The object key the agent is released to.
pub const AGENT_KEY: &str = "releases/hoist-agent.deb";

/// A versioned bucket on `server`, and the key its releases are signed with.
#[derive(Debug)]
pub struct Bucket<'a> {
    server: &'a S3Server,
    name: String,
    key: SigningKey,
}

/// A minisign key pair written by `hoist keygen` into a directory of its own, its
/// secret key encrypted with a random password.
#[derive(Debug)]
struct SigningKey {
    dir: tempfile::TempDir,
    password: String,
    public: String,
}

impl SigningKey {
    /// `hoist keygen` with `HOIST_SIGN_PASSWORD`.
    fn generate() -> SigningKey {
        let dir = tempfile::Builder::new()
            .prefix("hoist-e2e-key-")
            .tempdir()
            .expect("create a directory for the signing key");
        let password = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .expect("read a random password from the kernel")
            .trim()
            .to_owned();
        let mut cmd = Command::new(artifacts::hoist());
        cmd.arg("keygen")
            .arg("--secret-key")
            .arg(dir.path().join("hoist.key"))
            .arg("--public-key")
            .arg(dir.path().join("hoist.pub"))
            .env("HOIST_SIGN_PASSWORD", &password)
            .stdin(std::process::Stdio::null());
        checked(&mut cmd, "hoist keygen");
        let text = std::fs::read_to_string(dir.path().join("hoist.pub"))
            .expect("hoist keygen wrote the public key");
        let public = text
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("no key line in the public key file: {text:?}"))
            .to_owned();
        SigningKey {
            dir,
            password,
            public,
        }
    }

    fn secret_key(&self) -> std::path::PathBuf {
        self.dir.path().join("hoist.key")
    }
}

/// What a release or rollback returned.
#[derive(Debug, Clone)]
pub struct Released {
    /// The new current VersionId of the key.
    pub version_id: String,
    /// When the command returned (propagation times are counted from here).
    pub at: Instant,
    /// How long the command took.
    pub took: Duration,
    /// The command line (without credentials), for showing what was run.
    pub command: String,
}

impl<'a> Bucket<'a> {
    /// Creates `name` on `server` with versioning enabled.
    ///
    /// # Panics
    /// When the server refuses.
    pub fn create(server: &'a S3Server, name: &str) -> Bucket<'a> {
        server.create_bucket(name, true);
        Bucket {
            server,
            name: name.to_owned(),
            key: SigningKey::generate(),
        }
    }

    /// The public key every release of this bucket is signed for (the key line of
    /// the minisign public key file): what `public_key` in an agent's watch holds.
    pub fn public_key(&self) -> &str {
        &self.key.public
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The S3 endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        self.server.endpoint()
    }

    /// `hoist cloud-init` for a host whose agent runs with `agent_config`: the
    /// user-data that installs the agent released to [`AGENT_KEY`] (presigned URL,
    /// pinned SHA-256; the signature is checked with the agent watch's `public_key`,
    /// and not at all — `--allow-unsigned` — when the config has none), and the
    /// command line that rendered it.
    ///
    /// # Panics
    /// When the command fails (with its output).
    pub fn cloud_init(&self, agent_config: &str) -> (String, String) {
        let mut file =
            tempfile::NamedTempFile::new().expect("create a temp file for the agent config");
        std::io::Write::write_all(&mut file, agent_config.as_bytes())
            .expect("write the agent config");
        let mut cmd = self.hoist("cloud-init");
        cmd.arg("--agent-config").arg(file.path()).args([
            "--key",
            AGENT_KEY,
            "--presign",
            "--expires",
            "1h",
        ]);
        if !agent_config.contains("public_key") {
            cmd.arg("--allow-unsigned");
        }
        let command = describe(&cmd);
        let out = checked(&mut cmd, "hoist cloud-init");
        let user_data = String::from_utf8(out.stdout).expect("hoist cloud-init prints UTF-8");
        (user_data, command)
    }

    /// `hoist release --deb DEB --key KEY --sign-key …` (signed with the bucket's
    /// key); returns the new VersionId.
    ///
    /// # Panics
    /// When the release fails (with hoist's output).
    pub fn release(&self, deb: &Deb, key: &str) -> Released {
        let mut cmd = self.hoist("release");
        cmd.arg("--deb").arg(&deb.path).args(["--key", key]);
        self.sign(&mut cmd);
        self.run(
            cmd,
            &format!("hoist release {} {}", deb.package, deb.version),
        )
    }

    /// `hoist rollback --key KEY --sign-key …` (one step back, with a rollback statement
    /// signed by the bucket's key); returns the new VersionId.
    ///
    /// # Panics
    /// When the rollback fails (with hoist's output).
    pub fn rollback(&self, key: &str) -> Released {
        let mut cmd = self.hoist("rollback");
        cmd.args(["--key", key]);
        self.sign(&mut cmd);
        self.run(cmd, &format!("hoist rollback {key}"))
    }

    /// Adds the bucket's signing key (and its password) to a `release` or `rollback`.
    fn sign(&self, cmd: &mut Command) {
        cmd.arg("--sign-key")
            .arg(self.key.secret_key())
            .env("HOIST_SIGN_PASSWORD", &self.key.password);
    }

    /// `hoist history --key KEY --json`, parsed.
    ///
    /// # Panics
    /// When the command fails or prints something that is not JSON.
    pub fn history(&self, key: &str) -> serde_json::Value {
        let mut cmd = self.hoist("history");
        cmd.args(["--key", key, "--json"]);
        let out = checked(&mut cmd, "hoist history");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "hoist history --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `hoist SUBCOMMAND --bucket … --endpoint … --path-style` with this server's
    /// credentials and nothing inherited from the machine's AWS settings.
    fn hoist(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(artifacts::hoist());
        self.server.isolate(&mut cmd);
        cmd.arg(subcommand).args([
            "--bucket",
            &self.name,
            "--endpoint",
            self.server.endpoint(),
            "--path-style",
        ]);
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> Released {
        let command = describe(&cmd);
        let started = Instant::now();
        let out = checked(&mut cmd, what);
        let at = Instant::now();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let version_id = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            !version_id.is_empty() && version_id != "null",
            "{what} printed no VersionId: {stdout:?}"
        );
        Released {
            version_id,
            at,
            took: at - started,
            command,
        }
    }
}

fn checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// `cmd` as a shell-like line, with the program shown by its file name only
/// (`hoist …`), for showing what was run.
pub fn describe(cmd: &Command) -> String {
    let program = std::path::Path::new(cmd.get_program())
        .file_name()
        .map_or_else(
            || cmd.get_program().to_string_lossy(),
            |n| n.to_string_lossy(),
        );
    std::iter::once(program.into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
