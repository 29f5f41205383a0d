//! A real STAC API: `rustac serve` (PyPI `rustac`) on a free loopback port.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rustac serve`, killed when dropped.
pub struct RustacServer {
    pub url: url::Url,
    child: Child,
}

/// The `rustac` program: `$CAIRN_RUSTAC`, else the project venv, else `PATH`.
fn program() -> String {
    if let Ok(program) = std::env::var("CAIRN_RUSTAC") {
        return program;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/rustac");
    if venv.is_file() {
        return venv.display().to_string();
    }
    "rustac".into()
}

impl RustacServer {
    /// Serves the collections, items and item collections in `hrefs`.
    pub fn start(hrefs: &[&Path]) -> RustacServer {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(program())
            .args(["serve", "--use-duckdb", "false", "--create-collections", "--addr", &addr])
            .args(hrefs)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start `rustac serve` ({e}); run the README's test command, which installs it")
            });
        let server = RustacServer {
            url: url::Url::parse(&format!("http://{addr}/")).unwrap(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "rustac serve did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RustacServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
