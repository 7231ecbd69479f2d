//! UUCP lock files, so minicom, pppd, ModemManager and mserver don't fight over a port (FHS 3.0
//! §5.9: `/var/lock/LCK..<device>`, holding the owner's pid as ten ASCII digits and a newline,
//! `%10d\n`). Owns the lock file of one open line; it must not open the device (that stays
//! [`super::open`], which also takes the kernel's exclusive open, TIOCEXCL + flock).
//!
//! The name is the path under `/dev` with `/` turned into `_` (`/dev/ttyS0` → `LCK..ttyS0`,
//! `/dev/pts/3` → `LCK..pts_3`), as pppd and lockdev do. Created with `O_EXCL`; a lock whose pid
//! is gone (or that holds no readable pid) is stale and removed, once. The file is removed when
//! the last clone of the line drops.
//!
//! The lock directory (`/run/lock`) is world-writable (mode 1777), so any local user can plant
//! a lock naming any live pid (finding N16). A lock of a live pid is honoured only when it
//! checks out: the lock file's owner is root or the holder's own uid (as an honest holder
//! writes it), and — when `/proc/<pid>/fd` is readable (the same uid, or root) — the holder
//! has the device open (checked twice, 200 ms apart, for a holder between its lock and its
//! open). A lock that fails either check is ignored, logged at WARN and replaced. A holder
//! whose descriptors cannot be read (another user's process, mserver not root) is honoured
//! when the owners match: the kernel's exclusive open still guards the line.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a holder may take between writing its lock and opening the device.
const OPEN_GRACE: Duration = Duration::from_millis(200);

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
                    Some(pid) if alive(pid) => match check_holder(pid, &path, device) {
                        Verdict::Holds | Verdict::Unverifiable => {
                            return Err(LockError::Held {
                                device: device.to_path_buf(),
                                lock: path,
                                pid,
                                program: program_of(pid),
                            });
                        }
                        bogus => {
                            tracing::warn!(
                                lock = %path.display(),
                                pid,
                                program = program_of(pid).as_deref().unwrap_or("?"),
                                "ignoring a UUCP lock that does not check out: {}; replacing it",
                                bogus.why(device)
                            );
                            if let Err(e) = std::fs::remove_file(&path) {
                                if e.kind() != io::ErrorKind::NotFound {
                                    return Err(io_error(&path, &e));
                                }
                            }
                        }
                    },
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

/// What a live lock holder turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It has the device open.
    Holds,
    /// Its descriptors cannot be read; the owners match: honoured.
    Unverifiable,
    /// The lock file's owner is neither root nor the process's uid: planted.
    OwnerMismatch {
        /// The lock file's owner.
        file_uid: u32,
        /// The process's uid.
        proc_uid: u32,
    },
    /// Its descriptors were read and the device is not among them.
    NotOpen,
}

impl Verdict {
    fn why(self, device: &Path) -> String {
        match self {
            Verdict::OwnerMismatch { file_uid, proc_uid } => format!(
                "the lock file belongs to uid {file_uid}, the process named in it to uid {proc_uid}"
            ),
            Verdict::NotOpen => format!(
                "the process named in it does not have {} open",
                device.display()
            ),
            Verdict::Holds | Verdict::Unverifiable => "it is held".into(),
        }
    }
}

/// Whether live `pid`, named in the lock file `lock`, really holds `device`.
fn check_holder(pid: i32, lock: &Path, device: &Path) -> Verdict {
    let file_uid = std::fs::metadata(lock).map(|m| m.uid()).ok();
    let proc_uid = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    if let (Some(file_uid), Some(proc_uid)) = (file_uid, proc_uid) {
        if file_uid != 0 && file_uid != proc_uid {
            return Verdict::OwnerMismatch { file_uid, proc_uid };
        }
    }
    match has_open(pid, device) {
        Some(true) => Verdict::Holds,
        None => Verdict::Unverifiable,
        Some(false) => {
            // Between its lock and its open (pppd locks first, as we do)?
            std::thread::sleep(OPEN_GRACE);
            match has_open(pid, device) {
                Some(true) => Verdict::Holds,
                None => Verdict::Unverifiable,
                Some(false) => Verdict::NotOpen,
            }
        }
    }
}

