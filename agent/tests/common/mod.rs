//! Shared set-up of the agent's integration tests: a real moto (behind a counting proxy
//! for the agent), a throwaway Debian root for `dpkg --root`, packages built and released
//! with the real `hoist` CLI, and the real `hoist-agent` binary as a process.
//!
//! Signed by default, like the product: each world has its own minisign key pair
//! (`minisign -G -W`); [`World::release`] and [`World::rollback`] sign with it and
//! [`World::write_config`] puts its public key in the watch, unless the test sets its
//! own `public_key` or `allow_unsigned`.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hoist_testkit::captured_log::CapturedLog;
use hoist_testkit::s3server::S3Server;
use hoist_testkit::sandbox::Sandbox;

pub use hoist_testkit::hello::{
    Broken, HelloCommand, HelloProcess, Load, LoadConfig, build_hello, get, wait_until,
};
use proxy::Proxy;

/// PATH given to the agent, as systemd gives services (dpkg needs the sbin dirs).
pub const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The agent binary under test.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hoist-agent"))
}

/// The `hoist` CLI (built once per test binary, see [`hoist_testkit::workspace_bins`]).
pub fn hoist_cli() -> PathBuf {
    hoist_testkit::workspace_bins::hoist()
}

/// What goes into a test package besides the main binary.
#[derive(Debug, Clone, Default)]
pub struct DebExtras {
    /// `--arch` override.
    pub arch: Option<String>,
    /// Extra files: (content on disk, destination in the package).
    pub files: Vec<(PathBuf, String)>,
    /// A postinst script body (hoist's own snippet is added at `#HOIST#`).
    pub postinst: Option<String>,
    /// A preinst script body.
    pub preinst: Option<String>,
    /// Extra executables (mode 0755): (content on disk, destination in the package).
    pub executables: Vec<(PathBuf, String)>,
}

/// One test's world: S3 (moto, or garage, + a proxy), a dpkg sandbox, a scratch directory.
pub struct World {
    /// The S3 server (moto unless made with [`World::garage`]).
    pub moto: S3Server,
    pub proxy: Proxy,
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub bucket: String,
    pub key: String,
    /// Whether the bucket keeps versions (moto) or not (garage).
    pub versioned: bool,
    /// The world's signing key (secret key file) and its public key line.
    pub signing: (PathBuf, String),
    /// Nesting depth of [`World::held`].
    hold_depth: std::sync::atomic::AtomicU32,
}

impl World {
    /// moto with a versioned bucket, a proxy in front of it for the agent, a fresh sandbox.
    pub fn new() -> World {
        World::with_server(S3Server::moto(), true)
    }

    /// garage (checks signatures and Content-MD5, no versioning) with an unversioned
    /// bucket, a proxy in front of it for the agent, a fresh sandbox.
    pub fn garage() -> World {
        World::with_server(S3Server::garage(), false)
    }

