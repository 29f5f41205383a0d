//! Hostile and unlucky catalogs, servers and folders: each test asserts one of
//! Cairn's promises (nothing outside DEST, nothing from the user's machine,
//! nothing lost, nothing falsely verified, clean stops) by comparing the files
//! in and around DEST, the bytes the server sent, the exit code and the words.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::site::{Reply, Site};
use crate::support::sound::{sha256, sound_mirror, tree};
use crate::support::{Run, cairn};

/// An asset to publish: key, its file's path on the site, bytes, media type.
pub struct Asset<'a> {
    pub key: &'a str,
    pub file: &'a str,
    pub bytes: Vec<u8>,
    pub media_type: &'a str,
}

impl<'a> Asset<'a> {
    pub fn new(key: &'a str, file: &'a str, bytes: Vec<u8>) -> Asset<'a> {
        Asset {
            key,
            file,
            bytes,
            media_type: "application/octet-stream",
        }
    }
}

/// Some bytes that say which asset they are.
pub fn bytes_of(name: &str, size: usize) -> Vec<u8> {
    let seed = name
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..size)
        .map(|i| (seed.wrapping_add(i as u32).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// An item document whose assets are served by `site` (with size and checksum).
pub fn item(site: &Site, id: &str, collection: &str, assets: &[Asset<'_>]) -> Value {
    let mut map = serde_json::Map::new();
    for asset in assets {
        site.put(
            asset.file,
            Reply::bytes(asset.bytes.clone(), asset.media_type),
        );
        map.insert(
            asset.key.to_string(),
            json!({"href": site.url(asset.file), "type": asset.media_type,
                   "file:size": asset.bytes.len(), "file:checksum": sha256(&asset.bytes)}),
        );
    }
    json!({
        "type": "Feature", "stac_version": "1.1.0", "id": id, "collection": collection,
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
        "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "links": [], "assets": map
    })
}

/// An item `id` in `collection` with one asset, `data`, at `file`.
pub fn one_asset(site: &Site, id: &str, collection: &str, file: &str, bytes: Vec<u8>) -> Value {
    item(site, id, collection, &[Asset::new("data", file, bytes)])
}

/// Serves a root catalog at `catalog.json` linking one collection per entry,
/// each linking its items; returns the root's address.
pub fn publish(site: &Site, collections: &[(&str, Vec<Value>)]) -> String {
    let mut children = Vec::new();
    for (n, (id, items)) in collections.iter().enumerate() {
        let mut links = vec![json!({"rel": "root", "href": "../catalog.json"})];
        for (m, item) in items.iter().enumerate() {
            site.put(&format!("c{n}/i{m}.json"), Reply::json(item));
            links.push(json!({"rel": "item", "href": format!("./i{m}.json")}));
        }
        site.put(
            &format!("c{n}/collection.json"),
            Reply::json(&json!({
                "type": "Collection", "stac_version": "1.1.0", "id": id,
                "description": "test", "license": "CC0-1.0",
                "extent": {"spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
                           "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
                "links": links
            })),
        );
        children.push(json!({"rel": "child", "href": format!("./c{n}/collection.json")}));
    }
    children.push(json!({"rel": "root", "href": "./catalog.json"}));
    site.put(
        "catalog.json",
        Reply::json(
            &json!({"type": "Catalog", "stac_version": "1.1.0", "id": "root",
                            "description": "test", "links": children}),
        ),
    );
    site.url("catalog.json")
}

fn mirror(state: &Path, source: &str, dest: &Path) -> Run {
    cairn(state, &["mirror", source, dest.to_str().unwrap(), "--json"])
}

/// The `problem` lines of a `--json` run.
fn problems(run: &Run) -> Vec<String> {
    run.lines()
        .into_iter()
        .filter(|l| l["type"] == "problem")
        .map(|l| {
            format!(
                "{}: {}",
                l["href"].as_str().unwrap_or_default(),
                l["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn failures(run: &Run) -> Vec<String> {
    run.lines()
        .into_iter()
        .filter(|l| l["type"] == "failed")
        .map(|l| l["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Checks the mirror with `cairn verify` and with the files alone; both
/// must find exactly `assets` verified assets.
fn verified(state: &Path, dest: &Path, assets: usize) -> Vec<crate::support::sound::Mirrored> {
    let run = cairn(state, &["verify", dest.to_str().unwrap(), "--json"]);
    // Assets that could not be copied are listed (exit 1); nothing else.
    let lines = run.lines();
    let problems: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["type"] == "problem" && l["kind"] != "not_mirrored")
        .collect();
    assert!(problems.is_empty(), "{}\n{}", run.stdout, run.stderr);
    let listed = lines.len() > 1;
    assert_eq!(run.code, Some(if listed { 1 } else { 0 }), "{}", run.stdout);
    assert_eq!(run.summary()["verified"], assets, "{}", run.stdout);
    let mirrored = sound_mirror(dest);
    assert_eq!(mirrored.len(), assets);
    mirrored
}

#[test]
fn names_that_collide_never_share_a_file() {
    let site = Site::start();
    let a = |key, file| Asset::new(key, file, bytes_of(file, 3000));
    let scene = item(
        &site,
        "Scene",
        "col",
        &[
            a("a", "files/a/data.tif"),
            a("b", "files/b/data.tif"),
            a("b-data", "files/x/b-data.tif"),
            a("c", "files/c/DATA.TIF"),
            a("self", "files/y/Scene.json"),
            a("part", "files/z/data.tif.part"),
            a("tmp", "files/z/Scene.json.tmp"),
        ],
    );
    // Items whose ids differ only by case, and one named like the
    // collection's own file; collections whose ids differ only by case.
    let lower = item(&site, "scene", "col", &[a("d", "files/d/data.tif")]);
    let named = item(&site, "collection.json", "col", &[a("e", "files/e/e.tif")]);
    let other = item(&site, "Scene", "COL", &[a("f", "files/f/data.tif")]);
    let source = publish(
        &site,
        &[("col", vec![scene, lower, named]), ("COL", vec![other])],
    );
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let mirrored = verified(&state, &dest, 10);
    // Each file holds the bytes of the asset that names it as its source.
    for asset in &mirrored {
        let file = asset.source.rsplit_once("/files/").unwrap().1;
        assert_eq!(
            asset.bytes,
            bytes_of(&format!("files/{file}"), 3000),
            "{}",
            asset.path
        );
    }
    let notes = problems(&run).join("\n");
    assert!(notes.contains("shares the file name"), "{notes}");
}

#[test]
fn two_items_with_one_id_are_never_mixed() {
    let site = Site::start();
    let first = one_asset(&site, "dup", "col", "one/data.tif", bytes_of("one", 5000));
    let second = one_asset(&site, "dup", "col", "two/data.tif", bytes_of("two", 7000));
    let source = publish(&site, &[("col", vec![first, second])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // One item kept whole: its document describes exactly the bytes beside it.
    let mirrored = verified(&state, &dest, 1);
    let kept = &mirrored[0];
    let which = if kept.source.contains("/one/") {
        "one"
    } else {
        "two"
    };
    assert_eq!(
        kept.bytes,
        bytes_of(which, if which == "one" { 5000 } else { 7000 })
    );
    let notes = problems(&run).join("\n");
    assert!(
        notes.contains("another item with the id \"dup\""),
        "{notes}"
    );
    assert!(notes.contains("never mixed"), "{notes}");
}

#[test]
fn a_remote_catalog_cannot_make_cairn_read_local_files() {
    let private = tempfile::tempdir().unwrap();
    let secret = private.path().join("secret.txt");
    std::fs::write(&secret, b"the user's own words").unwrap();
    let secret_url = url::Url::from_file_path(&secret).unwrap().to_string();
    // A local collection the remote catalog links to, pointing at the secret.
    let local_collection = private.path().join("collection.json");
    std::fs::write(
        &local_collection,
        serde_json::to_vec(&json!({"type": "Collection", "stac_version": "1.1.0", "id": "local",
            "description": "x", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[null, null]]}},
            "links": []})).unwrap(),
    )
    .unwrap();
    let site = Site::start();
    let mut hostile = item(
        &site,
        "hostile",
        "col",
        &[Asset::new("good", "good.tif", bytes_of("good", 100))],
    );
    hostile["assets"]["stolen"] = json!({"href": secret_url, "type": "text/plain"});
    // Other addresses of an asset, and links of the collection, that point
    // at the file: kept as they were, a mirror of the mirror would read it.
    hostile["assets"]["good"]["alternate"] = json!({"evil": {"href": secret_url}});
    hostile["links"] = json!([{"rel": "via", "href": secret_url}]);
    let source = publish(&site, &[("col", vec![hostile])]);
    site.put(
        "c0/collection.json",
        Reply::json(&json!({
            "type": "Collection", "stac_version": "1.1.0", "id": "col",
            "description": "test", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
                       "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
            "links": [{"rel": "item", "href": "./i0.json"},
                      {"rel": "license", "href": secret_url}]})),
    );
    let root: Value = json!({"type": "Catalog", "stac_version": "1.1.0", "id": "root",
        "description": "test", "links": [
            {"rel": "child", "href": "./c0/collection.json"},
            {"rel": "child", "href": url::Url::from_file_path(&local_collection).unwrap().to_string()}]});
    site.put("catalog.json", Reply::json(&root));
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for (path, bytes) in tree(&dest) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("the user's own words"),
            "{path} holds the user's file"
        );
    }
    let notes = problems(&run).join("\n");
    assert!(
        notes.matches("a file on this computer").count() >= 2,
        "{notes}"
    );
    // The refused address is not kept as one in the mirror: a mirror of this
    // mirror must not read the file either.
    let written: Value =
        serde_json::from_slice(&std::fs::read(dest.join("col/hostile/hostile.json")).unwrap())
            .unwrap();
    assert_eq!(written["assets"]["stolen"]["href"], "data:,");
    assert!(
        written["assets"]["stolen"]["cairn:missing"]
            .as_str()
            .unwrap()
            .contains("a file on this computer")
    );
    // No address in any document of the mirror leads to the file.
    fn hrefs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("href", Value::String(href)) => found.push(href.clone()),
                        _ => hrefs(value, found),
                    }
                }
            }
            Value::Array(list) => list.iter().for_each(|v| hrefs(v, found)),
            _ => {}
        }
    }
    let secret_path = secret.display().to_string();
    let mut documents = 0;
    for (path, bytes) in tree(&dest) {
        let Ok(document) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        documents += 1;
        let mut found = Vec::new();
        hrefs(&document, &mut found);
        assert!(
            found.iter().all(|href| !href.contains(&secret_path)),
            "{path} still points at the user's file: {found:?}"
        );
    }
    assert!(documents >= 3, "{documents}");
    let again = dir.path().join("again");
    let run = cairn(
        &state,
        &[
            "mirror",
            dest.to_str().unwrap(),
            again.to_str().unwrap(),
            "--alternate",
            "evil",
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for (path, bytes) in tree(&again) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("the user's own words"),
            "{path}"
        );
    }
    assert_eq!(verified(&state, &dest, 1)[0].bytes, bytes_of("good", 100));
}

#[cfg(unix)]
#[test]
fn links_planted_in_the_destination_are_never_written_through() {
    use std::os::unix::fs::symlink;
    let site = Site::start();
    let items = vec![
        one_asset(&site, "one", "col", "one.tif", bytes_of("one", 4000)),
        one_asset(&site, "two", "col", "two.tif", bytes_of("two", 4000)),
        one_asset(&site, "three", "col", "three.tif", bytes_of("three", 4000)),
    ];
    let source = publish(
        &site,
        &[
            ("col", items),
            (
                "other",
                vec![one_asset(
                    &site,
                    "four",
                    "other",
                    "four.tif",
                    bytes_of("four", 10),
                )],
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("victim.tif"), b"precious").unwrap();
    std::fs::write(outside.join("sub/keep"), b"also precious").unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    // A `.part` leading out, a file leading out, and a whole collection
    // folder leading out.
    std::fs::create_dir_all(dest.join("col/one")).unwrap();
    std::fs::create_dir_all(dest.join("col/two")).unwrap();
    symlink(
        outside.join("victim.tif"),
        dest.join("col/one/one.tif.part"),
    )
    .unwrap();
    symlink(outside.join("victim.tif"), dest.join("col/two/two.tif")).unwrap();
    symlink(outside.join("sub"), dest.join("other")).unwrap();
    // A hard link to an outside file where a partial file and a temporary
    // item file go.
    std::fs::create_dir_all(dest.join("col/three")).unwrap();
    std::fs::write(outside.join("hard.tif"), b"hard-linked").unwrap();
    std::fs::hard_link(
        outside.join("hard.tif"),
        dest.join("col/three/three.tif.part"),
    )
    .unwrap();
    std::fs::write(outside.join("hard.json"), b"hard-linked too").unwrap();
    std::fs::hard_link(
        outside.join("hard.json"),
        dest.join("col/three/three.json.tmp"),
    )
    .unwrap();
    let before = tree(&outside);
    let run = mirror(&state, &source, &dest);
    assert_eq!(tree(&outside), before, "files outside the mirror changed");
    assert_ne!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("never follows links"), "{said}");
    // The link at a file's own place is replaced by the verified file, not
    // written through; the others stay and their assets fail in words.
    assert_eq!(
        std::fs::read(dest.join("col/two/two.tif")).unwrap(),
        bytes_of("two", 4000)
    );
    assert_eq!(
        std::fs::read(dest.join("col/three/three.tif")).unwrap(),
        bytes_of("three", 4000)
    );
    assert!(
        std::fs::symlink_metadata(dest.join("col/two/two.tif"))
            .unwrap()
            .is_file()
    );
    let asset_failed: Vec<String> = run
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "asset_failed")
        .map(|l| l["reason"].to_string())
        .collect();
    assert!(
        asset_failed
            .iter()
            .any(|f| f.contains("in the mirror is a link")),
        "{}",
        run.stdout
    );
}

/// A folder where a file of the mirror goes (an asset's file, an item's
/// document), or a link where an item's folder goes, fails that one file in
/// words; the other items and the catalogs are written, and once the
/// obstacles are gone a resume finishes the copy.
#[cfg(unix)]
#[test]
fn something_planted_at_a_files_name_fails_that_file_alone() {
    let site = Site::start();
    let items = ["one", "two", "three", "four"]
        .map(|id| one_asset(&site, id, "col", &format!("{id}.tif"), bytes_of(id, 3000)));
    let source = publish(&site, &[("col", items.to_vec())]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // A folder at one's asset file, a folder (not empty) at two's document,
    // and three's whole folder a link leading out.
    std::fs::create_dir_all(dest.join("col/one/one.tif")).unwrap();
    std::fs::create_dir_all(dest.join("col/two/two.json/inside")).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("col/three")).unwrap();
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["state"], "failed", "{}", run.stdout);
    assert_eq!(summary["items_failed"], 2, "{}", run.stdout);
    assert!(!run.stderr.contains("os error"), "{}", run.stderr);
    let said = failures(&run).join("\n");
    assert!(!said.contains("os error"), "{said}");
    assert!(
        said.contains("\"col/one/one.tif\" in the mirror is not a regular file"),
        "{said}"
    );
    assert!(
        said.contains("\"col/two/two.json\" in the mirror is not a regular file"),
        "{said}"
    );
    assert!(
        said.contains("\"col/three\" in the mirror is a link"),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // The item whose files could be written is in the catalog; the others
    // are not, and nothing stands half-written.
    let collection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("col/collection.json")).unwrap()).unwrap();
    let mut links = crate::support::item_links(&collection);
    links.sort();
    assert_eq!(links, ["./four/four.json", "./one/one.json"]);
    assert!(dest.join("catalog.json").is_file());
    assert!(!dest.join("col/two/two.json.tmp").exists());
    // Cleared, the job is resumed and ends with everything verified.
    std::fs::remove_dir(dest.join("col/one/one.tif")).unwrap();
    std::fs::remove_dir_all(dest.join("col/two/two.json")).unwrap();
    std::fs::remove_file(dest.join("col/three")).unwrap();
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["items_failed"], 0, "{}", run.stdout);
    verified(&state, &dest, 4);
}

