//! Item search against a real STAC API server (`rustac serve`), checked against a
//! brute-force filter of the same data.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cairn::catalog::api::{Api, Cursor, build_search};
use cairn::catalog::{Kind, open};
use cairn::fetch::Method;
use cairn::store::{NewJob, Store};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::support::rustac::RustacServer;
use crate::support::{Server, cairn, fetcher, fixtures};

/// The joplin items with a different day each, and the sentinel-2 items, written
/// as one item collection; returns its path and the items.
fn data(dir: &std::path::Path) -> (PathBuf, Vec<Value>) {
    let read = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(fixtures().join(p)).unwrap()).unwrap()
    };
    let mut items: Vec<Value> = read("server-data/joplin/index.geojson")["features"]
        .as_array()
        .unwrap()
        .clone();
    for (day, item) in items.iter_mut().enumerate() {
        item["properties"]["datetime"] = json!(format!(
            "2000-02-{:02}T12:00:00Z",
            day + 1 - (day / 28) * 28
        ));
        item["collection"] = json!("joplin");
    }
    items.extend(
        read("server-data/sentinel-2/item-collection.json")["features"]
            .as_array()
            .unwrap()
            .clone(),
    );
    let path = dir.join("items.json");
    std::fs::write(
        &path,
        json!({"type": "FeatureCollection", "features": items}).to_string(),
    )
    .unwrap();
    (path, items)
}

fn server(dir: &std::path::Path) -> (RustacServer, Vec<Value>) {
    let (items_path, items) = data(dir);
    let joplin = fixtures().join("server-data/joplin/collection.json");
    let sentinel = fixtures().join("server-data/sentinel-2/collection.json");
    (
        RustacServer::start(&[&joplin, &sentinel, &items_path]),
        items,
    )
}

/// The item ids a `cairn search --json` printed, and its summary line.
fn found_ids(output: &crate::support::Run) -> (BTreeSet<String>, Value) {
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let mut lines = output.lines();
    let summary = lines.pop().unwrap();
    assert_eq!(summary["type"], "summary");
    let ids = lines
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    (ids, summary)
}

