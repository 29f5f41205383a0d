//! A fixture catalog served over loopback, its assets pointed at bytes the test
//! serves, mirrored to a folder: every asset there and verified, every link and
//! asset href relative, and a second run copies nothing again.

use std::path::Path;

use cairn::checksum::{Algorithm, Checksum};
use serde_json::Value;

use crate::support::{Server, cairn, files_under, fixtures, pystac_report, validate_with_pystac};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.extend(
        files_under(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json")),
    );
}

/// Copies the fixture catalog `name` under `served/catalog`, points every
/// asset at bytes written under `served/assets` (served by `server`), and
/// returns them: (item id, asset key, bytes).
fn serve_fixture(name: &str, served: &Path, server: &Server) -> Vec<(String, String, Vec<u8>)> {
    copy_tree(
        &fixtures().join("static").join(name),
        &served.join("catalog"),
    );
    let mut expected = Vec::new();
    let mut items = Vec::new();
    json_files(&served.join("catalog"), &mut items);
    for path in items {
        let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if value["type"] != "Feature" {
            continue;
        }
        let id = value["id"].as_str().unwrap().to_string();
        let keys: Vec<String> = value["assets"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for (n, key) in keys.iter().enumerate() {
            let bytes: Vec<u8> = (0..(1000 + n * 7919))
                .map(|i| ((i * 131 + n) % 256) as u8)
                .collect();
            let file = format!("assets/{id}/{key}.bin");
            std::fs::create_dir_all(served.join(format!("assets/{id}"))).unwrap();
            std::fs::write(served.join(&file), &bytes).unwrap();
            value["assets"][key]["href"] = server.url(&file).to_string().into();
            expected.push((id.clone(), key.clone(), bytes));
        }
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    }
    expected
}

#[test]
fn a_stac_1_1_catalog_mirrored_validates_with_pystac() {
    let served = tempfile::tempdir().unwrap();
    let server = Server::files(served.path());
    let expected = serve_fixture("pystac-test-case-1", served.path(), &server);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let source = server.url("catalog/catalog.json").to_string();
    let run = cairn(
        &out.path().join("cairn.db"),
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], expected.len());

    // A third-party tool (pystac, offline) validates the whole mirror and
    // finds every asset.
    let report = pystac_report(&dest.join("catalog.json"));
    println!("pystac: {report}");
    assert_eq!(report["items"], 8);
    assert_eq!(report["assets"], expected.len());
    assert_eq!(
        report["unchecked_extensions"],
        serde_json::json!(["https://stac-extensions.github.io/label/v1.0.1/schema.json"])
    );

    // It is not a tool that passes anything: one bad field fails it.
    let (id, key, _) = &expected[0];
    let mut files = Vec::new();
    json_files(&dest, &mut files);
    let item_path = files
        .iter()
        .find(|p| p.ends_with(format!("{id}.json")))
        .unwrap();
    let mut item: Value = serde_json::from_slice(&std::fs::read(item_path).unwrap()).unwrap();
    item["assets"][key]["file:size"] = "large".into();
    std::fs::write(item_path, serde_json::to_vec(&item).unwrap()).unwrap();
    let validated = validate_with_pystac(&dest.join("catalog.json"));
    assert!(
        !validated.status.success(),
        "a bad file:size passed validation"
    );
    assert!(String::from_utf8_lossy(&validated.stderr).contains("file:size"));
}

