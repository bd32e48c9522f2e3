//! What /proc says about processes and mounts (for finding a container's PID 1 and
//! for proving that a stopped container left nothing behind).

use std::collections::HashSet;
use std::fs;

/// The fields of `/proc/PID/stat` this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// `comm`, the executable name (at most 15 bytes).
    pub comm: String,
    /// State letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Parent process id.
    pub ppid: u32,
    /// Start time in clock ticks since boot: with the pid it names a process uniquely.
    pub start_time: u64,
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist (any more).
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` is in parentheses and may itself contain spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(ProcStat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        start_time: rest.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is a live (non-zombie) process.
pub(crate) fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Whether `pid` is still the process that started at `start_time` (not a reused pid).
pub(crate) fn is_same_process(pid: u32, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.start_time == start_time)
}

/// The pids of every process.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live children of `ppid` whose `comm` is `comm`.
pub(crate) fn children_named(ppid: u32, comm: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            stat(pid).is_some_and(|s| s.ppid == ppid && s.comm == comm && s.state != 'Z')
        })
        .collect()
}

/// The command line of `pid`, arguments joined by spaces.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Live processes whose command line contains `needle`, as `"PID CMDLINE"`.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me && is_alive(pid))
        .filter_map(|pid| {
            let line = cmdline(pid)?;
            line.contains(needle).then(|| format!("{pid} {line}"))
        })
        .collect()
}

/// Mounts in any mount namespace of the machine whose mountinfo line mentions
/// `needle` (a mount point under it, or an overlay whose lower/upper/work dir is
/// under it), as `"ns=NAMESPACE LINE"`. Each namespace is read once.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for pid in all_pids() {
        let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
            continue;
        };
        if !seen.insert(ns.clone()) {
            continue;
        }
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        found.extend(
            info.lines()
                .filter(|line| line.contains(needle))
                .map(|line| format!("ns={} {line}", ns.display())),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let me = stat(std::process::id()).unwrap();
        assert_ne!(me.state, 'Z');
        assert!(me.start_time > 0);
        assert!(is_same_process(std::process::id(), me.start_time));
        assert!(!is_same_process(std::process::id(), me.start_time + 1));
        let parent = stat(me.ppid).unwrap();
        assert!(
            children_named(me.ppid, &me.comm).contains(&std::process::id()),
            "{parent:?}"
        );
    }

    #[test]
    fn sees_own_command_line() {
        let line = cmdline(std::process::id()).unwrap();
        let exe = std::env::args().next().unwrap();
        assert!(line.starts_with(&exe), "{line}");
    }
}
