//! Running `hello` as a real process group, killed and reaped on drop.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::http::{HelloInfo, HttpResponse, get};
use crate::captured_log::CapturedLog;

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read the
/// port, close). Another process may take it before you bind it; tests use it
/// right away.
///
/// # Panics
/// If no ephemeral port can be bound.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    listener
        .local_addr()
        .expect("a bound socket has a local address")
        .port()
}

/// Polls `probe` every 5 ms until it returns `Some`, for at most `timeout`.
///
/// # Panics
/// With "timed out after …: waiting for {what}" when the deadline passes.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_ascii_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Variables of the supervision protocols hello honours.
const INHERITED_PROTOCOL_VARS: [&str; 7] = [
    "NOTIFY_SOCKET",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "HANDOFF_PARENT_PID",
    "HANDOFF_LISTENERS",
    "HANDOFF_READY_FD",
];

/// How to start `hello`: program, listeners, pidfile, timeouts, extra args and
/// environment. Defaults: one listener on a free 127.0.0.1 port, a pidfile in
/// a temporary directory, `--ready-timeout 30s --drain-deadline 30s
/// --idle-grace 1s` (hello's own defaults).
#[derive(Debug)]
pub struct HelloCommand {
    program: PathBuf,
    addr: SocketAddr,
    pidfile: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: tempfile::TempDir,
}

impl HelloCommand {
    /// A command running `program` (a `hello` executable).
    ///
    /// # Panics
    /// If no temporary directory can be created.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hello-run-")
            .tempdir()
            .expect("create a temporary directory for hello's pidfile");
        HelloCommand {
            program: program.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            pidfile: dir.path().join("hello.pid"),
            args: Vec::new(),
            env: Vec::new(),
            dir,
        }
    }

    /// Listen on `addr` instead of a free port.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// `--ready-timeout`: how long an upgrade waits for the new process.
    pub fn ready_timeout(self, timeout: Duration) -> Self {
        self.duration_flag("--ready-timeout", timeout)
    }

    /// `--drain-deadline`.
    pub fn drain_deadline(self, deadline: Duration) -> Self {
        self.duration_flag("--drain-deadline", deadline)
    }

    /// `--idle-grace`.
    pub fn idle_grace(self, grace: Duration) -> Self {
        self.duration_flag("--idle-grace", grace)
    }

    /// An extra argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An extra environment variable.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A directory removed with the [`HelloProcess`], for sockets and files of the test.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The address it will listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full argument list after the program: `--listen`, `--pidfile`, extras.
    pub fn arguments(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            self.addr.to_string().into(),
            "--pidfile".into(),
            self.pidfile.clone().into(),
        ];
        args.extend(self.args.iter().cloned());
        args
    }

    /// Starts `program` with [`arguments`](Self::arguments) and the environment.
    pub fn spawn(self) -> HelloProcess {
        let mut command = Command::new(&self.program);
        command.args(self.arguments());
        self.spawn_command(command)
    }

    /// Starts a custom command (e.g. a wrapper that execs `hello`, for socket
    /// activation) with this command's environment, guarded like
    /// [`spawn`](Self::spawn). The command must make `hello` listen on
    /// [`listen_addr`](Self::listen_addr) with the pidfile of this command.
    ///
    /// # Panics
    /// If the command cannot be started.
    pub fn spawn_command(self, mut command: Command) -> HelloProcess {
        // Nothing of the test runner's own supervision leaks into hello: it only
        // sees NOTIFY_SOCKET or LISTEN_* when the test sets them.
        for variable in INHERITED_PROTOCOL_VARS {
            command.env_remove(variable);
        }
        command
            // Info level, which the log lines tests wait for need.
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so drop can kill upgraded successors too.
            .process_group(0);
        let mut child = spawn_retrying_busy_text(&mut command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let log = match child.stderr.take() {
            Some(stderr) => CapturedLog::capture(stderr),
            None => Arc::default(),
        };
        HelloProcess {
            child,
            addr: self.addr,
            pidfile: self.pidfile,
            log,
            _dir: self.dir,
        }
    }

    fn duration_flag(mut self, flag: &str, duration: Duration) -> Self {
        self.args.push(flag.into());
        self.args.push(format!("{}ms", duration.as_millis()).into());
        self
    }
}

