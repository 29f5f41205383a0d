//! Mirrors into buckets: S3 (moto) and Azure Blob (azurite) on loopback. The
//! objects are the verified bytes, the catalog in the bucket is self-contained,
//! nothing is left in the staging folder, and a second run uploads nothing.

use std::sync::Arc;

use cairn::checksum::{Algorithm, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

use crate::support::azurite::Azurite;
use crate::support::farm::{CatalogChecksum, Farm, FileSpec};
use crate::support::moto::MotoServer;
use crate::support::{cairn_with_env, files_under};

fn specs() -> Vec<FileSpec> {
    let mut specs: Vec<FileSpec> = (0..10)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 10_000 + i * 3_000))
        .collect();
    // Larger than one upload part: goes up in several.
    specs.push(FileSpec::new("large.bin", 20 << 20));
    specs.push(FileSpec::new("plain.bin", 70_000).checksum(CatalogChecksum::None));
    specs
}

async fn read_json(store: &dyn ObjectStore, key: &str) -> Value {
    let bytes = store
        .get(&ObjectPath::from(key))
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"))
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn mirror_into_bucket(
    url: &str,
    prefix: &str,
    store: Arc<dyn ObjectStore>,
    env: Vec<(&'static str, String)>,
) {
    let specs = specs();
    let farm = Farm::start(specs.clone(), 4);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let source = farm.catalog_url();
    let run = cairn_with_env(&state, &["mirror", &source, url, "--json"], env.clone());
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["done"], specs.len());
    assert_eq!(summary["catalog"], format!("{url}/catalog.json"));

    // The catalog in the bucket links relatively to every item and asset,
    // and every object holds the verified bytes.
    let root = read_json(store.as_ref(), &format!("{prefix}/catalog.json")).await;
    assert_eq!(root["links"][1]["href"], "./farm/collection.json");
    let collection = read_json(store.as_ref(), &format!("{prefix}/farm/collection.json")).await;
    let items: Vec<String> = crate::support::item_links(&collection)
        .iter()
        .map(|href| href.trim_start_matches("./").to_string())
        .collect();
    assert_eq!(items.len(), 3);
    let mut checked = 0;
    for item_path in &items {
        let item = read_json(store.as_ref(), &format!("{prefix}/farm/{item_path}")).await;
        let folder = item_path.rsplit_once('/').unwrap().0;
        for asset in item["assets"].as_object().unwrap().values() {
            let href = asset["href"].as_str().unwrap();
            let name = href.strip_prefix("./").unwrap();
            let spec = specs.iter().find(|s| s.name == name).unwrap();
            let key = format!("{prefix}/farm/{folder}/{name}");
            let bytes = store
                .get(&ObjectPath::from(key.as_str()))
                .await
                .unwrap_or_else(|e| panic!("{key}: {e}"))
                .bytes()
                .await
                .unwrap();
            let sha256 = Checksum::of(Algorithm::Sha2_256, &bytes);
            assert_eq!(sha256, spec.sha256(), "{key}");
            assert_eq!(asset["file:checksum"], sha256.to_hex());
            assert_eq!(asset["file:size"], spec.size);
            checked += 1;
        }
    }
    assert_eq!(checked, specs.len());
    let staged = files_under(&dir.path().join("staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");

    // The same job again uploads and fetches nothing.
    let served = farm.total_served();
    let run = cairn_with_env(&state, &["mirror", &source, url, "--json"], env.clone());
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(farm.total_served(), served);

    // The mirror in the bucket verifies on its own.
    let run = cairn_with_env(&state, &["verify", url, "--json"], env.clone());
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["verified"], specs.len());
    let damaged = ObjectPath::from(format!("{prefix}/farm/item-0000/tile-0.bin"));
    store
        .put(&damaged, b"not the bytes".to_vec().into())
        .await
        .unwrap();
    let run = cairn_with_env(&state, &["verify", url, "--json"], env.clone());
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let problem = &run.lines()[0];
    assert!(
        problem["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{problem}"
    );

    // A repair goes through the job: the object holds the verified bytes
    // again.
    let run = cairn_with_env(&state, &["verify", url, "--repair", "--json"], env.clone());
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["repaired"], 1, "{}", run.stdout);
    let bytes = store.get(&damaged).await.unwrap().bytes().await.unwrap();
    let tile = specs.iter().find(|s| s.name == "tile-0.bin").unwrap();
    assert_eq!(Checksum::of(Algorithm::Sha2_256, &bytes), tile.sha256());

    // The index and the provenance are in the bucket too, and the index
    // can be written from the bucket on demand.
    for key in ["items.parquet", "provenance.jsonl"] {
        let key = ObjectPath::from(format!("{prefix}/{key}"));
        store
            .head(&key)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let index = dir.path().join("index.parquet");
    let run = cairn_with_env(
        &state,
        &[
            "export",
            url,
            "--geoparquet",
            index.to_str().unwrap(),
            "--json",
        ],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["items"], 3);

    // The mirror in the bucket walks as a catalog of its own.
    let run = cairn_with_env(
        &state,
        &["browse", &format!("{url}/catalog.json"), "--json"],
        env,
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["items"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_into_an_s3_bucket_is_complete_and_verified() {
    let moto = MotoServer::start();
    let store = moto.bucket("cairn-mirror").await;
    mirror_into_bucket(
        "s3://cairn-mirror/archive/2024",
        "archive/2024",
        store,
        moto.env(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_into_an_azure_container_is_complete_and_verified() {
    let azurite = Azurite::start();
    let store = azurite.container("cairn-mirror").await;
    mirror_into_bucket("az://cairn-mirror/archive", "archive", store, azurite.env()).await;
}