    fn with_server(moto: S3Server, versioned: bool) -> World {
        let bucket = "releases".to_owned();
        moto.create_bucket(&bucket, versioned);
        let proxy = Proxy::start(moto.addr());
        let sandbox = Sandbox::minbase();
        let dir = tempfile::Builder::new()
            .prefix("hoist-agent-test-")
            .tempdir()
            .expect("temp dir");
        let signing = keypair_in(dir.path(), "world");
        World {
            moto,
            proxy,
            sandbox,
            dir,
            bucket,
            key: "hello/hello.deb".to_owned(),
            versioned,
            signing,
            hold_depth: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The agent's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Builds `PACKAGE_VERSION_ARCH.deb` with `hoist build` around `binary`
    /// (installed as `/usr/bin/<binary_name>`).
    pub fn build_deb(
        &self,
        package: &str,
        version: &str,
        binary: &Path,
        binary_name: &str,
        extras: &DebExtras,
    ) -> PathBuf {
        let work = self.dir.path().join(format!(
            "build-{package}-{version}-{}",
            extras.arch.as_deref().unwrap_or("host")
        ));
        std::fs::create_dir_all(&work).expect("build dir");
        // The agent under test (`CARGO_BIN_EXE_hoist-agent`) keeps line tables (9 of 58 MB);
        // packages need no debug info, and small packages keep the tests fast.
        let stripped = work.join(binary_name);
        // Scripts (not ELF) are packaged as they are.
        let mut magic = [0u8; 4];
        let is_elf = std::fs::File::open(binary)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && &magic == b"\x7fELF";
        if is_elf {
            let out = Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&stripped)
                .arg(binary)
                .output()
                .expect("`strip` (binutils) is needed: apt-get install binutils (`make test` installs dpkg-dev, which pulls it in)");
            assert!(
                out.status.success(),
                "strip {}: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            std::fs::copy(binary, &stripped).expect("copy the script");
        }
        let binary = stripped.as_path();
        let mut manifest = format!(
            "[package]\nname = \"{package}\"\nversion = \"{version}\"\nmaintainer = \"hoist tests <tests@example.invalid>\"\nlicense = \"MIT\"\n\
             description = \"\"\"\ntest package for hoist-agent\nBuilt by the agent's integration tests.\"\"\"\n\n\
             [[binaries]]\nsource = \"{}\"\ndest = \"/usr/bin/{binary_name}\"\n",
            binary.display()
        );
        for (source, dest) in &extras.files {
            manifest.push_str(&format!(
                "\n[[files]]\nsource = \"{}\"\ndest = \"{dest}\"\nmode = \"0644\"\n",
                source.display()
            ));
        }
        for (source, dest) in &extras.executables {
            manifest.push_str(&format!(
                "\n[[files]]\nsource = \"{}\"\ndest = \"{dest}\"\nmode = \"0755\"\n",
                source.display()
            ));
        }
        if let Some(body) = &extras.postinst {
            let script = work.join("postinst");
            std::fs::write(
                &script,
                format!("#!/bin/sh\nset -e\n{body}\n#HOIST#\nexit 0\n"),
            )
            .expect("write postinst");
            manifest.push_str(&format!(
                "\n[scripts]\npostinst = \"{}\"\n",
                script.display()
            ));
        }
        if let Some(body) = &extras.preinst {
            let script = work.join("preinst");
            std::fs::write(&script, format!("#!/bin/sh\nset -e\n{body}\nexit 0\n"))
                .expect("write preinst");
            if extras.postinst.is_none() {
                manifest.push_str("\n[scripts]\n");
            }
            manifest.push_str(&format!("preinst = \"{}\"\n", script.display()));
        }
        let manifest_path = work.join("hoist.toml");
        std::fs::write(&manifest_path, manifest).expect("write manifest");
        let out_dir = work.join("dist");
        let mut cmd = Command::new(hoist_cli());
        cmd.arg("build")
            .arg("--manifest")
            .arg(&manifest_path)
            .arg("--out-dir")
            .arg(&out_dir)
            .args(["--compression", "gzip"]);
        if let Some(arch) = &extras.arch {
            cmd.args(["--arch", arch]);
        }
        let stdout = run_ok(&mut cmd, "hoist build");
        let path = PathBuf::from(stdout.trim());
        assert!(path.is_file(), "hoist build printed {stdout:?}, not a file");
        path
    }

    fn hoist(&self) -> Command {
        let mut cmd = Command::new(hoist_cli());
        self.moto.isolate(&mut cmd);
        cmd
    }

    fn s3_args(&self, key: &str) -> Vec<String> {
        vec![
            "--bucket".into(),
            self.bucket.clone(),
            "--key".into(),
            key.to_owned(),
            "--endpoint".into(),
            self.moto.endpoint().to_owned(),
            "--path-style".into(),
        ]
    }

    /// `hoist release --deb DEB` (directly to moto, not through the proxy), signed with
    /// `sign_key` or else the world's key; returns the new VersionId.
    pub fn release(&self, deb: &Path, sign_key: Option<&Path>) -> String {
        self.release_to(&self.key, deb, sign_key)
    }

    /// `hoist release --unsigned --deb DEB`; returns the new VersionId.
    pub fn release_unsigned(&self, deb: &Path) -> String {
        self.release_unsigned_to(&self.key, deb)
    }

    /// Runs `write` (a release or rollback) while the agent's requests are held in the
    /// proxy, so that none reaches the server while it stores the new version.
    ///
    /// Works around a moto race (5.2.1): a new key is visible before moto has computed
    /// its ETag, and the ETag is computed lazily, without a lock, from a buffer shared
    /// with every reader. A HEAD arriving in that window computes it concurrently with
    /// the PUT's own response, and a wrong ETag is cached for good: the agent then sees
    /// an MD5 mismatch on every download (and rightly never installs it).
    ///
    /// Nests: requests stay held until the outermost `held` returns, so a test can make
    /// several writes (a release, then an object made from its metadata) that the agent
    /// only sees the end of.
    pub fn held<T>(&self, write: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering;
        if self.hold_depth.fetch_add(1, Ordering::SeqCst) == 0 {
            self.proxy.hold();
        }
        let result = write();
        if self.hold_depth.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.proxy.unhold();
        }
        result
    }

    /// `hoist release` to another key of the bucket, signed with `sign_key` or else the
    /// world's key; returns the new VersionId.
    pub fn release_to(&self, key: &str, deb: &Path, sign_key: Option<&Path>) -> String {
        let sign_key = sign_key.unwrap_or(&self.signing.0);
        self.release_with(
            key,
            deb,
            &[std::ffi::OsStr::new("--sign-key"), sign_key.as_os_str()],
        )
    }

    /// `hoist release --unsigned` to another key of the bucket; returns the new VersionId.
    pub fn release_unsigned_to(&self, key: &str, deb: &Path) -> String {
        self.release_with(key, deb, &[std::ffi::OsStr::new("--unsigned")])
    }

    fn release_with(&self, key: &str, deb: &Path, args: &[&std::ffi::OsStr]) -> String {
        let mut cmd = self.hoist();
        cmd.arg("release")
            .arg("--deb")
            .arg(deb)
            .args(self.s3_args(key))
            .args(args)
            .env_remove("HOIST_SIGN_KEY");
        if !self.versioned {
            cmd.arg("--allow-unversioned");
        }
        let out = self.held(|| run_ok(&mut cmd, "hoist release"));
        out.trim().to_owned()
    }

    /// `hoist rollback` (one step back) signed with the world's key; returns the new
    /// VersionId.
    pub fn rollback(&self) -> String {
        self.rollback_with(&[])
    }

    /// `hoist rollback --sign-key WORLD_KEY ARGS…` (e.g. `--to VERSION_ID`); returns the
    /// new VersionId.
    pub fn rollback_with(&self, args: &[&str]) -> String {
        let mut cmd = self.hoist();
        cmd.arg("rollback")
            .args(self.s3_args(&self.key))
            .arg("--sign-key")
            .arg(&self.signing.0)
            .args(args);
        self.held(|| run_ok(&mut cmd, "hoist rollback"))
            .trim()
            .to_owned()
    }

    /// A minisign key pair without password (`minisign -G -W`): (secret, public text).
    pub fn keypair(&self, name: &str) -> (PathBuf, String) {
        keypair_in(self.dir.path(), name)
    }

    /// Writes the agent config for one `hello` watch; `extra_watch` lines are appended
    /// to the watch table (e.g. `public_key = "…"`), `extra_global` to the top. Unless
    /// `extra_watch` sets `public_key` or `allow_unsigned`, the world's public key is set.
    pub fn write_config(
        &self,
        hello: &WatchTarget,
        extra_global: &str,
        extra_watch: &str,
    ) -> PathBuf {
        let health = match &hello.health_url {
            Some(url) => {
                format!("health = {{ kind = \"http\", url = \"{url}\", within = \"4s\" }}\n")
            }
            None => String::new(),
        };
        let signal = match (&hello.signal, &hello.pidfile) {
            (Some(signal), _) => format!("signal = {signal}\n"),
            (None, Some(pidfile)) => format!(
                "signal = {{ kind = \"pidfile\", path = \"{}\" }}\n",
                pidfile.display()
            ),
            (None, None) => String::new(),
        };
        let public_key =
            if extra_watch.contains("public_key") || extra_watch.contains("allow_unsigned") {
                String::new()
            } else {
                format!("public_key = \"{}\"\n", self.signing.1)
            };
        let text = format!(
            "state_dir = \"{state}\"\ninterval = \"300ms\"\njitter = \"50ms\"\nbackoff_max = \"4s\"\n{extra_global}\n\
             [dpkg]\nroot = \"{root}\"\nlock_timeout = \"60s\"\n\n\
             [[watch]]\nname = \"hello\"\npackage = \"{package}\"\nhandoff_timeout = \"8s\"\n\
             s3 = {{ bucket = \"{bucket}\", key = \"{key}\", endpoint = \"{endpoint}\", path_style = true, region = \"{region}\" }}\n\
             {signal}{health}{public_key}{extra_watch}\n",
            state = self.state_dir().display(),
            root = self.sandbox.root().display(),
            package = hello.package,
            bucket = self.bucket,
            key = self.key,
            endpoint = self.proxy.endpoint(),
            region = self.moto.credentials().region,
        );
        let path = self.dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write agent config");
        path
    }

    /// A command running the agent with `args`, isolated AWS settings (credentials of
    /// moto, no endpoint: the config's endpoint is the proxy) and a service PATH.
    pub fn agent_command(&self, config: &Path, args: &[&str]) -> Command {
        self.agent_command_under(&[], config, args)
    }

    /// [`World::agent_command`] run through `wrapper` (a program and its arguments, which
    /// must end by executing the agent binary and arguments appended to it).
    pub fn agent_command_under(&self, wrapper: &[&str], config: &Path, args: &[&str]) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(agent_bin());
                cmd
            }
            None => Command::new(agent_bin()),
        };
        self.moto.isolate(&mut cmd);
        cmd.env_remove("AWS_ENDPOINT_URL")
            .env("PATH", SERVICE_PATH)
            .env("HOIST_AGENT_CONFIG", config)
            .env_remove("JOURNAL_STREAM")
            .args(args);
        cmd
    }

    /// Starts `hoist-agent run` with the config, logging at info level and the service
    /// steps (handoff confirmation, each health check attempt) at debug level, which a
    /// failing test prints.
    pub fn start_agent(&self, config: &Path) -> AgentProcess {
        self.start_agent_with(config, "info,hoist_agent::service=debug")
    }

    /// Starts `hoist-agent run` with `RUST_LOG=rust_log`.
    pub fn start_agent_with(&self, config: &Path, rust_log: &str) -> AgentProcess {
        let mut cmd = self.agent_command(config, &["run"]);
        cmd.env("RUST_LOG", rust_log);
        AgentProcess::spawn(cmd)
    }

    /// The agent's state file as JSON (panics if missing or invalid).
    pub fn state(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.state_dir().join("state.json")).expect("state file");
        serde_json::from_str(&text).expect("state file is JSON")
    }

    /// The state file in state directory `dir` (e.g. seen through `/proc/PID/root`).
    pub fn state_in(&self, dir: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("state.json")).expect("state file");
        serde_json::from_str(&text).expect("state file is JSON")
    }

    /// [`World::state_installed`] of the state file in `dir`.
    pub fn state_installed_in(&self, dir: &Path) -> serde_json::Value {
        self.state_in(dir)["watches"]["hello"]["installed"].clone()
    }

    /// [`World::state_bad`] of the state file in `dir`.
    pub fn state_bad_in(&self, dir: &Path) -> Vec<serde_json::Value> {
        self.state_in(dir)["watches"]["hello"]["bad"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The installed release of the `hello` watch per the state file.
    pub fn state_installed(&self) -> serde_json::Value {
        self.state()["watches"]["hello"]["installed"].clone()
    }

    /// The bad releases of the `hello` watch per the state file.
    pub fn state_bad(&self) -> Vec<serde_json::Value> {
        self.state()["watches"]["hello"]["bad"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the agent marked `version_id` bad; returns the recorded reason.
    pub fn wait_bad(&self, version_id: &str, timeout: Duration) -> String {
        wait_until(&format!("{version_id} to be marked bad"), timeout, || {
            self.state_bad()
                .into_iter()
                .find(|b| b["version_id"] == version_id)
                .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
        })
    }

    /// A client of the S3 server (not through the proxy) for `key`, for writing objects
    /// the `hoist` CLI would never write.
    pub fn raw_client(&self, key: &str) -> (tokio::runtime::Runtime, hoist_s3::S3) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let creds = self.moto.credentials();
        let settings = hoist_s3::S3Settings {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            region: Some(creds.region.clone()),
            endpoint: Some(self.moto.endpoint().to_owned()),
            path_style: true,
            profile: None,
        };
        let options = hoist_s3::ClientOptions {
            static_credentials: Some(hoist_s3::StaticCredentials {
                access_key_id: creds.access_key_id.clone(),
                secret_access_key: creds.secret_access_key.clone(),
                session_token: None,
            }),
            ..hoist_s3::ClientOptions::default()
        };
        let s3 = runtime
            .block_on(hoist_s3::S3::connect_with(&settings, &options))
            .expect("S3 client");
        (runtime, s3)
    }

    /// CopyObject of `source_key?versionId=version_id` onto the watched key made with
    /// boto3 (the AWS SDK for Python in moto's venv), not with hoist: what anyone with
    /// write access can do. With `metadata`, the copy's metadata is replaced by it
    /// (`MetadataDirective: REPLACE`); otherwise the source's is kept. Returns the new
    /// VersionId.
    pub fn boto3_copy(
        &self,
        source_key: &str,
        version_id: &str,
        metadata: Option<&std::collections::HashMap<String, String>>,
    ) -> String {
        const SCRIPT: &str = r#"
import json, os, sys
import boto3
a = json.loads(sys.argv[1])
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
kw = dict(Bucket=a["bucket"], Key=a["key"],
          CopySource={"Bucket": a["bucket"], "Key": a["source_key"], "VersionId": a["version_id"]})
if a["metadata"] is not None:
    kw["MetadataDirective"] = "REPLACE"
    kw["Metadata"] = a["metadata"]
print(s3.copy_object(**kw)["VersionId"])
"#;
        let moto = which::which("moto_server").expect("moto_server on PATH");
        let python = moto.with_file_name("python3");
        let args = serde_json::json!({
            "bucket": self.bucket,
            "key": self.key,
            "source_key": source_key,
            "version_id": version_id,
            "metadata": metadata,
        });
        let mut cmd = Command::new(&python);
        self.moto.isolate(&mut cmd);
        cmd.arg("-c").arg(SCRIPT).arg(args.to_string());
        self.held(|| run_ok(&mut cmd, "boto3 copy_object"))
            .trim()
            .to_owned()
    }

    /// The `hello` target run from the sandbox's `/usr/bin/hello`.
    pub fn hello_target(&self) -> WatchTarget {
        WatchTarget::hello(&self.sandbox.path("/usr/bin/hello"))
    }
}

/// The service the agent signals and checks: `hello` started from the sandbox's
/// `/usr/bin/hello` (so SIGUSR2 re-executes whatever dpkg installed there).
#[derive(Debug)]
pub struct WatchTarget {
    pub package: String,
    pub addr: std::net::SocketAddr,
    pub pidfile: Option<PathBuf>,
    pub health_url: Option<String>,
    /// The agent's `signal = …` inline table; `None` = the pidfile.
    pub signal: Option<String>,
    command: Mutex<Option<HelloCommand>>,
}

impl WatchTarget {
    /// `hello` at `program`, on a free port, with a pidfile and health on `/healthz`.
    pub fn hello(program: &Path) -> WatchTarget {
        WatchTarget::hello_with_ready_timeout(program, Duration::from_secs(5))
    }

    /// [`WatchTarget::hello`] whose handoff waits `ready_timeout` for a successor.
    pub fn hello_with_ready_timeout(program: &Path, ready_timeout: Duration) -> WatchTarget {
        let command = HelloCommand::new(program)
            .ready_timeout(ready_timeout)
            .idle_grace(Duration::from_millis(500))
            .drain_deadline(Duration::from_secs(10));
        let addr = command.listen_addr();
        let args = command.arguments();
        let pidfile = args
            .iter()
            .position(|a| a == "--pidfile")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
            .expect("HelloCommand passes --pidfile");
        WatchTarget {
            package: "hello".into(),
            addr,
            pidfile: Some(pidfile),
            health_url: Some(format!("http://{addr}/healthz")),
            signal: None,
            command: Mutex::new(Some(command)),
        }
    }

    /// Starts it (once) and waits until it serves.
    pub fn spawn(&self) -> HelloProcess {
        let command = self
            .command
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("a WatchTarget starts its hello once");
        let hello = command.spawn();
        hello.wait_serving(Duration::from_secs(20));
        hello
    }

    /// `GET /` → (version, pid), if it answers 200.
    pub fn serving(&self) -> Option<(String, u32)> {
        let response = get(self.addr, "/", Duration::from_secs(2)).ok()?;
        if response.status != 200 {
            return None;
        }
        response.hello_info().map(|i| (i.version, i.pid))
    }

    /// Waits until `GET /` answers with `version`; returns the serving pid.
    pub fn wait_version(&self, version: &str, timeout: Duration) -> u32 {
        wait_until(&format!("hello {version} to serve"), timeout, || {
            self.serving()
                .filter(|(v, _)| v == version)
                .map(|(_, pid)| pid)
        })
    }
}

/// A minisign key pair without password (`minisign -G -W`) in `dir`: (secret key file,
/// public key line).
pub fn keypair_in(dir: &Path, name: &str) -> (PathBuf, String) {
    let secret = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let out = Command::new("minisign")
        .args(["-G", "-W", "-f"])
        .arg("-p")
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .stdin(Stdio::null())
        .output()
        .expect("minisign is needed (apt-get install minisign; `make test` installs it)");
    assert!(
        out.status.success(),
        "minisign -G: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&public).expect("read public key");
    let key_line = text.lines().nth(1).expect("public key line").to_owned();
    (secret, key_line)
}

/// Signs `statement` with the real `minisign` CLI (`secret`: an unencrypted key), as
/// hoist does (the statement is the data and the trusted comment); returns the compact
/// metadata form (signature line `.` global signature line).
pub fn minisign_statement(secret: &Path, statement: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("statement");
    std::fs::write(&file, statement).expect("write statement");
    run_ok(
        Command::new("minisign")
            .arg("-S")
            .arg("-s")
            .arg(secret)
            .arg("-m")
            .arg(&file)
            .arg("-t")
            .arg(statement),
        "minisign -S",
    );
    let text = std::fs::read_to_string(dir.path().join("statement.minisig")).expect("signature");
    let lines: Vec<&str> = text.lines().collect();
    format!("{}.{}", lines[1], lines[3])
}

/// Runs `cmd`, panics with its output unless it succeeds; returns stdout.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `hoist-agent`, its stderr captured line by line; SIGKILLed and reaped on
/// drop (its log is printed when the test is panicking).
pub struct AgentProcess {
    child: Option<Child>,
    log: Arc<CapturedLog>,
}

impl AgentProcess {
    /// Spawns `cmd` with stderr captured.
    pub fn spawn(mut cmd: Command) -> AgentProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hoist-agent");
        let log = match child.stderr.take() {
            Some(stderr) => CapturedLog::capture(stderr),
            None => Arc::default(),
        };
        AgentProcess {
            child: Some(child),
            log,
        }
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// All log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log.count(needle)
    }

    /// Waits until `count` lines contain `needle`; returns the last of them.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) -> String {
        self.log.wait_for("the agent", needle, count, timeout)
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the agent") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the agent did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- hoist-agent log ---\n{}", self.log().join("\n"));
        }
    }
}

