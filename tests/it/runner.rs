//! The engine's job runner, as the desktop app uses it: several jobs at once
//! under one global bandwidth limit, and jobs left running by a crash picked
//! up at start-up.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn::fetch::Fetcher;
use cairn::plan::Selection;
use cairn::runner::{JobRequest, Runner};
use cairn::store::{JobState, NewJob, Store};
use serde_json::json;

use crate::support::farm::{CatalogChecksum, Farm, Fault, FileSpec};

const MIB: f64 = 1024.0 * 1024.0;

fn new_job(store: &Store, farm: &Farm, dest: &Path, collections: &[&str]) -> i64 {
    job_from(store, &farm.catalog_url(), dest, collections)
}

fn job_from(store: &Store, source: &str, dest: &Path, collections: &[&str]) -> i64 {
    store
        .create_job(&NewJob {
            source_url: source.to_string(),
            destination: dest.display().to_string(),
            selection: json!({"collections": collections}),
            limit_rate: None,
            concurrency: 4,
            per_host: 4,
        })
        .unwrap()
}

/// One item of `count` files of `size` bytes, each sent at `rate` bytes a
/// second.
fn slow_farm(count: usize, size: u64, rate: u64) -> Farm {
    let files = (0..count)
        .map(|i| {
            FileSpec::new(&format!("slow-{i}.bin"), size).fault(Fault::Trickle {
                bytes_per_second: rate,
            })
        })
        .collect();
    Farm::start(files, count)
}

