//! Packages built with the real `hoist build` from the manifests in `fixtures/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::artifacts::{self, workspace_root};

/// A `.deb` written by `hoist build`.
#[derive(Debug, Clone)]
pub struct Deb {
    /// The file.
    pub path: PathBuf,
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// The `hoist build` command line that wrote it.
    pub command: String,
}

/// Builds the `hello` package `version` from `binary` (see [`hoist_testkit::hello::build_hello`]) into
/// `out_dir`.
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn hello_deb(binary: &Path, version: &str, out_dir: &Path) -> Deb {
    build_from_template(
        "hello",
        binary,
        "hello.service",
        version,
        &[],
        out_dir,
        None,
    )
}

/// [`hello_deb`] with a postinst that runs the shell `body` (under `set -e`) before
/// hoist's own part.
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn hello_deb_with_postinst(binary: &Path, version: &str, out_dir: &Path, body: &str) -> Deb {
    build_from_template(
        "hello",
        binary,
        "hello.service",
        version,
        &[],
        out_dir,
        Some(body),
    )
}

/// [`hello_deb`] whose `Depends` also lists `depends` (e.g. `["jq (>= 1.6)"]`).
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn hello_deb_depending(binary: &Path, version: &str, depends: &[&str], out_dir: &Path) -> Deb {
    build_from_template(
        "hello",
        binary,
        "hello.service",
        version,
        depends,
        out_dir,
        None,
    )
}

/// A data-only package `name` `version` (architecture `all`, one file under
/// `/usr/share/NAME/`), built with `hoist build` into `out_dir`: something for a
/// service to depend on.
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn data_deb(name: &str, version: &str, out_dir: &Path) -> Deb {
    let manifest_dir = out_dir.join(format!("manifest-{name}-{version}"));
    std::fs::create_dir_all(&manifest_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", manifest_dir.display()));
    let marker = manifest_dir.join("marker");
    std::fs::write(&marker, format!("{name} {version}\n"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.0.0"
architecture = "all"
maintainer = "hoist end-to-end tests <e2e@example.invalid>"
description = """
data package of hoist's end-to-end tests
Something for a service package to depend on."""
license = "MIT"

[[files]]
source = "marker"
dest = "/usr/share/{name}/marker"
mode = "0644"
"#
    );
    write_and_build(name, &manifest_dir, &manifest, version, out_dir)
}

/// Builds the `hoist-agent` package `version` from `binary` into `out_dir`.
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn agent_deb(binary: &Path, version: &str, out_dir: &Path) -> Deb {
    build_from_template(
        "hoist-agent",
        binary,
        "hoist-agent.service",
        version,
        &[],
        out_dir,
        None,
    )
}

/// Renders `fixtures/PACKAGE.toml` with the binary and unit paths (and `depends`
/// added to its `depends`) into a directory of its own and runs
/// `hoist build --manifest … --version VERSION --out-dir OUT_DIR`.
fn build_from_template(
    package: &str,
    binary: &Path,
    unit: &str,
    version: &str,
    depends: &[&str],
    out_dir: &Path,
    postinst: Option<&str>,
) -> Deb {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let template_path = fixtures.join(format!("{package}.toml"));
    let template = std::fs::read_to_string(&template_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
    let unit_path = workspace_root().join("systemd").join(unit);
    let manifest_dir = out_dir.join(format!(
        "manifest-{package}-{version}{}",
        if depends.is_empty() { "" } else { "-depending" }
    ));
    std::fs::create_dir_all(&manifest_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", manifest_dir.display()));
    let mut rendered = template
        .replace("@BINARY@", &absolute(binary).display().to_string())
        .replace("@UNIT@", &absolute(&unit_path).display().to_string());
    if !depends.is_empty() {
        let listed: String = depends.iter().map(|d| format!("{d:?}, ")).collect();
        let with = rendered.replacen("depends = [", &format!("depends = [{listed}"), 1);
        assert_ne!(
            with,
            rendered,
            "{} has no `depends = [`",
            template_path.display()
        );
        rendered = with;
    }
    if let Some(body) = postinst {
        let script = manifest_dir.join("postinst");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nset -e\n{body}\n#HOIST#\nexit 0\n"),
        )
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", script.display()));
        rendered.push_str(&format!(
            "\n[scripts]\npostinst = \"{}\"\n",
            script.display()
        ));
    }
    write_and_build(package, &manifest_dir, &rendered, version, out_dir)
}

/// Writes `manifest` to `DIR/hoist.toml` and runs `hoist build` on it.
fn write_and_build(
    package: &str,
    manifest_dir: &Path,
    manifest: &str,
    version: &str,
    out_dir: &Path,
) -> Deb {
    let manifest_path = manifest_dir.join("hoist.toml");
    std::fs::write(&manifest_path, manifest)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", manifest_path.display()));
    build_manifest(&manifest_path, package, version, out_dir)
}

/// `hoist build --manifest MANIFEST --version VERSION --out-dir OUT_DIR` for `package`.
///
/// # Panics
/// When `hoist build` fails (with its output).
pub fn build_manifest(manifest: &Path, package: &str, version: &str, out_dir: &Path) -> Deb {
    let mut cmd = Command::new(artifacts::hoist());
    cmd.arg("build")
        .arg("--manifest")
        .arg(manifest)
        .args(["--version", version])
        .arg("--out-dir")
        .arg(out_dir);
    let command = crate::releases::describe(&cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run hoist build: {e}"));
    assert!(
        output.status.success(),
        "hoist build {package} {version} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(
        stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("hoist build printed no path: {stdout:?}"))
            .trim(),
    );
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Deb {
        path,
        package: package.to_owned(),
        version: version.to_owned(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        command,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("cannot resolve {}: {e}", path.display()))
}
