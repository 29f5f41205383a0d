//! One copier per mirror folder, across programs.
//!
//! Jobs of one state file share what they know of a destination (its
//! folders, its catalog), and the job lease keeps one process per job. Two
//! state files do not: the app and a pipeline, or two programs on a
//! computer, copying into one mirror at once would rewrite each other's
//! catalog and collection files. So a run that writes into a folder holds
//! an exclusive lock on the folder itself (`flock` on its handle, through
//! std's `File::try_lock`: no file is added to the mirror, and the system
//! lets the lock go when the process ends, a crash too). Runs of this
//! process into the same folder share one lock: they are coordinated
//! through their state file already.
//!
//! A program that reads the whole folder as one (a bag of the mirror)
//! holds a shared lock on it meanwhile: no run writes into the folder
//! while it reads, and readers do not keep each other out.
//!
//! A file system that keeps no such locks (some network shares, where two
//! computers are then not kept apart) is written without one, as before;
//! so is every folder on a system other than Unix, where a folder cannot
//! be opened as a file.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

/// This process's hold on a mirror folder: while it lives, no other
/// program holding such locks writes into the folder.
#[derive(Debug)]
pub struct Writer {
    id: Option<Identity>,
}

/// A folder's device and inode: the same folder, whatever path leads to it.
type Identity = (u64, u64);

/// A folder this process holds: the open folder the lock is on (closing it
/// lets the lock go), and how many runs share it.
struct Held {
    _dir: std::fs::File,
    holds: usize,
}

/// The folders this process holds. A hold is given up under this lock, so
/// that a run taking the folder meanwhile either shares it or finds it let
/// go, never still locked by this process and taken for another program.
static HELD: Mutex<Option<HashMap<Identity, Held>>> = Mutex::new(None);

impl Writer {
    /// Takes the folder `root` (which exists) for writing. `Ok(None)`: another
    /// program holds it.
    pub fn take(root: &Path) -> io::Result<Option<Writer>> {
        if !cfg!(unix) {
            return Ok(Some(Writer { id: None }));
        }
        let dir = std::fs::File::open(root)?;
        let id = identity(&dir)?;
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let held = held.get_or_insert_with(HashMap::new);
        if let Some(shared) = held.get_mut(&id) {
            shared.holds += 1;
            return Ok(Some(Writer { id: Some(id) }));
        }
        match dir.try_lock() {
            Ok(()) => {
                held.insert(
                    id,
                    Held {
                        _dir: dir,
                        holds: 1,
                    },
                );
                Ok(Some(Writer { id: Some(id) }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            // No locks there (ENOLCK, EOPNOTSUPP...): written as before.
            Err(std::fs::TryLockError::Error(_)) => Ok(Some(Writer { id: None })),
        }
    }
}

/// A hold on a mirror folder for reading it whole (see [`Writer::read`]).
#[derive(Debug)]
pub struct Reading {
    /// The open folder the shared lock is on (`None` where there are no
    /// locks); closing it lets the lock go.
    _dir: Option<std::fs::File>,
}

impl Writer {
    /// Holds the folder `root` (which exists) while it is read whole: no
    /// run (of this process or another program) writes into it meanwhile.
    /// `Ok(None)`: one is writing into it now.
    pub fn read(root: &Path) -> io::Result<Option<Reading>> {
        if !cfg!(unix) {
            return Ok(Some(Reading { _dir: None }));
        }
        let dir = std::fs::File::open(root)?;
        // (A run of this process holds its lock on a handle of its own,
        // which keeps this one out as another program's would.)
        match dir.try_lock_shared() {
            Ok(()) => Ok(Some(Reading { _dir: Some(dir) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(_)) => Ok(Some(Reading { _dir: None })),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = held.as_mut()
            && let Some(shared) = held.get_mut(&id)
        {
            shared.holds -= 1;
            if shared.holds == 0 {
                // Closed here, under the lock: the lock goes with it.
                held.remove(&id);
            }
        }
    }
}

#[cfg(unix)]
fn identity(dir: &std::fs::File) -> io::Result<Identity> {
    use std::os::unix::fs::MetadataExt;
    let meta = dir.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_: &std::fs::File) -> io::Result<Identity> {
    Ok((0, 0))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Whether another program (another open handle) could lock `dir` now;
    /// it lets go at once.
    fn free_for_another(dir: &Path) -> bool {
        let other = std::fs::File::open(dir).unwrap();
        other.try_lock().is_ok()
    }

    #[test]
    fn a_folder_is_shared_within_a_process_and_refused_to_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let first = Writer::take(dir.path()).unwrap().expect("free");
        // Another run of this process shares the hold, by another path too.
        let other_path = dir.path().join(".");
        let second = Writer::take(&other_path).unwrap().expect("shared");
        assert!(!free_for_another(dir.path()));
        drop(first);
        assert!(!free_for_another(dir.path()));
        drop(second);
        // Let go with the last hold.
        assert!(free_for_another(dir.path()));
        // Held by another program: this process is refused.
        let other = std::fs::File::open(dir.path()).unwrap();
        other.try_lock().unwrap();
        assert!(Writer::take(dir.path()).unwrap().is_none());
        drop(other);
        assert!(Writer::take(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_folder_read_whole_is_written_by_no_one_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        // Readers share the folder.
        let first = Writer::read(dir.path()).unwrap().expect("free");
        let second = Writer::read(dir.path()).unwrap().expect("shared");
        // No run writes into it meanwhile, of this process or another.
        assert!(Writer::take(dir.path()).unwrap().is_none());
        assert!(!free_for_another(dir.path()));
        drop(first);
        assert!(Writer::take(dir.path()).unwrap().is_none());
        drop(second);
        let writing = Writer::take(dir.path()).unwrap().expect("free again");
        // Nor is it read whole while a run writes into it.
        assert!(Writer::read(dir.path()).unwrap().is_none());
        drop(writing);
        assert!(Writer::read(dir.path()).unwrap().is_some());
    }
}
