//! A child process's stderr captured line by line on a thread of its own, so tests can
//! wait for a log line (a real signal) instead of sleeping.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines read so far, in arrival order.
#[derive(Debug, Default)]
pub struct CapturedLog {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl CapturedLog {
    /// Starts reading `stream` (typically `child.stderr.take()`) until it ends.
    pub fn capture(stream: impl Read + Send + 'static) -> Arc<CapturedLog> {
        let log = Arc::new(CapturedLog::default());
        let reader = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                reader.push(line);
            }
        });
        log
    }

    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
        self.grew.notify_all();
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits until `count` lines contain `needle`; returns the last of them.
    ///
    /// # Panics
    /// On timeout, naming `whose` log and printing it.
    pub fn wait_for(&self, whose: &str, needle: &str, count: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let matching: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
            if matching.len() >= count {
                return matching[count - 1].clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out after {timeout:?} waiting for {count} line(s) containing {needle:?} in the log of {whose}:\n{}",
                lines.join("\n")
            );
            lines = self
                .grew
                .wait_timeout(lines, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_lines_as_they_arrive() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "echo starting; echo ready 1; sleep 0.2; echo noise; echo ready 2",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = CapturedLog::capture(child.stdout.take().unwrap());
        assert_eq!(
            log.wait_for("sh", "ready", 2, Duration::from_secs(10)),
            "ready 2"
        );
        assert_eq!(log.count("ready"), 2);
        assert_eq!(log.lines(), ["starting", "ready 1", "noise", "ready 2"]);
        child.wait().unwrap();
    }

    #[test]
    #[should_panic(expected = "waiting for 1 line(s) containing \"never\"")]
    fn times_out_with_the_log() {
        let log = CapturedLog::capture(std::io::empty());
        log.wait_for("the test", "never", 1, Duration::from_millis(50));
    }
}