/// A running `hello` and its successors (one process group). Dropping it kills
/// the group with SIGKILL and reaps the first process; if the test is
/// panicking, the captured log is printed first.
#[derive(Debug)]
pub struct HelloProcess {
    child: Child,
    addr: SocketAddr,
    pidfile: PathBuf,
    log: Arc<CapturedLog>,
    _dir: tempfile::TempDir,
}

impl HelloProcess {
    /// The pid of the process this guard started (not of its successors).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its pidfile.
    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// The pid in the pidfile, if it holds one now.
    pub fn pidfile_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Polls `GET /` until it answers 200 with a version and pid.
    ///
    /// # Panics
    /// On timeout, or if the first process exits meanwhile (with its log).
    pub fn wait_serving(&self, timeout: Duration) -> HelloInfo {
        wait_until("hello to answer GET /", timeout, || {
            self.assert_group_alive();
            let response = get(self.addr, "/", Duration::from_secs(2)).ok()?;
            (response.status == 200).then(|| response.hello_info())?
        })
    }

    /// Polls until the pidfile names a pid other than `old`; returns it.
    ///
    /// # Panics
    /// On timeout.
    pub fn wait_pidfile_change(&self, old: u32, timeout: Duration) -> u32 {
        wait_until(
            &format!("the pidfile to name a pid other than {old}"),
            timeout,
            || self.pidfile_pid().filter(|pid| *pid != old),
        )
    }

    /// Sends `signal` to `pid` (ignores a process that is already gone).
    pub fn signal(&self, pid: u32, signal: Signal) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// Upgrades the serving process (SIGUSR2 to the pid in the pidfile), waits
    /// until the pidfile names the successor and `GET /` is answered by it;
    /// returns its pid. The old process stops accepting right after the
    /// successor confirmed the handover, so for a moment both may answer.
    ///
    /// # Panics
    /// If there is no pidfile, or the successor does not take over within `timeout`.
    pub fn upgrade(&self, timeout: Duration) -> u32 {
        let old = self
            .pidfile_pid()
            .expect("hello has written its pidfile (wait_serving first)");
        self.signal(old, Signal::SIGUSR2);
        let successor = self.wait_pidfile_change(old, timeout);
        self.wait_served_by(successor, timeout);
        successor
    }

    /// Polls `GET /` until process `pid` answers it (by its `x-hello-pid`
    /// header, so broken builds answering 500 count); returns the response.
    ///
    /// # Panics
    /// On timeout.
    pub fn wait_served_by(&self, pid: u32, timeout: Duration) -> HttpResponse {
        let pid_text = pid.to_string();
        wait_until(&format!("pid {pid} to answer GET /"), timeout, || {
            let response = get(self.addr, "/", Duration::from_secs(2)).ok()?;
            (response.header("x-hello-pid") == Some(pid_text.as_str())).then_some(response)
        })
    }

    /// The first process's exit status if it has exited (reaps it).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the first process to exit.
    ///
    /// # Panics
    /// If it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id();
        wait_until(&format!("hello (pid {pid}) to exit"), timeout, || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Everything the group wrote to stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log.count(needle)
    }

    /// Waits until `count` log lines contain `needle`; returns the last of them.
    ///
    /// # Panics
    /// On timeout, with the log.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) -> String {
        self.log.wait_for("hello", needle, count, timeout)
    }

    fn assert_group_alive(&self) {
        // try_wait needs &mut; /proc tells without reaping.
        assert!(
            pid_alive(self.child.id()) || self.pidfile_pid().is_some_and(pid_alive),
            "hello exited; log:\n{}",
            self.log().join("\n")
        );
    }
}

impl Drop for HelloProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- hello log ---\n{}\n--- end ---", self.log().join("\n"));
        }
        // The group id is the first pid; Linux does not reuse it while any
        // member of the group or the unreaped first process exists.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command`, retrying while exec fails with ETXTBSY.
///
/// Tests copy binaries and then run them while other test threads fork: a child
/// forked while the copy's write descriptor was still open holds it until that child
/// execs, and an exec of the copy in that window fails with "Text file busy". The
/// window is a few milliseconds; this is the usual remedy (Go's os/exec does the same).
pub(crate) fn spawn_retrying_busy_text(
    command: &mut Command,
) -> std::io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
