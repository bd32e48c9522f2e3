//! `hoist cloud-init` against moto: the user-data embeds the agent config, a presigned
//! URL for the exact released version of the agent package and that package's
//! SHA-256; it passes cloud-init's own schema check, and the URL downloads those bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::process::Command;

use hoist_testkit::s3server::S3Server;
use s3_common::*;

/// The single-quoted shell value assigned to `name=` in the bootstrap script.
fn shell_value(user_data: &str, name: &str) -> String {
    let line = user_data
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{name}='")))
        .unwrap_or_else(|| panic!("no `{name}=` line in:\n{user_data}"));
    line[name.len() + 2..line.len() - 1].replace(r"'\''", "'")
}

#[test]
fn renders_valid_user_data_with_a_presigned_url_of_the_released_agent() {
    let server = S3Server::moto();
    server.create_bucket("fleet", true);
    let dir = tempfile::tempdir().unwrap();
    let v1 = make_deb(dir.path(), "hoist-agent", "1.0.0", "agent one");
    let v2 = make_deb(dir.path(), "hoist-agent", "2.0.0", "agent two");
    for deb in [&v1, &v2] {
        ok(run(hoist(&server, dir.path())
            .args([
                "release",
                "--unsigned",
                "--bucket",
                "fleet",
                "--endpoint",
                server.endpoint(),
                "--deb",
            ])
            .arg(deb)));
    }
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "state_dir = \"/var/lib/hoist-agent\"\n\n[[watch]]\nname = \"hello\"\n",
    )
    .unwrap();
    let user_data = dir.path().join("user-data");
    ok(run(hoist(&server, dir.path())
        .args([
            "cloud-init",
            "--bucket",
            "fleet",
            "--key",
            "releases/hoist-agent.deb",
            "--endpoint",
            server.endpoint(),
            "--expires",
            "1h",
            "--agent-config",
        ])
        .arg(&config)
        .arg("--output")
        .arg(&user_data)));
    let text = std::fs::read_to_string(&user_data).unwrap();

    assert!(text.starts_with("#cloud-config\n"));
    assert!(
        text.contains("      [[watch]]\n      name = \"hello\"\n"),
        "config embedded: {text}"
    );
    let sha = shell_value(&text, "sha256");
    assert_eq!(
        sha,
        digests(&v2).sha256_hex(),
        "the current release's SHA-256"
    );

    let url = shell_value(&text, "url");
    assert!(url.starts_with(server.endpoint()), "{url}");
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=3600"),
        "presigned: {url}"
    );
    assert!(url.contains("versionId="), "pinned to one version: {url}");
    let fetched = dir.path().join("fetched.deb");
    let curl = Command::new("curl")
        .args(["-fsS", "-o"])
        .arg(&fetched)
        .arg(&url)
        .output()
        .expect("curl is needed for this test; run `make test` to install it");
    assert!(
        curl.status.success(),
        "GET presigned URL: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&v2).unwrap()
    );

    let schema = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&user_data)
        .output()
        .expect("cloud-init is needed to validate user-data; run `make test` to install it");
    assert!(
        schema.status.success(),
        "cloud-init schema rejected the user-data:\n{}{}\n{text}",
        String::from_utf8_lossy(&schema.stdout),
        String::from_utf8_lossy(&schema.stderr)
    );
}

#[test]
fn refuses_missing_or_unverifiable_agent_sources() {
    let server = S3Server::moto();
    server.create_bucket("fleet", true);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "state_dir = \"/x\"\n").unwrap();

    let err = fails(run(hoist(&server, dir.path())
        .arg("cloud-init")
        .arg("--agent-config")
        .arg(&config)));
    assert!(
        err.contains("--agent-url") && err.contains("--bucket"),
        "{err}"
    );

    let err = fails(run(hoist(&server, dir.path())
        .args([
            "cloud-init",
            "--agent-url",
            "https://example.com/a.deb",
            "--agent-sha256",
            "abc",
            "--agent-config",
        ])
        .arg(&config)));
    assert!(err.contains("not a SHA-256"), "{err}");

    // A key that was never released: nothing to presign.
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "cloud-init",
            "--bucket",
            "fleet",
            "--key",
            "releases/hoist-agent.deb",
            "--endpoint",
            server.endpoint(),
            "--agent-config",
        ])
        .arg(&config)));
    assert!(err.contains("releases/hoist-agent.deb"), "{err}");

    std::fs::write(&config, "state_dir = [\n").unwrap();
    let err = fails(run(hoist(&server, dir.path())
        .args([
            "cloud-init",
            "--agent-url",
            "https://example.com/a.deb",
            "--agent-sha256",
            &"a".repeat(64),
            "--agent-config",
        ])
        .arg(&config)));
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(!dir.path().join("user-data").exists());
}
