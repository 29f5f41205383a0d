//! Assets whose hrefs are bucket addresses (`s3://`, `az://`, `gs://`): copied
//! from S3 (moto), Azure Blob (azurite) and Google Cloud Storage
//! (fake-gcs-server) on loopback, verified like any other asset, and a large
//! one cut by kill -9 continued with a ranged read.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use crate::support::azurite::Azurite;
use crate::support::gcs::FakeGcs;
use crate::support::moto::MotoServer;
use crate::support::site::{Reply, Site};
use crate::support::sound::{sha256, sound_mirror};
use crate::support::{cairn_with_env, files_under};

fn object_bytes(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|b| ((b / 3 + i * 31) % 253) as u8).collect()
}

/// A collection served over HTTP whose items' assets live in a bucket:
/// `hrefs[i]` is item i's one asset (no size, no checksum: as most catalogs).
fn serve_catalog(site: &Site, hrefs: &[String]) {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for (i, href) in hrefs.iter().enumerate() {
        let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("scene-{i}"),
            "collection": "scenes", "geometry": null,
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": href, "type": "image/tiff; application=geotiff"}}});
        site.put(&format!("stac/scene-{i}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./scene-{i}.json")}));
    }
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
        "description": "Scenes in a bucket", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links});
    site.put("stac/collection.json", Reply::json(&collection));
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    store
        .put(&ObjectPath::from(key), PutPayload::from(bytes))
        .await
        .unwrap();
}

