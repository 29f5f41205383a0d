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
use crate::support::{assert_bag_valid, bagit_validate, cairn_with_env, files_under, program};

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

    // A BagIt bag of the mirror in the bucket: bagit.py accepts it, and
    // refuses it once a byte is flipped.
    let bag = dir.path().join("bag");
    let run = cairn_with_env(
        &state,
        &["export", url, "--bagit", bag.to_str().unwrap(), "--json"],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["left_out"], 0, "{}", run.stdout);
    assert_bag_valid(&bag);
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(
        info.contains(&format!("External-Identifier: {source}")),
        "{info}"
    );
    assert!(bag.join("data/catalog.json").is_file());
    let payload = bag.join("data/farm/item-0000/tile-0.bin");
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&payload, bytes).unwrap();
    assert!(
        !bagit_validate(&bag).status.success(),
        "a flipped byte passed"
    );

    // The mirror in the bucket walks as a catalog of its own.
    let run = cairn_with_env(
        &state,
        &["browse", &format!("{url}/catalog.json"), "--json"],
        env.clone(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["items"], 3);

    // An object damaged in the bucket, an item document edited there and
    // an object gone: the bag leaves them out and says so (a bag holds the
    // bytes Cairn verified, never others under their name), and bagit.py
    // accepts what it holds.
    store
        .put(&damaged, b"not the bytes".to_vec().into())
        .await
        .unwrap();
    let document = ObjectPath::from(format!("{prefix}/farm/{}", items[0]));
    store
        .put(&document, b"{\"edited\": true}".to_vec().into())
        .await
        .unwrap();
    let keys: Vec<ObjectPath> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&ObjectPath::from(prefix))))
            .await
            .unwrap()
            .into_iter()
            .map(|meta| meta.location)
            .collect();
    let gone = keys
        .iter()
        .find(|key| key.as_ref().ends_with("/plain.bin"))
        .unwrap()
        .clone();
    store.delete(&gone).await.unwrap();
    let document_gone = ObjectPath::from(format!("{prefix}/farm/{}", items[1]));
    store.delete(&document_gone).await.unwrap();
    let bag = dir.path().join("bag-of-damaged");
    let run = cairn_with_env(
        &state,
        &["export", url, "--bagit", bag.to_str().unwrap(), "--json"],
        env.clone(),
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["left_out"], 4, "{}", run.stdout);
    // (A repair brings back the files, not the documents of a bucket.)
    assert_eq!(run.summary()["to_repair"], 2, "{}", run.stdout);
    let reasons = run.left_out();
    let reason_of = |suffix: &str| {
        reasons
            .iter()
            .find(|(path, _)| path.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} not said: {reasons:?}"))
            .1
            .clone()
    };
    assert!(
        reason_of("/tile-0.bin").contains("not those Cairn verified"),
        "{reasons:?}"
    );
    assert!(
        reason_of(&items[0]).contains("changed since Cairn wrote it"),
        "{reasons:?}"
    );
    assert!(
        reason_of("/plain.bin").contains("no longer there"),
        "{reasons:?}"
    );
    assert!(
        reason_of(&items[1]).contains("item's document into the mirror, and it is no longer there"),
        "{reasons:?}"
    );
    assert!(!bag.join("data/farm/item-0000/tile-0.bin").exists());
    assert!(!bag.join(format!("data/farm/{}", items[0])).exists());
    assert_bag_valid(&bag);

    // Without the records (another state file), an object damaged in an
    // item whose document is intact is held to the checksum the document
    // gives it, and left out; no repair is offered for it, as Cairn
    // repairs a bucket only through the job that made it.
    let intact = read_json(store.as_ref(), &format!("{prefix}/farm/{}", items[2])).await;
    let folder = items[2].rsplit_once('/').unwrap().0;
    let asset = intact["assets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let name = asset["href"].as_str().unwrap().trim_start_matches("./");
    let decayed = format!("farm/{folder}/{name}");
    store
        .put(
            &ObjectPath::from(format!("{prefix}/{decayed}")),
            b"decayed".to_vec().into(),
        )
        .await
        .unwrap();
    let bag = dir.path().join("bag-without-records");
    let run = cairn_with_env(
        &dir.path().join("another.db"),
        &["export", url, "--bagit", bag.to_str().unwrap(), "--json"],
        env,
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.left_out().iter().any(|(path, _)| *path == decayed),
        "{}",
        run.stdout
    );
    assert_eq!(run.summary()["to_repair"], 0, "{}", run.stdout);
    assert_bag_valid(&bag);
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

/// A bag written straight into a bucket: uploaded under a new prefix,
/// downloaded again with boto3 (AWS's own client) and accepted by bagit.py;
/// a prefix that holds something is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_bag_is_written_into_a_bucket() {
    let moto = MotoServer::start();
    let store = moto.bucket("cairn-bags").await;
    let specs = specs();
    let farm = Farm::start(specs.clone(), 4);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let run = cairn_with_env(
        &state,
        &[
            "mirror",
            &farm.catalog_url(),
            dest.to_str().unwrap(),
            "--json",
        ],
        moto.env(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let run = cairn_with_env(
        &state,
        &[
            "export",
            dest.to_str().unwrap(),
            "--bagit",
            "s3://cairn-bags/bags/first",
            "--json",
        ],
        moto.env(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // The assets, the root, the collection, 3 items, the index, the provenance.
    assert_eq!(run.summary()["files"], specs.len() + 7, "{}", run.stdout);

    let local = dir.path().join("downloaded");
    let script = r#"
import os, sys, boto3
endpoint, bucket, prefix, out = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="cairn-test",
                  aws_secret_access_key="cairn-test", region_name="us-east-1")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for item in page.get("Contents", []):
        path = os.path.join(out, item["Key"][len(prefix) + 1:])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, item["Key"], path)
"#;
    let downloaded = std::process::Command::new(program("CAIRN_PYTHON", "python3"))
        .args(["-c", script, &moto.endpoint, "cairn-bags", "bags/first"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        downloaded.status.success(),
        "{}",
        String::from_utf8_lossy(&downloaded.stderr)
    );
    assert_bag_valid(&local);

    // Never over what a prefix holds.
    let run = cairn_with_env(
        &state,
        &[
            "export",
            dest.to_str().unwrap(),
            "--bagit",
            "s3://cairn-bags/bags/first",
        ],
        moto.env(),
    );
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("already holds objects"),
        "{}",
        run.stderr
    );
    drop(store);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_into_an_azure_container_is_complete_and_verified() {
    let azurite = Azurite::start();
    let store = azurite.container("cairn-mirror").await;
    mirror_into_bucket("az://cairn-mirror/archive", "archive", store, azurite.env()).await;
}

/// An asset whose file name holds characters object stores are wary of
/// (`[`, `]`) is stored under that very name: the catalog's
/// relative href names the object for any other tool, and a bag of the
/// bucket mirror holds it under that name too.
#[tokio::test(flavor = "multi_thread")]
async fn odd_file_names_are_the_object_keys() {
    use crate::support::site::{Reply, Site};
    let moto = MotoServer::start();
    let store = moto.bucket("cairn-odd").await;
    let site = Site::start();
    let bytes = b"odd bytes".to_vec();
    site.put("B04%5B1%5D.tif", Reply::bytes(bytes.clone(), "image/tiff"));
    let item = serde_json::json!({"type": "Feature", "stac_version": "1.1.0", "id": "odd",
        "geometry": null, "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
        "assets": {"data": {"href": site.url("B04%5B1%5D.tif"), "type": "image/tiff"}}});
    site.put("odd.json", Reply::json(&item));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let url = "s3://cairn-odd/m";
    let run = cairn_with_env(
        &state,
        &["mirror", &site.url("odd.json"), url, "--json"],
        moto.env(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let document = read_json(store.as_ref(), "m/items/odd/odd.json").await;
    let href = document["assets"]["data"]["href"].as_str().unwrap();
    assert_eq!(href, "./B04[1].tif");
    let key = ObjectPath::parse("m/items/odd/B04[1].tif").unwrap();
    let got = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.as_ref(), bytes.as_slice());

    let bag = dir.path().join("bag");
    let run = cairn_with_env(
        &state,
        &["export", url, "--bagit", bag.to_str().unwrap(), "--json"],
        moto.env(),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        std::fs::read(bag.join("data/items/odd/B04[1].tif")).unwrap(),
        bytes
    );
    assert_bag_valid(&bag);
}

/// A bucket without credentials is refused before anything is planned or
/// recorded, in words that say what to set (not the cloud client's own
/// message about its metadata service).
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_without_credentials_is_refused_at_once_in_words() {
    let moto = MotoServer::start();
    let _store = moto.bucket("cairn-locked").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/catalog.json");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let output = command
        .env("AWS_ENDPOINT", &moto.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false")
        .arg("--state")
        .arg(&state)
        .args([
            "mirror",
            demo.to_str().unwrap(),
            "s3://cairn-locked/m",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let run = crate::support::Run::from(output);
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("no credentials were found"), "{said}");
    assert!(said.contains("AWS_ACCESS_KEY_ID"), "{said}");
    assert!(!said.contains("169.254"), "{said}");
    // Nothing was recorded.
    let jobs = crate::support::cairn(&state, &["jobs", "--json"]);
    assert!(!jobs.stdout.contains("cairn-locked"), "{}", jobs.stdout);
}

/// "Test the connection" for a bucket destination, with credentials typed
/// in the app (not the environment): it says in words what worked and what
/// is wrong (a bucket that is not there, a wrong key), leaves nothing
/// behind, and what Cairn writes to the bucket then goes with them.
#[tokio::test(flavor = "multi_thread")]
async fn a_typed_bucket_login_is_tested_in_words_and_used() {
    use cairn::destination::{BucketLogin, Destination, sign_in_to_bucket, test_connection};
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let moto = MotoServer::start();
    let store = moto.bucket("typed-login").await;
    let s3 = BucketLogin {
        key_id: "cairn-test".into(),
        secret: "cairn-test".into(),
        region: "us-east-1".into(),
        endpoint: moto.endpoint.clone(),
        ..BucketLogin::default()
    };
    sign_in_to_bucket("s3://typed-login", Some(s3.clone())).unwrap();
    let said = test_connection("s3://typed-login/m").await.unwrap();
    assert_eq!(
        said,
        "Cairn can list, write and delete under s3://typed-login/m."
    );
    let left: Vec<_> = store.list(None).try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    sign_in_to_bucket("s3://typed-missing", Some(s3)).unwrap();
    let said = test_connection("s3://typed-missing/m")
        .await
        .unwrap_err()
        .to_string();
    assert!(said.contains("is not there"), "{said}");

    // Azure checks the key's signature: a wrong one is refused.
    let azurite = Azurite::start();
    let container = azurite.container("typed-login").await;
    let mut az = BucketLogin {
        key_id: crate::support::azurite::ACCOUNT.into(),
        secret: "d3Jvbmcga2V5".into(),
        endpoint: format!("{}/{}", azurite.endpoint, crate::support::azurite::ACCOUNT),
        ..BucketLogin::default()
    };
    sign_in_to_bucket("az://typed-login", Some(az.clone())).unwrap();
    let said = test_connection("az://typed-login/m")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("refused access with these credentials"),
        "{said}"
    );
    az.secret = crate::support::azurite::KEY.into();
    sign_in_to_bucket("az://typed-login", Some(az)).unwrap();
    test_connection("az://typed-login/m").await.unwrap();

    // What Cairn writes goes with the login.
    let staging = tempfile::tempdir().unwrap();
    let destination = Destination::open("az://typed-login/m", staging.path()).unwrap();
    let local = destination.local_folder().unwrap();
    destination
        .write_bytes(&local, "catalog.json", b"{}".to_vec())
        .await
        .unwrap();
    let got = container
        .get(&ObjectPath::from("m/catalog.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"{}");
}