/// Waits until the farm has sent its first bytes: a job is copying.
async fn first_bytes(farm: &Farm) {
    let served = farm.total_counter();
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "nothing started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_jobs_share_the_global_limit() {
    let files = (0..4)
        .map(|i| FileSpec::new(&format!("big-{i}.bin"), 200 << 20).checksum(CatalogChecksum::None))
        .collect();
    let farm = Farm::start(files, 2);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    // The same catalog twice, into two folders: two jobs, each alone fast.
    let first = new_job(&store, &farm, &dir.path().join("a"), &[]);
    let second = new_job(&store, &farm, &dir.path().join("b"), &["farm"]);
    let runner = Runner::new(store, Fetcher::new().unwrap());
    runner.set_global_limit(Some(16 << 20));
    runner.start(first).unwrap();
    runner.start(second).unwrap();

    first_bytes(&farm).await;
    let served = farm.total_counter();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (t0, b0) = (
        Instant::now(),
        served.load(std::sync::atomic::Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (t1, b1) = (
        Instant::now(),
        served.load(std::sync::atomic::Ordering::Relaxed),
    );
    let rate = (b1 - b0) as f64 / (t1 - t0).as_secs_f64();
    println!(
        "two jobs under a 16 MiB/s global limit: {:.2} MiB/s",
        rate / MIB
    );
    assert!(
        (rate / (16.0 * MIB) - 1.0).abs() <= 0.10,
        "{:.2} MiB/s for two jobs under 16 MiB/s",
        rate / MIB
    );
    // Both were moving, and both stop when paused.
    let counts = |job| runner.with_store(|s| s.job_counts(job)).unwrap();
    runner.pause(first).unwrap();
    runner.pause(second).unwrap();
    assert_eq!(runner.wait(first).await.unwrap().state, JobState::Paused);
    assert_eq!(runner.wait(second).await.unwrap().state, JobState::Paused);
    assert!(counts(first).assets == 4 && counts(second).assets == 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_left_running_by_a_crash_continues_at_start_up() {
    let files = (0..6)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 50_000))
        .collect();
    let farm = Farm::start(files, 3);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let dest = dir.path().join("mirror");
    let store = Store::open(&state).unwrap();
    let job = new_job(&store, &farm, &dest, &[]);
    // As a crash leaves it: marked running, nothing copied. Beside it, a job
    // whose dry run was interrupted: that one is not to be started.
    store.set_job_state(job, JobState::Running).unwrap();
    let dry = new_job(&store, &farm, &dir.path().join("dry"), &["farm"]);
    store.set_job_state(dry, JobState::Planning).unwrap();
    drop(store);

    let runner = Runner::new(Store::open(&state).unwrap(), Fetcher::new().unwrap());
    let mut events = runner.subscribe();
    assert_eq!(runner.resume_unfinished().unwrap(), vec![job]);
    let report = runner.wait(job).await.unwrap();
    assert_eq!(report.state, JobState::Finished);
    assert_eq!(report.counts.done, 6);
    assert!(dest.join("catalog.json").is_file());
    // Its events carried its id, from the plan to the end.
    let mut kinds = Vec::new();
    let mut last_progress = serde_json::Value::Null;
    while let Ok(event) = events.try_recv() {
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["job"], job, "{value}");
        kinds.push(value["type"].as_str().unwrap().to_string());
        if value["type"] == "progress" {
            last_progress = value;
        }
    }
    // The totals were learnt while the plan was read.
    assert_eq!(
        (&last_progress["files_done"], &last_progress["files_total"]),
        (&json!(6), &json!(6)),
        "{last_progress}"
    );
    for kind in ["plan", "started", "progress", "finished"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} event: {kinds:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_keeps_its_story_and_says_why_it_stopped() {
    let files = (0..3)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 20_000))
        .collect();
    let farm = Farm::start(files, 3);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let store = Store::open(&state).unwrap();
    let good = new_job(&store, &farm, &dir.path().join("mirror"), &[]);
    // A source that is not there: the run stops, and says so.
    let gone = job_from(
        &store,
        &farm
            .catalog_url()
            .replace("catalog.json", "nothing-here.json"),
        &dir.path().join("other"),
        &[],
    );
    let runner = Runner::new(store, Fetcher::new().unwrap());
    let mut events = runner.subscribe();
    runner.start(good).unwrap();
    runner.start(gone).unwrap();
    assert_eq!(runner.wait(good).await.unwrap().state, JobState::Finished);
    assert!(runner.wait(gone).await.is_err());

    let mut stopped = None;
    while let Ok(event) = events.try_recv() {
        if let cairn::events::Event::Stopped { job, reason } = event {
            stopped = Some((job, reason));
        }
    }
    let (job, reason) = stopped.expect("no stopped event");
    assert_eq!(job, gone);
    assert!(reason.contains("was not found"), "{reason}");

    // Both stories outlive the runner: they are in the state file.
    drop(runner);
    let store = Store::open(&state).unwrap();
    let story: Vec<String> = store
        .job_log(good, 100)
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert!(story.contains(&"Copying started.".to_string()), "{story:?}");
    assert!(
        story
            .iter()
            .any(|l| l.starts_with("Planned 1 item, 3 assets")),
        "{story:?}"
    );
    assert_eq!(
        story.last().unwrap(),
        "Finished: 3 assets verified, 0 failed."
    );
    // The failed one: copying started, stopped, and the reason in words.
    let gone_story = store.job_log(gone, 100).unwrap();
    let last = gone_story.last().unwrap();
    assert_eq!(last.kind, cairn::store::LogKind::Failed);
    assert!(
        last.text.starts_with("Stopped: ") && last.text.contains("nothing-here.json was not found"),
        "{gone_story:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_resumed_while_its_pause_winds_down_still_finishes() {
    let farm = slow_farm(4, 400_000, 400_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let job = new_job(&store, &farm, &dir.path().join("mirror"), &[]);
    let runner = Runner::new(store, Fetcher::new().unwrap());
    runner.start(job).unwrap();
    first_bytes(&farm).await;
    // Pause, and resume at once, as a quick double click does.
    runner.pause(job).unwrap();
    runner.resume(job).unwrap();
    let report = runner.wait(job).await.unwrap();
    assert_eq!(report.state, JobState::Finished);
    assert_eq!(report.counts.done, 4);
}

/// What the window does: it reads the job list again when it hears that a
/// job paused or ended, and must then see it paused or ended, not copying.
#[tokio::test(flavor = "multi_thread")]
async fn the_job_list_agrees_with_the_events() {
    let farm = slow_farm(3, 300_000, 600_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let job = new_job(&store, &farm, &dir.path().join("mirror"), &[]);
    let runner = Runner::new(store, Fetcher::new().unwrap());
    let status = |runner: &Runner| {
        let status = runner
            .jobs()
            .unwrap()
            .into_iter()
            .find(|s| s.job.id == job)
            .unwrap();
        (status.job.state, status.running)
    };
    let mut events = runner.subscribe();
    runner.start(job).unwrap();
    assert_eq!(status(&runner), (JobState::Running, true));
    first_bytes(&farm).await;
    // Paused at once, though the run takes a moment to wind down.
    runner.pause(job).unwrap();
    assert_eq!(status(&runner), (JobState::Paused, false));
    runner.resume(job).unwrap();
    assert_eq!(status(&runner), (JobState::Running, true));
    // The moment the end is heard, the list says so.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the job never finished");
        if let Ok(cairn::events::Event::Finished {
            job: id,
            interrupted: false,
            ..
        }) = event
            && id == job
        {
            break;
        }
    }
    assert_eq!(status(&runner), (JobState::Finished, false));
}

/// The app's Estimate: what a job holds, what is left to copy, the room at
/// the destination, and every problem in the source, however many (more
/// than the event channel holds, while another job keeps it busy).
#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_counts_and_lists_every_problem() {
    const MISSING: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("good")).unwrap();
    let mut links = vec![json!({"rel": "item", "href": "./good/good.json"})];
    links.extend((0..MISSING).map(|i| json!({"rel": "item", "href": format!("./gone/{i}.json")})));
    std::fs::write(
        source.join("catalog.json"),
        json!({"type": "Catalog", "stac_version": "1.1.0", "id": "c", "description": "d", "links": links})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        source.join("good/good.json"),
        json!({
            "type": "Feature", "stac_version": "1.1.0", "id": "good",
            "geometry": null, "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": "./data.bin", "file:size": 123_456}},
        })
        .to_string(),
    )
    .unwrap();

    // Another job copies meanwhile, filling the event channel with progress.
    let farm = slow_farm(2, 300_000, 300_000);
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let busy = new_job(&store, &farm, &dir.path().join("busy"), &[]);
    let runner = Runner::new(store, Fetcher::new().unwrap());
    runner.start(busy).unwrap();
    first_bytes(&farm).await;

    let request = JobRequest {
        source: source.join("catalog.json").display().to_string(),
        destination: dir.path().join("mirror").display().to_string(),
        selection: Selection::default(),
        limit_rate: None,
        concurrency: 4,
        per_host: 4,
        name: None,
        access: Default::default(),
    };
    let estimate = runner.estimate(&request).await.unwrap();
    assert_eq!((estimate.counts.items, estimate.counts.assets), (1, 1));
    assert_eq!(estimate.bytes_to_copy, 123_456);
    assert!(estimate.free_bytes.is_some_and(|free| free > 0));
    assert_eq!(estimate.problems.len(), MISSING);
    assert!(
        estimate
            .problems
            .iter()
            .all(|p| p.href.contains("/gone/") && !p.reason.is_empty()),
        "{:?}",
        &estimate.problems[..3]
    );
    // Asked again, the same job is found and planned again: the same answer.
    let again = runner.estimate(&request).await.unwrap();
    assert_eq!(again.job, estimate.job);
    assert_eq!(again.problems.len(), MISSING);
    runner.cancel(busy).unwrap();
}

