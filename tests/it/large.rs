//! A generated static catalog of 100,000 items walks over loopback HTTP with
//! bounded memory. Speed is measured by `bench/`, not here.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Server, generate};

/// Waits for `child` and returns its exit code and peak resident memory in bytes.
fn wait_with_peak_memory(child: std::process::Child) -> (i32, u64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes into the two out-parameters we own, for our own child.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    // ru_maxrss is in KiB on Linux.
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

#[test]
fn a_hundred_thousand_items_walk_over_http_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    generate::catalog(dir.path(), 10, 10_000);
    eprintln!("generated in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let server = Server::files(dir.path());
    let state = dir.path().join("cairn.db");
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--state",
            state.to_str().unwrap(),
            "browse",
            server.url("catalog.json").as_str(),
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let stdout = child.stdout.take().unwrap();
    let (mut items, mut collections, mut last) = (0u64, 0u64, Value::Null);
    for line in BufReader::new(stdout).lines() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        match line["kind"].as_str() {
            Some("item") => items += 1,
            Some("collection") => collections += 1,
            _ => {}
        }
        last = line;
    }
    let (code, peak) = wait_with_peak_memory(child);
    eprintln!("walked in {:?}", started.elapsed());
    assert_eq!(code, 0, "the walk reported problems or failed");
    assert_eq!((items, collections), (100_000, 10));
    assert_eq!(last["type"], "summary");
    assert_eq!(last["items"], 100_000);
    assert_eq!(last["problems"], 0);
    // 100,000 items are ~150 MB of JSON; the walk keeps only addresses.
    eprintln!(
        "peak memory of the walk: {:.1} MiB",
        peak as f64 / 1048576.0
    );
    assert!(peak < 128 * 1024 * 1024, "peak memory {peak} bytes");
    assert!(server.request_count() >= 100_011);
}
