//! The app's Estimate and Start: an estimate is not a job until it is
//! started, and Start copies the plan the estimate read (the source is not
//! read again); what another job verified in the same mirror counts as
//! already there; a job that stops on its own says why, until it runs again.

use cairn::fetch::Fetcher;
use cairn::plan::Selection;
use cairn::runner::{JobRequest, Runner};
use cairn::store::{JobState, Store};
use serde_json::json;

use crate::support::site::{Reply, Site};

const ITEMS: usize = 3;

fn data_bytes(i: usize) -> Vec<u8> {
    (0..5000 + i * 7).map(|b| (b * 13 + i) as u8).collect()
}

fn thumb_bytes(i: usize) -> Vec<u8> {
    (0..700 + i).map(|b| (b * 3 + i) as u8).collect()
}

/// A collection of [`ITEMS`] items, each with a `data` and a `thumb` asset
/// (sizes given, no checksums).
fn serve(site: &Site) {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for i in 0..ITEMS {
        site.put(
            &format!("assets/d{i}.bin"),
            Reply::bytes(data_bytes(i), "application/octet-stream"),
        );
        site.put(
            &format!("assets/t{i}.png"),
            Reply::bytes(thumb_bytes(i), "image/png"),
        );
        let item = json!({
            "type": "Feature", "stac_version": "1.1.0", "id": format!("item-{i}"),
            "collection": "scenes", "geometry": null,
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {
                "data": {"href": site.url(&format!("assets/d{i}.bin")), "type": "application/octet-stream",
                         "file:size": data_bytes(i).len()},
                "thumb": {"href": site.url(&format!("assets/t{i}.png")), "type": "image/png",
                          "roles": ["thumbnail"], "file:size": thumb_bytes(i).len()},
            }
        });
        site.put(&format!("catalog/item-{i}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./item-{i}.json")}));
    }
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
        "description": "Scenes", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links});
    site.put("catalog/collection.json", Reply::json(&collection));
}

fn request(site: &Site, dest: &std::path::Path, assets: &[&str]) -> JobRequest {
    JobRequest {
        source: site.url("catalog/collection.json"),
        destination: dest.display().to_string(),
        selection: Selection {
            assets: assets.iter().map(|a| a.to_string()).collect(),
            ..Selection::default()
        },
        limit_rate: None,
        concurrency: 2,
        per_host: 2,
        name: Some("Scenes".into()),
        access: Default::default(),
    }
}

fn runner_in(dir: &std::path::Path) -> Runner {
    let store = Store::open(&dir.join("cairn.db")).unwrap();
    Runner::new(store, Fetcher::new().unwrap())
}