/// Builds the hello binary variant and its package in `world`.
pub fn hello_deb(world: &World, version: &str, broken: Option<Broken>) -> PathBuf {
    let binary = build_hello(version, broken);
    world.build_deb("hello", version, &binary, "hello", &DebExtras::default())
}

/// The hello package `version` carrying `bytes` of random (incompressible) data as
/// `/usr/share/hello/payload.bin`: a large release.
pub fn hello_deb_with_payload(world: &World, version: &str, bytes: usize) -> PathBuf {
    let payload = world.dir.path().join(format!("payload-{version}.bin"));
    let mut data = vec![0u8; bytes];
    rand::fill(&mut data[..]);
    std::fs::write(&payload, &data).expect("write the payload");
    world.build_deb(
        "hello",
        version,
        &build_hello(version, None),
        "hello",
        &DebExtras {
            files: vec![(payload, "/usr/share/hello/payload.bin".into())],
            ..DebExtras::default()
        },
    )
}

/// Waits (up to `timeout`) until the agent marked `version_id` of the `hello` watch bad;
/// returns the recorded reason.
pub fn wait_bad(world: &World, version_id: &str, timeout: Duration) -> String {
    wait_until(&format!("{version_id} to be marked bad"), timeout, || {
        world
            .state_bad()
            .into_iter()
            .find(|b| b["version_id"] == version_id)
            .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
    })
}

/// The first release of `hello`, serving: releases `deb` (hello `version`), waits until
/// dpkg has installed it and the agent logs it as serving, then starts the service from
/// the installed binary. Returns the running service and the pid serving `version`.
///
/// # Panics
/// When a step takes longer than `timeout` (the service's start: 10 s).
pub fn release_and_start_hello(
    world: &World,
    agent: &AgentProcess,
    target: &WatchTarget,
    deb: &Path,
    version: &str,
    timeout: Duration,
) -> (HelloProcess, u32) {
    world.release(deb, None);
    wait_installed(world, "hello", version, timeout);
    agent.wait_for_log(
        &format!("hello {version} is installed and serving"),
        1,
        timeout,
    );
    let hello = target.spawn();
    let pid = target.wait_version(version, Duration::from_secs(10));
    (hello, pid)
}

/// Waits until dpkg in the sandbox reports `version` of `package` installed.
pub fn wait_installed(world: &World, package: &str, version: &str, timeout: Duration) {
    wait_until(&format!("{package} {version} installed"), timeout, || {
        (world.sandbox.installed_version(package).as_deref() == Some(version)).then_some(())
    });
}
