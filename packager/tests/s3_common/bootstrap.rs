//! Helpers of the `hoist cloud-init` tests: signing keys made with the real
//! `minisign`, objects written by a raw S3 client (boto3, not hoist), and the values
//! and script inside rendered user-data.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hoist_testkit::s3server::S3Server;

/// An unencrypted minisign key pair in `dir` (`NAME.key`, `NAME.pub`), made by
/// `minisign -G -W`.
pub fn minisign_keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let out = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&key)
        .output()
        .expect("minisign is needed for signing tests; run `make test` to install it");
    assert!(
        out.status.success(),
        "minisign -G: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, public)
}

/// The `RW…` line of a `.pub` file.
pub fn public_key_line(public: &Path) -> String {
    std::fs::read_to_string(public)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// PUTs `body` to `bucket/key` with exactly `metadata` (names without `x-amz-meta-`),
/// through boto3 — a plain S3 client, as an attacker with write access would use.
pub fn raw_put(server: &S3Server, bucket: &str, key: &str, body: &Path, metadata: &[(&str, &str)]) {
    let meta: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
        .collect();
    let script = r#"
import json, sys, boto3
bucket, key, path, meta = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
s3 = boto3.client("s3")
with open(path, "rb") as f:
    s3.put_object(Bucket=bucket, Key=key, Body=f.read(), Metadata=meta)
"#;
    let python = python_with_boto3();
    let mut cmd = Command::new(python);
    server.isolate(&mut cmd);
    let out = cmd
        .args(["-c", script, bucket, key])
        .arg(body)
        .arg(serde_json::Value::Object(meta).to_string())
        .output()
        .expect("run python3 with boto3");
    assert!(
        out.status.success(),
        "boto3 put_object: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user metadata of the current version of `bucket/key`, read with boto3.
pub fn raw_metadata(server: &S3Server, bucket: &str, key: &str) -> serde_json::Value {
    let script = r#"
import json, sys, boto3
print(json.dumps(boto3.client("s3").head_object(Bucket=sys.argv[1], Key=sys.argv[2])["Metadata"]))
"#;
    let mut cmd = Command::new(python_with_boto3());
    server.isolate(&mut cmd);
    let out = cmd
        .args(["-c", script, bucket, key])
        .output()
        .expect("run python3 with boto3");
    assert!(
        out.status.success(),
        "boto3 head_object: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Deletes `bucket/key` with boto3.
pub fn raw_delete(server: &S3Server, bucket: &str, key: &str) {
    let script = r#"
import sys, boto3
boto3.client("s3").delete_object(Bucket=sys.argv[1], Key=sys.argv[2])
"#;
    let mut cmd = Command::new(python_with_boto3());
    server.isolate(&mut cmd);
    let out = cmd
        .args(["-c", script, bucket, key])
        .output()
        .expect("run python3 with boto3");
    assert!(
        out.status.success(),
        "boto3 delete_object: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The python3 of the test venv (moto's, which has boto3).
fn python_with_boto3() -> PathBuf {
    let venv = std::env::var_os("HOIST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/hoist-test"), PathBuf::from)
        .join("venv/bin/python3");
    assert!(
        venv.exists(),
        "{} is missing: run `make test` (scripts/install-test-deps.sh) to create the venv with moto and boto3",
        venv.display()
    );
    venv
}

/// The single-quoted shell value assigned to `name=` in the bootstrap script.
pub fn shell_value(user_data: &str, name: &str) -> String {
    let line = user_data
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{name}='")))
        .unwrap_or_else(|| panic!("no `{name}=` line in:\n{user_data}"));
    line[name.len() + 2..line.len() - 1].replace(r"'\''", "'")
}

/// The agent config embedded in the user-data (base64 `content:` of agent.toml).
pub fn embedded_config(user_data: &str) -> Vec<u8> {
    let line = user_data
        .lines()
        .skip_while(|l| !l.contains("path: /etc/hoist/agent.toml"))
        .find_map(|l| l.trim().strip_prefix("content: "))
        .unwrap_or_else(|| panic!("no agent.toml content in:\n{user_data}"));
    base64::engine::general_purpose::STANDARD
        .decode(line.trim().trim_matches('\''))
        .unwrap()
}

/// The bootstrap script (`/usr/local/sbin/hoist-bootstrap`) in the user-data, as the
/// host writes it.
pub fn bootstrap_script(user_data: &str) -> String {
    let mut lines = user_data
        .lines()
        .skip_while(|l| !l.contains("path: /usr/local/sbin/hoist-bootstrap"))
        .skip_while(|l| l.trim() != "content: |")
        .skip(1);
    let mut script = String::new();
    for line in lines.by_ref() {
        if !line.is_empty() && !line.starts_with("      ") {
            break;
        }
        script.push_str(line.get(6..).unwrap_or(""));
        script.push('\n');
    }
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    script
}

/// Runs `cloud-init schema --config-file` on `path` and asserts it passes.
pub fn assert_valid_cloud_config(path: &Path) {
    let schema = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(path)
        .output()
        .expect("cloud-init is needed to validate user-data; run `make test` to install it");
    assert!(
        schema.status.success(),
        "cloud-init schema rejected the user-data:\n{}{}\n{}",
        String::from_utf8_lossy(&schema.stdout),
        String::from_utf8_lossy(&schema.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}
