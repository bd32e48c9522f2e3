//! How hosts fetch the agent package, against garage — a server that checks SigV4
//! (moto accepts any signature, so these checks mean nothing there):
//!
//! - presigned URLs from `hoist cloud-init --presign`: the URL downloads; the same URL
//!   with its signature, path or query changed is refused, and so is the URL once its
//!   expiry has passed;
//! - the default instance-credentials mode: the bootstrap script rendered into the
//!   user-data (its own functions, run here) takes credentials from an IMDSv2 stand-in
//!   and signs the GET with `curl --aws-sigv4`: right credentials download (also with a
//!   VersionId that needs URL-encoding in the query), a wrong secret or no instance
//!   role is refused with a clear message.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use hoist_testkit::imds::{Imds, RoleCredentials};
use hoist_testkit::s3server::S3Server;
use s3_common::bootstrap::*;
use s3_common::*;

const KEY: &str = "releases/hoist-agent.deb";

struct Fixture {
    server: S3Server,
    dir: tempfile::TempDir,
    public: PathBuf,
    deb: PathBuf,
    other: PathBuf,
}

/// garage with bucket `fleet` holding a signed agent release at [`KEY`] and another
/// package at `releases/other.deb`.
fn fixture() -> Fixture {
    let server = S3Server::garage();
    server.create_bucket("fleet", false);
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = minisign_keypair(dir.path(), "release");
    let deb = make_deb(dir.path(), "hoist-agent", "1.0.0", "agent");
    let other = make_deb(dir.path(), "other", "1.0.0", "other");
    for (file, key) in [(&deb, KEY), (&other, "releases/other.deb")] {
        ok(run(hoist(&server, dir.path())
            .args([
                "release",
                "--bucket",
                "fleet",
                "--allow-unversioned",
                "--key",
                key,
            ])
            .args(["--endpoint", server.endpoint(), "--sign-key"])
            .arg(&secret)
            .arg("--deb")
            .arg(file)));
    }
    Fixture {
        server,
        dir,
        public,
        deb,
        other,
    }
}

impl Fixture {
    fn cloud_init(&self, extra: &[&str]) -> String {
        let config = self.dir.path().join("agent.toml");
        std::fs::write(&config, "state_dir = \"/var/lib/hoist-agent\"\n").unwrap();
        ok(run(hoist(&self.server, self.dir.path())
            .args(["cloud-init", "--bucket", "fleet", "--key", KEY])
            .args(["--endpoint", self.server.endpoint(), "--agent-config"])
            .arg(&config)
            .arg("--public-key-file")
            .arg(&self.public)
            .args(extra)))
    }
}

/// `curl URL` → (HTTP status, body).
fn curl(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl is needed for this test; run `make test` to install it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out.stdout.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&out.stdout[split + 1..])
        .parse()
        .unwrap();
    (status, out.stdout[..split].to_vec())
}

/// Asserts garage refused `url` (403, as S3 does for a bad signature) and sent none
/// of the package; returns the error body.
fn assert_refused(url: &str, what: &str) -> String {
    assert_refused_with(url, what, 403)
}

/// [`assert_refused`] with the status garage answers `what` with.
fn assert_refused_with(url: &str, what: &str, expected: u16) -> String {
    let (status, body) = curl(url);
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, expected, "{what} was not refused: {url}\n{text}");
    assert!(!body.starts_with(b"!<arch>"), "{what}: package bytes sent");
    text
}

/// Replaces the value of query parameter `name` in `url`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((n, _)) if n == name => format!("{n}={value}"),
            _ => p.to_owned(),
        })
        .collect();
    assert!(
        params.iter().any(|p| p.starts_with(&format!("{name}="))),
        "{url}"
    );
    format!("{base}?{}", params.join("&"))
}

