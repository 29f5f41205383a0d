//! Keeping a mirror current: a sync plans the source again and copies only
//! what is new or changed (counted at the server), keeps the previous bytes
//! of a changed file, keeps items removed upstream (marked), and records
//! each run in the job's history; a sync with nothing changed fetches nothing.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::site::{Reply, Site};
use crate::support::{cairn, item_links, mirror_site, pystac_report, read_index};

/// The bytes of asset `i` in their `version`.
fn asset_bytes(i: usize, version: u8) -> Vec<u8> {
    (0..(3000 + i * 101))
        .map(|b| (b as u8).wrapping_mul(31).wrapping_add(i as u8 ^ version))
        .collect()
}

/// Serves asset `i` in its `version`, with an ETag that names the version.
fn put_asset(site: &Site, i: usize, version: u8) {
    site.put(
        &format!("assets/a{i}.bin"),
        Reply::bytes(asset_bytes(i, version), "application/octet-stream")
            .header("etag", &format!("\"a{i}-v{version}\"")),
    );
}

/// Serves item `i` (one asset, no `file:size` or checksum, as most catalogs).
fn put_item(site: &Site, i: usize, title: &str) {
    site.put(
        &format!("catalog/item-{i}.json"),
        Reply::json(&item(site, i, title)),
    );
}

fn item(site: &Site, i: usize, title: &str) -> Value {
    let x = i as f64;
    json!({
        "type": "Feature", "stac_version": "1.1.0", "id": format!("item-{i}"),
        "collection": "scenes",
        "geometry": {"type": "Polygon", "coordinates": [[[x, 0.0], [x + 1.0, 0.0], [x + 1.0, 1.0], [x, 1.0], [x, 0.0]]]},
        "bbox": [x, 0.0, x + 1.0, 1.0],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "title": title},
        "links": [],
        "assets": {"data": {"href": site.url(&format!("assets/a{i}.bin")), "type": "application/octet-stream", "roles": ["data"]}}
    })
}

/// Serves the collection linking the items `items`.
fn put_collection(site: &Site, items: &[usize]) {
    site.put("catalog/collection.json", collection(site, items));
}

/// The collection linking the items `items`.
fn collection(_site: &Site, items: &[usize]) -> Reply {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    links.extend(
        items
            .iter()
            .map(|i| json!({"rel": "item", "href": format!("./item-{i}.json")})),
    );
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
        "description": "Scenes", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 20, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links});
    Reply::json(&collection)
}

/// Runs `cairn ARGS` for job `job` while the source (items `0..3`) is slow
/// to answer, and pauses the job once it is reading it: the stopped
/// command's output (exit 3). The source answers at once again after.
fn stopped_while_reading(
    site: &Site,
    state: &Path,
    job: &str,
    args: &[&str],
) -> std::process::Output {
    site.put(
        "catalog/collection.json",
        collection(site, &[0, 1, 2]).delay(std::time::Duration::from_secs(30)),
    );
    let asked = site.hits("catalog/collection.json");
    let child = crate::support::spawn_cairn(state, args);
    let started = std::time::Instant::now();
    while site.hits("catalog/collection.json") == asked {
        assert!(started.elapsed().as_secs() < 20, "{args:?} did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let paused = cairn(state, &["pause", job]);
    assert_eq!(paused.code, Some(0), "{}", paused.stderr);
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(3), "{args:?}");
    put_collection(site, &[0, 1, 2]);
    stopped
}

/// Body bytes the site sent for the assets `0..n` so far.
fn asset_bytes_sent(site: &Site, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| site.sent(&format!("assets/a{i}.bin")))
        .collect()
}

/// A first copy of a collection of `n` items, and where it is.
struct Mirrored {
    out: tempfile::TempDir,
    state: std::path::PathBuf,
    dest: std::path::PathBuf,
    source: String,
    job: String,
}

/// Serves `n` items on `site` and mirrors them once.
fn first_copy(site: &Site, n: usize) -> Mirrored {
    for i in 0..n {
        put_asset(site, i, 1);
        put_item(site, i, "first");
    }
    put_collection(site, &(0..n).collect::<Vec<_>>());
    let (out, state, dest, job) = mirror_site(site, "catalog/collection.json");
    let source = site.url("catalog/collection.json");
    let job = job.to_string();
    Mirrored {
        out,
        state,
        dest,
        source,
        job,
    }
}

