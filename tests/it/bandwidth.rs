//! The bandwidth limit, measured where the bytes leave the server: with
//! `--limit-rate 20M` the rate over 20 s stays within 5% of the limit, and a
//! new limit set with `cairn limit` while the job runs applies within 2 s.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::cairn;
use crate::support::farm::{CatalogChecksum, Farm, FileSpec};

const MIB: f64 = 1024.0 * 1024.0;

/// Samples a byte counter every 50 ms.
struct Meter {
    counter: Arc<AtomicU64>,
    samples: Vec<(Instant, u64)>,
}

impl Meter {
    fn sample_until(&mut self, until: Instant) {
        while Instant::now() < until {
            self.samples
                .push((Instant::now(), self.counter.load(Ordering::Relaxed)));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Bytes per second between two moments (the nearest samples).
    fn rate(&self, from: Instant, to: Instant) -> f64 {
        let at = |t: Instant| *self.samples.iter().find(|(s, _)| *s >= t).unwrap();
        let (t0, b0) = at(from);
        let (t1, b1) = at(to);
        (b1 - b0) as f64 / (t1 - t0).as_secs_f64()
    }
}

#[test]
fn the_limit_holds_over_twenty_seconds_and_a_new_one_applies_within_two() {
    let files = (0..4)
        .map(|i| FileSpec::new(&format!("big-{i}.bin"), 400 << 20).checksum(CatalogChecksum::None))
        .collect();
    let farm = Farm::start(files, 4);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state")
        .arg(&state)
        .args(["mirror", &farm.catalog_url(), dest.to_str().unwrap()])
        .args(["--limit-rate", "20M", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut meter = Meter {
        counter: farm.total_counter(),
        samples: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while meter.counter.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no transfer started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    let second = |s: f64| start + Duration::from_secs_f64(s);
    meter.sample_until(second(22.1));
    let rate = meter.rate(second(2.0), second(22.0));
    println!("rate over 20 s at 20M: {:.2} MiB/s", rate / MIB);
    assert!(
        (rate / (20.0 * MIB) - 1.0).abs() <= 0.05,
        "{:.2} MiB/s is not within 5% of 20 MiB/s",
        rate / MIB
    );

    let run = cairn(&state, &["limit", "1", "40M"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let changed = Instant::now();
    let after = |s: f64| changed + Duration::from_secs_f64(s);
    meter.sample_until(after(4.1));
    let rate = meter.rate(after(2.0), after(4.0));
    println!(
        "rate 2 to 4 s after the change to 40M: {:.2} MiB/s",
        rate / MIB
    );
    assert!(
        (rate / (40.0 * MIB) - 1.0).abs() <= 0.10,
        "{:.2} MiB/s, 2 s after the change to 40 MiB/s",
        rate / MIB
    );

    // Paused from outside: the run stops, resumable.
    let run = cairn(&state, &["pause", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let paused = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            paused.elapsed() < Duration::from_secs(5),
            "the job did not pause"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3));
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines()[0]["state"], "paused");
}
