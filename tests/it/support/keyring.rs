//! A real Secret Service on a private session bus: `dbus-daemon --session`
//! and GNOME Keyring's daemon (Debian's `gnome-keyring`), its login keyring
//! made and unlocked with a test password, in a temporary home. Processes
//! given [`Keyring::env`] keep and read logins there, as on a desktop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bus and the keyring daemon, stopped when dropped.
pub struct Keyring {
    pub address: String,
    bus: Child,
    daemon: Child,
    _home: tempfile::TempDir,
}

impl Keyring {
    pub fn start() -> Keyring {
        let home = tempfile::tempdir().unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start dbus-daemon ({e}); run the README's test command, which installs it")
            });
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon gave no address");
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start gnome-keyring-daemon ({e}); run the README's test command, which installs it")
            });
        // The login keyring's password, then the end of input.
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"cairn-test-keyring")
            .unwrap();
        let keyring = Keyring {
            address,
            bus,
            daemon,
            _home: home,
        };
        keyring.wait_for_service();
        keyring
    }

    /// The environment a process needs to reach this keyring.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS", self.address.clone())]
    }

    /// Waits until the Secret Service answers on the bus.
    fn wait_for_service(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let asked = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&asked.stdout).contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GNOME Keyring did not start on the test bus in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
