//! Objects the agent must refuse: corrupt bytes (signed metadata kept), a signature by
//! another key, a signed statement changed after signing, no signature while a key is
//! configured, another package, another architecture. Each time: nothing installed, the
//! old version keeps serving (same process), a clear error in the log, the VersionId
//! marked bad and not downloaded again. A good release afterwards installs.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{DebExtras, World, build_hello, wait_installed, wait_until};
use hoist_s3::PutOptions;

const LONG: Duration = Duration::from_secs(120);

#[test]
fn refused_objects_are_not_installed_and_marked_bad() {
    let world = World::new();
    let (good_key, public_key) = world.keypair("release");
    let (other_key, _) = world.keypair("other");
    let binary = build_hello("1.0.0", None);
    let build = |package: &str, version: &str| {
        world.build_deb(package, version, &binary, "hello", &DebExtras::default())
    };
    let target = world.hello_target();
    let config = world.write_config(&target, "", &format!("public_key = \"{public_key}\"\n"));
    let agent = world.start_agent(&config);

    let v1_id = world.release(&build("hello", "1.0.0"), Some(&good_key));
    wait_installed(&world, "hello", "1.0.0", LONG);
    wait_until("v1 recorded", LONG, || {
        (world.state_installed()["version_id"] == v1_id.as_str()).then_some(())
    });
    let _hello = target.spawn();
    let pid = target.wait_version("1.0.0", Duration::from_secs(10));
    let (runtime, s3) = world.raw_client(&world.key);

    let mut refused = 0;
    let mut expect_refused = |version_id: &str, reason_contains: &str| {
        let reason = world.wait_bad(version_id, LONG);
        assert!(
            reason.contains(reason_contains),
            "{version_id}: reason {reason:?} should mention {reason_contains:?}"
        );
        refused += 1;
        agent.wait_for_log(
            "release refused, nothing installed, marked bad",
            refused,
            LONG,
        );
        assert_eq!(
            world.sandbox.installed_version("hello").as_deref(),
            Some("1.0.0")
        );
        assert_eq!(
            target.serving(),
            Some(("1.0.0".to_owned(), pid)),
            "old version keeps serving"
        );
        assert_eq!(world.state_installed()["version_id"], v1_id.as_str());
    };

    // Corrupt object: the bytes of a signed v2 with one byte changed, its metadata kept.
    // (Made while the agent's requests are held: it only sees the corrupt version.)
    let v2 = build("hello", "2.0.0");
    let corrupt = world.dir.path().join("corrupt.deb");
    let mut bytes = std::fs::read(&v2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&corrupt, &bytes).unwrap();
    let corrupt_id = world.held(|| {
        let v2_id = world.release(&v2, Some(&good_key));
        let v2_meta = runtime.block_on(s3.head_version(&v2_id)).unwrap().metadata;
        assert!(v2_meta.statement.is_some() && v2_meta.statement_sig.is_some());
        runtime
            .block_on(s3.put_file(&corrupt, &v2_meta, &PutOptions::default()))
            .unwrap()
            .version_id
            .expect("versioned bucket")
    });
    expect_refused(&corrupt_id, "SHA-256");

    // Signed with a key the agent does not trust.
    let v3_id = world.release(&build("hello", "3.0.0"), Some(&other_key));
    expect_refused(&v3_id, "different key");

    // A signed statement changed afterwards (what a CopyObject with metadata REPLACE
    // can do): v4 claimed to be 4.0.1.
    let v4 = build("hello", "4.0.0");
    let forged_id = world.held(|| {
        let v4_id = world.release(&v4, Some(&good_key));
        let mut forged = runtime.block_on(s3.head_version(&v4_id)).unwrap().metadata;
        forged.statement = forged
            .statement
            .map(|s| s.replace("version=4.0.0", "version=4.0.1"));
        runtime
            .block_on(s3.put_file(&v4, &forged, &PutOptions::default()))
            .unwrap()
            .version_id
            .expect("versioned bucket")
    });
    expect_refused(&forged_id, "does not verify");

    // Unsigned while a key is configured.
    let v5_id = world.release_unsigned(&build("hello", "5.0.0"));
    expect_refused(&v5_id, "not signed");

    // Another package on this key.
    let other_id = world.release(&build("other-service", "1.0.0"), Some(&good_key));
    expect_refused(&other_id, "package `other-service`");

    // Another architecture.
    let host_arch = String::from_utf8(
        std::process::Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let foreign = if host_arch.trim() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    // (A script stands in for the binary: `hoist build` itself refuses an ELF file of
    // the host's architecture in a package for another one.)
    let script = world.dir.path().join("hello-script");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let foreign_deb = world.build_deb(
        "hello",
        "6.0.0",
        &script,
        "hello",
        &DebExtras {
            arch: Some(foreign.to_owned()),
            ..DebExtras::default()
        },
    );
    let arch_id = world.release(&foreign_deb, Some(&good_key));
    expect_refused(&arch_id, &format!("built for `{foreign}`"));

    // A bad version is not downloaded again while it stays current.
    world.proxy.reset_counts();
    wait_until("5 polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    assert_eq!(
        world.proxy.count("GET"),
        0,
        "bad version not retried: {:?}",
        world.proxy.counts()
    );
    let errors = agent.log_count(" ERROR ");
    assert!(
        errors >= refused,
        "each refusal is logged at error level ({errors} < {refused})"
    );

    // The next good release installs.
    let good = world.build_deb(
        "hello",
        "7.0.0",
        &build_hello("7.0.0", None),
        "hello",
        &DebExtras::default(),
    );
    world.release(&good, Some(&good_key));
    target.wait_version("7.0.0", LONG);
    wait_installed(&world, "hello", "7.0.0", LONG);
}
