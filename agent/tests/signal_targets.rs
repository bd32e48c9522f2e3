//! Signal targets are checked as systemd checks `PIDFile=`: a pidfile owned by another
//! user than root (or the configured service user), or one naming a process that does
//! not run the package's executable, is refused — nothing is signalled, the release is
//! not taken as serving (rolled back, marked bad), and the old process keeps serving.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::time::Duration;

use common::{World, hello_deb, release_and_start_hello, wait_bad, wait_until};
use hoist_testkit::hello::pid_alive;

const LONG: Duration = Duration::from_secs(120);

#[test]
fn pidfile_owned_by_another_user_is_refused_and_nothing_is_signalled() {
    let world = World::new();
    let (v1, v2) = (
        hello_deb(&world, "1.0.0", None),
        hello_deb(&world, "2.0.0", None),
    );
    let target = world.hello_target();
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);
    let (_hello, pid) = release_and_start_hello(&world, &agent, &target, &v1, "1.0.0", LONG);

    // Anyone who owns the pidfile could point the agent at any process.
    let pidfile = target.pidfile.clone().unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    std::os::unix::fs::chown(&pidfile, Some(nobody.uid.as_raw()), None).unwrap();

    let v2_id = world.release(&v2, None);
    let reason = wait_bad(&world, &v2_id, LONG);
    assert!(
        reason.contains("not signalled")
            && reason.contains(&format!("owned by uid {}", nobody.uid)),
        "{reason}"
    );
    agent.wait_for_log("rolled back to hello 1.0.0", 1, LONG);
    assert_eq!(
        target.serving(),
        Some(("1.0.0".to_owned(), pid)),
        "never signalled"
    );
    assert_eq!(
        world.sandbox.installed_version("hello").as_deref(),
        Some("1.0.0")
    );
}

/// `sleep 300`, killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pidfile_naming_another_program_is_refused_and_nothing_is_signalled() {
    let world = World::new();
    let v1 = hello_deb(&world, "1.0.0", None);
    // A root-owned pidfile naming a process that is not the service. SIGUSR2 would end
    // `sleep` (its default action), so it staying alive shows it got no signal.
    let sleeper = Sleeper(
        std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap(),
    );
    let sleep_pid = sleeper.0.id();
    wait_until("sleep to run", Duration::from_secs(5), || {
        std::fs::read_link(format!("/proc/{sleep_pid}/exe"))
            .ok()
            .filter(|exe| exe.ends_with("sleep"))
    });
    let pidfile = world.dir.path().join("other.pid");
    std::fs::write(&pidfile, format!("{sleep_pid}\n")).unwrap();
    let mut target = world.hello_target();
    target.signal = Some(format!(
        "{{ kind = \"pidfile\", path = \"{}\" }}",
        pidfile.display()
    ));
    let config = world.write_config(&target, "", "");
    let agent = world.start_agent(&config);

    let v1_id = world.release(&v1, None);
    let reason = wait_bad(&world, &v1_id, LONG);
    assert!(
        reason.contains("not signalled")
            && reason.contains(&format!("names pid {sleep_pid}"))
            && reason.contains("sleep"),
        "{reason}"
    );
    agent.wait_for_log("release failed and is marked bad", 1, LONG);
    assert!(pid_alive(sleep_pid), "sleep got no signal");
}
