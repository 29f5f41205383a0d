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
//! from a blocking thread, not from the middle of async work.

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
        .map_err(|error| unavailable(&error))
}

/// What is kept under `account`, if anything (nothing, too, where the
/// system has no keyring Cairn can reach).
pub fn recall(account: &str) -> Option<String> {
    match entry(account).and_then(|entry| entry.get_password()) {
        Ok(secret) => Some(secret),
        Err(keyring::Error::NoEntry) => None,
        Err(error) => {
            tracing::debug!(%account, "no login read from the keyring: {error}");
            None
        }
    }
}

/// Removes what is kept under `account` (nothing kept: nothing to do).
pub fn forget(account: &str) -> Result<()> {
    match entry(account).and_then(|entry| entry.delete_credential()) {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(unavailable(&error)),
    }
}

/// Whether this computer has a keyring Cairn can keep logins in, and if
/// not, why, in words.
pub fn status() -> Result<()> {
    match keyring::Entry::store_status() {
        Ok(()) => Ok(()),
        Err(error) => Err(unavailable(error)),
    }
}

/// A keyring's failure in words.
fn unavailable(error: &keyring::Error) -> Error {
    let why = match error {
        keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) => {
            "this computer has no keyring Cairn can reach (on Linux, a Secret Service such as GNOME Keyring or KWallet, on the session's D-Bus)"
                .to_string()
        }
        keyring::Error::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.contains("DBUS_SESSION_BUS_ADDRESS")
                || text.to_ascii_lowercase().contains("session bus")
                || text.contains("org.freedesktop.secrets")
            {
                "this computer has no keyring Cairn can reach (on Linux, a Secret Service such as GNOME Keyring or KWallet, on the session's D-Bus)".to_string()
            } else {
                format!("the system's keyring refused: {text}")
            }
        }
        other => format!("the system's keyring refused: {other}"),
    };
    Error::invalid_input(format!(
        "The login could not be kept in this computer's keyring: {why}. Credentials that last can instead be set in the environment Cairn starts in"
    ))
}
