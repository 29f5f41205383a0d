//! A fixture catalog served over loopback, its assets pointed at bytes the test
//! serves, mirrored to a folder: every asset there and verified, every link and
//! asset href relative, and a second run copies nothing again.

use std::path::Path;
use std::process::Command;

use cairn::checksum::{Algorithm, Checksum};
use serde_json::Value;

use crate::support::{Server, fixtures};

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
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn cairn(state: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        output.status.code(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_served_catalog_mirrors_to_a_verified_self_contained_folder() {
    let served = tempfile::tempdir().unwrap();
    let server = Server::files(served.path());
    copy_tree(
        &fixtures().join("static/pystac-example-catalog-landsat"),
        &served.path().join("catalog"),
    );
    // Point every asset at bytes the test serves, and remember what they are.
    let mut expected: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut items = Vec::new();
    json_files(&served.path().join("catalog"), &mut items);
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
            std::fs::create_dir_all(served.path().join(format!("assets/{id}"))).unwrap();
            std::fs::write(served.path().join(&file), &bytes).unwrap();
            value["assets"][key]["href"] = server.url(&file).to_string().into();
            expected.push((id.clone(), key.clone(), bytes));
        }
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    }
    assert!(expected.len() >= 20, "{}", expected.len());

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let source = server.url("catalog/catalog.json").to_string();
    let (code, lines, stderr) = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
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
    let (code, lines, _) = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(lines.last().unwrap()["verified"], expected.len());

    // The assets vanish from the server: a second run has nothing to fetch.
    std::fs::remove_dir_all(served.path().join("assets")).unwrap();
    let (code, lines, stderr) = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, Some(0), "{stderr}\n{lines:#?}");
    assert_eq!(lines.last().unwrap()["done"], expected.len());

    // A damaged file is caught by verify.
    let (id, key, _) = &expected[0];
    let damaged = dest.join(format!("landsat-8-l1/{id}/{key}.bin"));
    std::fs::write(&damaged, b"not the bytes").unwrap();
    let (code, lines, _) = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(lines.last().unwrap()["problems"], 1);
}