fn item_document(dest: &Path, i: usize) -> Value {
    let path = dest.join(format!("scenes/item-{i}/item-{i}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// `cairn verify` of the mirror at `dest`: it passes; its summary.
fn verifies(state: &Path, dest: &Path) -> Value {
    let verified = cairn(state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(
        verified.code,
        Some(0),
        "{}\n{}",
        verified.stdout,
        verified.stderr
    );
    verified.summary()
}

#[test]
fn a_sync_fetches_only_what_changed_and_keeps_what_went() {
    let site = Site::start();
    let Mirrored {
        out: _out,
        state,
        dest,
        source,
        job,
    } = first_copy(&site, 10);
    let before = asset_bytes_sent(&site, 10);
    let old_bytes_of_1 = std::fs::read(dest.join("scenes/item-1/a1.bin")).unwrap();

    // Upstream: 10 new items, new bytes for the asset of item 1, a new
    // title (metadata only) for item 2, items 3 and 4 gone.
    for i in 10..20 {
        put_asset(&site, i, 1);
        put_item(&site, i, "first");
    }
    put_asset(&site, 1, 2);
    put_item(&site, 2, "second");
    let listed: Vec<usize> = (0..20).filter(|i| ![3, 4].contains(i)).collect();
    put_collection(&site, &listed);

    let second = cairn(&state, &["sync", &job, "--json"]);
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    let summary = second.summary();
    let run = &summary["sync"];
    assert_eq!(run["kind"], "sync", "{summary}");
    assert_eq!(run["new_items"], 10, "{run}");
    assert_eq!(run["changed_items"], 1, "{run}");
    assert_eq!(run["removed_items"], 2, "{run}");
    assert_eq!(run["changed_assets"], 1, "{run}");
    assert_eq!(run["removals_checked"], true, "{run}");
    // Progress counts each file once: the files asked about again had been
    // counted as finished before the run.
    let progress: Vec<Value> = second
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "progress")
        .collect();
    for line in &progress {
        assert!(
            line["files_done"].as_u64() <= line["files_total"].as_u64(),
            "{line}"
        );
    }
    // It never goes back (the files asked about again are not first
    // counted as finished, then taken off).
    for pair in progress.windows(2) {
        let done = |line: &Value| line["files_done"].as_u64().unwrap();
        assert!(
            done(&pair[0]) <= done(&pair[1]),
            "{} then {}",
            pair[0],
            pair[1]
        );
    }
    let last = progress.last().unwrap();
    assert_eq!(
        last["files_done"].as_u64(),
        Some(summary["done"].as_u64().unwrap() + summary["skipped"].as_u64().unwrap()),
        "{last} {summary}"
    );

    // Exactly the new and changed bytes came from the server.
    let after = asset_bytes_sent(&site, 20);
    for (i, sent) in after.iter().enumerate() {
        let expected = match i {
            1 => before[1] + asset_bytes(1, 2).len() as u64,
            0..10 => before[i],
            _ => asset_bytes(i, 1).len() as u64,
        };
        assert_eq!(*sent, expected, "asset {i}: {after:?}");
    }
    let new_bytes: u64 = (10..20)
        .map(|i| asset_bytes(i, 1).len() as u64)
        .sum::<u64>()
        + asset_bytes(1, 2).len() as u64;
    assert_eq!(run["bytes"], new_bytes, "{run}");

    // The changed file has its new bytes, and the old ones beside it.
    assert_eq!(
        std::fs::read(dest.join("scenes/item-1/a1.bin")).unwrap(),
        asset_bytes(1, 2)
    );
    let one = item_document(&dest, 1);
    let previous = one["assets"]["data"]["cairn:previous_versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{one}"));
    assert_eq!(previous.len(), 1, "{one}");
    let kept_href = previous[0]["href"].as_str().unwrap();
    assert!(
        kept_href.starts_with("./a1.previous-") && kept_href.ends_with(".bin"),
        "{kept_href}"
    );
    let kept = dest.join("scenes/item-1").join(&kept_href[2..]);
    assert_eq!(std::fs::read(&kept).unwrap(), old_bytes_of_1);
    assert_eq!(previous[0]["file:size"], old_bytes_of_1.len());
    assert_eq!(
        one["assets"]["data"]["file:size"],
        asset_bytes(1, 2).len(),
        "{one}"
    );

    // The metadata change is in the mirror; the removed items are kept,
    // marked, and still in the catalog.
    assert_eq!(item_document(&dest, 2)["properties"]["title"], "second");
    let collection: Value =
        serde_json::from_slice(&std::fs::read(dest.join("scenes/collection.json")).unwrap())
            .unwrap();
    let links = item_links(&collection);
    assert_eq!(links.len(), 20, "{links:?}");
    for i in [3, 4] {
        let removed = item_document(&dest, i);
        assert!(
            removed["properties"]["cairn:removed_upstream"].is_string(),
            "{removed}"
        );
        assert!(dest.join(format!("scenes/item-{i}/a{i}.bin")).is_file());
        assert!(
            links.contains(&format!("./item-{i}/item-{i}.json")),
            "{links:?}"
        );
    }
    for i in [0, 5, 19] {
        assert!(
            item_document(&dest, i)["properties"]
                .get("cairn:removed_upstream")
                .is_none()
        );
    }

    // The index holds all 20, and the whole mirror validates and verifies
    // (the kept version included, nothing unaccounted for).
    let index = read_index(&dest.join("items.parquet"));
    assert_eq!(index["duckdb"], 20, "{index}");
    let report = pystac_report(&dest.join("catalog.json"));
    assert_eq!(report["items"], 20, "{report}");
    let verified = verifies(&state, &dest);
    assert_eq!(verified["verified"], 21, "{verified}");

    // Nothing changed: nothing is fetched, nothing counted. (The same
    // `cairn mirror` again is a sync too.)
    let third = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    let run = &third.summary()["sync"];
    for count in [
        "new_items",
        "changed_items",
        "removed_items",
        "changed_assets",
        "bytes",
    ] {
        assert_eq!(run[count], 0, "{count}: {run}");
    }
    assert_eq!(asset_bytes_sent(&site, 20), after);
    assert!(
        third
            .stdout
            .lines()
            .all(|l| !l.contains("\"type\":\"failed\"")),
        "{}",
        third.stdout
    );
}

#[test]
fn the_files_done_of_a_sync_that_asks_about_every_file_never_go_back() {
    let site = Site::start();
    let Mirrored {
        out: _out,
        state,
        job,
        ..
    } = first_copy(&site, 10);
    let before = asset_bytes_sent(&site, 10);
    // Nothing changed upstream, but each file takes the server a while to
    // speak of: the sync's questions outlast a few progress lines.
    for i in 0..10 {
        site.put(
            &format!("assets/a{i}.bin"),
            Reply::bytes(asset_bytes(i, 1), "application/octet-stream")
                .header("etag", &format!("\"a{i}-v1\""))
                .delay(std::time::Duration::from_millis(400)),
        );
    }
    let sync = cairn(&state, &["sync", &job, "--json"]);
    assert_eq!(sync.code, Some(0), "{}\n{}", sync.stdout, sync.stderr);
    assert_eq!(asset_bytes_sent(&site, 10), before, "nothing is fetched");
    let files_done: Vec<u64> = sync
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "progress")
        .map(|l| l["files_done"].as_u64().unwrap())
        .collect();
    assert!(files_done.len() >= 3, "{files_done:?}");
    assert!(
        files_done.windows(2).all(|pair| pair[0] <= pair[1]),
        "{files_done:?}"
    );
    assert_eq!(files_done.last(), Some(&10), "{files_done:?}");
}

#[test]
fn a_sync_stopped_before_it_read_its_source_asks_about_the_files_when_resumed() {
    let site = Site::start();
    let Mirrored {
        out: _out,
        state,
        dest,
        job,
        ..
    } = first_copy(&site, 3);
    // A sync that finds nothing new.
    let nothing = cairn(&state, &["sync", &job, "--json"]);
    assert_eq!(nothing.code, Some(0), "{}", nothing.stderr);
    // New bytes upstream for asset 1; a sync paused before its plan was
    // read asked about no file.
    put_asset(&site, 1, 2);
    let stopped = stopped_while_reading(&site, &state, &job, &["sync", &job, "--json"]);
    // Its summary tells of no sync: it ended none (not the one before).
    let stdout = String::from_utf8_lossy(&stopped.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary", "{stdout}");
    assert!(summary.get("sync").is_none(), "{summary}");
    let resumed = cairn(&state, &["resume", &job, "--json"]);
    assert_eq!(
        resumed.code,
        Some(0),
        "{}\n{}",
        resumed.stdout,
        resumed.stderr
    );
    assert!(
        std::fs::read(dest.join("scenes/item-1/a1.bin")).unwrap() == asset_bytes(1, 2),
        "the resumed sync did not ask about the file"
    );
    let run = &resumed.summary()["sync"];
    assert_eq!(run["changed_assets"], 1, "{run}");

    // A resume (not a sync) stopped while it reads the source leaves its
    // run open; a sync that takes that run over still asks.
    put_asset(&site, 1, 3);
    stopped_while_reading(&site, &state, &job, &["resume", &job]);
    let synced = cairn(&state, &["sync", &job, "--json"]);
    assert_eq!(synced.code, Some(0), "{}\n{}", synced.stdout, synced.stderr);
    assert!(
        std::fs::read(dest.join("scenes/item-1/a1.bin")).unwrap() == asset_bytes(1, 3),
        "the sync did not ask about the file"
    );
}

#[test]
fn a_sync_can_replace_changed_files_and_follow_deletions() {
    let site = Site::start();
    let Mirrored {
        out: _out,
        state,
        dest,
        job,
        ..
    } = first_copy(&site, 4);

    put_asset(&site, 0, 2);
    put_collection(&site, &[0, 1, 2]);
    let second = cairn(
        &state,
        &[
            "sync",
            &job,
            "--overwrite-changed",
            "--mirror-deletions",
            "--json",
        ],
    );
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    let run = &second.summary()["sync"];
    assert_eq!(run["removed_items"], 1, "{run}");
    assert_eq!(run["taken_out"], 1, "{run}");
    assert_eq!(run["changed_assets"], 1, "{run}");
    // The new bytes replaced the old; no version kept.
    let folder: Vec<String> = std::fs::read_dir(dest.join("scenes/item-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folder.len(), 2, "{folder:?}");
    assert_eq!(
        std::fs::read(dest.join("scenes/item-0/a0.bin")).unwrap(),
        asset_bytes(0, 2)
    );
    // The removed item is gone from the mirror and its catalog.
    assert!(!dest.join("scenes/item-3").exists());
    let collection: Value =
        serde_json::from_slice(&std::fs::read(dest.join("scenes/collection.json")).unwrap())
            .unwrap();
    assert_eq!(item_links(&collection).len(), 3);
    verifies(&state, &dest);
    let report = pystac_report(&dest.join("catalog.json"));
    assert_eq!(report["items"], 3, "{report}");

    // An item marked removed by a sync that kept it, then taken out by
    // one that follows deletions: that run says so, though nothing in the
    // source changed for it.
    put_collection(&site, &[0, 1]);
    let kept = cairn(&state, &["sync", &job, "--keep-removed", "--json"]);
    assert_eq!(kept.code, Some(0), "{}\n{}", kept.stdout, kept.stderr);
    assert!(dest.join("scenes/item-2").exists());
    let taken = cairn(&state, &["sync", &job, "--mirror-deletions"]);
    assert_eq!(taken.code, Some(0), "{}\n{}", taken.stdout, taken.stderr);
    assert!(!dest.join("scenes/item-2").exists());
    assert!(
        taken.stdout.contains("1 item taken out of the mirror"),
        "{}",
        taken.stdout
    );
}

#[test]
fn a_changed_checksum_in_the_catalog_is_a_change_and_a_dry_run_does_not_hide_one() {
    // Items that give file:checksum: their catalog speaks for the bytes.
    let site = Site::start();
    let put_checked_item = |i: usize, version: u8| {
        let bytes = asset_bytes(i, version);
        let checksum = cairn::checksum::Checksum::of(cairn::checksum::Algorithm::Sha2_256, &bytes);
        put_asset(&site, i, version);
        let mut item = item(&site, i, "first");
        item["assets"]["data"]["file:checksum"] = json!(checksum.to_hex());
        site.put(&format!("catalog/item-{i}.json"), Reply::json(&item));
    };
    for i in 0..3 {
        put_checked_item(i, 1);
    }
    put_asset(&site, 3, 1);
    put_item(&site, 3, "first");
    put_collection(&site, &[0, 1, 2, 3]);
    let out = tempfile::tempdir().unwrap();
    let (state, dest) = (out.path().join("cairn.db"), out.path().join("mirror"));
    let source = site.url("catalog/collection.json");
    let mirror = |extra: &[&str]| {
        let mut args = vec!["mirror", source.as_str(), dest.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        cairn(&state, &args)
    };
    let first = mirror(&[]);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let heads_before: Vec<u64> = (0..4)
        .map(|i| site.hits(&format!("assets/a{i}.bin")))
        .collect();

    // Item 0 gets new bytes with a new checksum; asset 3 (no checksum) new
    // bytes behind the same address. A dry run looks first.
    put_checked_item(0, 2);
    put_asset(&site, 3, 2);
    let dry = mirror(&["--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}\n{}", dry.stdout, dry.stderr);
    let second = mirror(&[]);
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    let run = &second.summary()["sync"];
    assert_eq!(run["changed_assets"], 2, "{run}");
    for i in [0, 3] {
        let item = item_document(&dest, i);
        let previous = &item["assets"]["data"]["cairn:previous_versions"];
        assert_eq!(previous.as_array().map(Vec::len), Some(1), "{item}");
        assert_eq!(
            std::fs::read(dest.join(format!("scenes/item-{i}/a{i}.bin"))).unwrap(),
            asset_bytes(i, 2)
        );
    }
    // The files whose catalog gives a checksum were not asked about at all.
    for i in [1, 2] {
        assert_eq!(
            site.hits(&format!("assets/a{i}.bin")),
            heads_before[i],
            "asset {i}"
        );
    }
    verifies(&state, &dest);
}

/// A sync plans the source again while it already copies (what failed
/// before is queued again at once): a file being fetched from the address
/// its item had may be moved by the item read meanwhile. The copy from the
/// old address is finished and kept as a previous version; the file in the
/// mirror is the new address's, recorded as such (never the old bytes
/// under the new address).
#[test]
fn an_asset_moved_while_a_sync_fetches_it_ends_with_the_new_address_bytes() {
    let site = Site::start();
    // A first copy in which asset 0 is missing at its server.
    for i in 0..3 {
        if i > 0 {
            put_asset(&site, i, 1);
        }
        put_item(&site, i, "first");
    }
    put_collection(&site, &[0, 1, 2]);
    let out = tempfile::tempdir().unwrap();
    let (state, dest) = (out.path().join("cairn.db"), out.path().join("mirror"));
    let first = cairn(
        &state,
        &[
            "mirror",
            &site.url("catalog/collection.json"),
            dest.to_str().unwrap(),
            "--json",
        ],
    );
    let summary = first.summary();
    assert_eq!(summary["failed"], 1, "{}\n{}", first.stdout, first.stderr);
    let job = summary["job"].to_string();

    // Upstream: the bytes are at the old address now, served slowly (the
    // sync queues the failed file again and starts fetching it at once), and
    // the item, read a moment later, names another address with other bytes.
    site.put(
        "assets/a0.bin",
        Reply::bytes(asset_bytes(0, 2), "application/octet-stream")
            .header("etag", "\"a0-v2\"")
            .trickle(std::time::Duration::from_millis(1)),
    );
    site.put(
        "moved/a0.bin",
        Reply::bytes(asset_bytes(0, 3), "application/octet-stream").header("etag", "\"m0-v3\""),
    );
    let mut moved = item(&site, 0, "moved");
    moved["assets"]["data"]["href"] = Value::from(site.url("moved/a0.bin"));
    site.put(
        "catalog/item-0.json",
        Reply::json(&moved).trickle(std::time::Duration::from_micros(300)),
    );

    let run = cairn(&state, &["sync", &job, "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // The old address was being fetched when the item moved it (else this
    // test shows nothing): its bytes were sent in full.
    assert_eq!(
        site.sent("assets/a0.bin"),
        asset_bytes(0, 2).len() as u64,
        "{}",
        run.stdout
    );
    assert_eq!(site.sent("moved/a0.bin"), asset_bytes(0, 3).len() as u64);
    assert_eq!(run.summary()["done"], 3, "{}", run.stdout);

    let file = dest.join("scenes/item-0/a0.bin");
    assert_eq!(std::fs::read(&file).unwrap(), asset_bytes(0, 3));
    let doc = item_document(&dest, 0);
    let asset = &doc["assets"]["data"];
    assert_eq!(asset["href"], "./a0.bin", "{doc}");
    assert_eq!(asset["file:size"], asset_bytes(0, 3).len(), "{doc}");
    assert_eq!(doc["properties"]["title"], "moved", "{doc}");
    // The old address's bytes are kept beside it, as a previous version.
    let previous = asset["cairn:previous_versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(previous.len(), 1, "{doc}");
    let href = previous[0]["href"].as_str().unwrap();
    assert_eq!(
        std::fs::read(dest.join("scenes/item-0").join(&href[2..])).unwrap(),
        asset_bytes(0, 2)
    );
    // The provenance names the address the bytes came from.
    let provenance = std::fs::read_to_string(dest.join("provenance.jsonl")).unwrap();
    let line = provenance
        .lines()
        .find(|l| l.contains("\"scenes/item-0/a0.bin\""))
        .unwrap_or_else(|| panic!("{provenance}"));
    assert!(line.contains("moved/a0.bin"), "{line}");
    verifies(&state, &dest);
}

#[test]
fn a_run_that_could_not_write_the_index_leaves_it_to_the_next_run_even_one_that_changes_nothing() {
    let site = Site::start();
    let mirrored = first_copy(&site, 4);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);
    assert_eq!(read_index(&dest.join("items.parquet"))["duckdb"], 4);

    // A new item upstream; a folder in the way of the new index (as a run
    // stopped or killed before its end would leave the old index too).
    put_asset(&site, 4, 1);
    put_item(&site, 4, "first");
    put_collection(&site, &[0, 1, 2, 3, 4]);
    let blocker = dest.join("items.parquet.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let second = cairn(state, &["sync", job, "--json"]);
    assert!(
        second.stdout.contains("items.parquet could not be written"),
        "{}\n{}",
        second.stdout,
        second.stderr
    );
    assert!(dest.join("scenes/item-4/a4.bin").is_file());
    assert_eq!(read_index(&dest.join("items.parquet"))["duckdb"], 4);

    // The next run has nothing new to fetch, and writes the index all the
    // same: the mirror's change is in it at last.
    std::fs::remove_dir(&blocker).unwrap();
    let third = cairn(state, &["sync", job, "--json"]);
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    assert_eq!(third.summary()["sync"]["new_items"], 0, "{}", third.stdout);
    let index = read_index(&dest.join("items.parquet"));
    assert_eq!(index["duckdb"], 5, "{index}");
    assert!(!dest.join("items.parquet.tmp").exists());

    // And once written, a run that changes nothing leaves it as it is.
    let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
    std::fs::File::options()
        .write(true)
        .open(dest.join("items.parquet"))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let fourth = cairn(state, &["sync", job, "--json"]);
    assert_eq!(fourth.code, Some(0), "{}\n{}", fourth.stdout, fourth.stderr);
    assert_eq!(
        std::fs::metadata(dest.join("items.parquet"))
            .unwrap()
            .modified()
            .unwrap(),
        long_ago
    );
}

#[test]
fn an_index_made_while_a_collection_could_not_be_read_is_made_again_by_the_next_run() {
    let site = Site::start();
    let mirrored = first_copy(&site, 3);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);

    // A new item upstream, while the mirror's collection document cannot be
    // read (a folder stands at its name): it is left as it is, and the
    // index cannot list the collection's items.
    put_asset(&site, 3, 1);
    put_item(&site, 3, "first");
    put_collection(&site, &[0, 1, 2, 3]);
    let collection = dest.join("scenes/collection.json");
    std::fs::remove_file(&collection).unwrap();
    std::fs::create_dir(&collection).unwrap();
    let second = cairn(state, &["sync", job, "--json"]);
    assert!(
        second.stdout.contains("could not be read"),
        "{}\n{}",
        second.stdout,
        second.stderr
    );
    assert!(dest.join("scenes/item-3/a3.bin").is_file());

    // Readable again (gone): the next run, with nothing to fetch, links
    // the items anew, and the index holds them all.
    std::fs::remove_dir(&collection).unwrap();
    let third = cairn(state, &["sync", job, "--json"]);
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    assert_eq!(third.summary()["sync"]["new_items"], 0, "{}", third.stdout);
    let index = read_index(&dest.join("items.parquet"));
    assert_eq!(index["duckdb"], 4, "{index}");
}

/// Four items mirrored; item 3 gone upstream and taken out by a sync while
/// the mirror's collection document could not be read (a folder stood at
/// its name), so the removal is left half done: the item's files are gone,
/// its record is kept, and the document, readable again as it was, still
/// links it.
fn removal_left_half_done(site: &Site) -> Mirrored {
    let mirrored = first_copy(site, 4);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);
    put_collection(site, &[0, 1, 2]);
    let collection = dest.join("scenes/collection.json");
    let kept = std::fs::read(&collection).unwrap();
    std::fs::remove_file(&collection).unwrap();
    std::fs::create_dir(&collection).unwrap();
    let synced = cairn(state, &["sync", job, "--mirror-deletions", "--json"]);
    assert!(
        synced.stdout.contains("could not be read"),
        "{}",
        synced.stdout
    );
    assert!(!dest.join("scenes/item-3").exists());
    std::fs::remove_dir(&collection).unwrap();
    std::fs::write(&collection, kept).unwrap();
    mirrored
}

#[test]
fn items_taken_out_while_their_collection_could_not_be_read_are_unlinked_by_the_next_run() {
    let site = Site::start();
    let mirrored = removal_left_half_done(&site);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);
    let collection = dest.join("scenes/collection.json");

    // The next run takes the link out, and the catalog and its index agree.
    let third = cairn(state, &["sync", job, "--mirror-deletions", "--json"]);
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    // The item was taken out by the run before: this one says nothing of it.
    let run = &third.summary()["sync"];
    assert_eq!(run["taken_out"], 0, "{run}");
    let document: Value = serde_json::from_slice(&std::fs::read(&collection).unwrap()).unwrap();
    let links = item_links(&document);
    assert_eq!(links.len(), 3, "{links:?}");
    assert!(
        !links.contains(&"./item-3/item-3.json".to_string()),
        "{links:?}"
    );
    assert_eq!(read_index(&dest.join("items.parquet"))["duckdb"], 3);
    let report = pystac_report(&dest.join("catalog.json"));
    assert_eq!(report["items"], 3, "{report}");
}

#[test]
fn a_removal_takes_the_files_out_of_its_own_mirror_whatever_other_mirrors_hold() {
    let site = Site::start();
    let mirrored = first_copy(&site, 3);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);
    // The same source into a second mirror, by a second job.
    let other = mirrored.out.path().join("other");
    let copied = cairn(
        state,
        &[
            "mirror",
            &mirrored.source,
            other.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(copied.code, Some(0), "{}\n{}", copied.stdout, copied.stderr);

    put_collection(&site, &[0, 1]);
    let synced = cairn(state, &["sync", job, "--mirror-deletions", "--json"]);
    assert_eq!(synced.code, Some(0), "{}\n{}", synced.stdout, synced.stderr);
    assert!(
        !dest.join("scenes/item-2").exists(),
        "a file of item 2 stayed"
    );
    // The other mirror is the other job's: untouched.
    assert!(other.join("scenes/item-2/a2.bin").is_file());
    verifies(state, dest);
}

#[test]
fn an_index_removed_by_hand_is_written_again_by_a_run_that_changes_nothing() {
    let site = Site::start();
    let mirrored = first_copy(&site, 2);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);
    std::fs::remove_file(dest.join("items.parquet")).unwrap();
    std::fs::remove_file(dest.join("provenance.jsonl")).unwrap();
    let synced = cairn(state, &["sync", job, "--json"]);
    assert_eq!(synced.code, Some(0), "{}\n{}", synced.stdout, synced.stderr);
    assert_eq!(read_index(&dest.join("items.parquet"))["duckdb"], 2);
    let provenance = std::fs::read_to_string(dest.join("provenance.jsonl")).unwrap();
    assert_eq!(provenance.lines().count(), 2, "{provenance}");
}

#[test]
fn an_item_back_upstream_after_a_removal_left_half_done_comes_back_whole() {
    let site = Site::start();
    let mirrored = removal_left_half_done(&site);
    let (state, dest, job) = (&mirrored.state, &mirrored.dest, &mirrored.job);

    // Item 3 is back upstream before the next run: it comes back whole.
    put_collection(&site, &[0, 1, 2, 3]);
    let third = cairn(state, &["sync", job, "--mirror-deletions", "--json"]);
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    assert_eq!(
        std::fs::read(dest.join("scenes/item-3/a3.bin")).unwrap(),
        asset_bytes(3, 1)
    );
    let verified = verifies(state, dest);
    assert_eq!(verified["verified"], 4, "{verified}");
    assert_eq!(read_index(&dest.join("items.parquet"))["duckdb"], 4);
}
