//! The agent and other users of dpkg: it waits for a lock held by another process, and
//! repairs a dpkg run that was left half-configured before installing.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{DebExtras, World, build_hello, wait_installed};

const LONG: Duration = Duration::from_secs(120);

/// Another process holding dpkg's frontend lock (an fcntl write lock, as apt takes it);
/// killed and reaped on drop.
struct LockHolder(Child);

impl LockHolder {
    fn hold(path: &std::path::Path) -> LockHolder {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(300)",
            ])
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed to hold the lock (it comes with moto: `make test`)");
        let stdout = child.stdout.take().unwrap();
        let holder = LockHolder(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        holder
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn waits_for_the_dpkg_lock_then_installs() {
    let world = World::new();
    let v1 = world.build_deb(
        "hello",
        "1.0.0",
        &build_hello("1.0.0", None),
        "hello",
        &DebExtras::default(),
    );
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let lock = LockHolder::hold(&world.sandbox.path("/var/lib/dpkg/lock-frontend"));
    let agent = world.start_agent(&config);
    world.release(&v1, None);

    let line = agent.wait_for_log("dpkg lock is held", 1, LONG);
    assert!(
        line.contains(&format!("by pid {}", lock.0.id())),
        "names the holder: {line}"
    );
    assert_eq!(
        world.sandbox.installed_version("hello"),
        None,
        "nothing installed while locked"
    );
    assert!(agent.wait_for_log("waiting up to", 1, LONG).contains("1m"));

    drop(lock);
    wait_installed(&world, "hello", "1.0.0", LONG);
    agent.wait_for_log("dpkg lock is free again", 1, LONG);
    agent.wait_for_log("hello 1.0.0 is installed and serving", 1, LONG);
}

#[test]
fn half_configured_dpkg_is_repaired_before_installing() {
    let world = World::new();
    let binary = build_hello("1.0.0", None);
    // A postinst that fails until /var/lib/hoist-test-ok exists: the first install is
    // left half-configured, as after a failed or interrupted configuration.
    let extras = DebExtras {
        postinst: Some(
            "if [ \"$1\" = configure ] && [ ! -e /var/lib/hoist-test-ok ]; then echo 'not yet' >&2; exit 1; fi".into(),
        ),
        ..DebExtras::default()
    };
    let v1 = world.build_deb("hello", "1.0.0", &binary, "hello", &extras);
    let v2 = world.build_deb("hello", "2.0.0", &binary, "hello", &extras);
    let first = world.sandbox.dpkg(["-i".as_ref(), v1.as_os_str()]);
    assert!(!first.success(), "the first configure must fail: {first}");
    assert_eq!(world.sandbox.package_status("hello"), "half-configured");
    std::fs::write(world.sandbox.path("/var/lib/hoist-test-ok"), b"").unwrap();

    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    world.release(&v2, None);

    wait_installed(&world, "hello", "2.0.0", LONG);
    agent.wait_for_log("running dpkg --configure -a", 1, LONG);
    agent.wait_for_log("dpkg --configure -a repaired the package database", 1, LONG);
    agent.wait_for_log("hello 2.0.0 is installed and serving", 1, LONG);
    let audit = world.sandbox.dpkg(["--audit"]);
    assert!(
        audit.stdout.trim().is_empty(),
        "dpkg is consistent afterwards: {audit}"
    );
    assert_eq!(world.sandbox.package_status("hello"), "installed");
}
