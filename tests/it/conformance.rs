//! One mirror, every destination kind: the same selection mirrored into a
//! folder, S3 (moto), Azure Blob (azurite) and Google Cloud Storage
//! (fake-gcs-server) gives the same names, the same bytes and the same
//! catalog, with ids and file names that hold spaces, letters outside ASCII
//! and characters that need escaping; every relative href in the catalog
//! names an object that is there.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};

use crate::support::azurite::Azurite;
use crate::support::gcs::FakeGcs;
use crate::support::moto::MotoServer;
use crate::support::site::{Reply, Site};
use crate::support::sound::sha256;
use crate::support::{cairn, cairn_with_env, files_under};

/// (item id, asset file name as the source's href spells it, size).
const ITEMS: [(&str, &str, usize); 6] = [
    ("scene one", "band%201.tif", 30_000),
    ("Zürich Ωmega", "donn%C3%A9es.tif", 41_000),
    ("a#b?c%41&d=e", "x%23y%3F.bin", 12_345),
    ("[odd]{id}+plus~", "B04%5B1%5D.tif", 9_000),
    ("日本語", "%E6%97%A5.tif", 7_000),
    // Larger than one upload part: goes up in several everywhere.
    ("large", "large.bin", 6 << 20),
];

fn bytes_of(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|b| ((b * 31 + i * 17) % 256) as u8).collect()
}

/// A static collection of one item file per item, each with one asset and
/// no size or checksum, as most catalogs are.
fn serve(site: &Site) -> String {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for (i, (id, file, size)) in ITEMS.iter().enumerate() {
        site.put(
            &format!("stac/data/{file}"),
            Reply::bytes(bytes_of(i, *size), "image/tiff"),
        );
        let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": id,
            "collection": "odd names", "bbox": [0, 0, 1, 1],
            "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": format!("../data/{file}"), "type": "image/tiff"}}});
        site.put(&format!("stac/items/{i}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./items/{i}.json")}));
    }
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "odd names",
        "description": "Names that need care", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links});
    site.put("stac/collection.json", Reply::json(&collection));
    site.url("stac/collection.json")
}

/// Every object under `prefix`, by its key below the prefix.
async fn objects(store: &Arc<dyn ObjectStore>, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let listed: Vec<_> = store
        .list(Some(&ObjectPath::from(prefix)))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for meta in listed {
        let key = meta.location.as_ref().to_string();
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let relative = key
            .strip_prefix(&format!("{prefix}/"))
            .unwrap_or_else(|| panic!("{key} is not under {prefix}"))
            .to_string();
        out.insert(relative, bytes.to_vec());
    }
    out
}

/// What may differ between two runs of the same job: when each file was
/// fetched and verified, in the provenance lines.
fn comparable(name: &str, bytes: &[u8]) -> Vec<u8> {
    if name != "provenance.jsonl" {
        return bytes.to_vec();
    }
    let mut lines: Vec<Value> = String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            for key in ["fetched_at", "verified_at"] {
                value.as_object_mut().unwrap().remove(key);
            }
            value
        })
        .collect();
    lines.sort_by_key(|v| v.to_string());
    serde_json::to_vec(&lines).unwrap()
}

/// Every relative href in the mirror's documents names a file of it.
fn assert_links_resolve(files: &BTreeMap<String, Vec<u8>>, kind: &str) {
    let mut checked = 0;
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".json")) {
        let document: Value = serde_json::from_slice(bytes).unwrap();
        let mut hrefs: Vec<&str> = document["links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["href"].as_str())
            .collect();
        if let Some(assets) = document["assets"].as_object() {
            hrefs.extend(assets.values().filter_map(|a| a["href"].as_str()));
        }
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'#')
            .add(b'?')
            .add(b'%');
        let escaped = percent_encoding::utf8_percent_encode(name, SEGMENT).to_string();
        let base = url::Url::parse("file:///m/")
            .unwrap()
            .join(&escaped)
            .unwrap();
        for href in hrefs.into_iter().filter(|h| !h.contains("://")) {
            let target = base.join(href).unwrap();
            let path = percent_encoding::percent_decode_str(target.path())
                .decode_utf8()
                .unwrap();
            let relative = path
                .strip_prefix("/m/")
                .unwrap_or_else(|| panic!("{kind}: {name} links out of the mirror: {href}"));
            assert!(
                files.contains_key(relative),
                "{kind}: {name} links to {href}, and there is no {relative:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > ITEMS.len() * 2, "{kind}: only {checked} links");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_destination_holds_the_same_mirror() {
    let site = Site::start();
    let source = serve(&site);
    let moto = MotoServer::start();
    let azurite = Azurite::start();
    let gcs = FakeGcs::start();
    let buckets = [
        ("s3://same/m", moto.bucket("same").await, moto.env()),
        (
            "az://same/m",
            azurite.container("same").await,
            azurite.env(),
        ),
        ("gs://same/m", gcs.bucket("same").await, gcs.env()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");

    let folder = dir.path().join("mirror");
    let run = cairn(
        &state,
        &["mirror", &source, folder.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], ITEMS.len());
    let expected: BTreeMap<String, Vec<u8>> = files_under(&folder)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&folder).unwrap().to_str().unwrap();
            (relative.to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    assert_links_resolve(&expected, "folder");
    // The odd names are kept where a file may hold them.
    for kept in ["band 1.tif", "données.tif", "B04[1].tif", "日.tif"] {
        assert!(
            expected
                .keys()
                .any(|name| name.ends_with(&format!("/{kept}"))),
            "{kept} is not in {:?}",
            expected.keys()
        );
    }

    for (url, store, env) in buckets {
        let run = cairn_with_env(&state, &["mirror", &source, url, "--json"], env.clone());
        assert_eq!(run.code, Some(0), "{url}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.summary()["done"], ITEMS.len());
        let got = objects(&store, "m").await;
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{url}: the keys are not the folder's file names"
        );
        for (name, bytes) in &expected {
            let object = &got[name];
            if name != "provenance.jsonl" {
                assert_eq!(object.len(), bytes.len(), "{url}: {name}");
            }
            assert_eq!(
                sha256(&comparable(name, object)),
                sha256(&comparable(name, bytes)),
                "{url}: {name} differs from the folder's"
            );
        }
        assert_links_resolve(&got, url);
        let run = cairn_with_env(&state, &["verify", url, "--json"], env);
        assert_eq!(run.code, Some(0), "{url}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.summary()["verified"], ITEMS.len());
    }
}
