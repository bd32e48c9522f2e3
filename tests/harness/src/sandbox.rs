//! Debian roots in which the real `dpkg` installs, upgrades and removes packages
//! without touching the host's package database.
//!
//! - [`cached_root`] builds a root with `debootstrap --variant=minbase` once per machine
//!   and keeps it under [`cache_dir`] (`$HOIST_CACHE`, default `/var/cache/hoist-test`).
//!   What goes into a root is a [`RootRecipe`] (suite, extra packages, a customize
//!   step), so the systemd/cloud-init root of the end-to-end tests is just another
//!   recipe. Concurrent callers (threads or processes) build it once: the build holds
//!   an exclusive `flock`, happens in a temporary directory and is published by a
//!   rename, so a killed build never leaves a half root behind. A root whose recipe
//!   changed is rebuilt.
//! - [`Sandbox`] is a throwaway copy of a cached root for one test (a plain `cp -a` to
//!   tmpfs, ~0.4 s for minbase's 200 MB: simpler than an overlay, and no mount can
//!   outlive the test), deleted on drop.
//!   [`Sandbox::dpkg`] runs `dpkg --root=ROOT`, which chroots into the copy to run
//!   maintainer scripts.
//! - [`Sandbox::fake_systemd`] puts a recording `systemctl` first on the scripts' PATH
//!   and creates `/run/systemd/system`, so maintainer scripts believe systemd runs and
//!   tests can assert exactly which systemctl calls they made.
//!
//! Setup failures panic with the reason and the fix (this is test infrastructure);
//! a missing `debootstrap` names the install step (`make test`).

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use nix::fcntl::{Flock, FlockArg};

/// Default cache directory when `HOIST_CACHE` is not set.
const DEFAULT_CACHE: &str = "/var/cache/hoist-test";

/// Where apt's deb822 sources are read for the mirror.
const DEBIAN_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// Mirror used when the host's apt configuration names none.
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Where debootstrap keeps its per-suite scripts.
const DEBOOTSTRAP_SCRIPTS: &str = "/usr/share/debootstrap/scripts";

/// The script every current Debian suite uses (`bookworm`, `trixie` … are symlinks
/// to it); passed explicitly when this machine's debootstrap predates a suite.
const DEBOOTSTRAP_GENERIC_SCRIPT: &str = "sid";

/// Bumped when the way roots are built changes, so cached roots are rebuilt.
const RECIPE_REVISION: u32 = 1;

/// The file inside a cached root that records the recipe it was built from.
const STAMP_FILE: &str = ".hoist-rootfs-recipe";

/// PATH for dpkg and the maintainer scripts it runs (inside the root).
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the recording `systemctl` stub lives inside a sandbox (first on PATH).
pub const SYSTEMCTL_STUB: &str = "/usr/local/sbin/systemctl";

/// Where the stub appends one line per call (its arguments), inside the sandbox.
pub const SYSTEMCTL_LOG: &str = "/var/log/hoist-systemctl-calls";

/// A step that adjusts a freshly bootstrapped root (its path is the argument).
pub type Customize = fn(&Path) -> Result<(), String>;

/// How to build one cached Debian root.
#[derive(Debug, Clone, Copy)]
pub struct RootRecipe {
    /// Cache name: the root lives in `cache_dir()/rootfs-NAME`.
    pub name: &'static str,
    /// Debian suite, e.g. `bookworm`.
    pub suite: &'static str,
    /// Extra packages for `debootstrap --include=`.
    pub include: &'static [&'static str],
    /// Runs on the fresh root (its path is the argument) before it is published, e.g.
    /// to generate a locale or drop configuration files. An `Err` fails the build.
    pub customize: Option<Customize>,
}

impl RootRecipe {
    /// `debootstrap --variant=minbase bookworm`: dpkg, a shell and coreutils; enough for
    /// `dpkg --root` to run maintainer scripts.
    pub const MINBASE: RootRecipe = RootRecipe {
        name: "minbase-bookworm",
        suite: "bookworm",
        include: &[],
        customize: None,
    };