#[test]
fn sizes_past_any_file_are_not_believed() {
    let site = Site::start();
    let mut items = Vec::new();
    for (n, size) in [u64::MAX, 1 << 62, 1 << 62].into_iter().enumerate() {
        let id = format!("i{n}");
        let mut item = one_asset(&site, &id, "col", &format!("{id}.tif"), bytes_of(&id, 300));
        item["assets"]["data"]["file:size"] = json!(size);
        items.push(item);
    }
    let source = publish(&site, &[("col", items)]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let notes = problems(&run).join("\n");
    assert_eq!(notes.matches("more than any file").count(), 3, "{notes}");
    assert_eq!(verified(&state, &dest, 3).len(), 3);
    let status = cairn(&state, &["jobs", "--json"]);
    assert_eq!(status.code, Some(0), "{}\n{}", status.stdout, status.stderr);
    // Transfers at once past any use are refused in words before anything
    // starts (a hundred million of them filled the memory).
    let run = cairn(
        &state,
        &[
            "mirror",
            &source,
            dest.to_str().unwrap(),
            "--concurrency",
            "100000000",
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("1..=256"), "{}", run.stderr);
}

#[test]
fn a_problem_met_while_the_mirror_is_written_is_said_in_words() {
    let site = Site::start();
    let one = |id: &str| one_asset(&site, id, "col", &format!("{id}.tif"), bytes_of(id, 100));
    let source = publish(&site, &[("col", vec![one("a")])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    assert_eq!(mirror(&state, &source, &dest).code, Some(0));
    // The collection's document cut short; the source has a new item.
    let collection = dest.join("col/collection.json");
    let bytes = std::fs::read(&collection).unwrap();
    std::fs::write(&collection, &bytes[..bytes.len() / 2]).unwrap();
    let source = publish(&site, &[("col", vec![one("a"), one("b")])]);
    let run = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let said = problems(&run).join("\n");
    assert!(
        said.contains("col/collection.json: ")
            && said.contains("could not be read as a collection")
            && said.contains("it is kept as"),
        "{said}"
    );
    // Not as a program's log line.
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
}

#[test]
fn files_gone_from_the_mirror_are_fetched_again_by_the_next_run() {
    let site = Site::start();
    let items: Vec<Value> = ["i0", "i1", "i2"]
        .iter()
        .map(|id| one_asset(&site, id, "col", &format!("{id}.tif"), bytes_of(id, 700)))
        .collect();
    let source = publish(&site, &[("col", items)]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    assert_eq!(mirror(&state, &source, &dest).code, Some(0));
    let whole = tree(&dest);
    // The whole folder gone: its drive may not be plugged in, so the run
    // says so rather than fill the disk beneath.
    std::fs::remove_dir_all(&dest).unwrap();
    let run = mirror(&state, &source, &dest);
    assert_ne!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("is not there (is its drive plugged in?)"),
        "{}",
        run.stderr
    );
    assert!(!dest.exists());
    // Made again, empty (or another drive in its place), then one item's
    // folder and one file gone: each run brings back what is gone.
    std::fs::create_dir(&dest).unwrap();
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let said = problems(&run).join("\n");
    assert!(
        said.contains("3 files this job copied before are no longer in the mirror"),
        "{said}"
    );
    verified(&state, &dest, 3);
    std::fs::remove_dir_all(dest.join("col/i1")).unwrap();
    std::fs::remove_file(dest.join("col/i2/i2.tif")).unwrap();
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        problems(&run).join("\n").contains("2 files"),
        "{}",
        run.stdout
    );
    verified(&state, &dest, 3);
    let again = tree(&dest);
    for (path, bytes) in &whole {
        if path.ends_with(".tif") {
            assert_eq!(again.get(path), Some(bytes), "{path}");
        }
        assert!(again.contains_key(path), "{path}");
    }
}

#[test]
fn an_index_left_half_written_is_written_again_by_the_next_run() {
    let site = Site::start();
    let items: Vec<Value> = ["i0", "i1"]
        .iter()
        .map(|id| one_asset(&site, id, "col", &format!("{id}.tif"), bytes_of(id, 300)))
        .collect();
    let source = publish(&site, &[("col", items)]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    assert_eq!(mirror(&state, &source, &dest).code, Some(0));
    let (index, provenance) = (
        std::fs::read(dest.join("items.parquet")).unwrap(),
        std::fs::read(dest.join("provenance.jsonl")).unwrap(),
    );
    // A run stopped while it wrote them: the old ones stand, beside what
    // it left half-made. The next run, with nothing new to copy, makes
    // them again.
    for (name, old) in [
        ("items.parquet", &b"PAR1 old"[..]),
        ("provenance.jsonl", b"{}\n"),
    ] {
        std::fs::write(dest.join(name), old).unwrap();
        std::fs::write(dest.join(format!("{name}.tmp")), b"").unwrap();
    }
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        std::fs::read(dest.join("provenance.jsonl")).unwrap(),
        provenance
    );
    assert_eq!(
        std::fs::read(dest.join("items.parquet")).unwrap().len(),
        index.len()
    );
    for name in ["items.parquet.tmp", "provenance.jsonl.tmp"] {
        assert!(!dest.join(name).exists(), "{name} is left");
    }
}

#[test]
fn the_first_items_of_a_static_catalog_are_the_same_each_time() {
    let site = Site::start();
    let items: Vec<Value> = (0..8)
        .map(|n| {
            let id = format!("i{n}");
            one_asset(&site, &id, "col", &format!("{id}.tif"), bytes_of(&id, 100))
        })
        .collect();
    let source = publish(&site, &[("col", items.clone())]);
    // Which item documents are slow to come changes between the runs: the
    // first three taken are the first three linked, whichever come first.
    let slow = |first: bool| {
        for (n, item) in items.iter().enumerate() {
            let reply = Reply::json(item);
            let slow = if first { n < 4 } else { n >= 4 };
            let reply = if slow {
                reply.trickle(Duration::from_millis(1))
            } else {
                reply
            };
            site.put(&format!("c0/i{n}.json"), reply);
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let mut kept = Vec::new();
    for first in [true, false] {
        slow(first);
        let run = cairn(
            &state,
            &[
                "mirror",
                &source,
                dest.to_str().unwrap(),
                "--max-items",
                "3",
                "--json",
            ],
        );
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let mut ids: Vec<String> = std::fs::read_dir(dest.join("col"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "collection.json")
            .collect();
        ids.sort();
        kept.push(ids);
    }
    assert_eq!(kept[0].len(), 3, "{kept:?}");
    assert_eq!(kept[0], kept[1]);
}

#[cfg(unix)]
#[test]
fn verify_reads_no_document_through_a_link() {
    use std::os::unix::fs::symlink;
    let site = Site::start();
    let source = publish(
        &site,
        &[(
            "col",
            vec![one_asset(
                &site,
                "it",
                "col",
                "data.tif",
                bytes_of("it", 500),
            )],
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    assert_eq!(mirror(&state, &source, &dest).code, Some(0));
    // The item's document and the collection's moved out of the mirror,
    // links left in their place: they read as they did, through the links.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for (inside, name) in [
        ("col/it/it.json", "it.json"),
        ("col/collection.json", "c.json"),
    ] {
        std::fs::rename(dest.join(inside), outside.join(name)).unwrap();
        symlink(outside.join(name), dest.join(inside)).unwrap();
    }
    let state_path = state.clone();
    for state in [state, dir.path().join("elsewhere.db")] {
        let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
        assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
        let problems: Vec<String> = run
            .lines()
            .into_iter()
            .filter(|l| l["type"] == "problem")
            .map(|l| format!("{} {}", l["path"], l["reason"]))
            .collect();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("col/collection.json") && p.contains("is a link")),
            "{problems:?}"
        );
        // Nothing beneath the collection was read: its item is not counted.
        assert_eq!(run.summary()["verified"], 0, "{}", run.stdout);
    }
    // The root catalog named itself, as a link to another mirror's: refused,
    // never checked (nor repaired) there.
    std::fs::rename(dest.join("catalog.json"), outside.join("catalog.json")).unwrap();
    symlink(outside.join("catalog.json"), dest.join("catalog.json")).unwrap();
    let named = dest.join("catalog.json");
    let run = cairn(
        &state_path,
        &["verify", named.to_str().unwrap(), "--repair"],
    );
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("is a link"), "{}", run.stderr);
}

#[test]
fn verify_repair_reads_and_writes_only_inside_the_mirror() {
    let site = Site::start();
    let good = bytes_of("good", 2000);
    let source = publish(
        &site,
        &[(
            "col",
            vec![one_asset(&site, "it", "col", "data.tif", good.clone())],
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    assert_eq!(mirror(&state, &source, &dest).code, Some(0));
    // Someone edits the mirror: hrefs that climb out or are absolute, with
    // sources on this computer, beside a damaged file.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.tif"), b"precious").unwrap();
    let victim_url = url::Url::from_file_path(outside.join("victim.tif"))
        .unwrap()
        .to_string();
    let item_path = dest.join("col/it/it.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&item_path).unwrap()).unwrap();
    let template = doc["assets"]["data"].clone();
    for (key, href) in [
        ("climb", "../../../outside/victim.tif".to_string()),
        ("absolute", outside.join("victim.tif").display().to_string()),
        ("encoded", "..%2F..%2F..%2Foutside%2Fvictim.tif".to_string()),
    ] {
        let mut asset = template.clone();
        asset["href"] = href.into();
        asset["alternate"]["source"]["href"] = victim_url.clone().into();
        doc["assets"][key] = asset;
    }
    // A missing file whose recorded source is a file on this computer.
    let mut local = template.clone();
    local["href"] = "./local.tif".into();
    local["alternate"]["source"]["href"] = victim_url.clone().into();
    doc["assets"]["local"] = local;
    std::fs::write(&item_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::write(dest.join("col/it/data.tif"), b"damaged").unwrap();
    let before = tree(&outside);
    // Checked as someone else's mirror (no state file records it): its
    // hrefs are all the check has.
    let run = cairn(
        &dir.path().join("elsewhere.db"),
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(tree(&outside), before, "files outside the mirror changed");
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let said = run.stdout.clone();
    assert_eq!(
        said.matches("leads outside the mirror").count(),
        3,
        "{said}"
    );
    assert!(
        said.contains("repairs only from web and bucket addresses"),
        "{said}"
    );
    assert!(!dest.join("col/it/local.tif").exists());
    // The damaged file came back from its web address.
    assert_eq!(std::fs::read(dest.join("col/it/data.tif")).unwrap(), good);
    assert_eq!(run.summary()["repaired"], 1, "{said}");
    // With the state file of the job that made it, the edited item is
    // found and written again as Cairn wrote it: the hostile hrefs are gone.
    let run = cairn(
        &state,
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(tree(&outside), before, "files outside the mirror changed");
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_slice(&std::fs::read(&item_path).unwrap()).unwrap();
    let keys: Vec<&String> = doc["assets"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data"]);
    assert!(!dest.join("col/it/local.tif").exists());
}

#[cfg(unix)]
#[test]
fn sigterm_and_sighup_stop_a_job_as_ctrl_c_does() {
    for signal in ["-TERM", "-HUP"] {
        let site = Site::start();
        let slow = bytes_of("slow", 400);
        let mut doc = one_asset(&site, "slow", "col", "slow.tif", slow.clone());
        doc["assets"]["data"]["file:size"] = json!(slow.len());
        site.put(
            "slow.tif",
            Reply::bytes(slow, "image/tiff").trickle(Duration::from_millis(20)),
        );
        let source = publish(&site, &[("col", vec![doc])]);
        let dir = tempfile::tempdir().unwrap();
        let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "--state",
                state.to_str().unwrap(),
                "mirror",
                &source,
                dest.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while site.hits("slow.tif") == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the copy did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        crate::support::send_signal(child.id(), signal);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{signal}: {status}");
        let jobs = cairn(&state, &["jobs", "--json"]);
        assert_eq!(jobs.lines()[0]["state"], "paused", "{signal}");
    }
}

#[test]
fn a_compressed_answer_is_stored_as_the_server_holds_it() {
    use std::io::Write;
    let site = Site::start();
    // A file stored compressed, served with `Content-Encoding: gzip` (as
    // misconfigured servers do for .gz files): its checksum is of the
    // compressed bytes.
    let plain = bytes_of("plain", 50_000)
        .iter()
        .map(|b| b % 4)
        .collect::<Vec<u8>>();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&plain).unwrap();
    let stored = encoder.finish().unwrap();
    let doc = one_asset(&site, "gz", "col", "data.nc.gz", stored.clone());
    site.put(
        "data.nc.gz",
        Reply::bytes(stored.clone(), "application/gzip").header("content-encoding", "gzip"),
    );
    let source = publish(&site, &[("col", vec![doc])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(verified(&state, &dest, 1)[0].bytes, stored);
}

#[test]
fn relative_links_reached_through_a_redirect_resolve_where_the_document_is() {
    let site = Site::start();
    let bytes = bytes_of("moved", 3000);
    let mut doc = one_asset(&site, "moved", "col", "new/c/data.tif", bytes.clone());
    doc["assets"]["data"]["href"] = "./data.tif".into();
    site.put("new/c/item.json", Reply::json(&doc));
    site.put(
        "new/c/collection.json",
        Reply::json(&json!({
            "type": "Collection", "stac_version": "1.1.0", "id": "col",
            "description": "test", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[0.0, 0.0, 1.0, 1.0]]},
                       "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
            "links": [{"rel": "item", "href": "./item.json"}]
        })),
    );
    site.put(
        "new/catalog.json",
        Reply::json(
            &json!({"type": "Catalog", "stac_version": "1.1.0", "id": "root",
            "description": "test", "links": [{"rel": "child", "href": "./c/collection.json"}]}),
        ),
    );
    // The old addresses answer with redirects to the new ones.
    site.put("old/catalog.json", Reply::redirect("/new/catalog.json"));
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &site.url("old/catalog.json"), &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(problems(&run).is_empty(), "{:?}", problems(&run));
    let mirrored = verified(&state, &dest, 1);
    assert_eq!(mirrored[0].bytes, bytes);
    assert_eq!(mirrored[0].source, site.url("new/c/data.tif"));
    assert_eq!(site.hits("old/c/collection.json"), 0);
}

/// An item whose assets promise only a media type (no size, no checksum):
/// the shape in which a wrong answer would pass unnoticed.
fn item_without_promises(site: &Site, id: &str, assets: &[Asset<'_>]) -> Value {
    let mut doc = item(site, id, "col", assets);
    for asset in doc["assets"].as_object_mut().unwrap().values_mut() {
        let asset = asset.as_object_mut().unwrap();
        asset.remove("file:size");
        asset.remove("file:checksum");
    }
    doc
}

#[test]
fn a_web_page_is_never_saved_as_the_asset() {
    let site = Site::start();
    let login = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in to continue</body></html>".to_vec();
    let tiff = {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend(bytes_of("tiff", 4000));
        t
    };
    let geotiff = "image/tiff; application=geotiff; profile=cloud-optimized";
    let doc = item_without_promises(
        &site,
        "scene",
        &[
            Asset {
                media_type: geotiff,
                ..Asset::new("good", "good.tif", tiff.clone())
            },
            Asset {
                media_type: geotiff,
                ..Asset::new("portal", "portal.tif", Vec::new())
            },
            Asset {
                media_type: "image/jp2",
                ..Asset::new("moved", "moved.jp2", Vec::new())
            },
            Asset {
                media_type: "application/x-hdf5",
                ..Asset::new("big", "big.h5", Vec::new())
            },
        ],
    );
    // A captive portal answering with its page; a redirect to a login page
    // that calls itself binary; a large page streamed in pieces.
    site.put(
        "portal.tif",
        Reply::bytes(login.clone(), "text/html; charset=utf-8"),
    );
    site.put("moved.jp2", Reply::redirect("/login"));
    site.put(
        "login",
        Reply::bytes(login.clone(), "application/octet-stream"),
    );
    let mut big = login.clone();
    big.extend(std::iter::repeat_n(b' ', 600_000));
    site.put("big.h5", Reply::bytes(big, "application/octet-stream"));
    let source = publish(&site, &[("col", vec![doc])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed = failures(&run);
    assert_eq!(failed.len(), 3, "{failed:?}");
    for reason in &failed {
        assert!(reason.contains("web page instead of the"), "{reason}");
    }
    // Only the real file is in the mirror; no page, whole or partial.
    // The item is written: its missing assets keep their addresses and
    // say why.
    assert_eq!(verified(&state, &dest, 1)[0].bytes, tiff);
    let files = tree(&dest);
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(
        names,
        [
            "catalog.json",
            "col/collection.json",
            "col/scene/good.tif",
            "col/scene/scene.json",
            "items.parquet",
            "provenance.jsonl"
        ],
        "{names:?}"
    );
    let written: Value = serde_json::from_slice(&files["col/scene/scene.json"]).unwrap();
    assert!(
        written["assets"]["portal"]["cairn:missing"]
            .as_str()
            .unwrap()
            .contains("web page")
    );
    assert_eq!(written["assets"]["portal"]["href"], site.url("portal.tif"));
    // A web page is not tried again and again.
    assert_eq!(site.hits("portal.tif"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_trickles_is_stopped_with_a_reason() {
    use cairn::fetch::MinSpeed;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    let site = Site::start();
    let pause = Duration::from_millis(250);
    site.put(
        "slow.tif",
        Reply::bytes(bytes_of("slow", 400), "image/tiff").trickle(pause),
    );
    site.put(
        "slow.json",
        Reply::json(&json!({"type": "Catalog", "id": "x", "description": "a document sent slowly", "links": []}))
            .trickle(pause),
    );
    let min_speed = MinSpeed {
        bytes_per_second: 100,
        window: Duration::from_secs(1),
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = cairn::transfer::copy::AssetCopy {
        url: url::Url::parse(&site.url("slow.tif")).unwrap(),
        place: Arc::new(
            cairn::folder::Folder::open(dir.path())
                .unwrap()
                .place("slow.tif", true)
                .unwrap(),
        ),
        expected_size: None,
        expected_checksum: None,
        validator: None,
        flush: false,
        media_type: Some("image/tiff".into()),
        min_speed,
    };
    let started = Instant::now();
    let error = copy
        .run(
            &cairn::fetch::Fetcher::new().unwrap(),
            &cairn::limit::Limits::unlimited(),
            &tokio_util::sync::CancellationToken::new(),
            &Arc::new(AtomicU64::new(0)),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("slower than 100 bytes a second"),
        "{error}"
    );
    // Documents too.
    let fetcher = crate::support::fetcher().with_min_speed(min_speed);
    let started = Instant::now();
    let error = fetcher
        .get_json(&url::Url::parse(&site.url("slow.json")).unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("slower than"), "{error}");
    // Three tries (two retries), each stopped after its window.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_search_whose_pages_go_round_stops_and_says_so() {
    for cycle in [true, false] {
        let site = Site::start();
        site.put(
            "api",
            Reply::json(&json!({"type": "Catalog", "id": "api", "description": "an API",
                "stac_version": "1.1.0",
                "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
                "links": [{"rel": "search", "href": "./search", "type": "application/geo+json", "method": "GET"}]})),
        );
        site.put(
            "api/collections",
            Reply::json(&json!({"collections": [], "links": []})),
        );
        let a = one_asset(&site, "a", "col", "a.tif", bytes_of("a", 100));
        let b = one_asset(&site, "b", "col", "b.tif", bytes_of("b", 100));
        // Either a -> b -> c -> b -> ..., or the same items under ever new
        // addresses.
        let page = |items: Vec<Value>, next: &str| {
            Reply::json(&json!({"type": "FeatureCollection", "features": items,
                "links": [{"rel": "next", "href": site.url(next), "method": "GET"}]}))
        };
        site.put("search", page(vec![a.clone()], "page-b"));
        if cycle {
            let c = one_asset(&site, "c", "col", "c.tif", bytes_of("c", 100));
            site.put("page-b", page(vec![b.clone()], "page-c"));
            site.put("page-c", page(vec![c], "page-b"));
        } else {
            for n in 0..50 {
                site.put(
                    &format!("page-{}", if n == 0 { "b".into() } else { n.to_string() }),
                    page(vec![a.clone()], &format!("page-{}", n + 1)),
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
        let run = mirror(&state, &site.url("api"), &dest);
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let notes = problems(&run).join("\n");
        let expected = if cycle {
            "leads back to a page already read"
        } else {
            "the same items again"
        };
        assert!(notes.contains(expected), "{notes}");
        assert!(site.hits("search") <= 2, "{}", site.hits("search"));
        verified(&state, &dest, if cycle { 3 } else { 1 });
    }
}

#[test]
fn a_state_file_that_is_not_cairns_is_refused_in_words_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let garbage = dir.path().join("notes.db");
    std::fs::write(&garbage, b"these are my notes, not a database").unwrap();
    let foreign = dir.path().join("photos.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos (name) VALUES ('x');")
            .unwrap();
    }
    // A Cairn state file cut short (a copy that did not finish).
    let truncated = dir.path().join("cut.db");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let run = cairn(
        &truncated,
        &[
            "mirror",
            demo.to_str().unwrap(),
            dir.path().join("m").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let whole = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 3]).unwrap();
    for (state, words) in [
        (&folder, "is a folder"),
        (&garbage, "not an SQLite database"),
        (&foreign, "another program's database"),
        (&truncated, "is damaged"),
    ] {
        let before = tree(dir.path());
        for args in [
            &["jobs"][..],
            &[
                "mirror",
                demo.to_str().unwrap(),
                dir.path().join("m2").to_str().unwrap(),
            ],
            &["verify", dir.path().join("m").to_str().unwrap()],
        ] {
            let run = cairn(state, args);
            assert_eq!(run.code, Some(2), "{}: {}", state.display(), run.stderr);
            assert!(
                run.stderr.contains(words),
                "{}: {}",
                state.display(),
                run.stderr
            );
            assert!(
                run.stderr.contains(&state.display().to_string()),
                "{}",
                run.stderr
            );
            assert!(!run.stderr.contains("SQLITE"), "{}", run.stderr);
        }
        assert_eq!(tree(dir.path()), before, "{} was changed", state.display());
    }
}

#[test]
fn a_state_file_with_a_record_cairn_cannot_read_is_said_to_be_damaged() {
    let (dir, state, _dest) = crate::support::mirror_demo();
    // A record no Cairn wrote: damage, or another program's hand.
    for edit in [
        "UPDATE jobs SET selection = '{not json'",
        "UPDATE jobs SET source_url = CAST(x'68ff' AS TEXT)",
    ] {
        let edited = dir.path().join("edited.db");
        std::fs::copy(&state, &edited).unwrap();
        rusqlite::Connection::open(&edited)
            .unwrap()
            .execute_batch(edit)
            .unwrap();
        for args in [&["jobs"][..], &["resume", "1"], &["sync", "1"]] {
            let run = cairn(&edited, args);
            assert_eq!(run.code, Some(2), "{edit} {args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains("holds a record this Cairn cannot read")
                    && run.stderr.contains("start with a new state file (--state)"),
                "{edit} {args:?}: {}",
                run.stderr
            );
        }
        std::fs::remove_file(&edited).unwrap();
    }
}

#[test]
fn a_state_file_whose_jobs_are_gone_but_not_their_items_is_said_to_be_damaged() {
    let (_dir, state, _dest) = crate::support::mirror_demo();
    // The page of the jobs table made an empty one: SQLite's own checks
    // find nothing wrong, and the job is gone while its items are there.
    let (root, page_size) = {
        let conn = rusqlite::Connection::open(&state).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root as u64, size as u64)
    };
    let mut bytes = std::fs::read(&state).unwrap();
    let page = &mut bytes[((root - 1) * page_size) as usize..(root * page_size) as usize];
    page.fill(0);
    // A leaf of a table, no cells, its content area empty.
    page[0] = 0x0D;
    page[5..7].copy_from_slice(&((page_size % 65536) as u16).to_be_bytes());
    std::fs::write(&state, &bytes).unwrap();
    for args in [&["jobs"][..], &["resume", "1"], &["sync", "1"]] {
        let run = cairn(&state, args);
        assert_eq!(run.code, Some(2), "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("is damaged"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn processes_opening_a_new_state_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let children: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
                .args(["--state", state.to_str().unwrap(), "jobs", "--json"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[cfg(unix)]
#[test]
fn one_job_is_copied_by_one_process_and_a_dead_one_is_taken_over() {
    let site = Site::start();
    let slow = bytes_of("slow", 300);
    let doc = one_asset(&site, "slow", "col", "slow.tif", slow.clone());
    site.put(
        "slow.tif",
        Reply::bytes(slow.clone(), "image/tiff").trickle(Duration::from_millis(10)),
    );
    let source = publish(&site, &[("col", vec![doc])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "--state",
                state.to_str().unwrap(),
                "mirror",
                &source,
                dest.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = start();
    let started = Instant::now();
    while site.hits("slow.tif") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the copy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same mirror again, and a resume, while the first copies.
    let again = mirror(&state, &source, &dest);
    assert_eq!(again.code, Some(2), "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("is being copied by another Cairn (process"),
        "{}",
        again.stderr
    );
    let resume = cairn(&state, &["resume", "1"]);
    assert_eq!(resume.code, Some(2), "{}", resume.stderr);
    assert_eq!(site.hits("slow.tif"), 1, "a second process copied too");
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines().len(), 2, "{}", jobs.stdout); // one job and the summary
    // Killed, the first stops renewing: a resume takes over at once.
    first.kill().unwrap();
    first.wait().unwrap();
    let resume = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(resume.code, Some(0), "{}\n{}", resume.stdout, resume.stderr);
    assert_eq!(verified(&state, &dest, 1)[0].bytes, slow);
}

/// A run whose hold on its job was taken by another Cairn (it had not
/// renewed it in time, or the state file was edited) stops, and says so.
#[test]
fn a_run_whose_job_is_taken_over_stops_and_says_so() {
    let site = Site::start();
    let slow = bytes_of("slow", 2000);
    let doc = one_asset(&site, "slow", "col", "slow.tif", slow.clone());
    site.put(
        "slow.tif",
        Reply::bytes(slow, "image/tiff").trickle(Duration::from_millis(10)),
    );
    let source = publish(&site, &[("col", vec![doc])]);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let first = crate::support::spawn_cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    let started = Instant::now();
    while site.hits("slow.tif") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the copy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another computer's Cairn holds the job now.
    rusqlite::Connection::open(&state)
        .unwrap()
        .execute(
            "UPDATE jobs SET holder = 'elsewhere 42 beef',
                 held_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+60 seconds')",
            [],
        )
        .unwrap();
    let output = first.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("process 42 on elsewhere took this job over"),
        "{stdout}"
    );
    // The job is left as the other Cairn holds it: running, not paused.
    let state: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row("SELECT state FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "running");
}

#[test]
fn two_sources_never_share_one_mirror() {
    // Two catalogs with the same collection and item ids, other bytes.
    let (first, second) = (Site::start(), Site::start());
    let one = item(
        &first,
        "scene",
        "col",
        &[Asset::new("data", "data.tif", bytes_of("first", 2000))],
    );
    let two = item(
        &second,
        "scene",
        "col",
        &[Asset::new("data", "data.tif", bytes_of("second", 2000))],
    );
    let (source_one, source_two) = (
        publish(&first, &[("col", vec![one])]),
        publish(&second, &[("col", vec![two])]),
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mirror");
    // The second source is refused before it starts, also from another
    // state file (another computer's Cairn, the app's own state).
    for state in [dir.path().join("cairn.db"), dir.path().join("other.db")] {
        let run = mirror(&dir.path().join("cairn.db"), &source_one, &dest);
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let before = tree(&dest);
        let run = mirror(&state, &source_two, &dest);
        assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("already holds a mirror of"),
            "{}",
            run.stderr
        );
        assert_eq!(second.hits("data.tif"), 0);
        assert_eq!(tree(&dest), before, "the first mirror changed");
        assert_eq!(verified(&state, &dest, 1)[0].bytes, bytes_of("first", 2000));
    }
    // A folder holding someone else's STAC catalog is not written into.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("catalog.json"), br#"{"type": "Catalog", "id": "their-own", "stac_version": "1.0.0", "description": "x", "links": []}"#).unwrap();
    let before = tree(&theirs);
    let run = mirror(&dir.path().join("cairn.db"), &source_one, &theirs);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("that Cairn did not make"),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&theirs), before);
}

#[test]
fn a_file_cairn_did_not_copy_is_never_overwritten() {
    let site = Site::start();
    let mut doc = one_asset(&site, "scene", "col", "data.tif", bytes_of("data", 2000));
    // No checksum in the catalog: nothing proves the file in place.
    doc["assets"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("file:checksum");
    let source = publish(&site, &[("col", vec![doc])]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("mirror");
    std::fs::create_dir_all(dest.join("col/scene")).unwrap();
    std::fs::write(dest.join("col/scene/data.tif"), bytes_of("mine", 2000)).unwrap();
    let state = dir.path().join("cairn.db");
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        failures(&run)
            .iter()
            .any(|f| f.contains("a file Cairn did not copy is already at")),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read(dest.join("col/scene/data.tif")).unwrap(),
        bytes_of("mine", 2000)
    );
    // Moved away, the job finishes.
    std::fs::remove_file(dest.join("col/scene/data.tif")).unwrap();
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(verified(&state, &dest, 1)[0].bytes, bytes_of("data", 2000));
    // The same mirror from another state file (the app's, another
    // computer's): the mirror's own item document vouches for its file.
    let run = mirror(&dir.path().join("other.db"), &source, &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(verified(&state, &dest, 1)[0].bytes, bytes_of("data", 2000));
}

#[test]
fn a_small_answer_that_unpacks_to_a_huge_document_is_refused_early() {
    use std::io::Write;
    let site = Site::start();
    // 62 KB on the wire, 64 MiB of JSON once unpacked: 33 million values.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(br#"{"type": "Collection", "stac_version": "1.1.0", "id": "bomb", "description": "x", "license": "CC0-1.0", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[null, null]]}}, "links": [], "summaries": {"zeros": ["#)
        .unwrap();
    let zeros = b"0,".repeat(1024 * 1024);
    for _ in 0..32 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.write_all(b"0]}}").unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    site.put(
        "bomb/collection.json",
        Reply::bytes(bomb, "application/json").header("content-encoding", "gzip"),
    );
    let good = one_asset(&site, "fine", "good", "data.tif", bytes_of("fine", 500));
    publish(&site, &[("good", vec![good])]);
    site.put(
        "catalog.json",
        Reply::json(
            &json!({"type": "Catalog", "stac_version": "1.1.0", "id": "root",
            "description": "test", "links": [
                {"rel": "child", "href": "./bomb/collection.json"},
                {"rel": "child", "href": "./c0/collection.json"}]}),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    // As the root: refused in words, exit 2.
    let run = cairn(&state, &["browse", &site.url("bomb/collection.json")]);
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("would take at least"), "{}", run.stderr);
    // As a child: a problem, and the rest is mirrored.
    let dest = dir.path().join("mirror");
    let run = mirror(&state, &site.url("catalog.json"), &dest);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let notes = problems(&run).join("\n");
    assert!(
        notes.contains("more than the 256 MiB Cairn gives the documents"),
        "{notes}"
    );
    assert_eq!(verified(&state, &dest, 1)[0].bytes, bytes_of("fine", 500));
}

#[test]
fn a_redirect_to_this_computer_is_refused_in_words() {
    let site = Site::start();
    let doc = one_asset(&site, "moved", "col", "data.tif", bytes_of("moved", 300));
    site.put("data.tif", Reply::redirect("file:///etc/passwd"));
    let source = publish(&site, &[("col", vec![doc])]);
    site.put("loop.json", Reply::redirect("/loop.json"));
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = mirror(&state, &source, &dest);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed = failures(&run).join("\n");
    assert!(failed.contains("which Cairn does not follow"), "{failed}");
    assert!(!failed.contains("HTTP 302"), "{failed}");
    for (path, bytes) in tree(&dest) {
        assert!(!String::from_utf8_lossy(&bytes).contains("root:"), "{path}");
    }
    let run = cairn(&state, &["browse", &site.url("loop.json")]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("was redirected"), "{}", run.stderr);
    assert!(!run.stderr.contains("310"), "{}", run.stderr);
}

/// `cairn jobs` on a state file that cannot be written (another user's, a
/// copy on a read-only disk) still lists the jobs; `cairn mirror` says in
/// words that it cannot record anything there. Run as another user when
/// the tests run as root (root may write any file).
#[cfg(unix)]
#[test]
fn a_read_only_state_file_can_still_be_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let state = home.join("cairn.db");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let run = cairn(
        &state,
        &[
            "mirror",
            demo.to_str().unwrap(),
            dir.path().join("m").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Copied next to the state, so that another user may run it.
    let program = dir.path().join("cairn");
    std::fs::copy(env!("CARGO_BIN_EXE_cairn"), &program).unwrap();
    for (path, mode) in [
        (dir.path(), 0o755),
        (home.as_path(), 0o555),
        (state.as_path(), 0o444),
        (program.as_path(), 0o755),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let run_as_reader = |args: &[&str]| {
        let mut command = if as_root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        let output = command
            .env("HOME", dir.path())
            .arg("--state")
            .arg(&state)
            .args(args)
            .output()
            .unwrap();
        Run::from(output)
    };
    let before = std::fs::read(&state).unwrap();
    let jobs = run_as_reader(&["jobs", "--json"]);
    assert_eq!(jobs.code, Some(0), "{}", jobs.stderr);
    assert_eq!(jobs.summary()["jobs"], 1, "{}", jobs.stdout);
    assert_eq!(jobs.lines()[0]["state"], "finished", "{}", jobs.stdout);
    let mirror = run_as_reader(&[
        "mirror",
        demo.to_str().unwrap(),
        dir.path().join("m2").to_str().unwrap(),
    ]);
    assert_eq!(mirror.code, Some(2), "{}", mirror.stderr);
    assert!(
        mirror.stderr.contains(&state.display().to_string()) && !mirror.stderr.contains("SQLITE"),
        "{}",
        mirror.stderr
    );
    assert_eq!(std::fs::read(&state).unwrap(), before);
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Of two items with one id, the one a job planned first keeps its place
/// when a later run reads the two in the other order (a walk reads many
/// documents at once, so the order can change): the mirror never ends up
/// holding files of both, and the other is left out, said as before.
#[test]
fn of_two_items_with_one_id_the_one_planned_first_keeps_its_place() {
    let site = Site::start();
    let serve = |slow: &str| {
        for name in ["one", "two"] {
            let doc = json!({"type": "Feature", "stac_version": "1.1.0", "id": "dup",
                "collection": "col", "geometry": null,
                "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
                "assets": {"data": {"href": site.url(&format!("a/{name}.bin")),
                                    "type": "application/octet-stream"}}});
            let reply = Reply::json(&doc);
            // The slow one is read last.
            let reply = match name == slow {
                true => reply.trickle(Duration::from_millis(3)),
                false => reply,
            };
            site.put(&format!("c/{name}.json"), reply);
        }
    };
    for name in ["one", "two"] {
        site.put(
            &format!("a/{name}.bin"),
            Reply::bytes(bytes_of(name, 3000), "application/octet-stream"),
        );
    }
    site.put(
        "c/collection.json",
        Reply::json(&json!({"type": "Collection", "stac_version": "1.1.0", "id": "col",
            "description": "d", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[null, null]]}},
            "links": [{"rel": "item", "href": "./one.json"}, {"rel": "item", "href": "./two.json"}]})),
    );
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let source = site.url("c/collection.json");

    serve("two");
    let first = mirror(&state, &source, &dest);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    // Now "two" comes first; the job keeps "one", as it planned it.
    serve("one");
    let again = mirror(&state, &source, &dest);
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    let notes = problems(&again).join("\n");
    assert!(
        notes.contains("another item with the id \"dup\""),
        "{notes}"
    );
    assert_eq!(
        site.hits("a/two.bin"),
        0,
        "the other item's file was fetched"
    );
    let mirrored = verified(&state, &dest, 1);
    assert_eq!(mirrored[0].bytes, bytes_of("one", 3000));
}