/// Whether `pid` has `device` open (`/proc/<pid>/fd`); `None` when that cannot be read.
fn has_open(pid: i32, device: &Path) -> Option<bool> {
    let target = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut any = false;
    for fd in fds.flatten() {
        any = true;
        if let Ok(l) = std::fs::read_link(fd.path()) {
            if l == target || l == device {
                return Some(true);
            }
        }
    }
    // An empty listing of a live process we may not read (some kernels list nothing).
    if !any && std::fs::read_link(format!("/proc/{pid}/exe")).is_err() {
        return None;
    }
    Some(false)
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

    /// A child process, killed and reaped on drop.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// `sleep 30` with `open` (if any) as its stdin: a process that has that file open.
    fn sleeper(open: Option<&Path>) -> Child {
        let mut c = std::process::Command::new("sleep");
        c.arg("30");
        if let Some(p) = open {
            c.stdin(std::fs::File::open(p).expect("open device stand-in"));
        }
        Child(c.spawn().expect("spawn sleep"))
    }

    #[test]
    fn live_holder_is_named_and_stale_lock_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The "device": a file the holder has open (lock names follow the path).
        let dev = dir.path().join("ttyUSB0");
        std::fs::write(&dev, "").expect("device stand-in");
        let path = dir.path().join(lock_name(&dev));
        // A live holder that has the device open.
        let holder = sleeper(Some(dev.as_path()));
        let pid = holder.0.id() as i32;
        std::fs::write(&path, format!("{pid:>10}\n")).expect("write");
        match acquire(dir.path(), &dev) {
            Err(e @ LockError::Held { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!(
                        "serial device {} is locked by pid {pid} (sleep)",
                        dev.display()
                    )),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        drop(holder);
        // A pid that cannot exist (above pid_max's hard limit of 2^22).
        std::fs::write(&path, format!("{:>10}\n", 9_999_999)).expect("write");
        let lock = acquire(dir.path(), &dev).expect("stale lock taken over");
        assert_eq!(read_pid(lock.path()), Some(std::process::id() as i32));
        // Garbage is stale too.
        drop(lock);
        std::fs::write(&path, b"garbage").expect("write");
        assert!(acquire(dir.path(), &dev).is_ok());
    }

    /// Finding N16: a lock naming a live process that does not have the device open (a lock
    /// planted in the world-writable lock directory) is ignored and replaced.
    #[test]
    fn a_live_pid_without_the_device_open_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = dir.path().join("ttyS7");
        std::fs::write(&dev, "").expect("device stand-in");
        let path = dir.path().join(lock_name(&dev));
        let bystander = sleeper(None);
        std::fs::write(&path, format!("{:>10}\n", bystander.0.id())).expect("write");
        assert_eq!(
            check_holder(bystander.0.id() as i32, &path, &dev),
            Verdict::NotOpen
        );
        let lock = acquire(dir.path(), &dev).expect("planted lock ignored");
        assert_eq!(read_pid(lock.path()), Some(std::process::id() as i32));
    }

    /// Finding N16: a lock file owned by one user naming another user's process (pid 1,
    /// init, is always alive) is planted: ignored. Root only (to chown the file).
    #[test]
    fn a_lock_owned_by_another_user_than_its_pid_is_ignored() {
        if !masqdial_testkit::root_available("lock_owner_mismatch", "chown of a lock file") {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = dir.path().join("ttyS8");
        std::fs::write(&dev, "").expect("device stand-in");
        let path = dir.path().join(lock_name(&dev));
        std::fs::write(&path, format!("{:>10}\n", 1)).expect("write");
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
        assert_eq!(
            check_holder(1, &path, &dev),
            Verdict::OwnerMismatch {
                file_uid: 65534,
                proc_uid: 0
            }
        );
        let lock = acquire(dir.path(), &dev).expect("planted lock ignored");
        assert_eq!(read_pid(lock.path()), Some(std::process::id() as i32));
    }

    /// The unit can write the lock directory under `ProtectSystem=strict`.
    #[test]
    fn the_unit_may_write_the_lock_directory() {
        let unit = include_str!("../../../deploy/mserver.service");
        assert!(unit
            .lines()
            .any(|l| l == "ReadWritePaths=-/run/lock -/var/lock"));
        assert!(unit.contains("ProtectSystem=strict"));
        assert_eq!(DEFAULT_LOCK_DIR, "/var/lock");
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