fn drafts(runner: &Runner) -> Vec<i64> {
    runner.with_store(|s| s.drafts()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_is_a_job_only_once_started_and_start_reads_the_source_once() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");

    // Estimates of two selections, then of the first again: no job in the
    // list, one draft kept (the last one asked for).
    let first = runner.estimate(&request(&site, &dest, &[])).await.unwrap();
    assert_eq!(
        (first.counts.items, first.counts.assets),
        (ITEMS as u64, 2 * ITEMS as u64)
    );
    let other = runner
        .estimate(&request(&site, &dest, &["thumb"]))
        .await
        .unwrap();
    assert_eq!(other.counts.assets, ITEMS as u64);
    assert_eq!(drafts(&runner), vec![other.job]);
    let estimate = runner.estimate(&request(&site, &dest, &[])).await.unwrap();
    assert_eq!(drafts(&runner), vec![estimate.job]);
    assert!(runner.jobs().unwrap().is_empty());
    // An estimate that fails (no such catalog) leaves nothing either, and
    // the last good one stays.
    let mut missing = request(&site, &dir.path().join("elsewhere"), &[]);
    missing.source = site.url("nowhere/collection.json");
    let error = runner.estimate(&missing).await.unwrap_err();
    assert!(
        error.to_string().contains("not found") || error.to_string().contains("404"),
        "{error}"
    );
    assert!(runner.jobs().unwrap().is_empty());
    assert_eq!(drafts(&runner), vec![estimate.job]);

    let read = site.hits("catalog/collection.json");
    let items_read: u64 = (0..ITEMS)
        .map(|i| site.hits(&format!("catalog/item-{i}.json")))
        .sum();
    runner.start(estimate.job).unwrap();
    let report = runner.wait(estimate.job).await.unwrap();
    assert_eq!(report.state, JobState::Finished);
    assert_eq!(report.counts.done, 2 * ITEMS as u64);
    // Started, it is a job; the plan the estimate read was copied as it was.
    let listed = runner.jobs().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job.id, estimate.job);
    assert_eq!(listed[0].job.name.as_deref(), Some("Scenes"));
    assert!(drafts(&runner).is_empty());
    assert_eq!(site.hits("catalog/collection.json"), read);
    let items_after: u64 = (0..ITEMS)
        .map(|i| site.hits(&format!("catalog/item-{i}.json")))
        .sum();
    assert_eq!(items_after, items_read);
    // Its log says it was planned once and started once.
    let log = runner.with_store(|s| s.job_log(estimate.job, 100)).unwrap();
    let planned = log.iter().filter(|l| l.text.starts_with("Planned")).count();
    let started = log
        .iter()
        .filter(|l| l.text.starts_with("Copying started"))
        .count();
    assert_eq!((planned, started), (1, 1), "{log:#?}");
    // The app starting again forgets estimates nobody started, not jobs.
    runner
        .estimate(&request(&site, &dest, &["thumb"]))
        .await
        .unwrap();
    assert_eq!(drafts(&runner).len(), 1);
    runner.forget_drafts(None);
    assert!(drafts(&runner).is_empty());
    assert_eq!(runner.jobs().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_another_job_verified_in_the_mirror_counts_as_already_there() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");

    // The thumbnails first, as their own job.
    let thumbs = runner
        .estimate(&request(&site, &dest, &["thumb"]))
        .await
        .unwrap();
    runner.start(thumbs.job).unwrap();
    assert_eq!(
        runner.wait(thumbs.job).await.unwrap().state,
        JobState::Finished
    );
    // One thumbnail is changed by hand since: it does not count.
    // (The same size: the time it was changed gives it away.)
    let touched = dest.join("scenes/item-2/t2.png");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&touched, vec![b'x'; thumb_bytes(2).len()]).unwrap();

    // Then everything, into the same mirror: a job of its own, which knows
    // the two untouched thumbnails are there, verified.
    let all = runner.estimate(&request(&site, &dest, &[])).await.unwrap();
    assert_ne!(all.job, thumbs.job);
    assert_eq!(
        (all.counts.done, all.counts.skipped),
        (0, (ITEMS - 1) as u64)
    );
    let data: u64 = (0..ITEMS).map(|i| data_bytes(i).len() as u64).sum();
    assert_eq!(all.bytes_to_copy, data + thumb_bytes(2).len() as u64);

    // The file changed by hand is fetched again (a job of this mirror put
    // it there); the others are not.
    runner.start(all.job).unwrap();
    let report = runner.wait(all.job).await.unwrap();
    assert_eq!(report.state, JobState::Finished, "{report:?}");
    assert_eq!(
        (report.counts.done, report.counts.skipped),
        ((ITEMS + 1) as u64, (ITEMS - 1) as u64)
    );
    for i in 0..ITEMS {
        assert_eq!(site.hits(&format!("assets/d{i}.bin")), 1);
        let thumb_hits = site.hits(&format!("assets/t{i}.png"));
        assert_eq!(thumb_hits, if i == 2 { 2 } else { 1 }, "thumbnail {i}");
        assert_eq!(
            std::fs::read(dest.join(format!("scenes/item-{i}/t{i}.png"))).unwrap(),
            thumb_bytes(i)
        );
    }
    // The item documents name every asset with its checksum.
    for i in 0..ITEMS {
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dest.join(format!("scenes/item-{i}/item-{i}.json"))).unwrap(),
        )
        .unwrap();
        for key in ["data", "thumb"] {
            assert!(doc["assets"][key]["file:checksum"].is_string(), "{doc:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_stops_on_its_own_says_why_until_it_runs_again() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");
    let mut asked = request(&site, &dest, &[]);
    asked.source = site.url("later/collection.json");
    let job = runner
        .with_store(|s| cairn::runner::prepare_job(s, &asked))
        .unwrap();
    runner.start(job).unwrap();
    let error = runner.wait(job).await.unwrap_err();

    let stopped = runner.job(job).unwrap();
    assert_eq!(stopped.state, JobState::Paused);
    let reason = stopped
        .stop_reason
        .expect("a job stopped on an error says why");
    assert_eq!(reason, error.to_string());
    assert!(reason.contains("later/collection.json"), "{reason}");
    for internal in ["Error", "reqwest", "::", "cairn "] {
        assert!(!reason.contains(internal), "{reason}");
    }

    // The catalog is there now: resumed, the job runs, and the reason goes.
    site.put(
        "later/collection.json",
        Reply::json(&serde_json::json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
            "description": "Scenes", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
            "links": [{"rel": "item", "href": site.url("catalog/item-0.json")}]})),
    );
    runner.resume(job).unwrap();
    let report = runner.wait(job).await.unwrap();
    assert_eq!(report.state, JobState::Finished);
    assert_eq!(runner.job(job).unwrap().stop_reason, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn items_picked_or_dropped_one_by_one_are_the_job_s() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");
    let mut dropped = request(&site, &dest, &[]);
    dropped.selection.exclude = vec!["item-1".into()];
    let estimate = runner.estimate(&dropped).await.unwrap();
    assert_eq!(estimate.counts.items, (ITEMS - 1) as u64);
    let mut picked = request(&site, &dest, &["data"]);
    picked.selection.ids = vec!["item-2".into()];
    let estimate = runner.estimate(&picked).await.unwrap();
    assert_eq!((estimate.counts.items, estimate.counts.assets), (1, 1));
    runner.start(estimate.job).unwrap();
    assert_eq!(
        runner.wait(estimate.job).await.unwrap().state,
        JobState::Finished
    );
    let folders: Vec<String> = std::fs::read_dir(dest.join("scenes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".json"))
        .collect();
    assert_eq!(folders, ["item-2"]);
    assert_eq!(
        runner.jobs().unwrap()[0].job.selection["ids"],
        serde_json::json!(["item-2"])
    );
}

/// The items `fetcher` finds at `source`, by browsing as the app does.
async fn browse(fetcher: &Fetcher, source: &str) -> u64 {
    let query = Selection::default().search().unwrap();
    cairn::catalog::search::search(fetcher, source, &query, None, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .await
    .unwrap()
}

fn item_hits(site: &Site) -> u64 {
    (0..ITEMS)
        .map(|i| site.hits(&format!("catalog/item-{i}.json")))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_takes_what_was_just_browsed_and_a_copy_or_sync_reads_the_source() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let recent = std::sync::Arc::new(cairn::fetch::Recent::new(64 << 20));
    let store = Store::open(&dir.path().join("cairn.db")).unwrap();
    let runner = Runner::new(store, Fetcher::new().unwrap()).with_recent(recent.clone());
    let browsing = Fetcher::new().unwrap().with_recent(recent.clone());
    let dest = dir.path().join("mirror");
    let source = site.url("catalog/collection.json");

    // Browsed once: each item file read once; browsed again, none.
    assert_eq!(browse(&browsing, &source).await, ITEMS as u64);
    assert_eq!(item_hits(&site), ITEMS as u64);
    assert_eq!(browse(&browsing, &source).await, ITEMS as u64);
    assert_eq!(item_hits(&site), ITEMS as u64);
    // A fetcher without them reads the source.
    browse(&Fetcher::new().unwrap(), &source).await;
    assert_eq!(item_hits(&site), 2 * ITEMS as u64);

    // The estimate takes the browsed documents. Its plan is an estimate
    // only: the copy reads the source itself.
    let estimate = runner.estimate(&request(&site, &dest, &[])).await.unwrap();
    assert_eq!(estimate.counts.items, ITEMS as u64);
    assert_eq!(
        item_hits(&site),
        2 * ITEMS as u64,
        "the estimate read the items again"
    );
    runner.start(estimate.job).unwrap();
    assert_eq!(
        runner.wait(estimate.job).await.unwrap().state,
        JobState::Finished
    );
    assert_eq!(
        item_hits(&site),
        3 * ITEMS as u64,
        "the copy did not read the source"
    );

    // A sync reads the source itself, never what was browsed.
    runner.sync(estimate.job).unwrap();
    assert_eq!(
        runner.wait(estimate.job).await.unwrap().state,
        JobState::Finished
    );
    assert_eq!(
        item_hits(&site),
        4 * ITEMS as u64,
        "the sync did not read the source"
    );

    // A source one signs in to is never kept: browsed twice, read twice.
    let settings = cairn::fetch::Settings {
        headers: vec!["Authorization".into()],
        ..Default::default()
    };
    let secrets = cairn::fetch::Secrets {
        headers: vec![cairn::fetch::access::Header::parse("Authorization: Bearer t").unwrap()],
    };
    let signed = browsing
        .signed_in(&settings, &secrets, &url::Url::parse(&source).unwrap())
        .unwrap();
    browse(&signed, &source).await;
    browse(&signed, &source).await;
    assert_eq!(
        item_hits(&site),
        6 * ITEMS as u64,
        "a signed-in read was kept"
    );

    // An estimate of a job that signs in reads the source, though its
    // documents were browsed in public a moment ago.
    browse(&browsing, &source).await;
    let before = item_hits(&site);
    let mut signed_job = request(&site, &dir.path().join("signed"), &[]);
    signed_job.access = settings;
    runner.estimate_signed(&signed_job, secrets).await.unwrap();
    assert_eq!(
        item_hits(&site),
        before + ITEMS as u64,
        "a signed-in estimate took kept documents"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mirrors_list_counts_each_file_once_whichever_job_copied_it() {
    let site = Site::start();
    serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");
    let mut jobs = Vec::new();
    // The data files first, then every file: the second job finds the data
    // already there.
    for assets in [&["data"][..], &[]] {
        let estimate = runner
            .estimate(&request(&site, &dest, assets))
            .await
            .unwrap();
        runner.start(estimate.job).unwrap();
        assert_eq!(
            runner.wait(estimate.job).await.unwrap().state,
            JobState::Finished
        );
        jobs.push(estimate.job);
    }
    // An estimate into the same folder is not a job, and adds nothing.
    runner
        .estimate(&request(&site, &dest, &["thumb"]))
        .await
        .unwrap();

    let mirrors = runner.with_store(|s| s.mirrors()).unwrap();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    let mirror = &mirrors[0];
    assert_eq!(mirror.jobs, jobs);
    assert_eq!(mirror.files, 2 * ITEMS as u64);
    let bytes: usize = (0..ITEMS)
        .map(|i| data_bytes(i).len() + thumb_bytes(i).len())
        .sum();
    assert_eq!(mirror.bytes, bytes as u64);
    assert_eq!((mirror.failed, mirror.flagged), (0, 0));
    assert!(!mirror.unfinished);
    assert!(mirror.last_copied.is_some());
    assert_eq!(mirror.last_check, None);

    // A check through the state file is recorded under the jobs' destination.
    let report = cairn::verify::verify(
        &dest.display().to_string(),
        Some(&runner),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.verified, 2 * ITEMS as u64);
    let check = runner.with_store(|s| s.mirrors()).unwrap()[0]
        .last_check
        .clone()
        .expect("the check was not recorded");
    assert_eq!(
        (check.files, check.verified, check.problems),
        (2 * ITEMS as u64, 2 * ITEMS as u64, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetcher_counts_only_the_documents_it_took_itself() {
    let site = Site::start();
    serve(&site);
    let recent = std::sync::Arc::new(cairn::fetch::Recent::new(64 << 20));
    let source = site.url("catalog/collection.json");
    let browsing = Fetcher::new().unwrap().with_recent(recent.clone());
    browse(&browsing, &source).await;
    assert_eq!(browsing.recalled(), 0, "the first read took nothing");
    let estimating = Fetcher::new().unwrap().recalling(recent.clone());
    let other = Fetcher::new().unwrap().recalling(recent.clone());
    browse(&estimating, &source).await;
    // The collection and each item file, from what was browsed.
    assert_eq!(estimating.recalled(), ITEMS as u64 + 1);
    assert_eq!(other.recalled(), 0, "another fetcher's reads were counted");
    browse(&browsing, &source).await;
    assert_eq!(estimating.recalled(), ITEMS as u64 + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_left_out_of_a_catalog_are_neither_estimated_nor_copied() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_in(dir.path());
    let dest = dir.path().join("mirror");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let request = JobRequest {
        source: demo.join("catalog.json").display().to_string(),
        destination: dest.display().to_string(),
        selection: Selection {
            exclude_collections: vec!["glaciers".into()],
            ..Selection::default()
        },
        limit_rate: None,
        concurrency: 2,
        per_host: 2,
        name: None,
        access: Default::default(),
    };
    let estimate = runner.estimate(&request).await.unwrap();
    assert_eq!((estimate.counts.items, estimate.counts.assets), (3, 6));
    runner.start(estimate.job).unwrap();
    assert_eq!(
        runner.wait(estimate.job).await.unwrap().state,
        JobState::Finished
    );
    assert!(dest.join("coastlines/collection.json").is_file());
    assert!(!dest.join("glaciers").exists());
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("catalog.json")).unwrap()).unwrap();
    let children: Vec<&str> = root["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "child")
        .filter_map(|l| l["href"].as_str())
        .collect();
    assert_eq!(children, ["./coastlines/collection.json"]);
    assert_eq!(
        runner.jobs().unwrap()[0].job.selection["exclude_collections"],
        json!(["glaciers"])
    );
}