    /// The text stored in the root's stamp file; a different text means a rebuild.
    /// (A customize step is identified by its recipe name: rename the recipe when you
    /// change what it does.)
    fn stamp(&self) -> String {
        format!(
            "revision={RECIPE_REVISION}\nname={}\nsuite={}\nvariant=minbase\ninclude={}\ncustomized={}\n",
            self.name,
            self.suite,
            self.include.join(","),
            self.customize.is_some()
        )
    }
}

/// The machine-wide cache directory: `$HOIST_CACHE`, or `/var/cache/hoist-test`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HOIST_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE), PathBuf::from)
}

/// The Debian mirror to bootstrap from: the first `URIs:` line of
/// `/etc/apt/sources.list.d/debian.sources` (other source files may name hosts this
/// machine cannot reach), else the first `deb` line of `/etc/apt/sources.list`, else
/// deb.debian.org.
pub fn debian_mirror() -> String {
    let deb822 = fs::read_to_string(DEBIAN_SOURCES).unwrap_or_default();
    let from_deb822 = deb822.lines().find_map(|line| {
        line.strip_prefix("URIs:")
            .and_then(|uris| uris.split_whitespace().next())
            .map(str::to_owned)
    });
    let from_list = || {
        fs::read_to_string("/etc/apt/sources.list")
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("deb "))
            .and_then(|line| {
                line.split_whitespace()
                    .skip(1)
                    .find(|word| !word.starts_with('['))
                    .map(str::to_owned)
            })
    };
    from_deb822
        .or_else(from_list)
        .unwrap_or_else(|| FALLBACK_MIRROR.to_owned())
}

/// The cached root for `recipe`, built first if it is missing or was built from a
/// different recipe. Blocks while another process or thread builds it.
///
/// # Panics
/// When the cache directory cannot be used, `debootstrap` is missing, or the build
/// fails; the message includes the tail of debootstrap's log.
pub fn cached_root(recipe: &RootRecipe) -> PathBuf {
    let cache = cache_dir();
    fs::create_dir_all(&cache).unwrap_or_else(|e| {
        panic!(
            "cannot create the test cache {}: {e}; run the tests as root or set HOIST_CACHE to a writable directory",
            cache.display()
        )
    });
    let root = cache.join(format!("rootfs-{}", recipe.name));
    let lock_path = cache.join(format!("rootfs-{}.lock", recipe.name));
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open the lock {}: {e}", lock_path.display()));
    // Held until the end of this function; released when dropped (also on panic).
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));

    let stamp = recipe.stamp();
    if fs::read_to_string(root.join(STAMP_FILE)).is_ok_and(|s| s == stamp) {
        return root;
    }
    build_root(recipe, &cache, &root, &stamp);
    root
}

/// Builds `root` from scratch in a temporary directory and renames it into place.
/// The caller holds the lock.
fn build_root(recipe: &RootRecipe, cache: &Path, root: &Path, stamp: &str) {
    let debootstrap = which::which("debootstrap").unwrap_or_else(|_| {
        panic!(
            "`debootstrap` is not installed; run `make test` (it runs scripts/install-test-deps.sh, \
             which does `apt-get install debootstrap`)"
        )
    });
    // Leftovers of builds that were killed: nobody else builds while we hold the lock.
    let partial_prefix = format!("rootfs-{}.partial-", recipe.name);
    if let Ok(entries) = fs::read_dir(cache) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&partial_prefix)
            {
                remove_tree(&entry.path());
            }
        }
    }
    let partial = cache.join(format!("{partial_prefix}{}", std::process::id()));
    let log_path = cache.join(format!("rootfs-{}.log", recipe.name));
    let log = fs::File::create(&log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
    let mirror = debian_mirror();
    let mut cmd = Command::new(debootstrap);
    cmd.arg("--variant=minbase");
    if !recipe.include.is_empty() {
        cmd.arg(format!("--include={}", recipe.include.join(",")));
    }
    cmd.arg(recipe.suite).arg(&partial).arg(&mirror);
    if let Some(script) = debootstrap_script(Path::new(DEBOOTSTRAP_SCRIPTS), recipe.suite) {
        cmd.arg(script);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("a log file handle can be cloned"))
        .stderr(log);
    eprintln!(
        "building the cached Debian root {} from {mirror} (once per machine, about a minute)",
        root.display()
    );
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run debootstrap: {e}"));
    if !status.success() {
        remove_tree(&partial);
        panic!(
            "debootstrap {} into {} failed ({status}); check that {mirror} is reachable. \
             Last lines of {}:\n{}",
            recipe.suite,
            partial.display(),
            log_path.display(),
            log_tail(&log_path)
        );
    }
    if let Some(Err(e)) = recipe.customize.map(|customize| customize(&partial)) {
        remove_tree(&partial);
        panic!("customizing the root {} failed: {e}", recipe.name);
    }
    fs::write(partial.join(STAMP_FILE), stamp)
        .unwrap_or_else(|e| panic!("cannot write the root's stamp: {e}"));
    if root.exists() {
        let stale = cache.join(format!("{partial_prefix}stale-{}", std::process::id()));
        fs::rename(root, &stale).unwrap_or_else(|e| {
            panic!("cannot move the outdated root {} away: {e}", root.display())
        });
        remove_tree(&stale);
    }
    fs::rename(&partial, root)
        .unwrap_or_else(|e| panic!("cannot publish the root {}: {e}", root.display()));
}

