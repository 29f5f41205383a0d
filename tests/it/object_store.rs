//! Sources in object storage: a catalog in an S3 bucket (moto on loopback) walks
//! like the same catalog on disk.

use std::path::Path;

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use crate::support::moto::MotoServer;
use crate::support::{cairn_with_env, fixtures};

async fn upload(store: &dyn ObjectStore, dir: &Path, prefix: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = format!(
                "{prefix}/{}",
                path.strip_prefix(dir).unwrap().to_str().unwrap()
            );
            store
                .put(&ObjectPath::from(key), std::fs::read(&path).unwrap().into())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_in_an_s3_bucket_walks_completely() {
    let moto = MotoServer::start();
    let store = moto.bucket("cairn-test").await;
    upload(
        store.as_ref(),
        &fixtures().join("static/pystac-test-case-1"),
        "catalogs/test-case-1",
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let output = cairn_with_env(
        &state,
        &[
            "browse",
            "s3://cairn-test/catalogs/test-case-1/catalog.json",
            "--json",
        ],
        moto.env(),
    );
    assert_eq!(output.code, Some(0), "{}\n{}", output.stdout, output.stderr);
    let lines = output.lines();
    let summary = lines.last().unwrap();
    assert_eq!(
        (
            summary["catalogs"].as_u64(),
            summary["collections"].as_u64(),
            summary["items"].as_u64()
        ),
        (Some(3), Some(4), Some(8))
    );
    assert!(lines.iter().filter(|l| l["kind"] == "item").all(|l| {
        l["href"]
            .as_str()
            .unwrap()
            .starts_with("s3://cairn-test/catalogs/test-case-1/")
    }));

    // A key that is not there is a plain "not found", and bad input.
    let output = cairn_with_env(
        &state,
        &["browse", "s3://cairn-test/nothing/catalog.json"],
        moto.env(),
    );
    assert_eq!(output.code, Some(2));
    let stderr = &output.stderr;
    assert!(
        stderr.contains("s3://cairn-test/nothing/catalog.json was not found"),
        "{stderr}"
    );
}
