//! One copier per mirror folder, across programs.
//!
//! Jobs of one state file share what they know of a destination (its
//! folders, its catalog), and the job lease keeps one process per job. Two
//! state files do not: the app and a pipeline, or two computers sharing a
//! drive, copying into one mirror at once would rewrite each other's
//! catalog and collection files. So a run that writes into a folder holds
//! an exclusive lock on the folder itself (`flock` on its handle: no file
//! is added to the mirror, and the system lets the lock go when the process
//! ends, a crash too). Runs of this process into the same folder share one
//! lock: they are coordinated through their state file already.
//!
//! A file system without such locks (some network shares) is written
//! without one, as before.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// This process's hold on a mirror folder: while any copy of it lives, no
/// other program holding such locks writes into the folder.
#[derive(Debug, Clone)]
pub struct Writer {
    _held: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    /// The open folder the lock is on (closing it lets the lock go);
    /// `None` where the file system keeps no locks.
    _dir: Option<std::fs::File>,
}

/// A folder's device and inode: the same folder, whatever path leads to it.
type Identity = (u64, u64);

/// The folders this process holds.
static HELD: Mutex<Vec<(Identity, Weak<Held>)>> = Mutex::new(Vec::new());

impl Writer {
    /// Takes the folder `root` (which exists) for writing. `Ok(None)`: another
    /// program holds it.
    pub fn take(root: &Path) -> io::Result<Option<Writer>> {
        let dir = std::fs::File::open(root)?;
        let id = identity(&dir)?;
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = held
            .iter()
            .find(|(at, _)| *at == id)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(Some(Writer { _held: shared }));
        }
        let dir = match lock(&dir) {
            Locked::Yes => Some(dir),
            Locked::Elsewhere => return Ok(None),
            Locked::Unsupported => None,
        };
        let shared = Arc::new(Held { _dir: dir });
        held.push((id, Arc::downgrade(&shared)));
        Ok(Some(Writer { _held: shared }))
    }
}

enum Locked {
    Yes,
    Elsewhere,
    Unsupported,
}

#[cfg(unix)]
fn identity(dir: &std::fs::File) -> io::Result<Identity> {
    use std::os::unix::fs::MetadataExt;
    let meta = dir.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(unix)]
fn lock(dir: &std::fs::File) -> Locked {
    use rustix::fs::{FlockOperation, flock};
    use rustix::io::Errno;
    match flock(dir, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Locked::Yes,
        Err(Errno::WOULDBLOCK) => Locked::Elsewhere,
        Err(Errno::INTR) => lock(dir),
        // No locks there (ENOLCK, EOPNOTSUPP...): written as before.
        Err(_) => Locked::Unsupported,
    }
}

#[cfg(not(unix))]
fn identity(_: &std::fs::File) -> io::Result<Identity> {
    Ok((0, 0))
}

#[cfg(not(unix))]
fn lock(_: &std::fs::File) -> Locked {
    Locked::Unsupported
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_shared_within_a_process_and_refused_to_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let first = Writer::take(dir.path()).unwrap().expect("free");
        // Another run of this process shares the hold.
        let second = Writer::take(dir.path()).unwrap().expect("shared");
        // Another program's lock is another open folder: refused while held.
        let other = std::fs::File::open(dir.path()).unwrap();
        assert!(matches!(lock(&other), Locked::Elsewhere));
        drop(first);
        assert!(matches!(lock(&other), Locked::Elsewhere));
        drop(second);
        // Let go with the last hold.
        assert!(matches!(lock(&other), Locked::Yes));
        // And now this process is the one refused.
        assert!(Writer::take(dir.path()).unwrap().is_none());
    }
}