/// The app's Estimate pressed again for a job that is copying: it says how
/// the job stands and leaves the run alone. The run lasts past the first
/// renewal of its lease (every 10 s), which an estimate that took the lease
/// from under it would make fail.
#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_of_a_running_job_leaves_it_running() {
    let farm = slow_farm(2, 1_200_000, 100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let request = JobRequest {
        source: farm.catalog_url(),
        destination: dir.path().join("mirror").display().to_string(),
        selection: Selection::default(),
        limit_rate: None,
        concurrency: 4,
        per_host: 4,
        name: None,
        access: Default::default(),
    };
    let job = cairn::runner::prepare_job(&store, &request).unwrap();
    let runner = Runner::new(store, Fetcher::new().unwrap());
    runner.start(job).unwrap();
    first_bytes(&farm).await;
    let estimate = runner.estimate(&request).await.unwrap();
    assert_eq!(estimate.job, job);
    assert_eq!((estimate.counts.items, estimate.counts.assets), (1, 2));
    assert_eq!(estimate.counts.bytes_expected, 2_400_000);
    let report = runner.wait(job).await.unwrap();
    assert_eq!(report.state, JobState::Finished);
    assert_eq!(report.counts.done, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_collection_document_in_the_mirror_is_kept_aside_and_said() {
    let files = (0..4)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 5_000))
        .collect();
    let farm = Farm::start(files, 2);
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let first = new_job(&store, &farm, &mirror, &[]);
    let second = new_job(&store, &farm, &mirror, &[]);
    let third = new_job(&store, &farm, &mirror, &[]);
    let runner = Runner::new(store, Fetcher::new().unwrap());
    runner.start(first).unwrap();
    assert_eq!(runner.wait(first).await.unwrap().state, JobState::Finished);
    let collection = std::fs::read_dir(&mirror)
        .unwrap()
        .map(|e| e.unwrap().path().join("collection.json"))
        .find(|p| p.is_file())
        .expect("no collection folder");
    let linked = |path: &Path| -> Vec<String> {
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut hrefs: Vec<String> = document["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["rel"] == "item")
            .map(|l| l["href"].as_str().unwrap().to_string())
            .collect();
        hrefs.sort();
        hrefs
    };
    let before = linked(&collection);
    assert_eq!(before.len(), 2);
    // Cut short, as a failing disk or an editor might leave it.
    let bytes = std::fs::read(&collection).unwrap();
    let damaged = &bytes[..bytes.len() / 2];
    std::fs::write(&collection, damaged).unwrap();

    runner.start(second).unwrap();
    assert_eq!(runner.wait(second).await.unwrap().state, JobState::Finished);
    assert_eq!(linked(&collection), before);
    let folder = collection.parent().unwrap();
    let kept: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("collection.json.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), damaged);
    let story = runner.with_store(|s| s.job_log(second, 100)).unwrap();
    let said = story
        .iter()
        .find(|l| l.kind == cairn::store::LogKind::Problem)
        .expect("nothing said");
    assert!(
        said.text
            .contains("could not be read as a collection (it is cut short)")
            && said.text.contains("it is kept as"),
        "{said:?}"
    );

    // Something that cannot be read at all is never written over, and the
    // rest of the mirror is still written.
    std::fs::remove_file(&collection).unwrap();
    std::fs::create_dir(&collection).unwrap();
    std::fs::remove_file(mirror.join("catalog.json")).unwrap();
    runner.start(third).unwrap();
    assert_eq!(runner.wait(third).await.unwrap().state, JobState::Finished);
    assert!(collection.is_dir());
    assert!(mirror.join("catalog.json").is_file());
    let story = runner.with_store(|s| s.job_log(third, 100)).unwrap();
    assert!(
        story
            .iter()
            .any(|l| l.kind == cairn::store::LogKind::Problem
                && l.text.contains("could not be read")
                && l.text.contains("left as it is")),
        "{story:?}"
    );
}
