//! The real dpkg installs, upgrades, downgrades and removes packages built by
//! `hoist build`, in a throwaway Debian root (never the host's package database), and
//! the maintainer scripts make exactly the systemctl calls hoist promises: enable +
//! start on first install, nothing but daemon-reload on upgrade, stop + disable on
//! remove.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod build_support;

use std::fs;
use std::path::PathBuf;

use build_support::{Fixture, build_ok};
use hoist_testkit::sandbox::Sandbox;

/// Builds the fixture at `version` into `out` and returns the .deb.
fn build_version(fixture: &Fixture, version: &str, compression: &str) -> PathBuf {
    build_ok(
        &fixture.manifest(),
        &fixture.out_dir(&format!("out-{version}-{compression}")),
        &["--version", version, "--compression", compression],
    )
}

const CONFFILE: &str = "/etc/hello/hello.conf";
const UNIT_STATE: &str = "/var/lib/hoist/units/hello/hello.service";

#[test]
fn install_upgrade_downgrade_remove_purge() {
    let fixture = Fixture::new();
    let v10 = build_version(&fixture, "1.0", "gzip");
    let v11 = build_version(&fixture, "1.1", "gzip");
    let sandbox = Sandbox::minbase();
    sandbox.fake_systemd();

    // First install: the unit is enabled and started, after a daemon-reload.
    sandbox.install(&v10).ok();
    assert_eq!(sandbox.installed_version("hello").as_deref(), Some("1.0"));
    assert_eq!(
        sandbox.systemctl_calls(),
        [
            "--system daemon-reload",
            "--system enable hello.service",
            "--system start hello.service"
        ]
    );
    assert!(sandbox.path(UNIT_STATE).exists());
    assert!(sandbox.path("/usr/bin/hello").is_file());
    assert!(
        sandbox
            .path("/usr/lib/systemd/system/hello.service")
            .is_file()
    );

    // Everything dpkg installed matches its md5sums (and the conffile its hash).
    let verify = sandbox.dpkg(["--verify", "hello"]);
    verify.ok();
    assert_eq!(verify.stdout, "", "dpkg --verify reports problems");
    let conffiles = sandbox.dpkg(["--status", "hello"]);
    assert!(
        conffiles.ok().stdout.contains(&format!(" {CONFFILE} ")),
        "{}",
        conffiles.stdout
    );

    // The admin edits the conffile; dpkg --verify notices, and the upgrade keeps it.
    let edited = "# edited by the admin\nGREETING=bonjour\n";
    fs::write(sandbox.path(CONFFILE), edited).unwrap();
    let verify = sandbox.dpkg(["--verify", "hello"]);
    assert!(
        verify.stdout.contains(CONFFILE),
        "verify sees the edit: {verify}"
    );
    sandbox.clear_systemctl_calls();

    // Upgrade: no stop, no restart, no start; only daemon-reload.
    sandbox.install(&v11).ok();
    assert_eq!(sandbox.installed_version("hello").as_deref(), Some("1.1"));
    assert_eq!(sandbox.systemctl_calls(), ["--system daemon-reload"]);
    assert_eq!(fs::read_to_string(sandbox.path(CONFFILE)).unwrap(), edited);

    // Downgrade (how a rollback installs): allowed, and just as quiet.
    sandbox.clear_systemctl_calls();
    sandbox.install(&v10).ok();
    assert_eq!(sandbox.installed_version("hello").as_deref(), Some("1.0"));
    assert_eq!(sandbox.systemctl_calls(), ["--system daemon-reload"]);
    assert_eq!(fs::read_to_string(sandbox.path(CONFFILE)).unwrap(), edited);

    // Remove: stop and disable; the conffile stays until purge.
    sandbox.clear_systemctl_calls();
    sandbox.dpkg(["-r", "hello"]).ok();
    assert_eq!(sandbox.package_status("hello"), "config-files");
    assert_eq!(
        sandbox.systemctl_calls(),
        [
            "--system stop hello.service",
            "--system disable hello.service",
            "--system daemon-reload"
        ]
    );
    assert!(!sandbox.path("/usr/bin/hello").exists());
    assert!(!sandbox.path(UNIT_STATE).exists());
    assert_eq!(fs::read_to_string(sandbox.path(CONFFILE)).unwrap(), edited);

    // Reinstalling after remove sets the unit up again.
    sandbox.clear_systemctl_calls();
    sandbox.install(&v11).ok();
    assert!(
        sandbox
            .systemctl_calls()
            .contains(&"--system start hello.service".to_owned()),
        "{:?}",
        sandbox.systemctl_calls()
    );

    // Purge: the conffile and hoist's unit state are gone.
    sandbox.dpkg(["-P", "hello"]).ok();
    assert_eq!(sandbox.package_status("hello"), "not-installed");
    assert!(!sandbox.path(CONFFILE).exists());
    assert!(!sandbox.path("/var/lib/hoist").exists());
}

