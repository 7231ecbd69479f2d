//! UUCP lock files, so minicom, pppd, ModemManager and mserver don't fight over a port (FHS 3.0
//! §5.9: `/var/lock/LCK..<device>`, holding the owner's pid as ten ASCII digits and a newline,
//! `%10d\n`). Owns the lock file of one open line; it must not open the device (that stays
//! [`super::open`], which also takes the kernel's exclusive open, TIOCEXCL + flock).
//!
//! The name is the path under `/dev` with `/` turned into `_` (`/dev/ttyS0` → `LCK..ttyS0`,
//! `/dev/pts/3` → `LCK..pts_3`), as pppd and lockdev do. Created with `O_EXCL`; a lock whose pid
//! is gone (or that holds no readable pid) is stale and removed, once. The file is removed when
//! the last clone of the line drops.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Default lock directory (FHS).
pub const DEFAULT_LOCK_DIR: &str = "/var/lock";

/// Why a port could not be locked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error("serial device {device} is locked by pid {pid} ({program}) via {lock}", program = program.as_deref().unwrap_or("unknown program"), lock = lock.display())]
    Held {
        /// The device.
        device: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid.
        pid: i32,
        /// The holder's program (`/proc/PID/comm`), if readable.
        program: Option<String>,
    },
    /// The lock file could not be created or read.
    #[error("lock file {}: {message}", lock.display())]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// What the OS said.
        message: String,
        /// The directory is missing or not writable (the caller may go on unlocked).
        unavailable: bool,
    },
}

/// A held lock; removes its file on drop.
#[derive(Debug)]
pub struct LineLock {
    path: PathBuf,
}

impl LineLock {
    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LineLock {
    fn drop(&mut self) {
        // Only our own lock: never remove one a later owner wrote after a stale-lock takeover.
        if read_pid(&self.path) == Some(std::process::id() as i32) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `LCK..` file name of `device`.
#[must_use]
pub fn lock_name(device: &Path) -> String {
    let rel = device.strip_prefix("/dev").unwrap_or(device);
    let s = rel
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    format!("LCK..{s}")
}

/// Takes the UUCP lock of `device` in `dir`.
pub fn acquire(dir: &Path, device: &Path) -> Result<LineLock, LockError> {
    let path = dir.join(lock_name(device));
    let me = std::process::id() as i32;
    for attempt in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let write = f.write_all(format!("{me:>10}\n").as_bytes());
                if let Err(e) = write {
                    let _ = std::fs::remove_file(&path);
                    return Err(io_error(&path, &e));
                }
                return Ok(LineLock { path });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt == 0 => {
                match read_pid(&path) {
                    Some(pid) if pid == me => {
                        // Ours already (a second open in this process): the kernel's exclusive
                        // open decides; share nothing here.
                        return Err(LockError::Held {
                            device: device.to_path_buf(),
                            lock: path,
                            pid,
                            program: program_of(pid),
                        });
                    }
                    Some(pid) if alive(pid) => {
                        return Err(LockError::Held {
                            device: device.to_path_buf(),
                            lock: path,
                            pid,
                            program: program_of(pid),
                        });
                    }
                    stale => {
                        tracing::info!(lock = %path.display(), pid = ?stale, "removing stale UUCP lock");
                        if let Err(e) = std::fs::remove_file(&path) {
                            if e.kind() != io::ErrorKind::NotFound {
                                return Err(io_error(&path, &e));
                            }
                        }
                    }
                }
            }
            Err(e) => return Err(io_error(&path, &e)),
        }
    }
    Err(LockError::Io {
        lock: path,
        message: "lock file reappeared after removing a stale one".into(),
        unavailable: false,
    })
}

fn io_error(path: &Path, e: &io::Error) -> LockError {
    LockError::Io {
        lock: path.to_path_buf(),
        message: e.to_string(),
        unavailable: matches!(
            e.kind(),
            io::ErrorKind::NotFound
                | io::ErrorKind::PermissionDenied
                | io::ErrorKind::ReadOnlyFilesystem
        ),
    }
}

/// The pid in a lock file: ASCII (FHS, any padding), or the old 4-byte binary form.
fn read_pid(path: &Path) -> Option<i32> {
    let mut b = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_end(&mut b)
        .ok()?;
    if let Ok(pid) = std::str::from_utf8(&b).ok()?.trim().parse::<i32>() {
        return (pid > 0).then_some(pid);
    }
    let raw: [u8; 4] = b.get(..4)?.try_into().ok()?;
    let pid = i32::from_ne_bytes(raw);
    (b.len() == 4 && pid > 0).then_some(pid)
}

fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // Exists but belongs to someone else.
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn program_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pppd() {
        assert_eq!(lock_name(Path::new("/dev/ttyS0")), "LCK..ttyS0");
        assert_eq!(lock_name(Path::new("/dev/pts/3")), "LCK..pts_3");
        assert_eq!(
            lock_name(Path::new("/dev/serial/by-id/usb-x")),
            "LCK..serial_by-id_usb-x"
        );
    }

    #[test]
    fn fhs_format_exclusive_and_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = Path::new("/dev/ttyS0");
        let lock = acquire(dir.path(), dev).expect("lock");
        let text = std::fs::read_to_string(lock.path()).expect("read");
        assert_eq!(text, format!("{:>10}\n", std::process::id()));
        assert_eq!(text.len(), 11);
        // A second taker (same process here) is refused with our pid and program.
        match acquire(dir.path(), dev) {
            Err(LockError::Held { pid, program, .. }) => {
                assert_eq!(pid, std::process::id() as i32);
                assert_eq!(program, program_of(pid));
                assert!(program.is_some());
            }
            other => panic!("{other:?}"),
        }
        let p = lock.path().to_path_buf();
        drop(lock);
        assert!(!p.exists());
    }

    #[test]
    fn live_holder_is_named_and_stale_lock_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = Path::new("/dev/ttyUSB0");
        let path = dir.path().join("LCK..ttyUSB0");
        // A live holder: pid 1 (init) always exists.
        std::fs::write(&path, format!("{:>10}\n", 1)).expect("write");
        match acquire(dir.path(), dev) {
            Err(e @ LockError::Held { pid: 1, .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("serial device /dev/ttyUSB0 is locked by pid 1 ("),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A pid that cannot exist (above pid_max's hard limit of 2^22).
        std::fs::write(&path, format!("{:>10}\n", 9_999_999)).expect("write");
        let lock = acquire(dir.path(), dev).expect("stale lock taken over");
        assert_eq!(read_pid(lock.path()), Some(std::process::id() as i32));
        // Garbage is stale too.
        drop(lock);
        std::fs::write(&path, b"garbage").expect("write");
        assert!(acquire(dir.path(), dev).is_ok());
    }

    #[test]
    fn missing_dir_is_unavailable() {
        match acquire(
            Path::new("/nonexistent-masqdial-lock-dir"),
            Path::new("/dev/ttyS1"),
        ) {
            Err(LockError::Io {
                unavailable: true, ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
