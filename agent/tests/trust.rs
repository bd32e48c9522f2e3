//! Signed by default, and no replay of old releases (issue 12, items 1 and 2), with the
//! real `hoist-agent`, moto, dpkg in a sandbox, the real `minisign` CLI, and boto3 (not
//! hoist) for the copies an attacker with write access but no key can make.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::process::Output;
use std::time::Duration;

use common::{AgentProcess, World, hello_deb, minisign_statement, wait_installed, wait_until};
use hoist_s3::statement::{ReleaseStatement, RollbackStatement, format_time};

const LONG: Duration = Duration::from_secs(120);
const REPLAY: &str = "older signed release than installed";

fn run(mut cmd: std::process::Command) -> Output {
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `hello` watch installs only (no service to signal or check): these tests are
/// about what is installed, not about the handoff.
fn install_only(world: &World) -> common::WatchTarget {
    let mut target = world.hello_target();
    target.signal = Some("{ kind = \"none\" }".into());
    target.health_url = None;
    target
}

#[test]
fn a_watch_without_key_does_not_start_unless_it_allows_unsigned() {
    let world = World::new();
    let target = install_only(&world);
    let config = world.write_config(&target, "", "");
    let key_line = format!("public_key = \"{}\"\n", world.signing.1);
    let keyless = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&key_line, "");
    std::fs::write(&config, &keyless).unwrap();
    world.release_unsigned(&hello_deb(&world, "1.0.0", None));

    // check-config fails and names the fix.
    let out = run(world.agent_command(&config, &["check-config"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for needle in [
        "`hello` has no public key",
        "public_key",
        "allow_unsigned = true",
    ] {
        assert!(text(&out).contains(needle), "{needle}: {}", text(&out));
    }
    // `once` does not sync it; `run` does not start it (and with no other watch, exits).
    let out = run(world.agent_command(&config, &["once"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("it is not started"), "{}", text(&out));
    let mut agent = AgentProcess::spawn(world.agent_command(&config, &["run"]));
    wait_until("the agent to exit", Duration::from_secs(20), || {
        (!agent.is_running()).then_some(())
    });
    let log = agent.log().join("\n");
    assert!(log.contains("set allow_unsigned = true"), "{log}");
    assert!(log.contains("no watch can start"), "{log}");
    assert_eq!(world.sandbox.installed_version("hello"), None);
    assert_eq!(world.proxy.count("HEAD"), 0, "not polled");

    // allow_unsigned = true: listed by check-config, installed with a warning, shown by status.
    std::fs::write(&config, format!("{keyless}allow_unsigned = true\n")).unwrap();
    let out = run(world.agent_command(&config, &["check-config"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("hello: UNSIGNED (allow_unsigned = true)"),
        "{}",
        text(&out)
    );
    let out = run(world.agent_command(&config, &["once"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("WARN") && text(&out).contains("installs UNSIGNED packages"),
        "{}",
        text(&out)
    );
    wait_installed(&world, "hello", "1.0.0", LONG);
    let out = run(world.agent_command(&config, &["status", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["watches"]["hello"]["unsigned"], true, "{json}");
    let out = run(world.agent_command(&config, &["status"]));
    assert!(text(&out).contains("UNSIGNED"), "{}", text(&out));

    // With a key again, the flag goes away and the unsigned object is refused.
    std::fs::write(&config, format!("{keyless}{key_line}")).unwrap();
    world.release_unsigned(&hello_deb(&world, "2.0.0", None));
    let out = run(world.agent_command(&config, &["once"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not signed"), "{}", text(&out));
    assert_eq!(world.state()["watches"]["hello"].get("unsigned"), None);
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
}

/// The metadata of version `version_id` of the watched key as S3 user metadata.
fn metadata_of(world: &World, version_id: &str) -> hoist_s3::ReleaseMetadata {
    let (runtime, s3) = world.raw_client(&world.key);
    runtime
        .block_on(s3.head_version(version_id))
        .unwrap()
        .metadata
}

#[test]
fn a_copy_of_an_old_release_is_refused_once_without_download_and_a_signed_rollback_installs() {
    let world = World::new();
    let target = install_only(&world);
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    let (other_key, _) = world.keypair("other");

    let v1_id = world.release(&hello_deb(&world, "1.0.0", None), None);
    wait_installed(&world, "hello", "1.0.0", LONG);
    let v2_id = world.release(&hello_deb(&world, "2.0.0", None), None);
    wait_installed(&world, "hello", "2.0.0", LONG);
    wait_until("v2 recorded", LONG, || {
        (world.state_installed()["version_id"] == v2_id.as_str()).then_some(())
    });
    let v1_meta = metadata_of(&world, &v1_id);
    let v1_statement = ReleaseStatement::parse(v1_meta.statement.as_deref().unwrap()).unwrap();

    // The replay: boto3 copies v1's VersionId onto the key, metadata and all.
    world.proxy.reset_counts();
    let copy_id = world.boto3_copy(&world.key, &v1_id, None);
    let reason = world.wait_bad(&copy_id, LONG);
    assert!(reason.contains(REPLAY), "{reason}");
    assert!(
        reason.contains("hello 1.0.0 released") && reason.contains("hello 2.0.0 is installed"),
        "{reason}"
    );
    assert!(reason.contains("no rollback statement"), "{reason}");
    let heads = world.proxy.count("HEAD");
    wait_until("5 more polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= heads + 5).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    let errors: Vec<String> = agent
        .log()
        .into_iter()
        .filter(|l| l.contains(REPLAY))
        .collect();
    assert_eq!(errors.len(), 1, "logged once: {errors:#?}");
    assert!(errors[0].contains(" ERROR "), "{}", errors[0]);
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("2.0.0")
    );

    // Copies with replaced metadata (MetadataDirective REPLACE), none downloaded:
    let refuse_replaced = |meta: &hoist_s3::ReleaseMetadata, source: &str, why: &str| {
        let map = meta.to_user_metadata().unwrap();
        let id = world.boto3_copy(&world.key, source, Some(&map));
        let reason = world.wait_bad(&id, LONG);
        assert!(reason.contains(why), "{why}: {reason}");
    };
    // - the release time moved forward in the statement;
    let mut moved = v1_meta.clone();
    moved.statement = Some(v1_meta.statement.as_deref().unwrap().replace(
        &format_time(v1_statement.time),
        &format_time(std::time::SystemTime::now()),
    ));
    refuse_replaced(
        &moved,
        &v1_id,
        "release statement's signature does not verify",
    );
    // - a rollback statement signed with the right key but altered afterwards;
    let rollback = RollbackStatement {
        package: "hello".into(),
        version: "1.0.0".into(),
        sha256: v1_statement.sha256.clone(),
        bucket: world.bucket.clone(),
        key: world.key.clone(),
        source: v1_id.clone(),
        time: hoist_s3::statement::truncate_to_millis(std::time::SystemTime::now()),
    };
    let good_sig = minisign_statement(&world.signing.0, &rollback.render());
    let mut altered = v1_meta.clone();
    altered.rollback = Some(rollback.render().replace("source=", "source=x"));
    altered.rollback_sig = Some(good_sig);
    refuse_replaced(
        &altered,
        &v1_id,
        "rollback statement's signature does not verify",
    );
    // - a rollback statement signed with another key.
    let mut foreign = v1_meta.clone();
    foreign.rollback = Some(rollback.render());
    foreign.rollback_sig = Some(minisign_statement(&other_key, &rollback.render()));
    refuse_replaced(&foreign, &v1_id, "different key");
    // A signed release of another key (staging) copied onto this one.
    let staging_id = world.release_to("staging/hello.deb", &hello_deb(&world, "3.0.0", None), None);
    let id = world.boto3_copy("staging/hello.deb", &staging_id, None);
    let reason = world.wait_bad(&id, LONG);
    assert!(
        reason.contains("signed for s3://releases/staging/hello.deb"),
        "{reason}"
    );
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("2.0.0")
    );

    // `hoist rollback` (signed) brings v1 back, although its bytes were refused as a
    // replay before: the newer signed rollback statement asks for them.
    let rollback_id = world.rollback_with(&["--to", &v1_id]);
    wait_installed(&world, "hello", "1.0.0", LONG);
    wait_until("the rollback recorded", LONG, || {
        (world.state_installed()["version_id"] == rollback_id.as_str()).then_some(())
    });
    let statement = metadata_of(&world, &rollback_id).rollback.unwrap();
    let rollback = RollbackStatement::parse(&statement).unwrap();
    assert_eq!(rollback.source, v1_id);
    assert_eq!(
        world.state_installed()["effective_time"],
        format_time(rollback.time).as_str()
    );
    // v1's package is still in the cache (it was the installed release before v2) and
    // its SHA-256 is the signed one: it is re-hashed and installed without a GET.
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    agent.wait_for_log(
        "the package is already in the cache and its SHA-256 matches",
        1,
        LONG,
    );

    // Its time is in effect now: a raw copy of v2 (newer than v1, older than the
    // rollback) is refused as well.
    let copy_v2 = world.boto3_copy(&world.key, &v2_id, None);
    let reason = world.wait_bad(&copy_v2, LONG);
    assert!(reason.contains(REPLAY), "{reason}");
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
}
