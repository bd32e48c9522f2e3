//! Buckets with server-side encryption: an SSE-KMS object's ETag is 32 hex digits but
//! not the MD5 of the body. moto answers with the MD5 even for SSE-KMS objects, so the
//! proxy in front of it rewrites every answer as AWS sends it for such an object: the
//! ETag replaced by another 32-hex-digit value and `x-amz-server-side-encryption:
//! aws:kms` added. The agent must install the release once (SHA-256 decides) and not
//! download it again on later polls.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{World, hello_deb, wait_installed, wait_until};

const LONG: Duration = Duration::from_secs(120);

/// The ETag's hex digits reversed: still 32 hex digits, no longer the MD5.
fn not_the_md5(etag: &str) -> String {
    let bare = etag.trim().trim_matches('"');
    format!("\"{}\"", bare.chars().rev().collect::<String>())
}

/// A response head as AWS sends it for an SSE-KMS object.
fn as_sse_kms(head: &str) -> String {
    let mut out = String::new();
    for line in head.split_inclusive("\r\n") {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("etag") => {
                out.push_str(&format!("ETag: {}\r\n", not_the_md5(value)));
                out.push_str("x-amz-server-side-encryption: aws:kms\r\n");
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[test]
fn sse_kms_object_whose_etag_is_not_the_md5_installs_once() {
    let world = World::new();
    world.proxy.rewrite_responses(as_sse_kms);
    let v1 = hello_deb(&world, "1.0.0", None);
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);

    world.release(&v1, None);
    wait_installed(&world, "hello", "1.0.0", LONG);
    agent.wait_for_log("hello 1.0.0 is installed and serving", 1, LONG);
    // The agent saw the rewritten ETag, which is not the package's MD5.
    let installed = world.state_installed();
    let etag = installed["etag"].as_str().unwrap().to_owned();
    let md5 = installed["md5"].as_str().unwrap().to_owned();
    assert_eq!(etag.trim_matches('"').len(), 32, "{etag}");
    assert_ne!(etag.trim_matches('"'), md5, "the proxy rewrote the ETag");
    assert_eq!(world.proxy.count("GET"), 1, "{:?}", world.proxy.counts());

    // Later polls find the same object: no second download, nothing logged as corrupt.
    world.proxy.reset_counts();
    wait_until("5 more polls", Duration::from_secs(30), || {
        (world.proxy.count("HEAD") >= 5).then_some(())
    });
    assert_eq!(world.proxy.count("GET"), 0, "{:?}", world.proxy.counts());
    assert_eq!(agent.log_count("differs from the ETag"), 0);
    assert_eq!(agent.log_count("downloaded and verified"), 1);
}
