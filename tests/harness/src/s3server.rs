//! Real S3-compatible servers for tests: moto (versioning, AWS semantics, accepts any
//! credentials and any Content-MD5) and garage (checks signatures and Content-MD5, no
//! versioning). Each [`S3Server`] runs on free 127.0.0.1 ports with its state in a
//! temporary directory, is polled until it answers, and is killed by PID (its whole
//! process group) when dropped — also when the test panics.
//!
//! Missing server binaries make the test panic with the install step (`make test`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An empty file in the state dir that clients use as their AWS config and
/// credentials file (a missing one makes the SDK warn).
const EMPTY_AWS_CONFIG: &str = "empty-aws-config";

/// How long a server may take to answer after start before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which implementation a [`S3Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `moto_server` (Python, in memory).
    Moto,
    /// `garage` (Rust, on disk, single node).
    Garage,
}

/// Credentials and region a client must use against a [`S3Server`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// AWS_ACCESS_KEY_ID.
    pub access_key_id: String,
    /// AWS_SECRET_ACCESS_KEY.
    pub secret_access_key: String,
    /// AWS_REGION the server expects (garage checks it in signatures).
    pub region: String,
}

/// A running S3 server, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    kind: ServerKind,
    child: Child,
    endpoint: String,
    credentials: Credentials,
    /// garage's config file (for its admin CLI); `None` for moto.
    garage_config: Option<PathBuf>,
    /// State and logs; removed on drop after the process is gone.
    dir: tempfile::TempDir,
}

