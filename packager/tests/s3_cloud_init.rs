//! `hoist cloud-init` against moto: it downloads the released agent package, verifies
//! its minisign signature itself and pins that VersionId and SHA-256 in user-data that
//! passes cloud-init's own schema check. Hosts fetch it with their instance credentials
//! (no signature or expiry in the user-data) or, with `--presign`, from a presigned URL
//! whose real expiry is printed. Unsigned, tampered or foreign objects (written with a
//! raw S3 client, not hoist) are refused and nothing is written.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hoist_testkit::imds::{Imds, RoleCredentials};
use hoist_testkit::s3server::S3Server;
use s3_common::bootstrap::*;
use s3_common::*;

const KEY: &str = "releases/hoist-agent.deb";

/// A versioned bucket `fleet` with two signed agent releases; the key pair and debs.
struct Fixture {
    server: S3Server,
    dir: tempfile::TempDir,
    secret: PathBuf,
    public: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    /// VersionIds of v1 and v2.
    versions: (String, String),
    config: PathBuf,
}

fn fixture() -> Fixture {
    let server = S3Server::moto();
    server.create_bucket("fleet", true);
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = minisign_keypair(dir.path(), "release");
    let v1 = make_deb(dir.path(), "hoist-agent", "1.0.0", "agent one");
    let v2 = make_deb(dir.path(), "hoist-agent", "2.0.0", "agent two");
    let mut ids = Vec::new();
    for deb in [&v1, &v2] {
        let out = ok(run(hoist(&server, dir.path())
            .args(["release", "--bucket", "fleet", "--key", KEY, "--sign-key"])
            .arg(&secret)
            .arg("--deb")
            .arg(deb)));
        ids.push(out.lines().last().unwrap().trim().to_owned());
    }
    // CRLF line ends, a tab, quotes and a line YAML would read as a list item: the
    // host must get these bytes exactly.
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "state_dir = \"/var/lib/hoist-agent\"\r\n\r\n[[watch]]\r\nname = \"hello\"\r\n\t# - not: yaml 'x' \"y\"\r\n",
    )
    .unwrap();
    Fixture {
        server,
        dir,
        secret,
        public,
        v1,
        v2,
        versions: (ids[0].clone(), ids[1].clone()),
        config,
    }
}

impl Fixture {
    /// `hoist cloud-init --bucket fleet --key KEY --endpoint … --agent-config CONFIG`
    /// plus `extra`.
    fn cloud_init(&self, extra: &[&str]) -> Command {
        let mut cmd = hoist(&self.server, self.dir.path());
        cmd.args([
            "cloud-init",
            "--bucket",
            "fleet",
            "--key",
            KEY,
            "--endpoint",
            self.server.endpoint(),
            "--agent-config",
        ])
        .arg(&self.config)
        .args(extra);
        cmd
    }

    fn user_data(&self) -> PathBuf {
        self.dir.path().join("user-data")
    }
}

fn sha256_of(path: &Path) -> String {
    digests(path).sha256_hex()
}

