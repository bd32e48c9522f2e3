//! Clean-up on Ctrl-C for the long-running programs (`hoist-demo`, the fleet
//! benchmark): their `Host` and `S3Server` guards clean up on return and on panic,
//! but a signal would end the process without running them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU32, Ordering};

use hoist_testkit::container;

/// Process group of the S3 server to kill on a signal (0: none).
static S3_SERVER_PGID: AtomicU32 = AtomicU32::new(0);
/// Directories to remove on a signal.
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread started from
/// here on (child processes start with an empty mask), and starts one thread that
/// waits for them: on the first, it kills the containers this process booted and the
/// registered S3 server, removes the registered directories, and exits 130.
///
/// Call it first thing in `main`, before any other thread starts.
pub fn clean_up_on_signal() {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    if signals.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if let Ok(signal) = signals.wait() {
            eprintln!(
                "\n{signal:?}: stopping the containers and the S3 server, removing their files"
            );
            container::kill_hosts_of_this_process();
            let pgid = S3_SERVER_PGID.load(Ordering::SeqCst);
            if let Ok(pgid) = i32::try_from(pgid)
                && pgid > 0
            {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
            }
            for dir in DIRS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        }
    });
}

/// Kill the S3 server whose process group is `pgid` on a signal
/// (`S3Server::pid`: the server leads its own group).
pub fn kill_s3_server_on_signal(pgid: u32) {
    S3_SERVER_PGID.store(pgid, Ordering::SeqCst);
}

/// Remove `dir` on a signal.
pub fn remove_on_signal(dir: PathBuf) {
    DIRS.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(dir);
}