/// The test's own filter: bbox overlap, datetime within the range, collection in the list.
fn brute_force(
    items: &[Value],
    collections: &[&str],
    bbox: [f64; 4],
    start: Option<&str>,
    end: Option<&str>,
) -> BTreeSet<String> {
    let time = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    items
        .iter()
        .filter(|item| collections.contains(&item["collection"].as_str().unwrap()))
        .filter(|item| {
            let b: Vec<f64> = item["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            b[0] <= bbox[2] && bbox[0] <= b[2] && b[1] <= bbox[3] && bbox[1] <= b[3]
        })
        .filter(|item| {
            let t = time(item["properties"]["datetime"].as_str().unwrap());
            start.is_none_or(|s| t >= time(s)) && end.is_none_or(|e| t <= time(e))
        })
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_all(
    api: &Api,
    collections: &[&str],
    bbox: &str,
    datetime: &str,
) -> (BTreeSet<String>, u64, Method) {
    let collections: Vec<String> = collections.iter().map(|s| s.to_string()).collect();
    let search = build_search(&collections, Some(bbox), Some(datetime), Some(4)).unwrap();
    let first = api.search_request(&search).unwrap();
    let method = first.method;
    let mut cursor = Cursor::start(first, None);
    let mut ids = BTreeSet::new();
    let fetcher = fetcher();
    while let Some(page) = cursor.next_page(&fetcher, "features").await.unwrap() {
        for item in page {
            assert!(
                ids.insert(item["id"].as_str().unwrap().to_string()),
                "an item came twice"
            );
        }
    }
    (ids, cursor.pages, method)
}

#[tokio::test(flavor = "multi_thread")]
async fn search_returns_exactly_the_brute_force_matches_over_post_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (server, items) = server(dir.path());
    let opened = open(&fetcher(), server.url.as_str()).await.unwrap();
    assert_eq!(opened.kind, Kind::Api);
    let api = Api::new(opened.url, opened.value);
    assert!(api.can_search());

    let collections = ["joplin", "sentinel-2-c1-l2a"];
    let bbox = [-94.6, 37.04, -94.45, 37.095];
    let bbox_text = "-94.6,37.04,-94.45,37.095";
    let cases = [
        (
            "2000-02-03T00:00:00Z/2000-02-27T00:00:00Z",
            Some("2000-02-03T00:00:00Z"),
            Some("2000-02-27T00:00:00Z"),
        ),
        (
            "2000-02-05T00:00:00Z/..",
            Some("2000-02-05T00:00:00Z"),
            None,
        ),
        (
            "../2000-02-20T00:00:00Z",
            None,
            Some("2000-02-20T00:00:00Z"),
        ),
    ];
    for (datetime, start, end) in cases {
        let expected = brute_force(&items, &collections, bbox, start, end);
        assert!(
            expected.len() > 8,
            "the case must span three pages of 4: {expected:?}"
        );
        let (got, pages, method) = search_all(&api, &collections, bbox_text, datetime).await;
        assert_eq!(method, Method::Post);
        assert_eq!(got, expected, "datetime {datetime}");
        assert!(pages >= 3, "{pages} pages");
    }
    // A box around Denver finds the sentinel-2 items and no joplin ones.
    let (got, _, _) = search_all(
        &api,
        &collections,
        "-105.5,39.5,-104.5,40.5",
        "2024-04-01T00:00:00Z/2024-04-30T00:00:00Z",
    )
    .await;
    let expected = brute_force(
        &items,
        &collections,
        [-105.5, 39.5, -104.5, 40.5],
        Some("2024-04-01T00:00:00Z"),
        Some("2024-04-30T00:00:00Z"),
    );
    assert_eq!(got, expected);
    assert_eq!(got.len(), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_saved_mid_way_continues_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let (server, items) = server(dir.path());
    let fetcher = fetcher();
    let opened = open(&fetcher, server.url.as_str()).await.unwrap();
    let api = Api::new(opened.url, opened.value);
    let search = build_search(&["joplin".into()], None, None, Some(4)).unwrap();
    let state = dir.path().join("state/cairn.db");

    let mut ids = BTreeSet::new();
    {
        let store = Store::open(&state).unwrap();
        let job = joplin_job(&store, &server.url, dir.path());
        let mut cursor = Cursor::start(api.search_request(&search).unwrap(), None);
        for _ in 0..2 {
            for item in cursor
                .next_page(&fetcher, "features")
                .await
                .unwrap()
                .unwrap()
            {
                ids.insert(item["id"].as_str().unwrap().to_string());
            }
            store.save_cursor(job, "search", &cursor).unwrap();
        }
        assert_eq!(job, 1);
        // The process "crashes" here: the store and cursor are dropped.
    }
    let store = Store::open(&state).unwrap();
    let mut cursor = store.cursor(1, "search").unwrap().unwrap();
    assert_eq!(cursor.pages, 2);
    while let Some(page) = cursor.next_page(&fetcher, "features").await.unwrap() {
        for item in page {
            assert!(
                ids.insert(item["id"].as_str().unwrap().to_string()),
                "an item came twice"
            );
        }
    }
    let expected: BTreeSet<String> = items
        .iter()
        .filter(|i| i["collection"] == "joplin")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn the_cli_search_prints_the_same_items_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (server, items) = server(dir.path());
    let state = dir.path().join("cairn.db");
    let output = cairn(
        &state,
        &[
            "search",
            server.url.as_str(),
            "--collections",
            "joplin",
            "--bbox",
            "-94.6,37.04,-94.45,37.095",
            "--datetime",
            "2000-02-05T00:00:00Z/..",
            "--limit",
            "3",
            "--json",
        ],
    );
    let (got, summary) = found_ids(&output);
    let expected = brute_force(
        &items,
        &["joplin"],
        [-94.6, 37.04, -94.45, 37.095],
        Some("2000-02-05T00:00:00Z"),
        None,
    );
    assert_eq!(got, expected);
    assert_eq!(summary["items"], json!(expected.len()));

    // --max-items stops early, across pages.
    let args = ["search", server.url.as_str(), "--collections", "joplin"];
    let output = cairn(
        &state,
        &[&args[..], &["--limit", "3", "--max-items", "7", "--json"]].concat(),
    );
    assert_eq!(output.lines().len(), 8, "{}", output.stdout);
    assert_eq!(output.summary()["items"], 7);
}

#[test]
fn a_collection_of_an_api_is_searched_through_its_items_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (server, items) = server(dir.path());
    let collection = server.url.join("collections/joplin").unwrap();
    let state = dir.path().join("cairn.db");
    // rustac 0.9.18 answers 500 to `bbox` on GET /collections/{id}/items, so this
    // read filters by time only.
    let output = cairn(
        &state,
        &[
            "search",
            collection.as_str(),
            "--datetime",
            "2000-02-05/..",
            "--limit",
            "4",
            "--json",
        ],
    );
    let (got, _) = found_ids(&output);
    let world = [-180.0, -90.0, 180.0, 90.0];
    let expected = brute_force(
        &items,
        &["joplin"],
        world,
        Some("2000-02-05T00:00:00Z"),
        None,
    );
    assert!(expected.len() > 8 && expected.len() < 30, "{expected:?}");
    assert_eq!(got, expected);
}

#[test]
fn a_mirror_from_the_api_holds_exactly_the_matching_items() {
    let dir = tempfile::tempdir().unwrap();
    // Every asset points at bytes a loopback server holds.
    let files = dir.path().join("files");
    let file_server = Server::files(&files);
    let (items_path, mut items) = data(dir.path());
    for item in &mut items {
        let id = item["id"].as_str().unwrap().to_string();
        for (key, asset) in item["assets"].as_object_mut().unwrap() {
            let name = format!("{id}/{key}.bin");
            std::fs::create_dir_all(files.join(&id)).unwrap();
            // A TIFF's first bytes: the fixture's assets say they are COGs.
            std::fs::write(files.join(&name), format!("II*\0{id} {key}")).unwrap();
            asset["href"] = json!(file_server.url(&name).to_string());
        }
    }
    std::fs::write(
        &items_path,
        json!({"type": "FeatureCollection", "features": items}).to_string(),
    )
    .unwrap();
    let joplin = fixtures().join("server-data/joplin/collection.json");
    let sentinel = fixtures().join("server-data/sentinel-2/collection.json");
    let api = RustacServer::start(&[&joplin, &sentinel, &items_path]);

    let dest = dir.path().join("mirror");
    let bbox = "-94.6,37.04,-94.45,37.095";
    let run = cairn(
        &dir.path().join("cairn.db"),
        &[
            "mirror",
            api.url.as_str(),
            dest.to_str().unwrap(),
            "--collections",
            "joplin",
            "--bbox",
            bbox,
            "--datetime",
            "2000-02-05/2000-02-20",
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let expected = brute_force(
        &items,
        &["joplin"],
        [-94.6, 37.04, -94.45, 37.095],
        Some("2000-02-05T00:00:00Z"),
        Some("2000-02-20T23:59:59Z"),
    );
    assert!(
        !expected.is_empty() && expected.len() < 30,
        "{}",
        expected.len()
    );
    // Exactly the matching items are in the mirror, each with its assets.
    let mirrored: BTreeSet<String> = std::fs::read_dir(dest.join("joplin"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(mirrored, expected);
    for id in &expected {
        let item: Value = serde_json::from_slice(
            &std::fs::read(dest.join(format!("joplin/{id}/{id}.json"))).unwrap(),
        )
        .unwrap();
        for (key, asset) in item["assets"].as_object().unwrap() {
            let href = asset["href"].as_str().unwrap();
            let bytes = std::fs::read(dest.join(format!("joplin/{id}")).join(href)).unwrap();
            assert_eq!(bytes, format!("II*\0{id} {key}").into_bytes());
        }
    }
    assert!(!dest.join("sentinel-2").exists());
    let summary = run.summary();
    assert_eq!(summary["items"], json!(expected.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_stopped_half_way_continues_from_its_saved_page() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server(dir.path());
    let state = dir.path().join("cairn.db");
    let store = Store::open(&state).unwrap();
    let job = joplin_job(&store, &server.url, dir.path());
    // As a run stopped after its first page of 4 leaves it: the run open,
    // the position after that page saved, the page's items not (they were
    // lost).
    store.open_run(job).unwrap();
    let opened = open(&fetcher(), server.url.as_str()).await.unwrap();
    let api = Api::new(opened.url, opened.value);
    let search = build_search(&["joplin".to_string()], None, None, Some(4)).unwrap();
    let mut cursor = Cursor::start(api.search_request(&search).unwrap(), None);
    assert_eq!(
        cursor
            .next_page(&fetcher(), "features")
            .await
            .unwrap()
            .unwrap()
            .len(),
        4
    );
    store.save_cursor(job, "search", &cursor).unwrap();

    let runner = cairn::runner::Runner::new(store, fetcher());
    let report = runner.plan_only(job).await.unwrap();
    assert_eq!(report.counts.items, 26, "the plan continued from page 2");
    // Finished, the next plan reads the whole search again.
    let report = runner.plan_only(job).await.unwrap();
    assert_eq!(report.counts.items, 30);
}

/// A job of the joplin collection from the served API into `dir`/out.
fn joplin_job(store: &Store, api: &url::Url, dir: &std::path::Path) -> i64 {
    store
        .create_job(&NewJob {
            source_url: api.to_string(),
            destination: dir.join("out").display().to_string(),
            selection: json!({"collections": ["joplin"]}),
            limit_rate: None,
            concurrency: 2,
            per_host: 2,
        })
        .unwrap()
}

/// `--filter` on the items' properties: what the test's own reading of the
/// items keeps, whether or not the server knows the filter extension (an API
/// that does not is not sent it; every item is checked here either way).
#[test]
fn a_property_filter_keeps_exactly_the_items_that_pass_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, items) = server(dir.path());
    let state = dir.path().join("cairn.db");
    let run = cairn(
        &state,
        &[
            "search",
            server.url.as_str(),
            "--collections",
            "sentinel-2-c1-l2a",
            "--filter",
            "eo:cloud_cover < 20",
            "--json",
        ],
    );
    let (ids, _) = found_ids(&run);
    let expected: BTreeSet<String> = items
        .iter()
        .filter(|i| i["collection"] == "sentinel-2-c1-l2a")
        .filter(|i| {
            i["properties"]["eo:cloud_cover"]
                .as_f64()
                .is_some_and(|c| c < 20.0)
        })
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(ids, expected);

    // Not CQL2: said in words, with an example, and nothing is asked.
    let bad = cairn(
        &state,
        &[
            "search",
            server.url.as_str(),
            "--filter",
            "cloud cover is low",
        ],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("is not CQL2 text"), "{}", bad.stderr);
    assert!(bad.stderr.contains("eo:cloud_cover < 20"), "{}", bad.stderr);
}
