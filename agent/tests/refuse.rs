//! Objects the agent must refuse: corrupt bytes (metadata kept), a signature by another
//! key, a signature of other bytes, no signature while a key is configured, another
//! package, another architecture. Each time: nothing installed, the old version keeps
//! serving (same process), a clear error in the log, the VersionId marked bad and not
//! downloaded again. A good release afterwards installs.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{DebExtras, World, build_hello, wait_installed, wait_until};
use hoist_s3::{ClientOptions, PutOptions, S3, S3Settings, StaticCredentials};

const LONG: Duration = Duration::from_secs(120);

/// A client of moto for `key`, for writing objects the `hoist` CLI would never write.
fn raw_client(world: &World, key: &str) -> (tokio::runtime::Runtime, S3) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let creds = world.moto.credentials();
    let settings = S3Settings {
        bucket: world.bucket.clone(),
        key: key.to_owned(),
        region: Some(creds.region.clone()),
        endpoint: Some(world.moto.endpoint().to_owned()),
        path_style: true,
        profile: None,
    };
    let options = ClientOptions {
        static_credentials: Some(StaticCredentials {
            access_key_id: creds.access_key_id.clone(),
            secret_access_key: creds.secret_access_key.clone(),
            session_token: None,
        }),
        ..ClientOptions::default()
    };
    let s3 = runtime
        .block_on(S3::connect_with(&settings, &options))
        .unwrap();
    (runtime, s3)
}

/// Waits until the agent marked `version_id` bad; returns the recorded reason.
fn wait_bad(world: &World, version_id: &str) -> String {
    wait_until(&format!("{version_id} to be marked bad"), LONG, || {
        world
            .state_bad()
            .into_iter()
            .find(|b| b["version_id"] == version_id)
            .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
    })
}

#[test]
fn refused_objects_are_not_installed_and_marked_bad() {
    let world = World::new();
    let (good_key, public_key) = world.keypair("release");
    let (other_key, _) = world.keypair("other");
    let binary = build_hello("1.0.0", None);
    let build = |package: &str, version: &str, arch: Option<&str>| {
        world.build_deb(
            package,
            version,
            &binary,
            "hello",
            &DebExtras {
                arch: arch.map(str::to_owned),
                ..DebExtras::default()
            },
        )
    };
    let target = world.hello_target();
    let config = world.write_config(&target, "", &format!("public_key = \"{public_key}\"\n"));
    let agent = world.start_agent(&config);

    let v1_id = world.release(&build("hello", "1.0.0", None), Some(&good_key));
    wait_installed(&world, "hello", "1.0.0", LONG);
    wait_until("v1 recorded", LONG, || {
        (world.state_installed()["version_id"] == v1_id.as_str()).then_some(())
    });
    let _hello = target.spawn();
    let pid = target.wait_version("1.0.0", Duration::from_secs(10));
    let (runtime, s3) = raw_client(&world, &world.key);
    // Signed releases are first made on a scratch key (the agent does not watch it),
    // to take their metadata for the forged objects.
    let scratch_key = "scratch/hello.deb";
    let (scratch_runtime, scratch) = raw_client(&world, scratch_key);

    let mut refused = 0;
    let mut expect_refused = |version_id: &str, reason_contains: &str| {
        let reason = wait_bad(&world, version_id);
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
    let v2 = build("hello", "2.0.0", None);
    let v2_id = world.release_to(scratch_key, &v2, Some(&good_key));
    let v2_meta = scratch_runtime
        .block_on(scratch.head_version(&v2_id))
        .unwrap()
        .metadata;
    assert!(v2_meta.sha256.is_some() && v2_meta.minisig.is_some());
    let corrupt = world.dir.path().join("corrupt.deb");
    let mut bytes = std::fs::read(&v2).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&corrupt, &bytes).unwrap();
    let corrupt_id = world
        .held(|| runtime.block_on(s3.put_file(&corrupt, &v2_meta, &PutOptions::default())))
        .unwrap()
        .version_id
        .expect("versioned bucket");
    expect_refused(&corrupt_id, "SHA-256");

    // Signed with a key the agent does not trust.
    let v3_id = world.release(&build("hello", "3.0.0", None), Some(&other_key));
    expect_refused(&v3_id, "different key");

    // A valid signature of other bytes (v2's signature attached to v4).
    let v4 = build("hello", "4.0.0", None);
    let unsigned_v4_id = world.release_to(scratch_key, &v4, None);
    let mut forged = scratch_runtime
        .block_on(scratch.head_version(&unsigned_v4_id))
        .unwrap()
        .metadata;
    forged.minisig = v2_meta.minisig.clone();
    let forged_id = world
        .held(|| runtime.block_on(s3.put_file(&v4, &forged, &PutOptions::default())))
        .unwrap()
        .version_id
        .expect("versioned bucket");
    expect_refused(&forged_id, "does not verify");

    // Unsigned while a key is configured.
    let v5_id = world.release(&build("hello", "5.0.0", None), None);
    expect_refused(&v5_id, "not signed");

    // Another package on this key.
    let other_id = world.release(&build("other-service", "1.0.0", None), Some(&good_key));
    expect_refused(&other_id, "holds package `other-service`");

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
    let arch_id = world.release(&build("hello", "6.0.0", Some(foreign)), Some(&good_key));
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
