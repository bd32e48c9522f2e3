//! Shared bits of the process tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_testkit::hello::{HelloProcess, get};

/// Time for a process to start serving.
pub const START: Duration = Duration::from_secs(30);
/// Time for an upgrade, from signal to the successor's pidfile.
pub const UPGRADE: Duration = Duration::from_secs(30);
/// Time for a draining process to exit.
pub const EXIT: Duration = Duration::from_secs(30);
/// Bound of one probe request.
pub const REQUEST: Duration = Duration::from_secs(10);

/// The `hello` this test binary was built with (default version).
pub fn hello_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hello"))
}

/// Asserts that `pid` answers `GET /` (within [`UPGRADE`]: a predecessor may
/// still accept for a moment) and reports `version`.
pub fn assert_served_by(hello: &HelloProcess, pid: u32, version: &str) {
    let response = hello.wait_served_by(pid, UPGRADE);
    assert_eq!(response.status, 200, "{response:?}");
    let info = response.hello_info().expect("GET / names version and pid");
    assert_eq!(info.version, version, "{info:?}");
    let response = get(hello.addr(), "/healthz", REQUEST).expect("GET /healthz succeeds");
    assert_eq!(response.status, 200, "{response:?}");
}

/// The value of `name=` in a log line (`pid=123` → 123).
pub fn log_field(line: &str, name: &str) -> Option<u32> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Whether `pid` is an unreaped (zombie) child of `parent`.
pub fn is_zombie_child_of(pid: u32, parent: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str())
}

/// A private copy of `binary` at `dir/hello`, installed like dpkg would.
pub fn install(binary: &Path, dir: &Path) -> PathBuf {
    let installed = dir.join("hello");
    hoist_testkit::hello::replace_like_dpkg(binary, &installed);
    installed
}
