//! Real servers on loopback for the integration tests, each stopped when dropped.

pub mod azurite;
pub mod farm;
pub mod gcs;
pub mod generate;
pub mod keyring;
pub mod moto;
pub mod replay;
pub mod rustac;
pub mod site;
pub mod sound;
pub mod tamper;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::sync::oneshot;
use tower_http::services::ServeDir;

/// The shared STAC fixtures (`../shared/fixtures/stac`, or `$CAIRN_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_FIXTURES") {
        // Servers started by the tests refuse paths with `..`.
        return PathBuf::from(dir)
            .canonicalize()
            .expect("CAIRN_FIXTURES is not a folder");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/stac");
    dir.canonicalize().unwrap_or_else(|_| {
        panic!(
            "the STAC fixtures are not at {}; set CAIRN_FIXTURES",
            dir.display()
        )
    })
}

/// An HTTP server on 127.0.0.1 running on its own thread and runtime, so it
/// serves while a test blocks on a child process. Stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `router` on a free loopback port.
    pub fn start(router: Router) -> Server {
        Server::start_on("127.0.0.1", router)
    }

    /// Serves `router` on a free port of the loopback address `ip` (a second
    /// address, such as 127.0.0.2, is a second host).
    pub fn start_on(ip: &'static str, router: Router) -> Server {
        Server::start_at(SocketAddr::new(ip.parse().unwrap(), 0), router)
    }

    /// Serves `router` at `addr` (a port 0: any free one).
    pub fn start_at(addr: SocketAddr, router: Router) -> Server {
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let router = router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                let response: Response = next.run(request).await;
                response
            }
        }));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                // Without TCP_NODELAY, small responses wait on delayed ACKs.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Server {
            addr,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Serves the files under `dir`.
    pub fn files(dir: &Path) -> Server {
        Server::start(Router::new().fallback_service(ServeDir::new(dir)))
    }

    /// `http://127.0.0.1:PORT/` + `path`.
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!(
            "http://{}/{}",
            self.addr,
            path.trim_start_matches('/')
        ))
        .unwrap()
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `read_index.py` reads of a stac-geoparquet `file` (DuckDB, GeoPandas
/// and rustac counts, its columns); it must read it.
pub fn read_index(file: &Path) -> serde_json::Value {
    let read = python_script("read_index.py", &[file.as_os_str()]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    serde_json::from_slice(&read.stdout).unwrap()
}

/// Asserts that `bagit.py --validate` accepts the bag at `bag`.
pub fn assert_bag_valid(bag: &Path) {
    let validated = bagit_validate(bag);
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

/// Mirrors what `site` serves at `path` into a new folder with `cairn
/// mirror`, which must succeed: the folder (removed when dropped), the
/// state file, the mirror and the job's id.
pub fn mirror_site(
    site: &site::Site,
    path: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    i64,
) {
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = cairn(
        &state,
        &["mirror", &site.url(path), dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let job = run.summary()["job"].as_i64().unwrap();
    (dir, state, dest, job)
}

/// `bagit.py --validate BAG`: the Library of Congress's own check.
pub fn bagit_validate(bag: &Path) -> std::process::Output {
    std::process::Command::new(program("CAIRN_PYTHON", "python3"))
        .args(["-m", "bagit", "--validate"])
        .arg(bag)
        .output()
        .expect("python3 with bagit is needed; run the README's test command")
}

/// Runs pystac's `validate_all` on a mirror (tests/it/support/validate_mirror.py).
pub fn validate_with_pystac(catalog: &Path) -> std::process::Output {
    python_script("validate_mirror.py", &[catalog.as_os_str()])
}

/// The report of [`validate_with_pystac`] on a mirror that must validate.
pub fn pystac_report(catalog: &Path) -> serde_json::Value {
    let validated = validate_with_pystac(catalog);
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    serde_json::from_slice(&validated.stdout).unwrap()
}

/// Runs the Python script `name` of tests/it/support with `args`, in the
/// test environment's Python (pystac, duckdb, geopandas, bagit...).
pub fn python_script(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/support")
        .join(name);
    std::process::Command::new(program("CAIRN_PYTHON", "python3"))
        .arg(script)
        .args(args)
        .output()
        .expect("the test environment's Python is needed; run the README's test command")
}

/// A fetcher that retries quickly, for tests.
pub fn fetcher() -> cairn::fetch::Fetcher {
    cairn::fetch::Fetcher::with_retry(cairn::retry::RetryPolicy {
        max_retries: 2,
        min_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(50),
        max_retry_after: std::time::Duration::from_millis(100),
    })
    .unwrap()
}

/// A program the tests start: `$env_var`, else the project's `.venv`, else `PATH`.
pub fn program(env_var: &str, name: &str) -> String {
    if let Ok(program) = std::env::var(env_var) {
        return program;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    if venv.is_file() {
        return venv.display().to_string();
    }
    name.into()
}

/// Every file under `dir`, at any depth (none if `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // Links are listed, never followed.
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The SHA-256 of the object at `key` in `store` (`None`: there is none).
pub async fn object_sha256(
    store: &dyn object_store::ObjectStore,
    key: &str,
) -> Option<cairn::checksum::Checksum> {
    use object_store::ObjectStoreExt;
    let got = store.get(&object_store::path::Path::from(key)).await.ok()?;
    let bytes = got.bytes().await.unwrap();
    Some(cairn::checksum::Checksum::of(
        cairn::checksum::Algorithm::Sha2_256,
        &bytes,
    ))
}

/// An upstream server's answer, passed on as it came (by a test gateway).
pub async fn relay(answer: reqwest::Response) -> axum::response::Response {
    let mut response = axum::response::Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !["transfer-encoding", "connection"].contains(&name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response
        .body(axum::body::Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// A loopback port that was free a moment ago.
/// The hrefs of a catalog's or collection's `item` links, in order.
pub fn item_links(document: &serde_json::Value) -> Vec<String> {
    document["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["rel"] == "item")
        .filter_map(|l| l["href"].as_str().map(str::to_string))
        .collect()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts a test server (`command`, quiet) and waits until it listens on
/// `addr`; `name` is what the messages call it.
pub fn start_server(
    mut command: std::process::Command,
    name: &str,
    addr: &str,
) -> std::process::Child {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not start `{name}` ({e}); run the README's test command, which installs it"
            )
        });
    wait_for_port(addr, name, || {
        child.try_wait().unwrap().map(|s| s.to_string())
    });
    child
}

/// Waits until something listens on `addr`; `exited` says why the server
/// process ended, if it did, so a failure to start is reported at once.
pub fn wait_for_port(addr: &str, what: &str, mut exited: impl FnMut() -> Option<String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        if let Some(why) = exited() {
            panic!("{what} stopped before it listened: {why}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// One finished run of the `cairn` binary.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Every line of stdout as JSON: the `--json` contract is one object a line.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect()
    }

    /// The last line, which `--json` makes a summary object.
    pub fn summary(&self) -> serde_json::Value {
        let summary = self.lines().pop().expect("no output");
        assert_eq!(summary["type"], "summary", "{}", self.stdout);
        summary
    }

    /// What a bag left out, with why (the `left_out` lines of `--json`).
    pub fn left_out(&self) -> Vec<(String, String)> {
        self.lines()
            .iter()
            .filter(|l| l["type"] == "left_out")
            .map(|l| {
                (
                    l["path"].as_str().unwrap().to_string(),
                    l["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The demo catalog Cairn ships, mirrored into a new temporary folder:
/// (the folder, its state file, the mirror).
pub fn mirror_demo() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let dest = dir.path().join("m");
    let run = cairn(
        &state,
        &["mirror", demo.to_str().unwrap(), dest.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    (dir, state, dest)
}

/// Starts `cairn --state STATE ARGS...` without waiting for it: its
/// standard output is kept (read it with `wait_with_output`).
pub fn spawn_cairn(state: &Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends `signal` (`-INT`, `-TERM`...) to the process `pid`, as a person
/// or a service manager would (`kill`).
#[cfg(unix)]
pub fn send_signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Runs `cairn --state STATE ARGS...` and waits for it.
pub fn cairn(state: &Path, args: &[&str]) -> Run {
    cairn_with_env(state, args, Vec::new())
}

/// Runs `cairn`, stopped (exit code 124) if it takes longer than `limit`.
pub fn cairn_within(state: &Path, args: &[&str], limit: std::time::Duration) -> Run {
    let mut command = quiet_command("timeout");
    command
        .arg(format!("{}s", limit.as_secs()))
        .arg(env!("CARGO_BIN_EXE_cairn"));
    run_cairn(command, state, args)
}

/// Runs `cairn` with extra environment variables (credentials, endpoints).
pub fn cairn_with_env(state: &Path, args: &[&str], env: Vec<(&'static str, String)>) -> Run {
    let mut command = quiet_command(env!("CARGO_BIN_EXE_cairn"));
    command.envs(env);
    run_cairn(command, state, args)
}

/// A command for `program`, without the machine's own keyring (tests that
/// want one start their own and say so in the command's environment).
fn quiet_command(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env_remove("DBUS_SESSION_BUS_ADDRESS");
    command
}

/// Runs `command` (which starts `cairn`) with `--state STATE ARGS...`.
fn run_cairn(mut command: std::process::Command, state: &Path, args: &[&str]) -> Run {
    let output = command
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    Run::from(output)
}
