//! The dpkg locks, taken the way dpkg and apt take them: POSIX record locks (`fcntl`
//! `F_SETLK`, whole file, write lock) on `ADMINDIR/lock-frontend` (held by a frontend for
//! its whole run) and `ADMINDIR/lock` (held by dpkg itself while it changes the database).
//!
//! The agent acts as a frontend: it holds `lock-frontend` while it runs dpkg and tells
//! dpkg so with `DPKG_FRONTEND_LOCKED=1`; it only checks that `lock` is free before starting.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// The frontend lock, held until dropped (closing the file releases it).
#[derive(Debug)]
pub struct FrontendLock {
    _file: File,
    path: PathBuf,
}

impl FrontendLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds a lock, as far as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid (0 when not known, e.g. an OFD lock).
    pub pid: i32,
}

/// Result of one attempt to take the locks.
#[derive(Debug)]
pub enum Attempt {
    /// Both locks were free; the frontend lock is now held.
    Acquired(FrontendLock),
    /// `path` is locked by another process.
    Busy {
        /// The lock file that was busy.
        path: PathBuf,
        /// Its holder, when known.
        holder: Option<Holder>,
    },
}

/// Tries once, without blocking, to take `ADMIN/lock-frontend` and to check that
/// `ADMIN/lock` is free. Files are created (mode 0640) when missing, as dpkg does.
pub fn try_acquire(admin_dir: &Path) -> std::io::Result<Attempt> {
    let frontend_path = admin_dir.join("lock-frontend");
    let frontend = open_lock_file(&frontend_path)?;
    if !try_write_lock(&frontend)? {
        let holder = holder(&frontend)?;
        return Ok(Attempt::Busy {
            path: frontend_path,
            holder,
        });
    }
    let db_path = admin_dir.join("lock");
    let db = open_lock_file(&db_path)?;
    // Taking and releasing (by closing) the database lock only tests that it is free;
    // dpkg takes it itself once started.
    if !try_write_lock(&db)? {
        let holder = holder(&db)?;
        return Ok(Attempt::Busy {
            path: db_path,
            holder,
        });
    }
    drop(db);
    Ok(Attempt::Acquired(FrontendLock {
        _file: frontend,
        path: frontend_path,
    }))
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .open(path)
        .map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("cannot open the dpkg lock `{}`: {err}", path.display()),
            )
        })
}

fn whole_file_lock(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

/// `F_SETLK` write lock; `Ok(false)` when another process holds a conflicting lock.
fn try_write_lock(file: &File) -> std::io::Result<bool> {
    let lock = whole_file_lock(libc::F_WRLCK as libc::c_short);
    match fcntl(file.as_fd(), FcntlArg::F_SETLK(&lock)) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN) | Err(Errno::EACCES) => Ok(false),
        Err(err) => Err(std::io::Error::from(err)),
    }
}

/// `F_GETLK`: who would block a write lock (None if nobody, or it was released meanwhile).
fn holder(file: &File) -> std::io::Result<Option<Holder>> {
    let mut lock = whole_file_lock(libc::F_WRLCK as libc::c_short);
    fcntl(file.as_fd(), FcntlArg::F_GETLK(&mut lock)).map_err(std::io::Error::from)?;
    if lock.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(Holder { pid: lock.l_pid }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Kills and reaps the child when dropped (also when an assertion fails).
    struct ChildGuard(std::process::Child);
    impl Drop for ChildGuard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Holds an fcntl write lock on `path` in a separate process (POSIX locks are per
    /// process, so the test process itself cannot conflict with its own lock).
    fn hold_in_child(path: &Path) -> ChildGuard {
        let mut guard = ChildGuard(
            Command::new("python3")
                .args([
                    "-c",
                    "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(60)",
                ])
                .arg(path)
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 is needed for this test (it comes with moto: run `make test-deps`)"),
        );
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(guard.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        guard
    }

    #[test]
    fn free_locks_are_acquired_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = match try_acquire(dir.path()).unwrap() {
            Attempt::Acquired(lock) => lock,
            other => panic!("expected the lock, got {other:?}"),
        };
        assert!(lock.path().ends_with("lock-frontend"));
        assert!(dir.path().join("lock").exists());
        drop(lock);
        assert!(matches!(
            try_acquire(dir.path()).unwrap(),
            Attempt::Acquired(_)
        ));
    }

    #[test]
    fn lock_held_by_another_process_is_busy_and_names_the_holder() {
        for name in ["lock-frontend", "lock"] {
            let dir = tempfile::tempdir().unwrap();
            let child = hold_in_child(&dir.path().join(name));
            match try_acquire(dir.path()).unwrap() {
                Attempt::Busy { path, holder } => {
                    assert!(path.ends_with(name));
                    assert_eq!(
                        holder,
                        Some(Holder {
                            pid: child.0.id() as i32
                        })
                    );
                }
                other => panic!("expected busy for {name}, got {other:?}"),
            }
            drop(child);
            assert!(matches!(
                try_acquire(dir.path()).unwrap(),
                Attempt::Acquired(_)
            ));
        }
    }
}
