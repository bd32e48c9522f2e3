//! What `/proc` says about a process: alive or not, which executable it runs, and
//! whether that executable is the file currently on disk (not a replaced, deleted one).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const DELETED_SUFFIX: &str = " (deleted)";

/// True when `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 (after the parenthesised comm, which may contain spaces) is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The target of `/proc/PID/exe` as the kernel shows it (may end in ` (deleted)`).
pub fn exe_link(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The executable path without the kernel's ` (deleted)` marker, and whether it was there.
pub fn exe_path(pid: i32) -> Option<(PathBuf, bool)> {
    let link = exe_link(pid)?;
    let text = link.to_string_lossy();
    match text.strip_suffix(DELETED_SUFFIX) {
        Some(stripped) => Some((PathBuf::from(stripped), true)),
        None => Some((link, false)),
    }
}

/// True when `pid` runs the file that is now at its executable's path: the link is not
/// marked deleted and the inode behind `/proc/PID/exe` is the inode at that path. After
/// dpkg replaced a binary, a process still running the old one fails this check.
pub fn runs_current_binary(pid: i32) -> bool {
    let Some((path, deleted)) = exe_path(pid) else {
        return false;
    };
    if deleted {
        return false;
    }
    same_file(Path::new(&format!("/proc/{pid}/exe")), &path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Live processes whose executable's base name is `name` (a replaced binary counts too),
/// or whose `comm` is `name` (truncated to 15 bytes as the kernel does) — what
/// `killall NAME` matches.
pub fn pids_by_name(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let comm_name: String = name.chars().take(15).collect();
    let own = std::process::id() as i32;
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|&pid| {
            let by_exe =
                exe_path(pid).is_some_and(|(path, _)| path.file_name().is_some_and(|f| f == name));
            by_exe
                || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end_matches('\n') == comm_name)
        })
        .filter(|&pid| is_alive(pid))
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn own_process_runs_current_binary() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        // The test binary is not replaced while it runs.
        assert!(runs_current_binary(me));
        assert!(!is_alive(-1));
        assert!(exe_link(0).is_none());
    }

    #[test]
    fn replaced_binary_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("hoist-sleeper");
        std::fs::copy("/bin/sleep", &bin).unwrap();
        let child = Reap(Command::new(&bin).arg("30").spawn().unwrap());
        let pid = child.0.id() as i32;
        // Poll until exec completed (exe points at our copy).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while exe_path(pid).map(|(p, _)| p) != Some(bin.clone()) {
            assert!(std::time::Instant::now() < deadline, "child never exec'd");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(runs_current_binary(pid));
        assert_eq!(pids_by_name("hoist-sleeper"), vec![pid]);
        // Replace the file the way dpkg does: write a new file, rename over.
        let new = dir.path().join("hoist-sleeper.new");
        std::fs::copy("/bin/sleep", &new).unwrap();
        std::fs::rename(&new, &bin).unwrap();
        assert!(
            !runs_current_binary(pid),
            "old inode must not count as current"
        );
        assert_eq!(
            pids_by_name("hoist-sleeper"),
            vec![pid],
            "replaced binary still matches"
        );
        drop(child);
        assert!(pids_by_name("hoist-sleeper").is_empty());
    }
}
