//! Two `hoist release` processes racing on one key: exactly one wins, the other
//! stores nothing and exits non-zero with a clear message.
//!
//! To make the race real and deterministic, both processes talk to moto through a
//! small TCP relay that holds every PUT until both have sent theirs (so both looked at
//! the key before either wrote), then forwards them one after the other. The relay
//! only delays bytes; moto answers everything.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod s3_common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hoist_testkit::s3server::S3Server;
use s3_common::*;

const KEY: &str = "releases/hello.deb";

/// How many PUTs the relay holds before letting the first one through.
const RACERS: usize = 2;

#[derive(Default)]
struct GateState {
    /// PUT requests seen so far.
    arrived: usize,
    /// Forwarded PUTs whose response has started to come back.
    answered: usize,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    /// Blocks the `index`-th PUT until all racers arrived and every earlier PUT was
    /// answered. Gives up after 30 s so a broken test fails instead of hanging.
    fn wait_turn(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.state.lock().unwrap();
        let index = state.arrived;
        state.arrived += 1;
        self.changed.notify_all();
        while !(state.arrived >= RACERS && state.answered >= index) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                eprintln!("relay: gave up waiting for the other racer");
                return;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn answered(&self) {
        self.state.lock().unwrap().answered += 1;
        self.changed.notify_all();
    }
}

/// A TCP relay to `upstream` that serialises racing PUTs (see the module docs).
struct PutGateRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl PutGateRelay {
    fn start(upstream: SocketAddr) -> PutGateRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Gate::default());
        let stop_flag = stop.clone();
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let gate = gate.clone();
                std::thread::spawn(move || relay(client, upstream, &gate));
            }
        });
        PutGateRelay {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PutGateRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn relay(mut client: TcpStream, upstream: SocketAddr, gate: &Arc<Gate>) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let awaiting_answer = Arc::new(AtomicBool::new(false));
    let (mut server_read, mut client_write) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let (gate_back, awaiting_back) = (gate.clone(), awaiting_answer.clone());
    let back = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = server_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            if awaiting_back.swap(false, Ordering::SeqCst) {
                gate_back.answered();
            }
            if client_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        // Requests on a connection are not pipelined, so a new request starts a read.
        if buf[..n].starts_with(b"PUT ") {
            gate.wait_turn();
            awaiting_answer.store(true, Ordering::SeqCst);
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    let _ = back.join();
}

/// Runs two releases of different packages at once through `relay`; returns
/// (winner's JSON report, loser's stderr, winner's package file).
fn race(
    server: &S3Server,
    relay: &PutGateRelay,
    dir: &std::path::Path,
    debs: [&std::path::Path; 2],
) -> (serde_json::Value, String, std::path::PathBuf) {
    let spawn = |deb: &std::path::Path| {
        hoist(server, dir)
            .args([
                "release",
                "--unsigned",
                "--bucket",
                "rel",
                "--json",
                "--endpoint",
                &relay.endpoint(),
                "--deb",
            ])
            .arg(deb)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [spawn(debs[0]), spawn(debs[1])];
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<_> = (0..2).filter(|&i| outputs[i].status.success()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one release wins:\nA: {}\n{}\nB: {}\n{}",
        stdout(&outputs[0]),
        stderr(&outputs[0]),
        stdout(&outputs[1]),
        stderr(&outputs[1])
    );
    let (w, l) = (winners[0], 1 - winners[0]);
    let report = json(&stdout(&outputs[w]));
    let loser = outputs.into_iter().nth(l).unwrap();
    (report, fails(loser), debs[w].to_path_buf())
}

fn history(server: &S3Server, dir: &std::path::Path) -> Vec<serde_json::Value> {
    json(&ok(run(hoist(server, dir).args([
        "history", "--bucket", "rel", "--key", KEY, "--json",
    ]))))
    .as_array()
    .unwrap()
    .clone()
}

#[test]
fn racing_releases_exactly_one_wins_and_the_loser_stores_nothing() {
    let server = S3Server::moto();
    server.create_bucket("rel", true);
    let dir = tempfile::tempdir().unwrap();
    let a = make_deb(dir.path(), "hello", "1.0", "a");
    let b = make_deb(dir.path(), "hello", "1.1", "b");
    let c = make_deb(dir.path(), "hello", "2.0", "c");
    let d = make_deb(dir.path(), "hello", "2.1", "d");

    // Round 1: the key is new, both write with If-None-Match: *.
    let relay = PutGateRelay::start(server.addr());
    let (won, lost, winner) = race(&server, &relay, dir.path(), [&a, &b]);
    drop(relay);
    assert!(
        lost.contains("changed s3://rel/releases/hello.deb"),
        "{lost}"
    );
    assert!(
        lost.contains("was NOT released") && lost.contains("hoist history"),
        "{lost}"
    );
    let h = history(&server, dir.path());
    assert_eq!(h.len(), 1, "only the winner was stored: {h:?}");
    assert_eq!(h[0]["version_id"], won["version_id"]);
    assert_eq!(h[0]["sha256"], digests(&winner).sha256_hex());

    // Round 2: the key exists, both write with If-Match on the same ETag.
    let relay = PutGateRelay::start(server.addr());
    let (won, lost, winner) = race(&server, &relay, dir.path(), [&c, &d]);
    drop(relay);
    assert!(lost.contains("was NOT released"), "{lost}");
    assert_eq!(won["previous_version_id"], h[0]["version_id"]);
    let h = history(&server, dir.path());
    assert_eq!(h.len(), 2, "one more version, the winner's: {h:?}");
    assert_eq!(h[0]["version_id"], won["version_id"]);
    assert_eq!(h[0]["sha256"], digests(&winner).sha256_hex());
}