#[test]
fn pins_the_verified_current_release_for_instance_credentials() {
    let f = fixture();
    let out = run(f
        .cloud_init(&["--public-key-file"])
        .arg(&f.public)
        .arg("--output")
        .arg(f.user_data()));
    ok(out.clone());
    let said = stderr(&out);
    assert!(
        said.contains("verified s3://fleet/releases/hoist-agent.deb version")
            && said.contains("hoist-agent 2.0.0"),
        "{said}"
    );
    let text = std::fs::read_to_string(f.user_data()).unwrap();
    assert!(text.starts_with("#cloud-config\n"));
    assert_eq!(embedded_config(&text), std::fs::read(&f.config).unwrap());
    assert_eq!(shell_value(&text, "mode"), "instance");
    assert_eq!(shell_value(&text, "region"), "us-east-1");
    assert_eq!(shell_value(&text, "sha256"), sha256_of(&f.v2));
    let url = shell_value(&text, "url");
    assert_eq!(
        url,
        format!(
            "{}/fleet/releases/hoist-agent.deb?versionId={}",
            f.server.endpoint(),
            f.versions.1
        )
    );
    // Nothing in it expires or grants access by itself.
    for secret in [
        "X-Amz-",
        "Signature",
        &f.server.credentials().secret_access_key,
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` in the user-data:\n{text}"
        );
    }
    assert_valid_cloud_config(&f.user_data());

    // --version-id pins an older release; the key can also come from the agent watch.
    std::fs::write(
        &f.config,
        format!(
            "[[watch]]\nname = \"hoist-agent\"\npackage = \"hoist-agent\"\ns3 = {{ bucket = \"fleet\", key = \"{KEY}\" }}\npublic_key = \"{}\"\n",
            public_key_line(&f.public)
        ),
    )
    .unwrap();
    ok(run(f
        .cloud_init(&["--version-id", &f.versions.0, "--output"])
        .arg(f.user_data())));
    let text = std::fs::read_to_string(f.user_data()).unwrap();
    assert_eq!(shell_value(&text, "sha256"), sha256_of(&f.v1));
    assert!(
        shell_value(&text, "url").ends_with(&format!("?versionId={}", f.versions.0)),
        "{text}"
    );
}

#[test]
fn presigned_urls_print_their_real_expiry() {
    let f = fixture();
    let out = run(f
        .cloud_init(&["--presign", "--expires", "1h", "--public-key-file"])
        .arg(&f.public));
    let text = ok(out.clone());
    let said = stderr(&out);
    assert!(
        said.contains("presigned URL valid until") && said.contains("(in 59m"),
        "{said}"
    );
    assert_eq!(shell_value(&text, "mode"), "url");
    let url = shell_value(&text, "url");
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=3600"),
        "presigned: {url}"
    );
    assert!(
        url.contains(&format!("versionId={}", f.versions.1)),
        "{url}"
    );
    let fetched = f.dir.path().join("fetched.deb");
    let curl = Command::new("curl")
        .args(["-fsS", "-o"])
        .arg(&fetched)
        .arg(&url)
        .output()
        .expect("curl is needed for this test; run `make test` to install it");
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&f.v2).unwrap()
    );

    // Signed with an instance role's temporary credentials (from IMDS, through the
    // SDK's endpoint override): the URL dies with them, 20 minutes from now, not in 24 h.
    let imds = Imds::start(Some((
        "release-role",
        RoleCredentials {
            access_key_id: "ASIATEMPORARY".into(),
            secret_access_key: "temporary-secret".into(),
            token: "session-token".into(),
            expiration: SystemTime::now() + Duration::from_secs(20 * 60),
        },
    )));
    let mut cmd = f.cloud_init(&["--presign", "--expires", "24h", "--public-key-file"]);
    cmd.arg(&f.public)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint());
    let out = run(&mut cmd);
    let text = ok(out.clone());
    let said = stderr(&out);
    assert!(
        said.contains("(in 19m") && said.contains("temporary credentials"),
        "{said}\n{:?}",
        imds.requests()
    );
    assert!(shell_value(&text, "url").contains("X-Amz-Security-Token=session-token"));
    assert!(
        imds.requests()
            .iter()
            .any(|r| r.starts_with("PUT /latest/api/token 200")),
        "{:?}",
        imds.requests()
    );
}

#[test]
fn refuses_unsigned_tampered_and_foreign_objects() {
    let f = fixture();
    let meta = raw_metadata(&f.server, "fleet", KEY);
    let statement = meta["hoist-statement"].as_str().unwrap().to_owned();
    let statement_sig = meta["hoist-statement-sig"].as_str().unwrap().to_owned();
    let refuse = |what: &str, expect: &str| {
        let err = fails(run(f
            .cloud_init(&["--public-key-file"])
            .arg(&f.public)
            .arg("--output")
            .arg(f.user_data())));
        assert!(err.contains(expect), "{what}: {err}");
        assert!(
            err.contains("refusing s3://fleet/releases/hoist-agent.deb"),
            "{what}: {err}"
        );
        assert!(!f.user_data().exists(), "{what}: user-data written");
    };

    // Other bytes under v2's signed statement.
    raw_put(
        &f.server,
        "fleet",
        KEY,
        &f.v1,
        &[
            ("hoist-statement", &statement),
            ("hoist-statement-sig", &statement_sig),
        ],
    );
    refuse(
        "bytes replaced",
        "are not the release the signed statement names",
    );

    // v2's statement, edited (v2 claimed to be another version).
    let edited = statement.replace("version=2.0.0", "version=2.0.1");
    assert_ne!(edited, statement);
    raw_put(
        &f.server,
        "fleet",
        KEY,
        &f.v2,
        &[
            ("hoist-statement", &edited),
            ("hoist-statement-sig", &statement_sig),
        ],
    );
    refuse("statement edited", "does not verify");

    // v2's statement signed by another key, with the real minisign CLI (the statement
    // is the signed data and the trusted comment, as hoist signs it).
    let (other_secret, _) = minisign_keypair(f.dir.path(), "attacker");
    let statement_file = f.dir.path().join("statement");
    std::fs::write(&statement_file, &statement).unwrap();
    let sig = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&other_secret)
        .arg("-m")
        .arg(&statement_file)
        .arg("-t")
        .arg(&statement)
        .output()
        .unwrap();
    assert!(
        sig.status.success(),
        "{}",
        String::from_utf8_lossy(&sig.stderr)
    );
    let foreign = std::fs::read_to_string(format!("{}.minisig", statement_file.display())).unwrap();
    let lines: Vec<&str> = foreign.lines().collect();
    let foreign_compact = format!("{}.{}", lines[1], lines[3]);
    raw_put(
        &f.server,
        "fleet",
        KEY,
        &f.v2,
        &[
            ("hoist-statement", &statement),
            ("hoist-statement-sig", &foreign_compact),
        ],
    );
    refuse("signed by another key", "different key");

    // v2's bytes without any signature.
    raw_put(
        &f.server,
        "fleet",
        KEY,
        &f.v2,
        &[("hoist-sha256", &sha256_of(&f.v2))],
    );
    refuse("unsigned", "not signed");

    // A garbled signature.
    raw_put(
        &f.server,
        "fleet",
        KEY,
        &f.v2,
        &[
            ("hoist-statement", &statement),
            ("hoist-statement-sig", "bm90IGEgc2lnbmF0dXJl"),
        ],
    );
    refuse("garbled signature", "unreadable");

    // No key to verify with: refused before anything is downloaded.
    let err = fails(run(&mut f.cloud_init(&[])));
    assert!(err.contains("--public-key"), "{err}");
    // --allow-unsigned renders, pinning the SHA-256 of the bytes it saw.
    let text = ok(run(&mut f.cloud_init(&["--allow-unsigned"])));
    assert_eq!(shell_value(&text, "sha256"), sha256_of(&f.v2));

    // A key on the command line that is not the agent watch's key.
    std::fs::write(
        &f.config,
        format!(
            "[[watch]]\nname = \"hoist-agent\"\npackage = \"hoist-agent\"\ns3 = {{ bucket = \"fleet\", key = \"{KEY}\" }}\npublic_key = \"{}\"\n",
            public_key_line(&f.public)
        ),
    )
    .unwrap();
    let (_, other_public) = minisign_keypair(f.dir.path(), "other");
    let err = fails(run(f.cloud_init(&["--public-key-file"]).arg(&other_public)));
    assert!(err.contains("differs from the hoist-agent watch"), "{err}");
    let _ = &f.secret;
}

#[test]
fn refuses_missing_or_unverifiable_agent_sources() {
    let server = S3Server::moto();
    server.create_bucket("fleet", true);
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = minisign_keypair(dir.path(), "k");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "state_dir = \"/x\"\n").unwrap();
    let cloud_init = |args: &[&str]| {
        let mut cmd = hoist(&server, dir.path());
        cmd.arg("cloud-init")
            .arg("--agent-config")
            .arg(&config)
            .arg("--public-key-file")
            .arg(&public)
            .args(args);
        run(&mut cmd)
    };

    let err = fails(cloud_init(&[]));
    assert!(
        err.contains("--agent-url") && err.contains("--bucket"),
        "{err}"
    );

    // A hosted URL needs the package to verify.
    let err = fails(cloud_init(&[
        "--agent-url",
        "https://example.com/a.deb",
        "--agent-sha256",
        &"a".repeat(64),
    ]));
    assert!(err.contains("--agent-deb"), "{err}");

    // A key that was never released.
    let err = fails(cloud_init(&[
        "--bucket",
        "fleet",
        "--key",
        KEY,
        "--endpoint",
        server.endpoint(),
    ]));
    assert!(err.contains("releases/hoist-agent.deb"), "{err}");

    std::fs::write(&config, "state_dir = [\n").unwrap();
    let err = fails(cloud_init(&["--agent-url", "https://example.com/a.deb"]));
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(!dir.path().join("user-data").exists());
}