/// The mirrored bytes by file name, checked against what was put.
fn assert_mirrored(dest: &Path, expected: &[(String, Vec<u8>)]) -> Vec<Value> {
    let mirrored = sound_mirror(dest);
    assert_eq!(mirrored.len(), expected.len());
    for (name, bytes) in expected {
        let found = mirrored
            .iter()
            .find(|m| m.path.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} is not in the mirror"));
        assert_eq!(
            sha256(&found.bytes),
            sha256(bytes),
            "{name} is not the object's bytes"
        );
        assert!(
            ["s3://", "az://", "gs://"]
                .iter()
                .any(|scheme| found.source.starts_with(scheme)),
            "{}",
            found.source
        );
    }
    std::fs::read_to_string(dest.join("provenance.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The size of the partial file of `name` under `dest` (0: none).
fn partial_bytes(dest: &Path, name: &str) -> u64 {
    let part = format!("{name}.part");
    files_under(dest)
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == part))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_assets_are_copied_and_a_killed_copy_continues_with_a_range() {
    let moto = MotoServer::start();
    let store = moto.bucket("scenes-src").await;
    killed_copy_continues_with_a_range("s3", store, moto.env()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_assets_are_copied_and_a_killed_copy_continues_with_a_range() {
    let gcs = FakeGcs::start();
    let store = gcs.bucket("scenes-src").await;
    killed_copy_continues_with_a_range("gs", store, gcs.env()).await;
}

/// Objects in the bucket `scenes-src` of a store reached as `scheme://`
/// (with `env`): copied, and a large one cut by kill -9 continued with a
/// ranged read; one that changed while the job was stopped is fetched whole.
async fn killed_copy_continues_with_a_range(
    scheme: &str,
    store: Arc<dyn ObjectStore>,
    env: Vec<(&'static str, String)>,
) {
    const LARGE: usize = 24 << 20;
    const CUT: u64 = 4 << 20;
    let mut expected = Vec::new();
    let mut hrefs = Vec::new();
    for i in 0..6 {
        // One key with a space, written percent-encoded in the href.
        let (key, href) = match i {
            5 => (
                "tiles/LC08 005/B5.TIF".to_string(),
                format!("{scheme}://scenes-src/tiles/LC08%20005/B5.TIF"),
            ),
            _ => (
                format!("tiles/B{i}.TIF"),
                format!("{scheme}://scenes-src/tiles/B{i}.TIF"),
            ),
        };
        let bytes = object_bytes(i, 30_000 + i * 1_000);
        put(&store, &key, bytes.clone()).await;
        expected.push((key.rsplit('/').next().unwrap().to_string(), bytes));
        hrefs.push(href);
    }
    // Two large objects: one is continued where it was cut, the other
    // changes in its bucket while the job is stopped.
    let large = object_bytes(99, LARGE);
    put(&store, "tiles/large.TIF", large.clone()).await;
    expected.push(("large.TIF".into(), large));
    hrefs.push(format!("{scheme}://scenes-src/tiles/large.TIF"));
    put(&store, "tiles/changes.TIF", object_bytes(98, LARGE)).await;
    hrefs.push(format!("{scheme}://scenes-src/tiles/changes.TIF"));
    let site = Site::start();
    serve_catalog(&site, &hrefs);

    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let source = site.url("stac/collection.json");
    // Slow enough to be cut in the middle of the large object.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .envs(env.clone())
        .arg("--state")
        .arg(&state)
        .args([
            "mirror",
            &source,
            dest.to_str().unwrap(),
            "--limit-rate",
            "6M",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while partial_bytes(&dest, "large.TIF") < CUT || partial_bytes(&dest, "changes.TIF") < CUT {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before it could be cut"
        );
        assert!(Instant::now() < deadline, "the large object did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = partial_bytes(&dest, "large.TIF");
    assert!(kept >= CUT && kept < LARGE as u64, "{kept}");
    // Another version of the object replaces it while the job is stopped.
    let changed = object_bytes(77, LARGE - 1000);
    put(&store, "tiles/changes.TIF", changed.clone()).await;
    expected.push(("changes.TIF".into(), changed));

    let run = cairn_with_env(&state, &["resume", "1", "--json"], env);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let provenance = assert_mirrored(&dest, &expected);
    let line = provenance
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("large.TIF"))
        .unwrap();
    // The resume asked the bucket only for the rest of the object.
    let resumed = line["resumed_from"].as_u64().unwrap_or(0);
    assert!(resumed >= CUT, "{line}");
    assert!(line["headers"]["etag"].is_string(), "{line}");
    // The changed one was fetched whole again: never the old bytes with
    // the new ones after them (its bytes were compared above).
    let line = provenance
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("changes.TIF"))
        .unwrap();
    assert!(line["resumed_from"].is_null(), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_assets_are_copied_and_verified() {
    let azurite = Azurite::start();
    let store = azurite.container("scenes").await;
    let mut expected = Vec::new();
    let mut hrefs = Vec::new();
    for i in 0..5 {
        let bytes = object_bytes(i, 20_000 + i * 777);
        put(&store, &format!("tiles/T{i}.TIF"), bytes.clone()).await;
        expected.push((format!("T{i}.TIF"), bytes));
        hrefs.push(format!("az://scenes/tiles/T{i}.TIF"));
    }
    // One that is not there: said in words, the others are copied.
    hrefs.push("az://scenes/tiles/gone.TIF".into());
    let site = Site::start();
    serve_catalog(&site, &hrefs);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = cairn_with_env(
        &state,
        &[
            "mirror",
            &site.url("stac/collection.json"),
            dest.to_str().unwrap(),
            "--json",
        ],
        azurite.env(),
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed: Vec<Value> = run
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("was not found"),
        "{}",
        failed[0]
    );
    let mirrored: Vec<_> = sound_mirror(&dest);
    assert_eq!(mirrored.len(), expected.len());
    for (name, bytes) in &expected {
        let found = mirrored
            .iter()
            .find(|m| m.path.ends_with(&format!("/{name}")))
            .unwrap();
        assert_eq!(sha256(&found.bytes), sha256(bytes), "{name}");
        assert!(found.source.starts_with("az://scenes/"), "{}", found.source);
    }
}

/// What a gateway in front of moto saw: method, path and the
/// `x-amz-request-payer` header of each request.
type Seen = Arc<std::sync::Mutex<Vec<(String, String, Option<String>)>>>;

/// A loopback gateway that passes every request on to `upstream` and
/// records it (moto does not bill anyone, so the header is checked here).
fn recording_gateway(upstream: String) -> (crate::support::Server, Seen) {
    use axum::extract::{Request, State};
    use axum::response::Response;
    let seen: Seen = Arc::default();
    let state = (
        upstream,
        seen.clone(),
        reqwest::Client::builder().no_gzip().build().unwrap(),
    );
    async fn pass(
        State((upstream, seen, client)): State<(String, Seen, reqwest::Client)>,
        request: Request,
    ) -> Response {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let payer = headers
            .get("x-amz-request-payer")
            .map(|v| v.to_str().unwrap().to_string());
        seen.lock()
            .unwrap()
            .push((method.to_string(), uri.path().to_string(), payer));
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .unwrap();
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut outgoing = client
            .request(method, format!("{upstream}{path_and_query}"))
            .body(body);
        for (name, value) in &headers {
            if name != "host" {
                outgoing = outgoing.header(name, value);
            }
        }
        crate::support::relay(outgoing.send().await.unwrap()).await
    }
    let router = axum::Router::new().fallback(pass).with_state(state);
    (crate::support::Server::start(router), seen)
}

/// `--requester-pays`: every request to the bucket says that the requester
/// pays, the estimate says that the user's account is billed before
/// anything is copied, a sync of the job keeps it, and without credentials
/// it is refused in words. Without the flag, no request says so.
#[tokio::test(flavor = "multi_thread")]
async fn requester_pays_is_asked_for_said_and_kept() {
    let moto = MotoServer::start();
    let store = moto.bucket("paid").await;
    let mut hrefs = Vec::new();
    for i in 0..3 {
        put(&store, &format!("t/B{i}.TIF"), object_bytes(i, 9_000 + i)).await;
        hrefs.push(format!("s3://paid/t/B{i}.TIF"));
    }
    let site = Site::start();
    serve_catalog(&site, &hrefs);
    let source = site.url("stac/collection.json");
    let (gateway, seen) = recording_gateway(moto.endpoint.clone());
    let env: Vec<(&'static str, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| match k {
            "AWS_ENDPOINT" => (k, format!("http://{}", gateway.addr)),
            _ => (k, v),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let dest = dir.path().join("paid");
    let dest = dest.to_str().unwrap();
    let payers = |seen: &Seen| -> Vec<Option<String>> {
        seen.lock().unwrap().drain(..).map(|(_, _, p)| p).collect()
    };

    // The estimate says who pays, before anything is copied.
    let run = cairn_with_env(
        &state,
        &["mirror", &source, dest, "--requester-pays", "--dry-run"],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("bill your AWS account"),
        "{}",
        run.stdout
    );
    let run = cairn_with_env(
        &state,
        &["mirror", &source, dest, "--requester-pays", "--json"],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let plan = run
        .lines()
        .into_iter()
        .find(|l| l["type"] == "plan")
        .unwrap();
    assert_eq!(plan["requester_pays"], true, "{plan}");
    let asked = payers(&seen);
    assert!(asked.len() >= 3, "{asked:?}");
    assert!(
        asked.iter().all(|p| p.as_deref() == Some("requester")),
        "{asked:?}"
    );
    assert_eq!(sound_mirror(Path::new(dest)).len(), 3);

    // A sync of the job reads the bucket the same way, without the flag.
    let run = cairn_with_env(&state, &["sync", "1", "--json"], env.clone());
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let asked = payers(&seen);
    assert!(
        !asked.is_empty() && asked.iter().all(|p| p.as_deref() == Some("requester")),
        "{asked:?}"
    );

    // Another job without the flag: no request says the requester pays.
    let other = dir.path().join("other");
    let run = cairn_with_env(
        &state,
        &["mirror", &source, other.to_str().unwrap(), "--json"],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let asked = payers(&seen);
    assert!(asked.len() >= 3, "{asked:?}");
    assert!(asked.iter().all(Option::is_none), "{asked:?}");

    // Without credentials, in words: someone must be billed.
    let bare = dir.path().join("bare");
    let anonymous: Vec<(&'static str, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .cloned()
        .collect();
    let run = cairn_with_env(
        &dir.path().join("bare.db"),
        &[
            "mirror",
            &source,
            bare.to_str().unwrap(),
            "--requester-pays",
            "--json",
        ],
        anonymous,
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed: Vec<Value> = run
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "failed")
        .collect();
    assert_eq!(failed.len(), 3, "{}", run.stdout);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("requester-pays bucket, which needs AWS credentials"),
        "{}",
        failed[0]
    );
    assert!(payers(&seen).is_empty());
}

/// An asset that lives in a bucket and offers a copy on the web (as Maxar's
/// open data does): by default the web copy is read, which needs no
/// credentials; `--alternate main` reads the bucket, and so does
/// `--requester-pays`. Each mirrored asset says where it was copied from.
#[tokio::test(flavor = "multi_thread")]
async fn an_assets_alternate_on_the_web_is_read_unless_told_otherwise() {
    let moto = MotoServer::start();
    let store = moto.bucket("open-data").await;
    let site = Site::start();
    let bytes = object_bytes(7, 40_000);
    put(&store, "a/visual.tif", bytes.clone()).await;
    site.put("web/visual.tif", Reply::bytes(bytes.clone(), "image/tiff"));
    let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": "scene",
        "geometry": null, "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
        "assets": {"visual": {"href": "s3://open-data/a/visual.tif", "type": "image/tiff",
            "alternate": {"public": {"href": site.url("web/visual.tif")}}}}});
    site.put("scene.json", Reply::json(&item));
    let source = site.url("scene.json");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    for (args, from) in [
        (vec![], site.url("web/visual.tif")),
        (
            vec!["--alternate", "main"],
            "s3://open-data/a/visual.tif".to_string(),
        ),
        // Paying to read the bucket is reading the bucket.
        (
            vec!["--requester-pays", "--concurrency", "2"],
            "s3://open-data/a/visual.tif".to_string(),
        ),
    ] {
        let dest = dir.path().join(format!("m{}", args.len()));
        let mut command = vec!["mirror", &source, dest.to_str().unwrap(), "--json"];
        command.extend(args.iter().copied());
        let run = cairn_with_env(&state, &command, moto.env());
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let mirrored = sound_mirror(&dest);
        assert_eq!(mirrored.len(), 1);
        assert_eq!(sha256(&mirrored[0].bytes), sha256(&bytes));
        assert_eq!(mirrored[0].source, from, "{args:?}");
    }
    assert_eq!(site.hits("web/visual.tif"), 1);
}
