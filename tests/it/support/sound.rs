//! What a mirror folder must be, whatever the catalog it came from: checked
//! from the files alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use cairn::checksum::{Algorithm, Checksum};
use serde_json::Value;

/// One mirrored asset as the mirror describes it.
#[derive(Debug, Clone)]
pub struct Mirrored {
    /// Its file, relative to the mirror.
    pub path: String,
    /// Where it came from (`alternate.source.href`).
    pub source: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Every file under `dir`, relative, without following links; links are
/// listed too (they are files of the tree).
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    super::files_under(dir)
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = match std::fs::read_link(&path) {
                Ok(target) => format!("-> {}", target.display()).into_bytes(),
                Err(_) => std::fs::read(&path).unwrap(),
            };
            (relative, bytes)
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Resolves a relative href of the document at `doc` (relative to `root`),
/// asserting that it stays inside the mirror.
fn inside(root: &Path, doc: &str, href: &str) -> String {
    assert!(
        !href.contains("://") && !href.starts_with('/'),
        "{doc}: the href {href:?} is not relative"
    );
    let mut parts: Vec<&str> = doc.split('/').collect();
    parts.pop();
    for segment in href.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                assert!(parts.pop().is_some(), "{doc}: {href:?} leaves the mirror");
            }
            s => parts.push(s),
        }
    }
    let relative = parts.join("/");
    assert!(
        root.join(&relative).starts_with(root),
        "{doc}: {href:?} leaves the mirror"
    );
    relative
}

/// Checks the mirror at `root`: every document reachable from catalog.json,
/// every asset with a relative href present and matching its file:size and
/// file:checksum, every file in the folder belonging to exactly one entry
/// (no orphans, none shared), no two paths that a case-blind file system
/// would take for one, and no links. Returns the mirrored assets.
pub fn sound_mirror(root: &Path) -> Vec<Mirrored> {
    let files = tree(root);
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut claim = |path: &str, owner: String| {
        if let Some(first) = owners.insert(path.to_string(), owner.clone()) {
            panic!("{path} belongs to both {first} and {owner}");
        }
    };
    let mut mirrored = Vec::new();
    let mut queue = vec!["catalog.json".to_string()];
    let mut seen = HashSet::new();
    while let Some(doc) = queue.pop() {
        if !seen.insert(doc.clone()) {
            continue;
        }
        claim(&doc, format!("the document {doc}"));
        let value = read_json(&root.join(&doc));
        for link in value["links"].as_array().into_iter().flatten() {
            let rel = link["rel"].as_str().unwrap_or_default();
            let href = link["href"].as_str().unwrap();
            if matches!(rel, "child" | "item") {
                queue.push(inside(root, &doc, href));
            } else if doc == "catalog.json" && matches!(rel, "alternate" | "describedby") {
                // The mirror's index and provenance files.
                let target = inside(root, &doc, href);
                assert!(
                    files.contains_key(&target),
                    "{doc}: {rel} {href} is missing"
                );
                claim(&target, format!("the root's {rel} link"));
            } else if matches!(rel, "root" | "parent" | "collection" | "self") {
                let target = inside(root, &doc, href);
                assert!(
                    files.contains_key(&target),
                    "{doc}: {rel} {href} is missing"
                );
            }
        }
        if value["type"] != "Feature" {
            continue;
        }
        for (key, asset) in value["assets"].as_object().unwrap() {
            let href = asset["href"].as_str().unwrap();
            if href.contains("://") || href.starts_with("data:") {
                // Not mirrored: it must say so, or be outside the selection.
                continue;
            }
            let path = inside(root, &doc, href);
            let bytes = files
                .get(&path)
                .unwrap_or_else(|| panic!("{doc} asset {key}: {path} is missing"))
                .clone();
            assert_eq!(
                asset["file:size"].as_u64(),
                Some(bytes.len() as u64),
                "{doc} asset {key}: file:size"
            );
            let checksum = Checksum::parse(asset["file:checksum"].as_str().unwrap()).unwrap();
            assert_eq!(
                Checksum::of(checksum.algorithm, &bytes),
                checksum,
                "{doc} asset {key}: file:checksum"
            );
            let source = asset["alternate"]["source"]["href"]
                .as_str()
                .unwrap_or_else(|| panic!("{doc} asset {key} keeps no source"))
                .to_string();
            claim(&path, format!("{doc} asset {key}"));
            mirrored.push(Mirrored {
                path,
                source,
                bytes,
            });
        }
    }
    for (path, bytes) in &files {
        assert!(
            !bytes.starts_with(b"-> ") || owners.contains_key(path),
            "a link is left in the mirror: {path}"
        );
        assert!(
            owners.contains_key(path),
            "{path} is in the mirror but belongs to no catalog entry"
        );
    }
    let mut folded: HashMap<String, &String> = HashMap::new();
    for path in files.keys() {
        if let Some(other) = folded.insert(path.to_lowercase(), path) {
            panic!("{path} and {other} are one file on a case-blind disk");
        }
    }
    mirrored
}

/// The sha2-256 of `bytes`, as the catalogs in these tests give it.
pub fn sha256(bytes: &[u8]) -> String {
    Checksum::of(Algorithm::Sha2_256, bytes).to_hex()
}
