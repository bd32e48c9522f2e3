//! The tools the end-to-end tests deploy (`hoist`, the agent; `hello` variants come
//! from [`hoist_testkit::hello::build_hello`]), built by
//! [`hoist_testkit::workspace_bins`], and where the tests keep files next to them.

use std::path::PathBuf;

pub use hoist_testkit::workspace_bins::{hoist, hoist_agent, workspace_root};

/// An empty directory `NAME` next to the builds (emptied if it exists), for files
/// that must outlive a test but not the next run, such as the packages the tests of
/// one process share.
///
/// # Panics
/// When it cannot be created.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = hoist_testkit::workspace_bins::bins_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Writes `text` to `<target>/e2e-report/NAME` (replacing it) and returns the path:
/// figures a passing test prints are hidden by the test harness, this file keeps them.
///
/// # Panics
/// When the file cannot be written.
pub fn write_report(name: &str, text: &str) -> PathBuf {
    let dir = hoist_testkit::workspace_bins::bins_dir().with_file_name("e2e-report");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}
