//! Uploads damaged on their way into a bucket are caught: a proxy between
//! Cairn and a real storage emulator (S3, Azure Blob, GCS) flips a byte in
//! chosen uploads. The store's answer names what it received (or the store
//! refuses a body that does not match the hash sent with it); Cairn sends
//! the upload again, and an upload damaged every time is said in words,
//! with no object left under its key, and uploaded on the next run.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::ObjectStore;

use crate::support::azurite::Azurite;
use crate::support::farm::{Farm, FileSpec};
use crate::support::gcs::FakeGcs;
use crate::support::moto::MotoServer;
use crate::support::tamper::Tamper;
use crate::support::{cairn_with_env, object_sha256};

fn specs() -> Vec<FileSpec> {
    let mut specs: Vec<FileSpec> = (0..6)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 20_000 + i * 1_000))
        .collect();
    // Larger than one upload part: a damaged part, not a damaged object.
    specs.push(FileSpec::new("large.bin", 12 << 20));
    specs
}

async fn damaged_uploads_are_caught(
    scheme_and_bucket: &str,
    store: Arc<dyn ObjectStore>,
    upstream: &str,
    env: Vec<(&'static str, String)>,
) {
    let specs = specs();
    let farm = Farm::start(specs.clone(), 7);
    let source = farm.catalog_url();
    let dir = tempfile::tempdir().unwrap();

    // One small upload and one part of the large one are damaged once, and
    // lose any hash the store would check itself (GCS's Content-MD5): Cairn
    // sees the damage in the store's answer, sends them again, and the job
    // finishes with the verified bytes.
    let once = Tamper::stripping(upstream, "tile-3.bin", 1, &["content-md5"]);
    let large = Tamper::stripping(&once.endpoint, "large.bin", 1, &["content-md5"]);
    let url = format!("{scheme_and_bucket}/once");
    let state = dir.path().join("once.db");
    let run = cairn_with_env(
        &state,
        &["mirror", &source, &url, "--json"],
        large.env(&once.endpoint, once.env(upstream, env.clone())),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], specs.len(), "{}", run.stdout);
    assert_eq!(once.damaged.load(Ordering::SeqCst), 1);
    assert_eq!(large.damaged.load(Ordering::SeqCst), 1);
    for spec in &specs {
        let key = format!("once/farm/item-0000/{}", spec.name);
        assert_eq!(
            object_sha256(store.as_ref(), &key).await,
            Some(spec.sha256()),
            "{key}"
        );
    }

    // Damaged every time (the store refuses it where it checks a hash
    // itself): the file is not uploaded, says why in words, and nothing is
    // left under its key; the next run uploads it.
    let always = Tamper::start(upstream, "tile-5.bin", u32::MAX);
    let url = format!("{scheme_and_bucket}/always");
    let state = dir.path().join("always.db");
    let run = cairn_with_env(
        &state,
        &["mirror", &source, &url, "--json"],
        always.env(upstream, env.clone()),
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed: Vec<_> = run
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("damaged on its way into the store"),
        "{reason}"
    );
    assert!(!reason.contains("Error performing"), "{reason}");
    assert_eq!(always.damaged.load(Ordering::SeqCst), 3, "three uploads");
    assert_eq!(
        object_sha256(store.as_ref(), "always/farm/item-0000/tile-5.bin").await,
        None
    );
    always.remaining.store(0, Ordering::SeqCst);
    let served = farm.served("tile-5.bin");
    let run = cairn_with_env(
        &state,
        &["mirror", &source, &url, "--json"],
        always.env(upstream, env),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // The verified copy waiting on this computer went up: not fetched again.
    assert_eq!(farm.served("tile-5.bin"), served);
    let tile = specs.iter().find(|s| s.name == "tile-5.bin").unwrap();
    assert_eq!(
        object_sha256(store.as_ref(), "always/farm/item-0000/tile-5.bin").await,
        Some(tile.sha256())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_damaged_on_the_way_into_s3_are_caught() {
    let moto = MotoServer::start();
    let store = moto.bucket("transit").await;
    damaged_uploads_are_caught("s3://transit", store, &moto.endpoint, moto.env()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_damaged_on_the_way_into_azure_are_caught() {
    let azurite = Azurite::start();
    let store = azurite.container("transit").await;
    damaged_uploads_are_caught("az://transit", store, &azurite.endpoint, azurite.env()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_damaged_on_the_way_into_gcs_are_caught() {
    let gcs = FakeGcs::start();
    let store = gcs.bucket("transit").await;
    damaged_uploads_are_caught("gs://transit", store, &gcs.endpoint, gcs.env()).await;
}
