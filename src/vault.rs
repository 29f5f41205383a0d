//! Logins kept on this computer across restarts, in the system's own
//! keyring: the Secret Service on Linux (GNOME Keyring, KWallet), the
//! Keychain on macOS, the Credential Manager on Windows. Cairn never writes
//! a secret anywhere else.
//!
//! A login is kept under the service `Cairn` and an account that names
//! what it opens: `bucket s3://name` for a bucket or container,
//! `source host:port` for a catalog's host. Where the system has no keyring
//! Cairn can reach (no session bus, no Secret Service running), keeping a
//! login fails in words and reading one finds nothing: the login is then
//! used until Cairn closes, and the environment remains the way to give
//! credentials that last.
//!
//! The keyring is reached with blocking calls (D-Bus on Linux): call these
//! from a blocking thread. [`recall`] waits a few seconds at most, so that
//! a lookup made once for a bucket in the middle of other work cannot hold
//! it up for long.

use crate::{Error, Result};

/// The keyring service under which Cairn keeps its logins.
const SERVICE: &str = "Cairn";

fn entry(account: &str) -> std::result::Result<keyring::Entry, keyring::Error> {
    keyring::Entry::new(SERVICE, account)
}

/// Keeps `secret` under `account` in this computer's keyring, in place of
/// what was kept there before.
pub fn remember(account: &str, secret: &str) -> Result<()> {
    entry(account)
        .and_then(|entry| entry.set_password(secret))
        .map_err(|error| unavailable("kept in", &error))
}

/// How long a lookup waits for the keyring: a locked keyring may ask the
/// person to unlock it, and nothing may wait on that without end.
const LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What is kept under `account`, if anything (nothing, too, where the
/// system has no keyring Cairn can reach, or it did not answer within a few
/// seconds).
pub fn recall(account: &str) -> Option<String> {
    let (answer, answered) = std::sync::mpsc::channel();
    let asked = account.to_string();
    // The keyring is asked on a thread of its own, so that a keyring that
    // waits (for an unlock prompt) holds up no one for long.
    let spawned = std::thread::Builder::new()
        .name("cairn-keyring".into())
        .spawn(move || {
            let _ = answer.send(entry(&asked).and_then(|entry| entry.get_password()));
        });
    if spawned.is_err() {
        return None;
    }
    match answered.recv_timeout(LOOKUP_WAIT) {
        Ok(Ok(secret)) => Some(secret),
        Ok(Err(keyring::Error::NoEntry)) => None,
        Ok(Err(error)) => {
            tracing::debug!(%account, "no login read from the keyring: {error}");
            None
        }
        Err(_) => {
            tracing::warn!(
                %account,
                "the system's keyring did not answer within {} seconds (is it locked?); its login is not used",
                LOOKUP_WAIT.as_secs()
            );
            None
        }
    }
}

/// Removes what is kept under `account` (nothing kept: nothing to do).
pub fn forget(account: &str) -> Result<()> {
    match entry(account).and_then(|entry| entry.delete_credential()) {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(unavailable("removed from", &error)),
    }
}

/// A keyring's failure in words: the login could not be `done` (kept in,
/// removed from) this computer's keyring, and why.
fn unavailable(done: &str, error: &keyring::Error) -> Error {
    const NONE: &str = "this computer has no keyring Cairn can reach (on Linux, a Secret Service such as GNOME Keyring or KWallet, on the session's D-Bus)";
    let why = match error {
        keyring::Error::NoDefaultStore => NONE.to_string(),
        keyring::Error::NoStorageAccess(_) => {
            "the keyring is locked, or did not allow it (unlock it, then try again)".to_string()
        }
        keyring::Error::PlatformFailure(inner) => {
            let text = inner.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("dbus_session_bus_address")
                || lower.contains("session bus")
                || lower.contains("org.freedesktop.secrets")
                || lower.contains("no such file")
                || lower.contains("connection refused")
            {
                NONE.to_string()
            } else {
                "the system's keyring did not answer as expected".to_string()
            }
        }
        _ => "the system's keyring did not answer as expected".to_string(),
    };
    tracing::debug!("keyring: {error}");
    Error::invalid_input(format!(
        "The login could not be {done} this computer's keyring: {why}. Credentials that last can instead be set in the environment Cairn starts in"
    ))
}
