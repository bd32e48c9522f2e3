//! The `Handoff` handle's request/upgrade/drain rules, in this test process
//! with real successor processes (small scripts that fail in known ways).
//!
//! One `Handoff` per process, so this file holds a single test.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use handoff::{DrainReason, Handoff, Started, UpgradeError, UpgradeRequest};

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether `upgrade_requested` finds nothing pending on its first poll.
async fn no_request_pending(handoff: &Handoff) -> bool {
    futures::poll!(std::pin::pin!(handoff.upgrade_requested())).is_pending()
}

#[test]
fn requests_upgrades_and_drain_follow_the_rules() {
    for variable in [
        "NOTIFY_SOCKET",
        "LISTEN_PID",
        "LISTEN_FDS",
        "HANDOFF_PARENT_PID",
    ] {
        // SAFETY: the only test of this binary; no other thread reads the
        // environment yet (the runtime starts below).
        unsafe { std::env::remove_var(variable) };
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // A successor that never reports ready (and ignores its arguments).
        let program = script(dir.path(), "successor", "exec sleep 60");
        let pidfile = dir.path().join("svc.pid");
        let handoff = Handoff::builder()
            .executable(&program)
            .ready_timeout(Duration::from_millis(500))
            .pidfile(&pidfile)
            .start()
            .unwrap();
        assert!(matches!(
            Handoff::start(),
            Err(handoff::StartError::AlreadyStarted)
        ));

        // Not ready yet: no upgrade.
        assert!(matches!(
            handoff.upgrade().await,
            Err(UpgradeError::NotReady)
        ));
        let listener = handoff.listen(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let tcp = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(
            handoff.listen(&tcp),
            Err(handoff::ListenError::DuplicateName(_))
        ));
        assert_eq!(handoff.ready().await.unwrap(), Started::Fresh);
        assert_eq!(handoff::read_pidfile(&pidfile).unwrap(), std::process::id());
        assert_eq!(handoff.ready().await.unwrap(), Started::Fresh, "idempotent");

        // Requests are delivered to the service, merged while pending.
        handoff.request_upgrade();
        handoff.request_upgrade();
        assert_eq!(
            handoff.upgrade_requested().await,
            Some(UpgradeRequest::Call)
        );
        assert!(
            no_request_pending(&handoff).await,
            "the second request was merged into the first"
        );

        // One upgrade at a time; requests during it are ignored.
        let mut first = Box::pin(handoff.upgrade());
        // Its first poll starts the successor; it then waits for readiness.
        assert!(futures::poll!(first.as_mut()).is_pending());
        assert!(matches!(
            handoff.upgrade().await,
            Err(UpgradeError::InProgress)
        ));
        handoff.request_upgrade();
        match first.await {
            Err(UpgradeError::Timeout { pid, .. }) => {
                assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            no_request_pending(&handoff).await,
            "the request made during the upgrade was dropped"
        );
        assert_eq!(handoff.drain_reason(), None, "still serving");
        assert_eq!(handoff::read_pidfile(&pidfile).unwrap(), std::process::id());

        // Shutdown: draining fires, no more upgrades, the pidfile goes.
        handoff.shutdown();
        tokio::time::timeout(Duration::from_secs(5), handoff.draining().wait())
            .await
            .unwrap();
        assert_eq!(handoff.upgrade_requested().await, None);
        assert!(matches!(
            handoff.upgrade().await,
            Err(UpgradeError::Draining(DrainReason::Shutdown {
                signal: None
            }))
        ));
        drop(listener);
        assert_eq!(
            handoff.finish(),
            Some(DrainReason::Shutdown { signal: None })
        );
        assert!(!pidfile.exists());
    });
}
