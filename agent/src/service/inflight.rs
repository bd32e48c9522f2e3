//! Whether a handoff is still under way: the serving process started a successor (a
//! child process that was not there before the signal) that has neither taken over nor
//! been given up yet. While it is, the agent keeps waiting, however long the service's
//! own ready timeout is, so that the agent and the service cannot decide differently.

use std::collections::BTreeSet;

use super::procfs;

/// The children of each serving process before the signal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children {
    pids: BTreeSet<i32>,
}

impl Children {
    /// The current children of `parents`.
    pub fn of(parents: &BTreeSet<i32>) -> Self {
        Self {
            pids: children_of(parents),
        }
    }

    /// True when one of `parents` (still alive) has a live child that is not in `self`:
    /// a successor being started.
    pub fn successor_started(&self, parents: &BTreeSet<i32>) -> bool {
        children_of(parents)
            .iter()
            .any(|pid| !self.pids.contains(pid) && procfs::is_alive(*pid))
    }
}

/// Live children of `parents`, from the parent pid in `/proc/PID/stat`.
fn children_of(parents: &BTreeSet<i32>) -> BTreeSet<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| parent_of(pid).is_some_and(|ppid| parents.contains(&ppid)))
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised comm: state, ppid, …
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_child_is_a_successor_until_it_exits() {
        use std::io::Write;
        // A parent that starts a child (`sleep`) once it reads a line.
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "read line; sleep 30; :"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let parents = BTreeSet::from([parent.id() as i32]);
        let before = Children::of(&parents);
        assert!(!before.successor_started(&parents));
        parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !before.successor_started(&parents) {
            assert!(std::time::Instant::now() < deadline, "no child seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let now = Children::of(&parents);
        assert!(
            !now.successor_started(&parents),
            "known children are not successors"
        );
        for child in &now.pids {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*child),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
        parent.wait().unwrap();
        assert!(!before.successor_started(&parents));
    }
}
