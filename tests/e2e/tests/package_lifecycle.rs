//! A package built by `hoist build`, on a real systemd host (systemd-nspawn booting
//! Debian 12), through the real `dpkg`: install, an upgrade to a version whose unit
//! is renamed, remove (`dpkg -r`) and purge (`dpkg -P`). After each step the units'
//! state is read from the host's systemd (`systemctl is-enabled`, `is-active`,
//! `show`), the unit files and enablement links on disk, the conffile, and what
//! answers on each unit's port. One host boot.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hoist_e2e::artifacts;
use hoist_e2e::packages::{Deb, build_manifest};
use hoist_e2e::probe::served;
use hoist_testkit::container::{Host, HostSpec};
use hoist_testkit::hello::{build_hello, free_port, wait_until};

const PACKAGE: &str = "hoist-lifecycle";
/// The unit of 1.0.0, renamed in 2.0.0.
const OLD_UNIT: &str = "hoist-lifecycle.service";
/// The unit of 2.0.0.
const NEW_UNIT: &str = "hoist-lifecycle-worker.service";
const CONFFILE: &str = "/etc/hoist-lifecycle/settings.conf";
/// How long a started unit may take to answer.
const SERVE: Duration = Duration::from_secs(30);

/// Writes a manifest for `version` shipping `unit` (serving on `port`) and the
/// conffile, and builds it with `hoist build`.
fn build(dir: &Path, version: &str, unit: &str, port: u16) -> Deb {
    let work = dir.join(format!("src-{version}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join(unit),
        format!(
            "[Unit]\nDescription=hoist end-to-end lifecycle test, {version}\n\n\
             [Service]\nType=exec\nExecStart=/usr/bin/{PACKAGE} --listen 127.0.0.1:{port}\n\n\
             [Install]\nWantedBy=multi-user.target\n"
        ),
    )
    .unwrap();
    std::fs::write(work.join("settings.conf"), "# shipped by the package\n").unwrap();
    let binary = build_hello(version, None);
    let manifest = work.join("hoist.toml");
    std::fs::write(
        &manifest,
        format!(
            "[package]\nname = \"{PACKAGE}\"\nversion = \"0.0.0\"\n\
             maintainer = \"hoist end-to-end tests <e2e@example.invalid>\"\nlicense = \"MIT\"\n\
             description = \"\"\"\nhoist end-to-end lifecycle test\n\
             Installed, upgraded, removed and purged on a real systemd host.\"\"\"\n\n\
             [[binaries]]\nsource = \"{}\"\ndest = \"/usr/bin/{PACKAGE}\"\n\n\
             [[units]]\nsource = \"{unit}\"\n\n\
             [[conffiles]]\nsource = \"settings.conf\"\ndest = \"{CONFFILE}\"\n",
            binary.display()
        ),
    )
    .unwrap();
    build_manifest(&manifest, PACKAGE, version, dir)
}

/// What systemd says about one unit, and what is on disk for it.
#[derive(Debug, PartialEq, Eq)]
struct UnitState {
    /// `systemctl is-enabled` (its output, or `absent` when it has none).
    is_enabled: String,
    /// `systemctl is-active`.
    is_active: String,
    /// `LoadState` (`loaded`, `not-found`).
    load_state: String,
    /// `/lib/systemd/system/UNIT` exists.
    unit_file: bool,
    /// The link `/etc/systemd/system/multi-user.target.wants/UNIT` exists (even
    /// dangling: a unit removed without being disabled leaves one).
    wants_link: bool,
}

impl UnitState {
    fn read(host: &Host, unit: &str) -> UnitState {
        let systemctl = |verb: &str| {
            let out = host.exec(&["systemctl", verb, unit]).unwrap();
            match out.stdout.trim() {
                "" => "absent".to_owned(),
                text => text.to_owned(),
            }
        };
        let exists = |path: &str| host.exec(&["test", "-e", path]).unwrap().success();
        let link = |path: &str| host.exec(&["test", "-L", path]).unwrap().success();
        UnitState {
            is_enabled: systemctl("is-enabled"),
            is_active: systemctl("is-active"),
            load_state: host.unit_property(unit, "LoadState").unwrap(),
            unit_file: exists(&format!("/lib/systemd/system/{unit}")),
            wants_link: link(&format!(
                "/etc/systemd/system/multi-user.target.wants/{unit}"
            )),
        }
    }

    /// Installed, enabled and running.
    fn running() -> UnitState {
        UnitState {
            is_enabled: "enabled".into(),
            is_active: "active".into(),
            load_state: "loaded".into(),
            unit_file: true,
            wants_link: true,
        }
    }

    /// Stopped, and nothing of it left for systemd.
    fn gone() -> UnitState {
        UnitState {
            is_enabled: "absent".into(),
            is_active: "inactive".into(),
            load_state: "not-found".into(),
            unit_file: false,
            wants_link: false,
        }
    }
}

fn dpkg(host: &Host, args: &[&str]) {
    let argv: Vec<&str> = std::iter::once("dpkg")
        .chain(args.iter().copied())
        .collect();
    let out = host.exec(&argv).unwrap();
    assert!(out.success(), "dpkg {args:?} on {}: {out:?}", host.name());
}

/// `dpkg-query`'s `${db:Status-Status}` of the package (`not-installed` when dpkg
/// has never heard of it or forgot it).
fn package_status(host: &Host) -> String {
    let out = host
        .exec(&["dpkg-query", "-W", "-f", "${db:Status-Status}", PACKAGE])
        .unwrap();
    if out.success() {
        out.stdout.trim().to_owned()
    } else {
        "not-installed".into()
    }
}

fn wait_version(addr: SocketAddr, version: &str) {
    wait_until(&format!("{version} to answer on {addr}"), SERVE, || {
        served(addr).filter(|i| i.version == version).map(|_| ())
    });
}

fn refused(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

#[test]
fn install_rename_remove_and_purge_on_a_real_systemd_host() {
    let dir = artifacts::scratch_dir("e2e-lifecycle");
    let (old_port, new_port) = (free_port(), free_port());
    let (old_addr, new_addr) = (
        SocketAddr::from(([127, 0, 0, 1], old_port)),
        SocketAddr::from(([127, 0, 0, 1], new_port)),
    );
    let v1 = build(&dir, "1.0.0", OLD_UNIT, old_port);
    let v2 = build(&dir, "2.0.0", NEW_UNIT, new_port);

    let host = HostSpec::new("e2e-lifecycle", "#cloud-config\n{}\n")
        .boot()
        .unwrap();
    for deb in [&v1, &v2] {
        let bytes = std::fs::read(&deb.path).unwrap();
        host.write_file(&format!("/root/{}.deb", deb.version), &bytes, 0o644)
            .unwrap();
    }

    // Install: the unit is enabled and started by the package's scripts.
    dpkg(&host, &["-i", "/root/1.0.0.deb"]);
    assert_eq!(package_status(&host), "installed");
    assert_eq!(UnitState::read(&host, OLD_UNIT), UnitState::running());
    wait_version(old_addr, "1.0.0");
    // The admin edits the conffile; dpkg keeps the edit until purge.
    let edited = b"# edited by the admin\n";
    host.write_file(CONFFILE, edited, 0o644).unwrap();

    // Upgrade to a version whose unit is renamed: the old unit is stopped, disabled
    // and gone; the new one enabled and running.
    dpkg(&host, &["-i", "/root/2.0.0.deb"]);
    assert_eq!(package_status(&host), "installed");
    assert_eq!(UnitState::read(&host, OLD_UNIT), UnitState::gone());
    assert_eq!(UnitState::read(&host, NEW_UNIT), UnitState::running());
    wait_version(new_addr, "2.0.0");
    assert!(refused(old_addr), "the old unit's process still listens");
    assert_eq!(host.read_file(CONFFILE).unwrap(), edited);

    // Remove: the unit is stopped and disabled, its file gone; the conffile stays.
    dpkg(&host, &["-r", PACKAGE]);
    assert_eq!(package_status(&host), "config-files");
    assert_eq!(UnitState::read(&host, NEW_UNIT), UnitState::gone());
    assert!(
        refused(new_addr),
        "the removed unit's process still listens"
    );
    assert_eq!(host.read_file(CONFFILE).unwrap(), edited);
    assert!(
        !host
            .exec(&["test", "-e", &format!("/usr/bin/{PACKAGE}")])
            .unwrap()
            .success()
    );

    // Purge: the conffile and its directory are gone, dpkg forgets the package, and
    // systemd knows neither unit.
    dpkg(&host, &["-P", PACKAGE]);
    assert_eq!(package_status(&host), "not-installed");
    for path in [CONFFILE, "/etc/hoist-lifecycle", "/var/lib/hoist"] {
        assert!(
            !host.exec(&["test", "-e", path]).unwrap().success(),
            "{path} survived the purge"
        );
    }
    for unit in [OLD_UNIT, NEW_UNIT] {
        assert_eq!(UnitState::read(&host, unit), UnitState::gone(), "{unit}");
    }
    let listed = host
        .exec(&[
            "systemctl",
            "list-unit-files",
            "--no-legend",
            "hoist-lifecycle*",
        ])
        .unwrap();
    assert_eq!(listed.stdout.trim(), "", "unit files left after the purge");
    let state = host.exec(&["systemctl", "is-system-running"]).unwrap();
    assert_eq!(
        state.stdout.trim(),
        "running",
        "{}",
        host.failed_units().unwrap()
    );
    host.shutdown().unwrap();
}