#[test]
fn every_compression_installs() {
    let fixture = Fixture::new();
    let sandbox = Sandbox::minbase();
    for (i, compression) in ["gzip", "xz", "zstd"].into_iter().enumerate() {
        let version = format!("1.{i}");
        let deb = build_version(&fixture, &version, compression);
        sandbox.install(&deb).ok();
        assert_eq!(sandbox.installed_version("hello"), Some(version));
        let verify = sandbox.dpkg(["--verify", "hello"]);
        assert_eq!(verify.ok().stdout, "", "{compression}");
    }
}

#[test]
fn without_running_systemd_units_are_enabled_but_never_started() {
    let fixture = Fixture::new();
    let v10 = build_version(&fixture, "1.0", "gzip");
    let v11 = build_version(&fixture, "1.1", "gzip");

    // No systemctl at all (minbase has none): the scripts must simply not fail.
    let sandbox = Sandbox::minbase();
    assert!(!sandbox.path("/run/systemd/system").exists());
    assert!(
        !sandbox.path("/usr/bin/systemctl").exists() && !sandbox.path("/bin/systemctl").exists()
    );
    sandbox.install(&v10).ok();
    sandbox.install(&v11).ok();
    assert_eq!(sandbox.installed_version("hello").as_deref(), Some("1.1"));
    sandbox.dpkg(["-P", "hello"]).ok();
    assert_eq!(sandbox.package_status("hello"), "not-installed");

    // systemctl installed but systemd not running (a chroot, an image being built):
    // enable/disable work offline, start/stop/daemon-reload must not be attempted.
    let sandbox = Sandbox::minbase();
    sandbox.install_systemctl_stub();
    sandbox.install(&v10).ok();
    assert_eq!(sandbox.systemctl_calls(), ["--system enable hello.service"]);
    sandbox.clear_systemctl_calls();
    sandbox.install(&v11).ok();
    assert!(
        sandbox.systemctl_calls().is_empty(),
        "{:?}",
        sandbox.systemctl_calls()
    );
    sandbox.dpkg(["-r", "hello"]).ok();
    assert_eq!(
        sandbox.systemctl_calls(),
        ["--system disable hello.service"]
    );
}

#[test]
fn a_unit_dropped_by_an_upgrade_is_stopped_and_one_added_is_started() {
    let fixture = Fixture::new();
    let v10 = build_version(&fixture, "1.0", "gzip");
    // 1.1 ships hello-worker.service instead of hello.service.
    fs::rename(
        fixture.path("hello.service"),
        fixture.path("hello-worker.service"),
    )
    .unwrap();
    fixture.edit_manifest(
        "source = \"hello.service\"",
        "source = \"hello-worker.service\"",
    );
    let v11 = build_version(&fixture, "1.1", "gzip");

    let sandbox = Sandbox::minbase();
    sandbox.fake_systemd();
    sandbox.install(&v10).ok();
    sandbox.clear_systemctl_calls();
    sandbox.install(&v11).ok();
    assert_eq!(
        sandbox.systemctl_calls(),
        [
            "--system stop hello.service",
            "--system disable hello.service",
            "--system daemon-reload",
            "--system enable hello-worker.service",
            "--system start hello-worker.service",
        ]
    );
}
