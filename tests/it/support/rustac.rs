//! A real STAC API: `rustac serve` (PyPI `rustac`) on a free loopback port.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `rustac serve`, killed when dropped.
pub struct RustacServer {
    pub url: url::Url,
    child: Child,
}

impl RustacServer {
    /// Serves the collections, items and item collections in `hrefs`.
    pub fn start(hrefs: &[&Path]) -> RustacServer {
        let port = super::free_port();
        let addr = format!("127.0.0.1:{port}");
        let log_path = std::env::temp_dir().join(format!("cairn-rustac-{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(super::program("CAIRN_RUSTAC", "rustac"))
            .args(["serve", "--use-duckdb", "false", "--create-collections", "--addr", &addr])
            .args(hrefs)
            .stdout(Stdio::null())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start `rustac serve` ({e}); run the README's test command, which installs it")
            });
        super::wait_for_port(&addr, "rustac serve", || {
            child.try_wait().unwrap().map(|status| {
                format!(
                    "{status}: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            })
        });
        RustacServer {
            url: url::Url::parse(&format!("http://{addr}/")).unwrap(),
            child,
        }
    }
}

impl Drop for RustacServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
