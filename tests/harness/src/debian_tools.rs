//! Debian's own tools as oracles for package tests: figures computed by dpkg's code,
//! never by a formula copied from hoist.

use std::path::Path;
use std::process::Command;

/// Runs `command`, panicking with its output when it fails; returns stdout.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run {command:?}: {e} (scripts/install-test-deps.sh installs dpkg-dev)")
    });
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The Installed-Size `dpkg-gencontrol` (dpkg-dev) computes for the files of `deb`:
/// its data is unpacked with `dpkg-deb -x` and measured by dpkg-gencontrol, as
/// debhelper's dh_gencontrol measures a package tree (without `DEBIAN/`, which the
/// unpacked data does not have).
///
/// # Panics
/// When a tool is missing or fails.
pub fn installed_size_by_dpkg_gencontrol(deb: &Path) -> u64 {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = dir.path().join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree));
    let package = run(Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg("Package"));
    let package = package.trim();
    std::fs::create_dir(dir.path().join("debian")).expect("debian/");
    std::fs::write(
        dir.path().join("debian/control"),
        format!(
            "Source: oracle\nMaintainer: Oracle <oracle@example.com>\n\n\
             Package: {package}\nArchitecture: any\nDescription: oracle\n"
        ),
    )
    .expect("debian/control");
    std::fs::write(
        dir.path().join("debian/changelog"),
        "oracle (1.0) unstable; urgency=medium\n\n  * Oracle.\n\n \
         -- Oracle <oracle@example.com>  Tue, 14 Nov 2023 22:13:20 +0000\n",
    )
    .expect("debian/changelog");
    let control = run(Command::new("dpkg-gencontrol")
        .arg(format!("-p{package}"))
        .arg("-Ptree")
        .arg("-O")
        .current_dir(dir.path()));
    control
        .lines()
        .find_map(|l| l.strip_prefix("Installed-Size: "))
        .unwrap_or_else(|| panic!("no Installed-Size from dpkg-gencontrol:\n{control}"))
        .trim()
        .parse()
        .expect("Installed-Size is a number")
}

/// Every field `dpkg-deb --field` prints for `deb`, in order, as `(name, value)`;
/// continuation lines stay in the value after a newline, with their leading space.
///
/// # Panics
/// When dpkg-deb is missing or fails.
pub fn dpkg_deb_fields(deb: &Path) -> Vec<(String, String)> {
    let text = run(Command::new("dpkg-deb").arg("--field").arg(deb));
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().expect("a continuation follows a field");
            value.push('\n');
            value.push_str(line);
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    fields
}