/// The script to pass to debootstrap for `suite`: `None` when debootstrap knows the
/// suite (or its scripts are not where Debian puts them), else the generic Debian
/// script, so that a machine whose debootstrap is older than the suite (a Debian 12
/// without the point release that added `trixie`) still builds it.
fn debootstrap_script(scripts: &Path, suite: &str) -> Option<PathBuf> {
    if !scripts.is_dir() || scripts.join(suite).exists() {
        return None;
    }
    let generic = scripts.join(DEBOOTSTRAP_GENERIC_SCRIPT);
    generic.exists().then_some(generic)
}

fn remove_tree(path: &Path) {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            panic!("cannot remove {}: {e}", path.display())
        }
        _ => {}
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The outcome of a command run against a sandbox.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl RunOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Returns `self` if the command succeeded.
    ///
    /// # Panics
    /// Otherwise, with the command, its status and its output.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "{self}");
        self
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout\n{}--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Where sandboxes are copied to: `/dev/shm` (tmpfs: copying minbase takes ~0.4 s and
/// deleting it ~0.05 s, against ~1 s and ~2 s on this machine's disk), or the system
/// temporary directory where there is no `/dev/shm`.
fn sandbox_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// A throwaway copy of a cached Debian root; deleted on drop.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    /// Holds the copy; removing it removes the sandbox.
    _dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox copied from the minbase root ([`RootRecipe::MINBASE`]).
    pub fn minbase() -> Sandbox {
        Sandbox::from_recipe(&RootRecipe::MINBASE)
    }

    /// A sandbox copied from the cached root of `recipe` (built first if needed).
    ///
    /// # Panics
    /// When the cached root cannot be built or copied.
    pub fn from_recipe(recipe: &RootRecipe) -> Sandbox {
        let cached = cached_root(recipe);
        let dir = tempfile::Builder::new()
            .prefix("hoist-sandbox-")
            .tempdir_in(sandbox_parent())
            .expect("the sandbox parent directory is writable");
        let root = dir.path().join("root");
        let status = Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&cached)
            .arg(&root)
            .status()
            .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
        assert!(
            status.success(),
            "copying {} to {} failed ({status}); is the disk full?",
            cached.display(),
            root.display()
        );
        Sandbox { root, _dir: dir }
    }

    /// The root directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `path` inside the sandbox (`/etc/x` → `ROOT/etc/x`).
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Runs `dpkg --root=ROOT ARGS...` with a clean environment (PATH inside the root
    /// with `/usr/local/sbin` first, `LC_ALL=C`) and stdin from /dev/null.
    ///
    /// # Panics
    /// When dpkg cannot be started.
    pub fn dpkg<I, S>(&self, args: I) -> RunOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.root.display()))
            .args(args);
        self.run(cmd)
    }

    /// `dpkg --root=ROOT --install DEB` (also upgrades and downgrades).
    pub fn install(&self, deb: &Path) -> RunOutput {
        self.dpkg([OsStr::new("--install"), deb.as_os_str()])
    }

    fn run(&self, mut cmd: Command) -> RunOutput {
        cmd.env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        let command = format!("{cmd:?}");
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        RunOutput {
            command,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The installed version of `package`, or `None` when it is not installed
    /// (config-files only counts as not installed).
    pub fn installed_version(&self, package: &str) -> Option<String> {
        let admindir = self.path("/var/lib/dpkg");
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", admindir.display()))
            .args(["-W", "-f", "${db:Status-Status} ${Version}", package])
            .output()
            .unwrap_or_else(|e| panic!("cannot run dpkg-query: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        text.strip_prefix("installed ").map(str::to_owned)
    }

    /// The dpkg status (`installed`, `config-files`, `not-installed`, ...) of `package`.
    pub fn package_status(&self, package: &str) -> String {
        let admindir = self.path("/var/lib/dpkg");
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", admindir.display()))
            .args(["-W", "-f", "${db:Status-Status}", package])
            .output()
            .unwrap_or_else(|e| panic!("cannot run dpkg-query: {e}"));
        let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if status.is_empty() {
            "not-installed".to_owned()
        } else {
            status
        }
    }

    /// Makes maintainer scripts see a running systemd: [`install_systemctl_stub`]
    /// plus `/run/systemd/system`, the directory debhelper-style scripts check.
    ///
    /// [`install_systemctl_stub`]: Self::install_systemctl_stub
    ///
    /// # Panics
    /// When the files cannot be written.
    pub fn fake_systemd(&self) {
        let run_dir = self.path("/run/systemd/system");
        fs::create_dir_all(&run_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", run_dir.display()));
        self.install_systemctl_stub();
    }

    /// Installs a `systemctl` at [`SYSTEMCTL_STUB`] (first on PATH) that appends its
    /// arguments as one line to [`SYSTEMCTL_LOG`] and succeeds, and empties the log.
    /// Without [`fake_systemd`](Self::fake_systemd) this is a host where systemd is
    /// installed but not running (an image being built, a chroot).
    ///
    /// # Panics
    /// When the files cannot be written.
    pub fn install_systemctl_stub(&self) {
        let stub = self.path(SYSTEMCTL_STUB);
        if let Some(parent) = stub.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        let script = format!(
            "#!/bin/sh\n# Recording systemctl stub of hoist-testkit: logs its arguments, succeeds.\n\
             echo \"$*\" >>{SYSTEMCTL_LOG}\nexit 0\n"
        );
        let mut file = fs::File::create(&stub)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stub.display()));
        file.write_all(script.as_bytes())
            .and_then(|()| file.set_permissions(fs::Permissions::from_mode(0o755)))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", stub.display()));
        self.clear_systemctl_calls();
    }

    /// The systemctl calls recorded since [`fake_systemd`](Self::fake_systemd) or the
    /// last [`clear_systemctl_calls`](Self::clear_systemctl_calls), one string of
    /// arguments per call (e.g. `--system enable hello.service`).
    pub fn systemctl_calls(&self) -> Vec<String> {
        fs::read_to_string(self.path(SYSTEMCTL_LOG))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets the recorded systemctl calls.
    pub fn clear_systemctl_calls(&self) {
        let log = self.path(SYSTEMCTL_LOG);
        fs::write(&log, "").unwrap_or_else(|e| panic!("cannot reset {}: {e}", log.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_suite_uses_the_generic_debootstrap_script() {
        let dir = tempfile::tempdir().expect("temp dir");
        let scripts = dir.path();
        assert_eq!(debootstrap_script(&scripts.join("missing"), "trixie"), None);
        fs::write(scripts.join("sid"), "").expect("write sid");
        std::os::unix::fs::symlink("sid", scripts.join("bookworm")).expect("symlink");
        assert_eq!(debootstrap_script(scripts, "bookworm"), None);
        assert_eq!(
            debootstrap_script(scripts, "trixie"),
            Some(scripts.join("sid"))
        );
    }
}