#[test]
fn a_served_catalog_mirrors_to_a_verified_self_contained_folder() {
    let served = tempfile::tempdir().unwrap();
    let server = Server::files(served.path());
    let expected = serve_fixture("pystac-example-catalog-landsat", served.path(), &server);
    assert!(expected.len() >= 20, "{}", expected.len());

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let source = server.url("catalog/catalog.json").to_string();
    let run = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    let (code, lines, stderr) = (run.code, run.lines(), run.stderr);
    assert_eq!(code, Some(0), "{stderr}\n{lines:#?}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["done"], expected.len());

    // Every asset is there, with the right bytes, size and checksum.
    for (id, key, bytes) in &expected {
        let item_path = dest.join(format!("landsat-8-l1/{id}/{id}.json"));
        let item: Value = serde_json::from_slice(&std::fs::read(&item_path).unwrap()).unwrap();
        let asset = &item["assets"][key];
        let href = asset["href"].as_str().unwrap();
        assert!(href.starts_with("./"), "{href}");
        let file = item_path.parent().unwrap().join(href);
        assert_eq!(&std::fs::read(&file).unwrap(), bytes, "{id} {key}");
        assert_eq!(asset["file:size"], bytes.len());
        assert_eq!(
            asset["file:checksum"],
            Checksum::of(Algorithm::Sha2_256, bytes).to_hex()
        );
        assert!(
            asset["alternate"]["source"]["href"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1")
        );
    }
    // Every link in the mirror is relative.
    let mut written = Vec::new();
    json_files(&dest, &mut written);
    assert_eq!(written.len(), 1 + 1 + 4, "{written:?}");
    for path in &written {
        let value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for link in value["links"].as_array().unwrap() {
            let rel = link["rel"].as_str().unwrap();
            if ["root", "parent", "child", "item", "collection", "self"].contains(&rel) {
                assert!(
                    !link["href"].as_str().unwrap().contains("://"),
                    "{}: {link}",
                    path.display()
                );
            }
        }
    }
    assert!(
        !written
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".part"))
    );

    // The mirror verifies on its own.
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    let (code, lines) = (run.code, run.lines());
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(lines.last().unwrap()["verified"], expected.len());

    // A damaged and a missing file: verify says so; --repair fetches both
    // again from their recorded source, verified.
    let (id0, key0, bytes0) = &expected[0];
    let (id1, key1, bytes1) = &expected[1];
    let damaged = dest.join(format!("landsat-8-l1/{id0}/{key0}.bin"));
    let missing = dest.join(format!("landsat-8-l1/{id1}/{key1}.bin"));
    std::fs::write(&damaged, b"not the bytes").unwrap();
    std::fs::remove_file(&missing).unwrap();
    let run = cairn(&state, &["verify", dest.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stdout.contains("is missing"), "{}", run.stdout);
    assert!(run.stdout.contains("does not match"), "{}", run.stdout);
    assert!(run.stdout.contains("--repair"), "{}", run.stdout);
    let run = cairn(
        &state,
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let summary = run.summary();
    assert_eq!(
        (summary["repaired"].as_u64(), summary["problems"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(&std::fs::read(&damaged).unwrap(), bytes0);
    assert_eq!(&std::fs::read(&missing).unwrap(), bytes1);

    // The assets vanish from the server: a second run has nothing to fetch.
    std::fs::remove_dir_all(served.path().join("assets")).unwrap();
    let run = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    let (code, lines, stderr) = (run.code, run.lines(), run.stderr);
    assert_eq!(code, Some(0), "{stderr}\n{lines:#?}");
    assert_eq!(lines.last().unwrap()["done"], expected.len());

    // A damaged file is caught by verify.
    std::fs::write(&damaged, b"not the bytes").unwrap();
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    let (code, lines) = (run.code, run.lines());
    assert_eq!(code, Some(1));
    assert_eq!(lines.last().unwrap()["problems"], 1);
    // With the source gone, a repair says why it could not.
    let run = cairn(
        &state,
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(run.code, Some(1));
    let problem = &run.lines()[0];
    assert!(
        problem["reason"]
            .as_str()
            .unwrap()
            .contains("fetching it again from http://127.0.0.1"),
        "{problem}"
    );
    assert_eq!(&std::fs::read(&damaged).unwrap(), b"not the bytes");
}

/// Every file under `dir`, relative.
fn all_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn hostile_ids_and_hrefs_never_leave_the_destination() {
    let served = tempfile::tempdir().unwrap();
    // The catalog's files where they exist; the same bytes for any other path,
    // so that every hostile href leads to something to write.
    let root = served.path().to_path_buf();
    let server = Server::start(axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let root = root.clone();
        async move {
            let file = root.join(uri.path().trim_start_matches('/'));
            match std::fs::read(&file) {
                Ok(bytes) if file.starts_with(&root) && file.is_file() => bytes,
                _ => b"payload".to_vec(),
            }
        }
    }));
    let ids = [
        "../../escaped",
        "/etc/passwd-item",
        "C:\\Windows\\item",
        "%2e%2e%2fencoded",
        "%252e%252e%252fdouble",
        "nul\u{0}byte",
        "line\nbreak",
        "..",
        "CON",
        "a/../../b",
    ];
    let asset_names = [
        "../../escaped.bin",
        "..%2F..%2Fencoded.bin",
        "%2e%2e",
        "sub\\..\\..\\x.bin",
        "ok.bin",
        "/abs.bin",
        "C:evil.bin",
        "\u{1}ctl.bin",
        "...",
        "CON.bin",
    ];
    let mut links = vec![serde_json::json!({"rel": "root", "href": "./collection.json"})];
    for (n, (id, name)) in ids.iter().zip(asset_names).enumerate() {
        let file = format!("item-{n}.json");
        links.push(serde_json::json!({"rel": "item", "href": format!("./{file}")}));
        let href = format!("http://{}/x/{}", server.addr, name);
        let item = serde_json::json!({
            "type": "Feature", "stac_version": "1.1.0", "id": id, "collection": "../../c",
            "geometry": null, "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": href}}
        });
        std::fs::write(served.path().join(&file), item.to_string()).unwrap();
    }
    let collection = serde_json::json!({"type": "Collection", "stac_version": "1.1.0", "id": "../../c",
        "description": "d", "license": "x",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[null, null]]}},
        "links": links});
    std::fs::write(
        served.path().join("collection.json"),
        collection.to_string(),
    )
    .unwrap();

    let out = tempfile::tempdir().unwrap();
    let sentinel = out.path().join("outside-before.txt");
    std::fs::write(&sentinel, "x").unwrap();
    let before = all_files(out.path());
    let dest = out.path().join("mirror");
    let state = tempfile::tempdir().unwrap();
    let run = cairn(
        &state.path().join("cairn.db"),
        &[
            "mirror",
            server.url("collection.json").as_str(),
            dest.to_str().unwrap(),
            "--json",
        ],
    );
    let (code, lines, stderr) = (run.code, run.lines(), run.stderr);
    assert_eq!(code, Some(0), "{stderr}\n{lines:#?}");
    let after = all_files(out.path());
    let outside: Vec<&String> = after
        .iter()
        .filter(|f| !f.starts_with("mirror/") && !before.contains(f))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the destination: {outside:?}"
    );
    // Nothing escaped the system's temporary folder either.
    for escaped in ["escaped", "escaped.bin", "encoded.bin", "x.bin", "abs.bin"] {
        assert!(
            !out.path().parent().unwrap().join(escaped).exists(),
            "{escaped}"
        );
        assert!(!Path::new("/").join(escaped).exists(), "{escaped}");
    }
    // Every rename is reported with the original name.
    let problems: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "problem")
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("\"../../escaped\"")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("cannot be used")),
        "{problems:#?}"
    );
    // Every written file lives in exactly <collection>/<item>/, and every item
    // whose id could be made safe was mirrored with its payload.
    let written: Vec<&String> = after.iter().filter(|f| f.starts_with("mirror/")).collect();
    for file in &written {
        let depth = file.matches('/').count();
        assert!(depth == 1 || depth == 2 || depth == 3, "{file}");
    }
    let payloads = written
        .iter()
        .filter(|f| !f.ends_with(".json") && f.matches('/').count() > 1)
        .count();
    assert_eq!(payloads, 9, "{written:#?}");
    assert_eq!(lines.last().unwrap()["done"], 9);
}
