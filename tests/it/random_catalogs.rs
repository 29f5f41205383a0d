//! Randomly made hostile catalogs mirrored end to end (proptest): ids and file
//! names with separators, dots, escapes, case and Unicode variants, reserved
//! names and duplicates; assets that are missing or wrong; and runs killed
//! with SIGKILL at random moments, then resumed. After every run:
//!
//! - nothing outside DEST changed;
//! - every file in DEST belongs to exactly one catalog entry, verified, and
//!   no two paths are one on a case-blind disk (`support::sound`);
//! - every mirrored file holds the bytes of the address it names as its
//!   source, and only good assets are mirrored;
//! - every asset of every written item is either mirrored or says why not;
//!   every item of the source is written or reported;
//! - `cairn verify` agrees with the job's own report.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::site::{Reply, Site};
use crate::support::sound::{sha256, sound_mirror, tree};
use crate::support::{Run, cairn};

const PIECES: [&str; 26] = [
    "a",
    "B",
    "..",
    ".",
    "/",
    "\\",
    "%2e",
    "%2F",
    ":",
    "CON",
    "com1",
    "\u{e9}",
    "e\u{301}",
    "DATA",
    "data",
    ".tif",
    "x.TIF",
    " ",
    "\u{65e5}\u{672c}",
    "-2",
    "collection.json",
    "catalog.json",
    "item",
    ".part",
    "?",
    "\u{0}",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Served, with size and checksum in the catalog.
    Good,
    /// Served, with no promise in the catalog.
    Unpromised,
    /// Not found on the server.
    Missing,
    /// Other bytes than the catalog's checksum.
    Wrong,
}

#[derive(Debug, Clone)]
struct AssetSpec {
    key: String,
    file: String,
    size: usize,
    fate: Fate,
}

#[derive(Debug, Clone)]
struct ItemSpec {
    id: String,
    assets: Vec<AssetSpec>,
}

#[derive(Debug, Clone)]
struct CollectionSpec {
    id: String,
    items: Vec<ItemSpec>,
}

fn hostile_name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES.to_vec()), 1..4).prop_map(|p| p.concat())
}

fn asset() -> impl Strategy<Value = AssetSpec> {
    (
        prop::sample::select(vec!["data", "DATA", "thumb", "b04", "meta"]),
        hostile_name(),
        0usize..3000,
        prop::sample::select(vec![
            Fate::Good,
            Fate::Good,
            Fate::Unpromised,
            Fate::Missing,
            Fate::Wrong,
        ]),
    )
        .prop_map(|(key, file, size, fate)| AssetSpec {
            key: key.to_string(),
            file,
            size,
            fate,
        })
}

fn catalog() -> impl Strategy<Value = Vec<CollectionSpec>> {
    let item = (hostile_name(), prop::collection::vec(asset(), 1..4))
        .prop_map(|(id, assets)| ItemSpec { id, assets });
    let collection = (hostile_name(), prop::collection::vec(item, 1..5))
        .prop_map(|(id, items)| CollectionSpec { id, items });
    prop::collection::vec(collection, 1..3)
}

/// Every byte but letters and digits percent-encoded: the server's path, and
/// a name Cairn must decode and make safe.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn bytes_for(n: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 7 + n * 131) % 251) as u8).collect()
}

