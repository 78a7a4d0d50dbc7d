//! One writer per state file: an exclusive lock on `<file>.lock`, which names the holder's
//! pid, so that a second embedded run on the same file fails at once and says who has it
//! (two runs writing one history and one tag cache would each trust the other's half-done
//! work). The lock is the kernel's (`flock`): it goes with the process, so a run killed
//! with `kill -9` leaves no stale lock behind, only a stale pid in the file that the next
//! holder overwrites.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::schema::StateError;

/// The held lock; released when dropped (or when the process ends, however it ends).
pub(crate) struct Holder {
    _file: File,
}

/// The lock file of the state file at `path`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock of the state file at `path`, or says which process holds it.
pub(crate) fn take(path: &Path) -> Result<Holder, StateError> {
    let lock = lock_path(path);
    let io = |e: std::io::Error| StateError::Io {
        path: path.to_path_buf(),
        why: format!("cannot open its lock file {}: {e}", lock.display()),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StateError::InUse {
                path: path.to_path_buf(),
                pid: holder_pid(&mut file),
            })
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(Holder { _file: file })
}

/// The pid the holder wrote into the lock file (none while it has not written it yet).
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The pid the last holder of the lock of the state file at `path` wrote (it may have
/// ended since: see [`alive`]).
pub(crate) fn last_holder(path: &Path) -> Option<u32> {
    let mut file = File::open(lock_path(path)).ok()?;
    holder_pid(&mut file)
}

/// Whether the process `pid` is alive on this machine (a run whose pid is gone was
/// interrupted).
pub(crate) fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
