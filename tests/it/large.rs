//! A generated static catalog of 100,000 items walks over loopback HTTP with
//! bounded memory. Speed is measured by `bench/`, not here.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Server, generate};

/// Samples the peak resident memory (`VmHWM`) of process `pid` until it exits.
///
/// Read from /proc rather than from `wait4`: a child's `ru_maxrss` also counts
/// the parent's memory it shared between spawn and exec, which is the whole
/// test process here.
fn watch_peak_memory(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            // A process that has exited (a zombie) has no VmHWM line.
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break;
            };
            peak = peak.max(kib * 1024);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak
    })
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
    let watcher = watch_peak_memory(child.id());
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
    let code = child.wait().unwrap().code();
    let peak = watcher.join().unwrap();
    eprintln!("walked in {:?}", started.elapsed());
    assert_eq!(code, Some(0), "the walk reported problems or failed");
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
