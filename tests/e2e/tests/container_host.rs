//! The container harness itself, before anything of hoist runs on it: a host boots
//! the real systemd and cloud-init from a NoCloud seed, reboots without re-running
//! per-instance cloud-init, and leaves nothing behind when it is shut down or when
//! the test that owns it panics.

use std::path::PathBuf;
use std::time::Duration;

use hoist_testkit::container::{Host, HostSpec, mounts_mentioning};

/// user-data that writes a file, appends a line on every run of runcmd, and
/// records the instance id cloud-init saw.
fn marker_user_data(token: &str) -> String {
    [
        "#cloud-config",
        "write_files:",
        "  - path: /etc/hoist-e2e-marker",
        &format!("    content: \"{token}\\n\""),
        "runcmd:",
        "  - [sh, -c, 'echo ran >> /var/lib/hoist-e2e-runcmd']",
        "",
    ]
    .join("\n")
}

#[test]
fn boots_systemd_and_cloud_init_from_a_nocloud_seed_and_reboots() {
    let token = format!("token-{}", std::process::id());
    let mut host = HostSpec::new("e2e-boot", &marker_user_data(&token))
        .meta_data("instance-id: iid-e2e-boot-1\nlocal-hostname: e2e-boot\n")
        .file("/etc/hoist-e2e-baked", "baked into the image\n", 0o640)
        .boot()
        .unwrap();

    // systemd finished booting with nothing failed, and cloud-init ran to the end.
    assert_eq!(
        host.system_state(),
        "running",
        "{}",
        host.failed_units().unwrap()
    );
    let status = host.exec(&["cloud-init", "status", "--long"]).unwrap();
    assert!(status.stdout.contains("status: done"), "{}", status.stdout);
    assert!(
        status.stdout.contains("DataSourceNoCloud"),
        "{}",
        status.stdout
    );
    assert_eq!(
        String::from_utf8(host.read_file("/etc/hoist-e2e-marker").unwrap()).unwrap(),
        format!("{token}\n")
    );
    assert_eq!(
        String::from_utf8(host.read_file("/var/lib/cloud/data/instance-id").unwrap())
            .unwrap()
            .trim(),
        "iid-e2e-boot-1"
    );
    assert_eq!(
        host.exec(&["hostname"])
            .unwrap()
            .ok()
            .unwrap()
            .stdout
            .trim(),
        "e2e-boot"
    );
    // A file placed before boot is there with its mode; /etc kept its own.
    let baked = host
        .exec(&["stat", "-c", "%a %U", "/etc/hoist-e2e-baked", "/etc"])
        .unwrap();
    assert_eq!(baked.ok().unwrap().stdout, "640 root\n755 root\n");

    // The host's systemd manages a cgroup subtree of its own (not the test's), so
    // hosts booted side by side do not break each other's units.
    let unified = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
            .unwrap()
    };
    let host_cgroup = unified(&host.pid1().unwrap().to_string());
    let own_cgroup = unified("self");
    assert_ne!(host_cgroup, own_cgroup);

    // Commands run in the host's own pid namespace (that of its PID 1, not the
    // test's) and, through run_in_unit, in its cgroups as a transient service.
    let pid_ns = |pid: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .unwrap()
            .display()
            .to_string()
    };
    let inside = host
        .exec(&["readlink", "/proc/self/ns/pid"])
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(
        inside.stdout.trim(),
        pid_ns(&host.pid1().unwrap().to_string()),
        "exec runs in the pid namespace of the host's PID 1"
    );
    assert_ne!(inside.stdout.trim(), pid_ns("self"), "not in the test's");
    let cgroup = host
        .run_in_unit(&["cat", "/proc/self/cgroup"])
        .unwrap()
        .ok()
        .unwrap();
    assert!(
        cgroup.stdout.contains("/system.slice/run-"),
        "{}",
        cgroup.stdout
    );
    let failed = host
        .run_in_unit(&["sh", "-c", "echo oops >&2; exit 3"])
        .unwrap();
    assert_eq!(failed.status.code(), Some(3));
    assert!(failed.stderr.contains("oops"), "{failed:?}");
    let journald = host.main_pid("systemd-journald.service").unwrap();
    assert!(journald.is_some());
    let jobs = host.unit_jobs("cloud-final.service").unwrap();
    let kinds: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j.job_type.as_str(), j.result.as_str()))
        .collect();
    assert_eq!(kinds, [("start", ""), ("start", "done")], "{jobs:?}");

    // A reboot keeps the disk, boots again, and cloud-init does not repeat the
    // per-instance runcmd (same instance-id).
    let pid1_before = host.pid1().unwrap();
    let took = host.reboot().unwrap();
    assert!(took < Duration::from_secs(120));
    assert_eq!(host.boots(), 2);
    assert_ne!(host.pid1().unwrap(), pid1_before);
    assert_eq!(
        host.system_state(),
        "running",
        "{}",
        host.failed_units().unwrap()
    );
    let runs = host.read_file("/var/lib/hoist-e2e-runcmd").unwrap();
    assert_eq!(String::from_utf8(runs).unwrap(), "ran\n");
    let boots = host
        .exec(&["journalctl", "--list-boots", "--no-pager", "-q"])
        .unwrap();
    assert_eq!(boots.ok().unwrap().stdout.lines().count(), 2);

    let dir = host.dir().to_owned();
    let pid1 = host.pid1().unwrap();
    host.shutdown().unwrap();
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        !PathBuf::from(format!("/proc/{pid1}")).exists(),
        "PID 1 {pid1} still runs"
    );
}

#[test]
fn a_panicking_test_still_removes_its_host() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let host = Host::boot("e2e-panic", "#cloud-config\n{}\n", None).unwrap();
        // The overlay lives in a private mount namespace: seen there while the host runs.
        let mounts = mounts_mentioning(&host.dir().display().to_string());
        let running = pgrep_full(&host.dir().display().to_string());
        tx.send((host.dir().to_owned(), host.pid1().unwrap(), mounts, running))
            .unwrap();
        panic!("the test fails while its host runs");
    })
    .join();
    assert!(result.is_err(), "the thread was meant to panic");
    let (dir, pid1, mounts_while_running, running) = rx.recv().unwrap();
    assert!(
        !running.is_empty(),
        "pgrep did not find the running host's nspawn, so its absence below would prove nothing"
    );
    assert!(
        mounts_while_running
            .iter()
            .any(|m| m.contains("overlay") && m.contains("upperdir=")),
        "the overlay of the running host was not found in any mount namespace, so its \
         absence below would prove nothing: {mounts_while_running:?}"
    );
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        !PathBuf::from(format!("/proc/{pid1}")).exists(),
        "PID 1 {pid1} still runs"
    );
    let nspawns = pgrep_full(&dir.display().to_string());
    assert!(nspawns.is_empty(), "left running: {nspawns}");
    let mounts = mounts_mentioning(&dir.display().to_string());
    assert!(
        mounts.is_empty(),
        "mounts of {} are left: {mounts:?}",
        dir.display()
    );
}

/// `pgrep -f -a PATTERN`: the processes whose command line matches, one a line.
fn pgrep_full(pattern: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-f", "-a", pattern])
        .output()
        .expect("pgrep (procps) is needed: scripts/install-test-deps.sh installs it");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
