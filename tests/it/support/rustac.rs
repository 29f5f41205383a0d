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
        let child = Command::new(super::program("CAIRN_RUSTAC", "rustac"))
            .args(["serve", "--use-duckdb", "false", "--create-collections", "--addr", &addr])
            .args(hrefs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start `rustac serve` ({e}); run the README's test command, which installs it")
            });
        let server = RustacServer {
            url: url::Url::parse(&format!("http://{addr}/")).unwrap(),
            child,
        };
        super::wait_for_port(&addr, "rustac serve");
        server
    }
}

impl Drop for RustacServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
