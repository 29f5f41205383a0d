//! Broken documents give a clear problem report, and the walk goes on past them.

use std::path::{Path, PathBuf};

use serde_json::json;
use url::Url;

use crate::static_walk::{Found, walk_all};
use crate::support::{Server, fixtures};

fn broken_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![fixtures().join("broken")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    files
}

fn reasons(found: &Found, file_suffix: &str) -> Vec<String> {
    found
        .problems
        .iter()
        .filter(|p| p.href.ends_with(file_suffix))
        .map(|p| p.reason.clone())
        .collect()
}

fn has(found: &Found, file_suffix: &str, words: &str) -> bool {
    reasons(found, file_suffix)
        .iter()
        .any(|r| r.contains(words))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_broken_file_is_walked_without_panic_from_disk_and_http() {
    let base = fixtures().join("broken");
    let server = Server::files(&base);
    for file in broken_files() {
        let relative = file
            .strip_prefix(&base)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        for url in [Url::from_file_path(&file).unwrap(), server.url(&relative)] {
            match walk_all(&url).await {
                Ok(found) => {
                    for problem in &found.problems {
                        assert!(!problem.reason.trim().is_empty());
                        assert!(!problem.href.is_empty());
                    }
                }
                Err(error) => assert!(!error.to_string().is_empty()),
            }
        }
    }
}

async fn walk_fixture(path: &str) -> Found {
    walk_all(&Url::from_file_path(fixtures().join(path)).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_breakage_is_named() {
    let found = walk_fixture("broken/v1.0.0-bad-children/catalog-with-bad-item.json").await;
    assert!(
        has(&found, "bad-item.json", "no \"id\""),
        "{:?}",
        found.problems
    );
    assert!(has(&found, "bad-item.json", "skipped"));
    // The walk went on past the bad item to the good one.
    assert_eq!(found.summary.items, 1);

    let found =
        walk_fixture("broken/v1.0.0-bad-children/catalog-with-bad-child-collection.json").await;
    assert!(
        has(&found, "bad-collection.json", "no \"id\""),
        "{:?}",
        found.problems
    );
    assert_eq!(found.summary.collections, 3);

    let found = walk_fixture("broken/misc/bad_item_v090.json").await;
    assert!(has(&found, "bad_item_v090.json", "no \"id\""));
    assert_eq!(found.summary.items, 0);

    let found = walk_fixture("broken/misc/pystac-invalid-collection.json").await;
    assert!(has(&found, ".json", "spatial bbox"), "{:?}", found.problems);
    assert!(has(&found, ".json", "temporal interval"));

    let found = walk_fixture("broken/misc/pointcloud-abs-path-self-v0.9.0.json").await;
    assert!(
        has(&found, ".json", "not an RFC 3339"),
        "{:?}",
        found.problems
    );
    assert!(has(&found, ".json", "absolute local path"));

    let found = walk_fixture("broken/misc/CBERS_4_bad_links-v0.9.0.json").await;
    assert!(has(&found, ".json", "malformed"), "{:?}", found.problems);

    let found = walk_fixture("broken/misc/bad_collection_1rc2.json").await;
    assert!(
        has(&found, "core-item.json", "does not exist"),
        "{:?}",
        found.problems
    );

    let found = walk_fixture("broken/invalid-catalog-no-stac_version/catalog.json").await;
    assert!(
        has(&found, "catalog.json", "stac_version"),
        "{:?}",
        found.problems
    );

    let found = walk_fixture("broken/shared-id/catalog.json").await;
    assert!(
        has(&found, "collection.json", "\"test\" is also used by"),
        "{:?}",
        found.problems
    );
    assert_eq!(found.summary.items, 1);

    let found = walk_fixture("broken/v1.1.0-missing-item-link/collection.json").await;
    assert!(
        has(&found, "core-item.json", "does not exist"),
        "{:?}",
        found.problems
    );
    assert_eq!(found.summary.items, 2);
}

/// A catalog that links to invalid JSON, a JSON list, a non-STAC object, a
/// missing file and back to itself: each is reported and the walk reaches the
/// good item anyway.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_documents_and_cycles_do_not_stop_a_walk() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let link = |rel: &str, href: &str| json!({"rel": rel, "href": href});
    write(
        "catalog.json",
        &json!({"type": "Catalog", "id": "root", "stac_version": "1.1.0", "description": "d", "links": [
            link("child", "./truncated.json"), link("child", "./list.json"), link("child", "./other.json"),
            link("child", "./missing.json"), link("child", "./loop.json"), link("item", "./good.json"),
            link("child", "./catalog.json")
        ]})
        .to_string(),
    );
    write(
        "truncated.json",
        r#"{"type": "Catalog", "id": "t", "links": ["#,
    );
    write("list.json", "[1, 2, 3]");
    write("other.json", r#"{"hello": "world"}"#);
    write(
        "loop.json",
        &json!({"type": "Catalog", "id": "loop", "stac_version": "1.1.0", "description": "d",
            "links": [link("child", "./catalog.json"), link("child", "./loop.json")]})
        .to_string(),
    );
    write(
        "good.json",
        &json!({"type": "Feature", "stac_version": "1.1.0", "id": "good", "geometry": null,
            "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [], "assets": {}})
        .to_string(),
    );
    let found = walk_all(&Url::from_file_path(dir.path().join("catalog.json")).unwrap())
        .await
        .unwrap();
    let problems = |file: &str| reasons(&found, file).join(" | ");
    assert!(
        problems("truncated.json").contains("it is not JSON"),
        "{:?}",
        found.problems
    );
    assert!(
        problems("truncated.json").contains("line 1"),
        "{:?}",
        found.problems
    );
    assert!(problems("list.json").contains("a list instead of a JSON object"));
    assert!(problems("other.json").contains("not STAC"));
    assert!(problems("missing.json").contains("does not exist"));
    assert!(problems("loop.json").contains("already reached"));
    assert!(problems("catalog.json").contains("already reached"));
    assert_eq!((found.summary.catalogs, found.summary.items), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_root_is_an_error_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    std::fs::write(&path, "{ not json").unwrap();
    let error = walk_all(&Url::from_file_path(&path).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_json");
    assert!(
        error
            .to_string()
            .contains("is not a STAC document: it is not JSON"),
        "{error}"
    );
    // A web page where a catalog was expected says so, and where to look.
    let site = crate::support::site::Site::start();
    site.put(
        "index.html",
        crate::support::site::Reply::bytes(
            b"\n  <!DOCTYPE html><html><body>Our data</body></html>".to_vec(),
            "text/html",
        ),
    );
    let error = walk_all(&Url::parse(&site.url("index.html")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_stac");
    assert!(
        error
            .to_string()
            .contains("it is a web page, not a STAC catalog"),
        "{error}"
    );
    let error = walk_all(&Url::from_file_path(Path::new("/nonexistent/catalog.json")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_found");
}
