//! Helpers shared by the `hoist build` tests: the real `hoist` binary, a private copy
//! of the fixture package, and the external tools the tests compare against.

#![allow(dead_code)] // each test file uses a different subset
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture package directory (a tiny shell service with a unit and a conffile).
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello")
}

/// A private copy of the fixture, so a test can edit files and mtimes freely.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture_dir()).unwrap() {
            let entry = entry.unwrap();
            let to = dir.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to).unwrap();
        }
        Fixture { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn manifest(&self) -> PathBuf {
        self.path("hoist.toml")
    }

    /// Replaces `from` with `to` in hoist.toml (the text must be there).
    pub fn edit_manifest(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.manifest()).unwrap();
        assert!(text.contains(from), "fixture hoist.toml has no `{from}`");
        std::fs::write(self.manifest(), text.replacen(from, to, 1)).unwrap();
    }

    /// An output directory inside the fixture copy that does not exist yet.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.path(name)
    }
}

/// `hoist` with a clean SOURCE_DATE_EPOCH and quiet logs.
pub fn hoist() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.env_remove("SOURCE_DATE_EPOCH").env("RUST_LOG", "warn");
    cmd
}

/// Runs `hoist build --manifest M --out-dir OUT EXTRA...`.
pub fn hoist_build(manifest: &Path, out_dir: &Path, extra: &[&str]) -> Output {
    hoist()
        .arg("build")
        .arg("--manifest")
        .arg(manifest)
        .arg("--out-dir")
        .arg(out_dir)
        .args(extra)
        .output()
        .unwrap()
}

/// Builds and returns the .deb's path (printed on stdout), failing with hoist's stderr.
pub fn build_ok(manifest: &Path, out_dir: &Path, extra: &[&str]) -> PathBuf {
    let out = hoist_build(manifest, out_dir, extra);
    assert!(
        out.status.success(),
        "hoist build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "printed path {} is a file", path.display());
    path
}

/// Panics with the install step when an external tool the test needs is missing.
pub fn require_tool(tool: &str, package: &str) {
    assert!(
        which::which(tool).is_ok(),
        "`{tool}` is not installed; run `make test` (scripts/install-test-deps.sh installs the \
         Debian package `{package}`)"
    );
}

/// Runs a command and returns its stdout, failing the test with its stderr otherwise.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The files and directories (not their contents) of `dir`, for "nothing was left
/// behind" checks.
pub fn listing(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The aarch64 ELF fixtures (packager/tests/fixtures/elf/make.sh says how they are made).
pub fn elf_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name)
}

/// Compiles a small C program with debug info (`cc -g`) to `dir/NAME`: a dynamically
/// linked ELF binary of the build host with symbols and DWARF, as a release build
/// before stripping. The source path is mapped away, so the bytes do not depend on `dir`.
pub fn compile_c(dir: &Path, name: &str) -> PathBuf {
    require_tool("cc", "gcc");
    let source = dir.join(format!("{name}.c"));
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <math.h>\n\
         int main(int argc, char **argv) { printf(\"%f\\n\", sqrt((double)argc)); return 0; }\n",
    )
    .unwrap();
    let binary = dir.join(name);
    run_ok(
        Command::new("cc")
            .args(["-g", "-O1"])
            .arg(format!("-ffile-prefix-map={}=.", dir.display()))
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .arg("-lm")
            .current_dir(dir),
    );
    binary
}

/// The section names of an ELF file (`readelf -SW`).
pub fn elf_sections(path: &Path) -> Vec<String> {
    require_tool("readelf", "binutils");
    run_ok(Command::new("readelf").arg("-SW").arg(path))
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('[')?;
            let (_, after) = rest.split_once(']')?;
            after.split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// `dpkg-deb -x DEB DIR` into a new temporary directory.
pub fn unpack(deb: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    dir
}

/// One control field of `deb` (`dpkg-deb --field DEB NAME`), trimmed.
pub fn deb_field(deb: &Path, name: &str) -> String {
    run_ok(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim()
        .to_owned()
}

/// What `dpkg-shlibdeps -O` (the oracle) says `binary` depends on.
pub fn dpkg_shlibdeps(binary: &Path) -> Vec<String> {
    require_tool("dpkg-shlibdeps", "dpkg-dev");
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("debian")).unwrap();
    std::fs::write(tree.path().join("debian/control"), "").unwrap();
    let out = run_ok(
        Command::new("dpkg-shlibdeps")
            .arg("-O")
            .arg(std::path::absolute(binary).unwrap())
            .current_dir(tree.path()),
    );
    out.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or_else(|| panic!("no shlibs:Depends in {out}"))
        .split(',')
        .map(|d| d.trim().to_owned())
        .collect()
}

/// A directory holding links to every program on PATH except `hidden`, to run hoist
/// as on a machine without those tools.
pub fn path_without(hidden: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for entry_dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&entry_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = dir.path().join(&name);
            if hidden.iter().any(|h| name == *h) || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    dir
}

/// Runs the real lintian on `deb` (errors and warnings, no local profile) and asserts
/// it finds none. lintian's scratch files go to `scratch`.
///
/// Not for zstd packages: bookworm's lintian (2.116) cannot read zstd members (it
/// reports `malformed-deb-archive`, as Debian's archive takes only gzip/xz, then fails
/// to unpack larger ones and reports their files missing). Check those with
/// [`assert_same_contents`] against the gzip package instead.
pub fn assert_lintian_clean(deb: &Path, scratch: &Path) {
    require_tool("lintian", "lintian");
    let out = Command::new("lintian")
        .args(["--no-cfg", "--fail-on", "error,warning"])
        .arg(deb)
        .env("TMPDIR", scratch)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        out.status.success() && tags.is_empty(),
        "lintian {} ({}):\n{stdout}{}",
        deb.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that two packages hold the same control and data archives once
/// decompressed: what lintian says of one holds for the other. The members are read
/// with `ar` and the compressors' own tools, not dpkg-deb: bookworm's dpkg-deb
/// (1.21.22) reads only the first frame of a multi-frame zstd member, which hoist writes
/// for data larger than one compression block (a known limitation, reported separately).
pub fn assert_same_contents(a: &Path, b: &Path) {
    require_tool("ar", "binutils");
    let members = |deb: &Path| -> Vec<Vec<u8>> {
        let names = run_ok(Command::new("ar").arg("t").arg(deb));
        names
            .lines()
            .filter(|n| n.starts_with("control.tar") || n.starts_with("data.tar"))
            .map(|name| {
                let tool = match name.rsplit('.').next().unwrap() {
                    "gz" => "gzip",
                    "xz" => "xz",
                    "zst" => "zstd",
                    other => panic!("unknown member compression {other}"),
                };
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(format!("ar p \"$1\" {name} | {tool} -dc"))
                    .arg("sh")
                    .arg(deb)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{name} of {}", deb.display());
                out.stdout
            })
            .collect()
    };
    let (ma, mb) = (members(a), members(b));
    assert_eq!(ma.len(), 2, "{}", a.display());
    assert!(
        ma == mb,
        "the control/data archives of {} and {} differ",
        a.display(),
        b.display()
    );
}
