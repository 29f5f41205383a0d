//! Every fixture catalog walks completely, from disk and over loopback HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use cairn::catalog::Kind;
use cairn::catalog::walk::{Problem, WalkEvent, WalkOptions, WalkSummary, walk};
use serde_json::Value;
use url::Url;

use crate::support::{Server, fetcher, fixtures};

/// What a walk found: node addresses by kind, and problems.
#[derive(Default, Debug)]
pub struct Found {
    pub nodes: BTreeMap<&'static str, BTreeSet<String>>,
    pub problems: Vec<Problem>,
    pub summary: WalkSummary,
}

pub async fn walk_all(root: &Url) -> cairn::Result<Found> {
    let mut found = Found::default();
    let summary = walk(&fetcher(), root, &WalkOptions::default(), |event| {
        match event {
            WalkEvent::Node(node) => {
                found
                    .nodes
                    .entry(node.kind.noun())
                    .or_default()
                    .insert(node.href.to_string());
            }
            WalkEvent::Problem(problem) => found.problems.push(problem),
        }
        ControlFlow::Continue(())
    })
    .await?;
    found.summary = summary;
    Ok(found)
}

/// The test's own count: every `.json` file under `dir`, classified by its fields.
fn count_files(dir: &Path) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let kind = match value["type"].as_str() {
                Some("Feature") => "item",
                Some("Collection") => "collection",
                Some("Catalog") => "catalog",
                _ if value.get("extent").is_some() => "collection",
                _ => "catalog",
            };
            *counts.entry(kind).or_insert(0) += 1;
        }
    }
    counts
}

fn roots(dir: &Path) -> Vec<PathBuf> {
    ["catalog.json", "collection.json"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

fn catalogs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join("static"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 9,
        "expected the fixture catalogs, found {dirs:?}"
    );
    dirs
}

async fn check_walk(dir: &Path, to_url: impl Fn(&Path) -> Url) {
    let expected = count_files(dir);
    let mut nodes: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for root in roots(dir) {
        let found = walk_all(&to_url(&root)).await.unwrap();
        for problem in &found.problems {
            // Real catalogs share collection ids across examples; nothing else may go wrong.
            assert!(
                problem.reason.contains("also used by"),
                "{}: {problem:?}",
                dir.display()
            );
        }
        for (kind, hrefs) in found.nodes {
            nodes.entry(kind).or_default().extend(hrefs);
        }
    }
    let got: BTreeMap<&'static str, usize> = nodes.iter().map(|(k, v)| (*k, v.len())).collect();
    assert_eq!(got, expected, "{}", dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_catalog_walks_completely_from_disk() {
    for dir in catalogs() {
        check_walk(&dir, |path| Url::from_file_path(path).unwrap()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_catalog_walks_completely_over_http() {
    let base = fixtures().join("static");
    let server = Server::files(&base);
    for dir in catalogs() {
        check_walk(&dir, |path| {
            server.url(path.strip_prefix(&base).unwrap().to_str().unwrap())
        })
        .await;
    }
    assert!(server.request_count() >= 120);
}

#[tokio::test(flavor = "multi_thread")]
async fn node_kinds_and_parents_are_reported() {
    let root = fixtures().join("static/pystac-test-case-1/catalog.json");
    let mut items = Vec::new();
    walk(
        &fetcher(),
        &Url::from_file_path(&root).unwrap(),
        &WalkOptions::default(),
        |event| {
            if let WalkEvent::Node(node) = event
                && node.kind == Kind::Item
            {
                items.push(node);
            }
            ControlFlow::Continue(())
        },
    )
    .await
    .unwrap();
    assert_eq!(items.len(), 8);
    for item in items {
        assert_eq!(item.depth, 3);
        let parent = item.parent.unwrap();
        assert!(parent.path().ends_with("/collection.json"), "{parent}");
        assert!(item.collection.unwrap().starts_with("area-"));
        assert!(item.value["assets"].is_object());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn depth_limits_the_walk_and_counts_what_was_left() {
    let root =
        Url::from_file_path(fixtures().join("static/pystac-test-case-1/catalog.json")).unwrap();
    let options = WalkOptions {
        max_depth: Some(1),
        ..Default::default()
    };
    let summary = walk(&fetcher(), &root, &options, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!(
        (summary.catalogs, summary.collections, summary.items),
        (3, 0, 0)
    );
    assert_eq!(summary.not_followed, 4);
}

/// Walks pystac-test-case-1 over HTTP with `options`: the collections of
/// the items read, the summary, and how many requests the server answered.
async fn walk_test_case_1(options: WalkOptions) -> (BTreeSet<String>, WalkSummary, u64) {
    let server = Server::files(&fixtures().join("static/pystac-test-case-1"));
    let mut items = BTreeSet::new();
    let summary = walk(&fetcher(), &server.url("catalog.json"), &options, |event| {
        if let WalkEvent::Node(node) = event
            && node.kind == Kind::Item
        {
            items.insert(node.collection.unwrap());
        }
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    (items, summary, server.request_count())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_items_of_collections_left_out_are_never_read() {
    let (items, summary, requests) = walk_test_case_1(WalkOptions {
        skip_collections: vec!["area-1-2".into(), "area-2-1".into()],
        ..Default::default()
    })
    .await;
    // Every catalog and collection is still reached (a collection left out
    // may hold others); the items of the other two collections are read.
    assert_eq!(
        (summary.catalogs, summary.collections, summary.items),
        (3, 4, 4)
    );
    assert_eq!(
        items,
        BTreeSet::from(["area-1-1".to_string(), "area-2-2".to_string()])
    );
    // Seven catalogs and collections and four items: the other four item
    // files were never asked for.
    assert_eq!(requests, 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_items_of_collections_not_asked_for_are_never_read() {
    let (items, _, requests) = walk_test_case_1(WalkOptions {
        only_collections: vec!["area-1-1".into(), "area-2-1".into()],
        skip_collections: vec!["area-2-1".into()],
        ..Default::default()
    })
    .await;
    // Asked for and not left out: one collection, whose two item files are
    // the only ones read beside the seven catalogs and collections.
    assert_eq!(items, BTreeSet::from(["area-1-1".to_string()]));
    assert_eq!(requests, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_walk_can_be_stopped_early() {
    let root =
        Url::from_file_path(fixtures().join("static/pystac-test-case-4/catalog.json")).unwrap();
    let mut seen = 0;
    let summary = walk(&fetcher(), &root, &WalkOptions::default(), |event| {
        if matches!(event, WalkEvent::Node(_)) {
            seen += 1;
        }
        if seen == 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await
    .unwrap();
    assert_eq!(seen, 5);
    assert!(summary.items + summary.collections + summary.catalogs < 70);
}
