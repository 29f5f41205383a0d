//! A destination disk that fills up mid-job: the job stops with a plain
//! message and exit code 3, nothing is marked failed or lost, and once space
//! is freed `cairn resume` finishes it. Needs a small file system of its own:
//! a tmpfs, mounted by the test (root only).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cairn;
use crate::support::farm::{Farm, FileSpec};

/// A tmpfs of `megabytes` at `path`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, megabytes: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(path.to_path_buf()))
    }
}

/// A tmpfs as [`Tmpfs::mount`] makes it; `None` (the test is skipped, and
/// says so) where mounting needs root that the tests do not have. CI runs
/// as root: there, failing to mount fails the test.
fn tmpfs_or_skip(path: &Path, megabytes: u32) -> Option<Tmpfs> {
    let mounted = Tmpfs::mount(path, megabytes);
    if mounted.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "could not mount a tmpfs for the full-disk test"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    mounted
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_job_and_resume_finishes_it_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    let Some(_tmpfs) = tmpfs_or_skip(&volume, 24) else {
        return;
    };
    // Leave about 5 MB free for 12 MB of files.
    let filler = volume.join("filler");
    std::fs::write(&filler, vec![7u8; 19 << 20]).unwrap();
    let specs: Vec<FileSpec> = (0..12)
        .map(|i| FileSpec::new(&format!("tile-{i:02}.bin"), 1 << 20))
        .collect();
    let farm = Farm::start(specs.clone(), 3);
    let dest = volume.join("mirror");
    let state = dir.path().join("cairn.db");

    // Two at a time, so that some files are whole before the disk is full
    // (with eight, eight partial files can share the room and none end).
    let run = cairn(
        &state,
        &[
            "mirror",
            &farm.catalog_url(),
            dest.to_str().unwrap(),
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("is full"), "{}", run.stderr);
    assert!(run.stderr.contains("resume 1` continues"), "{}", run.stderr);
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines()[0]["state"], "paused");
    let db = rusqlite::Connection::open(&state).unwrap();
    let (failed, done): (i64, i64) = db
        .query_row(
            "SELECT count(*) FILTER (WHERE state = 'failed'), count(*) FILTER (WHERE state = 'done') FROM assets",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    assert_eq!(failed, 0, "a full disk is not the asset's fault");
    assert!(done > 0 && done < 12, "{done}");

    // Room again: the job finishes, every file verified.
    std::fs::remove_file(&filler).unwrap();
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], 12);
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.summary()["verified"], 12);
}

#[test]
fn a_full_disk_under_the_state_file_stops_the_job_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("state");
    let Some(_tmpfs) = tmpfs_or_skip(&volume, 1) else {
        return;
    };
    // 2,000 files: their rows outgrow a state file's megabyte.
    let specs: Vec<FileSpec> = (0..2000)
        .map(|i| FileSpec::new(&format!("tile-{i:04}.bin"), 512))
        .collect();
    let farm = Farm::start(specs, 1);
    let dest = dir.path().join("mirror");
    let state = volume.join("cairn.db");
    // It stops: it never waits for ever on rows that were not written.
    let run = crate::support::cairn_within(
        &state,
        &["mirror", &farm.catalog_url(), dest.to_str().unwrap()],
        std::time::Duration::from_secs(120),
    );
    // Exit 3: resumed once there is room.
    assert!(
        matches!(run.code, Some(3)),
        "{:?}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains("its disk is full"), "{}", run.stderr);
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}