/// Serves the catalog; returns its address and, by asset address, the bytes
/// served and the fate.
fn serve(
    site: &Site,
    spec: &[CollectionSpec],
    slow: bool,
) -> (String, HashMap<String, (Vec<u8>, Fate)>) {
    let mut served = HashMap::new();
    let mut n = 0;
    let mut children = vec![json!({"rel": "root", "href": "./catalog.json"})];
    for (c, collection) in spec.iter().enumerate() {
        let mut links = vec![json!({"rel": "root", "href": "../catalog.json"})];
        for (i, item) in collection.items.iter().enumerate() {
            let mut assets = serde_json::Map::new();
            for asset in &item.assets {
                n += 1;
                // A name of dots climbs out of its folder (as URLs say
                // `%2e%2e` does): `n` twice keeps every address apart.
                let url = site.url(&format!("files/{n}/{n}/{}", encode(&asset.file)));
                let path = url::Url::parse(&url).unwrap().path().to_string();
                let bytes = bytes_for(n, asset.size);
                let mut entry = json!({"href": url});
                if asset.fate != Fate::Unpromised {
                    entry["file:size"] = json!(bytes.len());
                    entry["file:checksum"] = json!(sha256(&bytes));
                }
                if asset.fate != Fate::Missing {
                    let body = if asset.fate == Fate::Wrong {
                        // Other bytes even for an empty file.
                        match bytes.is_empty() {
                            true => vec![0],
                            false => bytes.iter().map(|b| b ^ 1).collect(),
                        }
                    } else {
                        bytes.clone()
                    };
                    let mut reply = Reply::bytes(body, "application/octet-stream");
                    if slow {
                        reply = reply.trickle(Duration::from_micros(300));
                    }
                    site.put(&path, reply);
                }
                served.insert(url, (bytes, asset.fate));
                assets.insert(asset.key.clone(), entry);
            }
            let doc = json!({
                "type": "Feature", "stac_version": "1.1.0", "id": item.id, "collection": collection.id,
                "bbox": [0.0, 0.0, 1.0, 1.0], "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
                "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": assets
            });
            site.put(&format!("c{c}/i{i}.json"), Reply::json(&doc));
            links.push(json!({"rel": "item", "href": format!("./i{i}.json")}));
        }
        site.put(
            &format!("c{c}/collection.json"),
            Reply::json(&json!({
                "type": "Collection", "stac_version": "1.1.0", "id": collection.id,
                "description": "random", "license": "CC0-1.0",
                "extent": {"spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
                           "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
                "links": links
            })),
        );
        children.push(json!({"rel": "child", "href": format!("./c{c}/collection.json")}));
    }
    site.put(
        "catalog.json",
        Reply::json(
            &json!({"type": "Catalog", "stac_version": "1.1.0", "id": "random",
                            "description": "random", "links": children}),
        ),
    );
    (site.url("catalog.json"), served)
}

fn lines_of(run: &Run, kind: &str) -> Vec<Value> {
    run.lines()
        .into_iter()
        .filter(|l| l["type"] == kind)
        .collect()
}

/// Every check of the module header, after a finished run.
fn check(
    run: &Run,
    spec: &[CollectionSpec],
    served: &HashMap<String, (Vec<u8>, Fate)>,
    dir: &std::path::Path,
    dest: &std::path::Path,
) -> Result<(), TestCaseError> {
    let said = format!("{}\n{}", run.stdout, run.stderr);
    prop_assert!(matches!(run.code, Some(0 | 1)), "{}", said);
    prop_assert!(!run.stderr.contains("panicked"), "{}", said);
    let mirrored = sound_mirror(dest);
    for file in &mirrored {
        let (bytes, fate) = &served[&file.source];
        prop_assert!(
            matches!(fate, Fate::Good | Fate::Unpromised),
            "{} is mirrored",
            file.source
        );
        prop_assert_eq!(&file.bytes, bytes, "{}", &file.path);
    }
    // Every written item: each asset mirrored, or saying why not.
    let mut reached: Vec<String> = mirrored.iter().map(|m| m.source.clone()).collect();
    for (path, bytes) in tree(dest) {
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if doc["type"] != "Feature" {
            continue;
        }
        for (key, asset) in doc["assets"].as_object().unwrap() {
            let href = asset["href"].as_str().unwrap();
            if href.contains("://") {
                let (_, fate) = &served[href];
                prop_assert!(
                    asset["cairn:missing"].is_string(),
                    "{path} asset {key} is neither mirrored nor says why"
                );
                prop_assert!(
                    matches!(fate, Fate::Missing | Fate::Wrong),
                    "{path} {key}: {fate:?} not mirrored: {}",
                    asset["cairn:missing"]
                );
                reached.push(href.to_string());
            }
        }
    }
    // Every item of the source: written, or reported with its address.
    let problems: Vec<String> = lines_of(run, "problem")
        .iter()
        .map(|p| p["href"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut n = 0;
    for (c, collection) in spec.iter().enumerate() {
        for (i, item) in collection.items.iter().enumerate() {
            let href = format!("c{c}/i{i}.json");
            let sources: Vec<String> = item
                .assets
                .iter()
                .map(|_| {
                    n += 1;
                    served
                        .keys()
                        .find(|u| u.contains(&format!("/files/{n}/")))
                        .unwrap()
                        .clone()
                })
                .collect();
            let written = sources.iter().any(|s| reached.contains(s));
            let reported = problems.iter().any(|p| p.ends_with(&href));
            prop_assert!(
                written || reported,
                "the item {href} ({:?}) is neither written nor reported\n{said}",
                item.id
            );
        }
    }
    // `cairn verify` agrees with the job's report.
    let summary = run.summary();
    let verify = cairn(
        &dir.join("cairn.db"),
        &["verify", dest.to_str().unwrap(), "--json"],
    );
    // Exit 1 exactly when assets could not be copied: verify lists each.
    let failed = summary["failed"].as_u64().unwrap();
    let expected_code = if failed > 0 { 1 } else { 0 };
    prop_assert_eq!(verify.code, Some(expected_code), "{}", verify.stdout);
    let not_mirrored = verify
        .lines()
        .iter()
        .filter(|l| l["kind"] == "not_mirrored")
        .count() as u64;
    prop_assert!(
        not_mirrored >= failed,
        "{} assets failed, verify lists {not_mirrored}\n{}",
        failed,
        verify.stdout
    );
    let done = summary["done"].as_u64().unwrap() + summary["skipped"].as_u64().unwrap();
    prop_assert_eq!(
        verify.summary()["verified"].as_u64(),
        Some(done),
        "{}",
        said
    );
    prop_assert_eq!(mirrored.len() as u64, done);
    Ok(())
}

fn mirror_case(spec: Vec<CollectionSpec>, kill_after: Option<u64>) -> Result<(), TestCaseError> {
    let site = Site::start();
    let (source, served) = serve(&site, &spec, kill_after.is_some());
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let sentinel = dir.path().join("sentinel");
    std::fs::create_dir_all(sentinel.join("inner")).unwrap();
    std::fs::write(sentinel.join("inner/keep.tif"), b"not the mirror's").unwrap();
    let before = tree(&sentinel);
    let args = ["mirror", source.as_str(), dest.to_str().unwrap(), "--json"];
    if let Some(ms) = kill_after {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--state")
            .arg(&state)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        prop_assert_eq!(
            tree(&sentinel),
            before.clone(),
            "a killed run wrote outside DEST"
        );
    }
    let run = if kill_after.is_some() && cairn(&state, &["jobs", "--json"]).lines().len() > 1 {
        cairn(&state, &["resume", "1", "--json"])
    } else {
        cairn(&state, &args)
    };
    prop_assert_eq!(tree(&sentinel), before, "a run wrote outside DEST");
    let around: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("cairn.db"))
        .collect();
    let mut around = around;
    around.sort();
    prop_assert_eq!(around, ["mirror", "sentinel"]);
    check(&run, &spec, &served, dir.path(), &dest)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_hostile_catalogs_mirror_soundly(spec in catalog()) {
        mirror_case(spec, None)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_catalogs_killed_at_random_moments_resume_soundly(spec in catalog(), kill_after in 50u64..1000) {
        mirror_case(spec, Some(kill_after))?;
    }
}