#[test]
fn presigned_urls_download_only_as_signed_and_until_they_expire() {
    let f = fixture();
    let rendered_at = SystemTime::now();
    let text = f.cloud_init(&["--presign", "--expires", "8s"]);
    let url = shell_value(&text, "url");
    assert!(url.contains("X-Amz-Expires=8&"), "{url}");

    let (status, body) = curl(&url);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, std::fs::read(&f.deb).unwrap());
    // The bootstrap script's own download in this mode (no IMDS involved).
    let script = f.dir.path().join("hoist-bootstrap-presigned");
    std::fs::write(&script, bootstrap_script(&text)).unwrap();
    let work = f.dir.path().join("work-presigned");
    std::fs::create_dir(&work).unwrap();
    let unused_imds = Imds::start(None);
    let out = run_download(&script, &work, &unused_imds, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(work.join("hoist-agent.deb.part")).unwrap(),
        std::fs::read(&f.deb).unwrap()
    );
    assert!(unused_imds.requests().is_empty());

    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    assert_refused(
        &with_param(&url, "X-Amz-Signature", &flipped),
        "a changed signature",
    );
    // Another object that exists, under this URL's signature.
    let other = url.replace("/releases/hoist-agent.deb?", "/releases/other.deb?");
    assert_ne!(other, url);
    assert_refused(&other, "a changed path");
    assert_refused(
        &with_param(&url, "X-Amz-Expires", "3600"),
        "a longer expiry",
    );
    assert_refused(
        &format!("{url}&response-content-type=text%2Fplain"),
        "an added parameter",
    );
    let _ = &f.other;

    // Wait out the expiry (8 s from signing, plus garage's second resolution).
    let expired_at = rendered_at + Duration::from_secs(10);
    if let Ok(left) = expired_at.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
    // garage answers 400 "Date is too old" (AWS: 403 "Request has expired").
    let said = assert_refused_with(&url, "an expired URL", 400);
    assert!(said.contains("too old"), "{said}");
}

/// Runs the `download` function of the rendered bootstrap script here (not on a
/// host): one attempt, into `work`, with IMDS at `imds`. Returns its output.
fn run_download(script: &Path, work: &Path, imds: &Imds, url_override: Option<&str>) -> Output {
    let mut body = format!(
        ". '{}'\ndir='{}'\ndeb=\"$dir/hoist-agent.deb\"\nattempts=1\n",
        script.display(),
        work.display()
    );
    if let Some(url) = url_override {
        body.push_str(&format!("url='{url}'\n"));
    }
    body.push_str("download\n");
    Command::new("sh")
        .args(["-c", &body])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOIST_BOOTSTRAP_FUNCTIONS_ONLY", "1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint())
        .output()
        .unwrap()
}

#[test]
fn the_bootstrap_signs_its_get_with_instance_credentials() {
    let f = fixture();
    let text = f.cloud_init(&[]);
    assert_eq!(shell_value(&text, "mode"), "instance");
    assert_eq!(shell_value(&text, "region"), "garage");
    let url = shell_value(&text, "url");
    assert!(
        !url.contains('?'),
        "garage keeps no versions, so none is pinned: {url}"
    );
    let script = f.dir.path().join("hoist-bootstrap");
    std::fs::write(&script, bootstrap_script(&text)).unwrap();
    let work = f.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let part = work.join("hoist-agent.deb.part");

    let creds = f.server.credentials();
    let role = |secret: &str| RoleCredentials {
        access_key_id: creds.access_key_id.clone(),
        secret_access_key: secret.to_owned(),
        token: "instance-session-token".into(),
        expiration: SystemTime::now() + Duration::from_secs(3600),
    };
    let imds = Imds::start(Some(("hoist-host", role(&creds.secret_access_key))));
    let started = Instant::now();
    let out = run_download(&script, &work, &imds, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&part).unwrap(),
        std::fs::read(&f.deb).unwrap()
    );
    assert_eq!(
        imds.requests(),
        [
            "PUT /latest/api/token 200",
            "GET /latest/meta-data/iam/security-credentials/ 200",
            "GET /latest/meta-data/iam/security-credentials/hoist-host 200",
        ]
    );
    println!(
        "download with instance credentials took {:.2?}",
        started.elapsed()
    );

    // A VersionId as AWS writes them ('/', '.', '_' in it) must be signed as S3
    // canonicalises it (garage ignores the version itself but checks the signature).
    let out = run_download(
        &script,
        &work,
        &imds,
        Some(&format!(
            "{url}?versionId=3%2FL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY.x_y-z~"
        )),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong secret: garage refuses the signature; the message says what happened.
    imds.set_role(Some(("hoist-host", role("not-the-secret"))));
    std::fs::remove_file(&part).unwrap();
    let out = run_download(&script, &work, &imds, None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("download attempt 1 of 1 failed: GET answered HTTP 403"),
        "{said}"
    );
    assert!(
        !said.contains("not-the-secret"),
        "the secret was logged: {said}"
    );

    // No instance profile attached.
    imds.set_role(None);
    let out = run_download(&script, &work, &imds, None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("no instance profile"), "{said}");
}
