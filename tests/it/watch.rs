//! The watcher: a file deleted, changed or added in a mirror folder, or an
//! item document edited, is flagged in the state store within 2 s and told
//! as an event; a repair puts the damage right and the flags go (a file no
//! job put there stays flagged, and is left alone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::events::Event;
use cairn::runner::Runner;
use cairn::store::{FlagKind, Store};
use cairn::verify::{VerifyOptions, verify};
use cairn::watch::Watcher;
use serde_json::json;

use crate::support::site::{Reply, Site};
use crate::support::{fetcher, mirror_site};

/// Waits until the flags of `dest` are `expected` (path, kind), for at most
/// `within`; returns how long it took.
fn wait_for_flags(
    runner: &Runner,
    dest: &str,
    expected: &[(&str, FlagKind)],
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let flags: Vec<(String, FlagKind)> = runner
            .with_store(|s| s.flags(dest))
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.kind))
            .collect();
        let wanted: Vec<(String, FlagKind)> =
            expected.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        if flags == wanted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "after {:?}: {flags:?}, not {wanted:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn damage_is_flagged_within_two_seconds_and_a_repair_clears_it() {
    let site = Site::start();
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for i in 0..3 {
        let bytes: Vec<u8> = (0..5000u32).map(|b| (b * 7 + i) as u8).collect();
        site.put(
            &format!("a{i}.bin"),
            Reply::bytes(bytes, "application/octet-stream").header("etag", &format!("\"{i}\"")),
        );
        let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("t{i}"),
            "collection": "tiles", "geometry": null, "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "links": [], "assets": {"data": {"href": site.url(&format!("a{i}.bin")), "type": "application/octet-stream"}}});
        site.put(&format!("t{i}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./t{i}.json")}));
    }
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "tiles",
        "description": "Tiles", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[null, null]]}},
        "links": links});
    site.put("collection.json", Reply::json(&collection));
    let (out, state, dest, _) = mirror_site(&site, "collection.json");
    let destination = dest.to_str().unwrap().to_string();

    let runner = Arc::new(Runner::new(Store::open(&state).unwrap(), fetcher()));
    let mut events = runner.subscribe();
    let watcher = Watcher::start(runner.clone()).unwrap();
    watcher.refresh().unwrap();
    assert_eq!(watcher.watched(), vec![dest.clone()]);

    // Deleted, changed, added, edited.
    std::fs::remove_file(dest.join("tiles/t0/a0.bin")).unwrap();
    std::fs::write(dest.join("tiles/t1/a1.bin"), b"other bytes").unwrap();
    std::fs::write(dest.join("tiles/t2/notes.txt"), b"mine").unwrap();
    let document = dest.join("tiles/t2/t2.json");
    let mut edited: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&document).unwrap()).unwrap();
    edited["properties"]["title"] = json!("edited by hand");
    std::fs::write(&document, edited.to_string()).unwrap();
    let took = wait_for_flags(
        &runner,
        &destination,
        &[
            ("tiles/t0/a0.bin", FlagKind::Missing),
            ("tiles/t1/a1.bin", FlagKind::Modified),
            ("tiles/t2/notes.txt", FlagKind::Added),
            ("tiles/t2/t2.json", FlagKind::Edited),
        ],
        Duration::from_secs(2),
    );
    println!("flagged within {took:?}");
    // Told in as many events as looks it took, each with how many more.
    let mut told = 0;
    while let Ok(event) = events.try_recv() {
        if let Event::Flagged { more, .. } = event {
            told += 1 + more;
        }
    }
    assert_eq!(told, 4);
    // The map shows the damaged items in their own colour.
    let marks = runner
        .with_store(|s| s.item_marks(&site.url("collection.json")))
        .unwrap();
    let damaged: Vec<&str> = marks
        .iter()
        .filter(|m| m.state == cairn::store::Mirrored::Damaged)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(damaged, ["t0", "t1", "t2"]);

    // The repair puts the damage right; the next look takes the flags off,
    // but for the file no job put there.
    let report = verify(&destination, Some(&runner), &VerifyOptions { repair: true })
        .await
        .unwrap();
    assert_eq!(report.repaired, 3, "{report:?}");
    watcher.refresh().unwrap();
    wait_for_flags(
        &runner,
        &destination,
        &[("tiles/t2/notes.txt", FlagKind::Added)],
        Duration::from_secs(2),
    );
    assert!(dest.join("tiles/t0/a0.bin").is_file());
    std::fs::remove_file(dest.join("tiles/t2/notes.txt")).unwrap();
    wait_for_flags(&runner, &destination, &[], Duration::from_secs(2));

    // Reading the mirror changes nothing, and flags nothing.
    for path in ["tiles/t0/a0.bin", "tiles/t1/t1.json", "catalog.json"] {
        std::fs::read(dest.join(path)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1200));
    wait_for_flags(&runner, &destination, &[], Duration::from_secs(1));

    // A whole item folder moved away: each file Cairn recorded in it.
    std::fs::rename(dest.join("tiles/t1"), out.path().join("t1-elsewhere")).unwrap();
    wait_for_flags(
        &runner,
        &destination,
        &[
            ("tiles/t1/a1.bin", FlagKind::Missing),
            ("tiles/t1/t1.json", FlagKind::Missing),
        ],
        Duration::from_secs(2),
    );
}
