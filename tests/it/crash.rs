//! A mirror job killed with SIGKILL at random moments, twenty times, and
//! resumed each time: at the end every file is complete and verified, nothing
//! verified was fetched again, partial files were continued rather than
//! restarted, and no `.part` file is left.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cairn::checksum::{Algorithm, Checksum};

use crate::support::farm::{CatalogChecksum, Farm, Fault, FileSpec};
use crate::support::{cairn, files_under};

const KILLS: usize = 20;
const BIG: u64 = 50 << 20;
/// Bytes one interrupted transfer may lose in flight: the most the kernel
/// buffers on both ends of a connection, plus the writer's buffer.
fn in_flight() -> u64 {
    let most = |file: &str| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.split_whitespace().last()?.parse::<u64>().ok())
            .unwrap_or(32 << 20)
    };
    most("/proc/sys/net/ipv4/tcp_rmem") + most("/proc/sys/net/ipv4/tcp_wmem") + (1 << 20)
}

/// A small random number generator (xorshift), seeded from the clock; the seed
/// is printed so that a failing run can be repeated with `CAIRN_CRASH_SEED`.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::env::var("CAIRN_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("seed: CAIRN_CRASH_SEED={seed}");
        Dice(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn files() -> Vec<FileSpec> {
    (0..1000u64)
        .map(|i| {
            if i % 125 == 7 {
                return FileSpec::new(&format!("big-{i:04}.bin"), BIG);
            }
            let spec = FileSpec::new(&format!("small-{i:04}.bin"), 4096 + (i * 7919) % 60_000);
            match i % 6 {
                // No checksum in the catalog: the job's own record proves them.
                0 => spec.checksum(CatalogChecksum::None),
                1 => spec.without_size(),
                _ => spec,
            }
        })
        .collect()
}

/// Files the state file records as done or skipped.
fn verified(state: &Path) -> HashSet<String> {
    let db = rusqlite::Connection::open(state).unwrap();
    let mut statement = db
        .prepare("SELECT href FROM assets WHERE state IN ('done', 'skipped')")
        .unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|href| href.unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

/// Partial files a resumed run must continue: name -> length on disk, for the
/// unfinished assets whose validator is recorded.
fn partials(state: &Path, dest: &Path) -> HashMap<String, u64> {
    let db = rusqlite::Connection::open(state).unwrap();
    let mut statement = db
        .prepare(
            "SELECT href, path FROM assets
             WHERE state NOT IN ('done', 'skipped') AND validator IS NOT NULL",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap()
        .filter_map(|row| {
            let (href, path) = row.unwrap();
            let part = dest.join(format!("{path}.part"));
            let length = std::fs::metadata(part).ok()?.len();
            let name = href.rsplit('/').next().unwrap().to_string();
            (length > 0).then_some((name, length))
        })
        .collect()
}

fn has_job(state: &Path) -> bool {
    state.exists()
        && rusqlite::Connection::open(state)
            .and_then(|db| db.query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
}

#[test]
fn a_job_killed_twenty_times_finishes_without_fetching_anything_verified_twice() {
    let specs = files();
    let farm = Farm::start(specs.clone(), 10);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let source = farm.catalog_url();
    let mut dice = Dice::new();

    // What was verified at each kill, and how often each file had been asked
    // for by then; the partial files left, and where the log stood.
    let mut checkpoints: Vec<(HashSet<String>, HashMap<String, usize>)> = Vec::new();
    let mut left_partial: Vec<(usize, HashMap<String, u64>)> = Vec::new();
    let started = Instant::now();
    while checkpoints.len() < KILLS {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
        command.arg("--state").arg(&state);
        if has_job(&state) {
            command.args(["resume", "1", "--json"]);
        } else {
            command.args(["mirror", &source, dest.to_str().unwrap(), "--json"]);
            // Slow enough that twenty kills land inside the job.
            command.args(["--limit-rate", "40M"]);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + dice.below(600)));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the job ended ({status}) after {} kills in {:?}; it should still be running",
                checkpoints.len(),
                started.elapsed()
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Killed before it made its job (on a busy machine, before the state
        // file had its tables): nothing verified yet, and the next start
        // makes the job.
        if !has_job(&state) {
            continue;
        }
        let done = verified(&state);
        let log = farm.log();
        left_partial.push((log.len(), partials(&state, &dest)));
        let mut asked: HashMap<String, usize> = HashMap::new();
        for logged in log {
            *asked.entry(logged.name).or_default() += 1;
        }
        checkpoints.push((done, asked));
    }
    let (done_at_last_kill, _) = checkpoints.last().unwrap();
    println!(
        "{KILLS} kills in {:?}; {} of 1000 files verified by then, {} MiB served",
        started.elapsed(),
        done_at_last_kill.len(),
        farm.total_served() >> 20
    );
    assert!(
        done_at_last_kill.len() < 1000,
        "the kills should interrupt the job"
    );
    // The job list says the job was cut short, not that it runs (seen at
    // once where a process's end can be seen: Linux).
    #[cfg(target_os = "linux")]
    {
        let jobs = cairn(&state, &["jobs", "--json"]);
        let job = &jobs.lines()[0];
        assert_eq!(job["interrupted"], true, "{job}");
        let listed = cairn(&state, &["jobs"]).stdout;
        assert!(listed.contains("interrupted"), "{listed}");
        assert!(listed.contains("resume 1` continues it"), "{listed}");
    }

    // The machine stops before the file system wrote one finished file: its
    // bytes are lost, and the job was never flushed. The next start checks
    // the files finished since the last flush and fetches that one again.
    let lost = {
        let db = rusqlite::Connection::open(&state).unwrap();
        db.execute("UPDATE jobs SET flushed_at = NULL", []).unwrap();
        let path: String = db
            .query_row(
                "SELECT path FROM assets WHERE state = 'done' AND href LIKE '%small-%' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        std::fs::write(dest.join(&path), b"").unwrap();
        path.rsplit('/').next().unwrap().to_string()
    };
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(
        summary["done"].as_u64().unwrap() + summary["skipped"].as_u64().unwrap(),
        1000
    );
    assert_eq!(summary["failed"], 0);

    // Every file is complete and verified.
    let by_name: HashMap<&str, &FileSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut found = 0;
    for entry in files_under(&dest) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        if let Some(spec) = by_name.get(name.as_str()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert_eq!(bytes.len() as u64, spec.size, "{name}");
            assert_eq!(
                Checksum::of(Algorithm::Sha2_256, &bytes),
                spec.sha256(),
                "{name}"
            );
            found += 1;
        }
    }
    assert_eq!(found, 1000);
    assert_eq!(
        asked_at_end_of(&farm, &lost),
        checkpoints.last().unwrap().1[&lost] + 1
    );
    let parts: Vec<_> = files_under(out.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "partial files left: {parts:?}");

    // Nothing verified was asked for again.
    let log = farm.log();
    let mut asked_at_end: HashMap<&str, usize> = HashMap::new();
    for logged in &log {
        *asked_at_end.entry(logged.name.as_str()).or_default() += 1;
    }
    for (kill, (done, asked)) in checkpoints.iter().enumerate() {
        for name in done.iter().filter(|name| **name != lost) {
            assert_eq!(
                asked_at_end[name.as_str()],
                asked[name],
                "{name} was verified at kill {kill} and fetched again later"
            );
        }
    }
    // Every partial file left by a kill was continued from its last byte.
    let mut continued = 0;
    for (position, partial) in &left_partial {
        for (name, length) in partial {
            let size = by_name[name.as_str()].size;
            match log[*position..].iter().find(|l| &l.name == name) {
                Some(next) => {
                    assert_eq!(next.from, Some(*length), "{name} was not continued");
                    continued += 1;
                }
                None => assert_eq!(*length, size, "{name} was never asked for again"),
            }
        }
    }
    assert!(continued > 0, "no partial file was left to continue");
    // What a file cost is its size plus at most what was in flight at each
    // interruption.
    let in_flight = in_flight();
    let mut total_size = 0;
    let mut resumed = 0;
    for spec in &specs {
        total_size += spec.size;
        let asked = asked_at_end[spec.name.as_str()] as u64;
        assert!(
            farm.served(&spec.name) <= spec.size + (asked - 1) * in_flight,
            "{} ({} bytes) cost {} bytes over {asked} requests",
            spec.name,
            spec.size,
            farm.served(&spec.name)
        );
        resumed += log
            .iter()
            .filter(|l| l.name == spec.name && l.from.is_some())
            .count();
    }
    // The difference is what was in flight (socket buffers, which a throttled
    // reader lets fill) at each kill.
    println!(
        "served {} MiB for {} MiB of files; {resumed} requests with Range, {continued} partial files continued",
        farm.total_served() >> 20,
        total_size >> 20
    );
    assert!(resumed > 0, "no transfer was resumed");

    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
}

fn asked_at_end_of(farm: &Farm, name: &str) -> usize {
    farm.log().iter().filter(|l| l.name == name).count()
}

/// A partial download last written before the computer started (a power
/// cut may have left some of it unwritten, or holding other bytes) is not
/// continued: the file is fetched again, and nothing of the partial is
/// taken into a file called verified.
#[cfg(target_os = "linux")]
#[test]
fn a_partial_written_before_the_computer_started_is_not_continued() {
    let spec = FileSpec::new("big.bin", 3_000_000)
        .checksum(CatalogChecksum::None)
        .fault(Fault::Trickle {
            bytes_per_second: 1_000_000,
        });
    let farm = Farm::start(vec![spec.clone()], 1);
    let out = tempfile::tempdir().unwrap();
    let (state, dest) = (out.path().join("cairn.db"), out.path().join("mirror"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state")
        .arg(&state)
        .args(["mirror", &farm.catalog_url()])
        .arg(&dest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(has_job(&state)
        && partials(&state, &dest)
            .values()
            .any(|length| *length > 500_000))
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no partial");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // As after a power cut: last written before this boot, its tail not
    // what was written.
    let part = files_under(&dest)
        .into_iter()
        .find(|path| path.to_string_lossy().ends_with("big.bin.part"))
        .unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100_000..].fill(0);
    std::fs::write(&part, &bytes).unwrap();
    let boot = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<u64>().ok())
        .unwrap();
    std::fs::File::options()
        .append(true)
        .open(&part)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(boot - 60))
        .unwrap();
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let file = files_under(&dest)
        .into_iter()
        .find(|path| path.to_string_lossy().ends_with("big.bin"))
        .unwrap();
    assert!(
        std::fs::read(&file).unwrap() == spec.bytes(0, spec.size),
        "bytes of a partial written before the computer started were kept"
    );
    // The whole file came again.
    assert!(farm.served("big.bin") >= 500_000 + spec.size);
}
