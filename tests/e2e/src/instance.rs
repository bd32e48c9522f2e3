//! Hosts that fetch the agent with their own instance credentials, as on EC2: an
//! IMDSv2 stand-in on the machine's 127.0.0.1 ([`hoist_testkit::imds`]) that the host
//! reaches through `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the endpoint override of the
//! AWS SDKs, honoured by the bootstrap script too), signed agent releases, and what a
//! cloud image has at first boot (a package manager holding the dpkg lock).

use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_testkit::container::HostSpec;
use hoist_testkit::s3server::S3Server;

use crate::artifacts;
use crate::releases::describe;

/// The payload hash header S3 (and garage) require on SigV4 requests; curl 7.88
/// does not add it.
const EMPTY_PAYLOAD_SHA256_HEADER: &str =
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How long the stand-in for apt-daily holds the dpkg lock at every boot.
pub const DPKG_LOCK_SECONDS: u32 = 30;

/// Python that takes the dpkg frontend lock the way apt does (an fcntl write lock;
/// `flock(1)` takes a different kind of lock, which dpkg never sees), tells systemd it
/// holds it, and keeps it for [`DPKG_LOCK_SECONDS`].
const HOLD_DPKG_LOCK: &str = r#"import fcntl, os, socket, sys, time
lock = open("/var/lib/dpkg/lock-frontend", "a")
fcntl.lockf(lock, fcntl.LOCK_EX)
print("holding /var/lib/dpkg/lock-frontend for", sys.argv[1], "s", flush=True)
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", addr)
time.sleep(int(sys.argv[1]))
print("released /var/lib/dpkg/lock-frontend", flush=True)
"#;

/// An unencrypted minisign key pair in `dir` (`release.key`, `release.pub`), made by
/// the real `minisign -G -W`; returns the paths and the public key's `RW…` line.
///
/// # Panics
/// When minisign fails or is missing.
pub fn release_keypair(dir: &Path) -> (PathBuf, PathBuf, String) {
    let (secret, public) = (dir.join("release.key"), dir.join("release.pub"));
    let _ = std::fs::remove_file(&secret);
    let _ = std::fs::remove_file(&public);
    let out = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign is needed (run `make test` to install it)");
    assert!(
        out.status.success(),
        "minisign -G: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = std::fs::read_to_string(&public)
        .expect("read the public key")
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (secret, public, line)
}

/// `hoist SUBCOMMAND --bucket BUCKET --endpoint … --path-style ARGS…` with `server`'s
/// credentials; its stdout and stderr.
///
/// # Panics
/// When the command fails (with its output).
pub fn hoist(server: &S3Server, bucket: &str, subcommand: &str, args: &[&str]) -> (String, String) {
    let mut cmd = Command::new(artifacts::hoist());
    server.isolate(&mut cmd);
    cmd.arg(subcommand)
        .args([
            "--bucket",
            bucket,
            "--endpoint",
            server.endpoint(),
            "--path-style",
        ])
        .args(args);
    let what = describe(&cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stderr}{stdout}",
        out.status
    );
    (stdout, stderr)
}

/// Deletes `bucket/key` on `server` with a plain SigV4-signed request (curl), not hoist.
///
/// # Panics
/// When the server refuses.
pub fn delete_object(server: &S3Server, bucket: &str, key: &str) {
    let creds = server.credentials();
    let out = Command::new("curl")
        .args(["-sS", "-f", "-X", "DELETE", "--aws-sigv4"])
        .arg(format!("aws:amz:{}:s3", creds.region))
        .args([
            "--user",
            &format!("{}:{}", creds.access_key_id, creds.secret_access_key),
        ])
        .args(["-H", EMPTY_PAYLOAD_SHA256_HEADER])
        .arg(format!("{}/{bucket}/{key}", server.endpoint()))
        .output()
        .expect("curl is needed (run `make test` to install it)");
    assert!(
        out.status.success(),
        "DELETE {bucket}/{key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host booting `user_data` on an image that has the instance metadata service at
/// `imds_endpoint` (through `AWS_EC2_METADATA_SERVICE_ENDPOINT` for every service, and
/// no other credentials) and a service that holds the dpkg lock for
/// [`DPKG_LOCK_SECONDS`] from before cloud-init's final stage (and before
/// `hoist-bootstrap.service`) at every boot, as apt-daily does on a fresh cloud host.
pub fn instance_host(name: &str, user_data: &str, imds_endpoint: &str, region: &str) -> HostSpec {
    let environment = format!(
        "# Stand-in for EC2: instance metadata (credentials of the instance profile).\n[Manager]\n\
         DefaultEnvironment=\"AWS_EC2_METADATA_SERVICE_ENDPOINT={imds_endpoint}\" \"AWS_REGION={region}\"\n"
    );
    let holder = format!(
        "[Unit]\nDescription=stand-in for apt-daily: holds the dpkg lock at boot\n\
         [Service]\nType=notify\nNotifyAccess=main\n\
         ExecStart=/usr/bin/python3 /usr/local/lib/hoist-e2e/hold-dpkg-lock.py {DPKG_LOCK_SECONDS}\n"
    );
    let before = "[Unit]\nWants=hoist-e2e-dpkg-lock.service\nAfter=hoist-e2e-dpkg-lock.service\n";
    HostSpec::new(name, user_data)
        .file(
            "/etc/systemd/system.conf.d/hoist-e2e-imds.conf",
            environment,
            0o644,
        )
        .file(
            "/usr/local/lib/hoist-e2e/hold-dpkg-lock.py",
            HOLD_DPKG_LOCK,
            0o644,
        )
        .file(
            "/etc/systemd/system/hoist-e2e-dpkg-lock.service",
            holder,
            0o644,
        )
        .file(
            "/etc/systemd/system/cloud-final.service.d/hoist-e2e-dpkg-lock.conf",
            before,
            0o644,
        )
        .file(
            "/etc/systemd/system/hoist-bootstrap.service.d/hoist-e2e-dpkg-lock.conf",
            before,
            0o644,
        )
}
