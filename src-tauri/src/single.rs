//! One app per state file. The first app holds a lock in the state
//! folder; a second launch (the only way back to a hidden window on a
//! desktop without a tray) finds it held, asks the first to show its
//! window, and ends: two apps would resume the same jobs side by side.
//!
//! The lock is the operating system's file lock, let go when the process
//! ends however it ends. The first app listens on a socket beside it (Unix
//! systems); elsewhere the second launch ends after saying why.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// This process's claim on its state folder.
pub enum Claim {
    /// No other app uses the state folder: this one does, while it holds this.
    First(File),
    /// Another app uses it.
    Taken,
}

/// Claims the state folder `dir` for this process.
pub fn claim(dir: &Path) -> io::Result<Claim> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("app.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Claim::First(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Claim::Taken),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("app.sock")
}

/// Asks the app that holds `dir` to show its window; whether it heard.
#[cfg(unix)]
pub fn ask_first_to_show(dir: &Path) -> bool {
    use std::io::Write;
    std::os::unix::net::UnixStream::connect(socket(dir))
        .and_then(|mut stream| stream.write_all(b"show\n"))
        .is_ok()
}

/// Asks the app that holds `dir` to show its window (not possible here).
#[cfg(not(unix))]
pub fn ask_first_to_show(_dir: &Path) -> bool {
    false
}

/// Listens, for the first app, for later launches asking to show the
/// window; calls `show` for each.
#[cfg(unix)]
pub fn listen(dir: &Path, show: impl Fn() + Send + 'static) -> io::Result<()> {
    use std::io::Read;
    let path = socket(dir);
    // Left by an app that was killed: this process holds the lock now.
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    std::thread::Builder::new()
        .name("cairn-single".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut asked = [0u8; 16];
                if stream
                    .read(&mut asked)
                    .is_ok_and(|n| asked[..n].starts_with(b"show"))
                {
                    show();
                }
            }
        })?;
    Ok(())
}

/// Listens for later launches (not possible here: they only end).
#[cfg(not(unix))]
pub fn listen(_dir: &Path, _show: impl Fn() + Send + 'static) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_and_asks_the_first_to_show() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(held) = claim(dir.path()).unwrap() else {
            panic!("the first claim was refused");
        };
        assert!(matches!(claim(dir.path()).unwrap(), Claim::Taken));
        let (told, heard) = std::sync::mpsc::channel();
        listen(dir.path(), move || {
            let _ = told.send(());
        })
        .unwrap();
        if cfg!(unix) {
            assert!(ask_first_to_show(dir.path()));
            heard
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("the first app was not asked to show its window");
        }
        // Once the first lets go (it ended), the next launch is the first.
        drop(held);
        assert!(matches!(claim(dir.path()).unwrap(), Claim::First(_)));
    }
}