fn require_tool(name: &str) -> PathBuf {
    which::which(name).unwrap_or_else(|_| {
        panic!(
            "`{name}` is not installed or not on PATH; run `make test`, which installs the S3 test \
             servers (moto[server] in a venv, garage via `cargo install garage --locked`)"
        )
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    listener
        .local_addr()
        .expect("local address of a bound socket")
        .port()
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// moto routes a request by its `Authorization` header; it checks no signature, so
/// this placeholder names the S3 service and nothing else.
const MOTO_S3_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=hoist-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// A minimal HTTP/1.1 exchange (`Connection: close`), for readiness polls and moto's
/// admin requests (sent with a placeholder S3 `Authorization` so moto routes them to
/// S3; moto checks no signatures). Returns (status, body).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {MOTO_S3_AUTHORIZATION}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

impl S3Server {
    /// Starts `moto_server` on a free port and waits until it answers.
    ///
    /// Panics (naming `make test`) when moto is not installed, or when it does not
    /// answer within 30 s (with its log).
    pub fn moto() -> S3Server {
        let program = require_tool("moto_server");
        let dir = tempfile::tempdir().expect("create a temp dir for moto");
        std::fs::write(dir.path().join(EMPTY_AWS_CONFIG), "").expect("write the empty AWS config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("create moto.log");
        let child = spawn_in_own_group(
            Command::new(program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log),
        );
        let mut server = S3Server {
            kind: ServerKind::Moto,
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            credentials: Credentials {
                access_key_id: "hoist-test".into(),
                secret_access_key: "hoist-test-secret".into(),
                region: "us-east-1".into(),
            },
            garage_config: None,
            dir,
        };
        let addr = server.addr();
        server.wait_ready("moto.log", |_| {
            http_request(addr, "GET", "/", b"").is_ok_and(|(status, _)| status == 200)
        });
        server
    }

    /// Starts a single-node garage on free ports with one access key, waits until its
    /// admin API reports it healthy.
    ///
    /// Panics (naming `make test`) when garage is not installed, or when it does not
    /// become healthy within 30 s (with its log).
    pub fn garage() -> S3Server {
        let program = require_tool("garage");
        let dir = tempfile::tempdir().expect("create a temp dir for garage");
        std::fs::write(dir.path().join(EMPTY_AWS_CONFIG), "").expect("write the empty AWS config");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let admin_token = random_hex(16);
        let config = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{admin_token}"
"#,
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
            secret = random_hex(32),
        );
        let config_path = dir.path().join("garage.toml");
        std::fs::write(&config_path, config).expect("write garage.toml");
        let credentials = Credentials {
            access_key_id: format!("GK{}", random_hex(12)),
            secret_access_key: random_hex(32),
            region: "garage".into(),
        };
        let log = std::fs::File::create(dir.path().join("garage.log")).expect("create garage.log");
        let child = spawn_in_own_group(
            Command::new(program)
                .arg("-c")
                .arg(&config_path)
                .args(["server", "--single-node", "--default-access-key"])
                .env("GARAGE_DEFAULT_ACCESS_KEY", &credentials.access_key_id)
                .env("GARAGE_DEFAULT_SECRET_KEY", &credentials.secret_access_key)
                .env("RUST_LOG", "garage=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log),
        );
        let mut server = S3Server {
            kind: ServerKind::Garage,
            child,
            endpoint: format!("http://127.0.0.1:{s3}"),
            credentials,
            garage_config: Some(config_path),
            dir,
        };
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin));
        server.wait_ready("garage.log", |_| {
            http_request(admin_addr, "GET", "/health", b"").is_ok_and(|(status, _)| status == 200)
        });
        server
    }

    /// Polls `ready` until it is true; panics with the log if the process exits or
    /// the deadline passes.
    fn wait_ready(&mut self, log_name: &str, ready: impl Fn(&S3Server) -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} server exited ({status}) before answering; its log:\n{}",
                    self.kind,
                    self.log(log_name)
                );
            }
            if ready(self) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{:?} server did not answer within {READY_TIMEOUT:?}; its log:\n{}",
                    self.kind,
                    self.log(log_name)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Whether the server implements bucket versioning (moto yes, garage no). A test
    /// that asserts rollback must check this (or the bucket's versioning) first.
    pub fn supports_versioning(&self) -> bool {
        self.kind == ServerKind::Moto
    }

    /// Endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Socket address of the S3 API.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .parse()
            .expect("the endpoint is built from 127.0.0.1 and a port")
    }

    /// Credentials and region this server accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Process id of the server (for tests that check it is cleaned up).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Environment for a client process: this server's credentials, region and
    /// endpoint (`AWS_ENDPOINT_URL`), instance metadata disabled, and AWS config/
    /// credential files pointed at an empty file in the server's temp dir so the
    /// host's `~/.aws` cannot interfere. Pair with [`S3Server::isolate`] to also drop inherited
    /// AWS_* and HOIST_* variables.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let empty = self.dir.path().join(EMPTY_AWS_CONFIG);
        vec![
            (
                "AWS_ACCESS_KEY_ID".into(),
                self.credentials.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.credentials.secret_access_key.clone(),
            ),
            ("AWS_REGION".into(), self.credentials.region.clone()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), empty.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                empty.display().to_string(),
            ),
        ]
    }

    /// Removes every inherited `AWS_*` and `HOIST_*` variable from `cmd`, then sets
    /// [`S3Server::client_env`].
    pub fn isolate<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("AWS_") || name_str.starts_with("HOIST_") {
                cmd.env_remove(&name);
            }
        }
        cmd.envs(self.client_env())
    }

    /// Creates `name`, with versioning enabled when `versioned`.
    ///
    /// Panics if the server refuses, or when `versioned` is asked of garage (which
    /// does not implement versioning).
    pub fn create_bucket(&self, name: &str, versioned: bool) {
        match self.kind {
            ServerKind::Moto => {
                let (status, body) = http_request(self.addr(), "PUT", &format!("/{name}"), b"")
                    .expect("CreateBucket request to moto");
                assert_eq!(status, 200, "moto CreateBucket {name}: {body}");
                if versioned {
                    let xml = r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
                    let (status, body) = http_request(
                        self.addr(),
                        "PUT",
                        &format!("/{name}?versioning"),
                        xml.as_bytes(),
                    )
                    .expect("PutBucketVersioning request to moto");
                    assert_eq!(status, 200, "moto PutBucketVersioning {name}: {body}");
                }
            }
            ServerKind::Garage => {
                assert!(
                    !versioned,
                    "garage does not implement bucket versioning; use moto for versioned buckets"
                );
                self.garage_cli(&["bucket", "create", name]);
                self.garage_cli(&[
                    "bucket",
                    "allow",
                    "--read",
                    "--write",
                    "--owner",
                    name,
                    "--key",
                    &self.credentials.access_key_id,
                ]);
            }
        }
    }

    /// A second access key of garage, allowed to read `bucket` only (as an instance
    /// role would be), for tests that must tell whose signature a request carries.
    ///
    /// Panics if the server refuses, or when asked of moto (which checks no keys).
    pub fn read_only_key(&self, name: &str, bucket: &str) -> Credentials {
        assert_eq!(
            self.kind,
            ServerKind::Garage,
            "moto accepts any key; read-only keys need garage"
        );
        let credentials = Credentials {
            access_key_id: format!("GK{}", random_hex(12)),
            secret_access_key: random_hex(32),
            region: self.credentials.region.clone(),
        };
        self.garage_cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            name,
            &credentials.access_key_id,
            &credentials.secret_access_key,
        ]);
        self.garage_cli(&[
            "bucket",
            "allow",
            "--read",
            bucket,
            "--key",
            &credentials.access_key_id,
        ]);
        credentials
    }

    /// Runs garage's admin CLI against this server; panics with its output on failure.
    fn garage_cli(&self, args: &[&str]) {
        let config = self
            .garage_config
            .as_deref()
            .expect("garage servers have a config file");
        let out = Command::new(require_tool("garage"))
            .arg("-c")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the garage CLI");
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server's temporary state directory.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }
}

fn spawn_in_own_group(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt as _;
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}; run `make test` to install it"))
}

impl Drop for S3Server {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        // The child leads its own process group (spawn_in_own_group): kill the group
        // by that id so helpers it forked (pyenv shims, workers) go too.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
