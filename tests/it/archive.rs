//! A mirror as an archive: its index (`items.parquet`) read by DuckDB,
//! GeoPandas and rustac; its provenance file; a BagIt bag of it accepted by
//! the Library of Congress's `bagit.py` and refused once a byte is flipped;
//! and no signature or password in any of them.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::site::{Reply, Site};

use crate::support::{
    Server, assert_bag_valid, bagit_validate, cairn, files_under, mirror_site, pystac_report,
    read_index,
};

/// A signature and a password the catalog's asset addresses carry: they must
/// not reach the mirror's catalog, its provenance or a bag.
const SIGNATURE: &str = "SeCrEtSiGnAtUrE";
const PASSWORD: &str = "hunter2hunter2";

/// Writes a static collection of 12 items under `dir/catalog`, their assets
/// under `dir/assets`: properties that differ from item to item (one field a
/// number in some items and text in others, one only in later items), one
/// item without a geometry, one asset that is not on the server. Returns the
/// assets that exist: (item id, bytes).
fn write_catalog(dir: &Path, server: &Server) -> Vec<(String, Vec<u8>)> {
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    let mut served = Vec::new();
    for i in 0..12 {
        let id = format!("scene {i:02}");
        let file = format!("item-{i}.json");
        links.push(json!({"rel": "item", "href": format!("./{file}")}));
        let bytes: Vec<u8> = (0..(2000 + i * 37)).map(|b| (b * 7 + i) as u8).collect();
        std::fs::write(dir.join(format!("assets/a{i}.tif")), &bytes).unwrap();
        // A signed address with a user and password: what a catalog of
        // signed links looks like.
        let mut href = server.url(&format!("assets/a{i}.tif"));
        href.set_username("archivist").unwrap();
        href.set_password(Some(PASSWORD)).unwrap();
        href.set_query(Some(&format!("sv=2024-01-01&sp=r&sig={SIGNATURE}&band=1")));
        served.push((id.clone(), bytes));
        let mut properties = json!({"datetime": format!("2024-01-{:02}T00:00:00Z", i + 1),
            "platform": "sat-1", "eo:cloud_cover": i * 5});
        if i >= 6 {
            properties["eo:cloud_cover"] = json!("unknown");
            properties["sat:orbit_state"] = json!("ascending");
            properties["extra:flag"] = json!(true);
        }
        let x = i as f64;
        let geometry = if i == 10 {
            Value::Null
        } else {
            json!({"type": "Polygon", "coordinates": [[[x, 0.0], [x + 1.0, 0.0], [x + 1.0, 1.0], [x, 1.0], [x, 0.0]]]})
        };
        let mut item = json!({
            "type": "Feature", "stac_version": "1.1.0", "id": id, "collection": "scenes",
            "geometry": geometry, "properties": properties, "links": [],
            "assets": {"data": {"href": href.as_str(), "type": "image/tiff; application=geotiff", "roles": ["data"]}}
        });
        if i != 10 {
            item["bbox"] = json!([x, 0.0, x + 1.0, 1.0]);
        }
        if i == 11 {
            item["assets"]["gone"] = json!({
                "href": format!("{}?sv=1&sig={SIGNATURE}", server.url("assets/gone.tif")),
                "type": "image/tiff"
            });
        }
        std::fs::write(catalog.join(&file), item.to_string()).unwrap();
    }
    let collection = json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
        "description": "Scenes", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 12, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
        "links": links});
    std::fs::write(catalog.join("collection.json"), collection.to_string()).unwrap();
    served
}

/// Every file under `dir` holding `needle`, relative.
fn holding(dir: &Path, needle: &str) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// `cairn export DEST --bagit BAG --json`.
fn export(state: &Path, dest: &Path, bag: &Path) -> crate::support::Run {
    cairn(
        state,
        &[
            "export",
            dest.to_str().unwrap(),
            "--bagit",
            bag.to_str().unwrap(),
            "--json",
        ],
    )
}

/// `cairn export DEST --geoparquet FILE --json`.
fn export_index(state: &Path, dest: &Path, file: &Path) -> crate::support::Run {
    cairn(
        state,
        &[
            "export",
            dest.to_str().unwrap(),
            "--geoparquet",
            file.to_str().unwrap(),
            "--json",
        ],
    )
}

#[test]
fn a_mirror_is_indexed_traced_and_packaged_for_archives() {
    let served = tempfile::tempdir().unwrap();
    let server = Server::files(served.path());
    let assets = write_catalog(served.path(), &server);
    let out = tempfile::tempdir().unwrap();
    let (state, dest) = (out.path().join("cairn.db"), out.path().join("mirror"));
    let source = server.url("catalog/collection.json").to_string();
    let run = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    // One asset is not on the server: exit 1, the rest verified.
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], 12);
    assert_eq!(run.summary()["failed"], 1);
    for secret in [SIGNATURE, PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret}"
        );
    }

    // The root links the index and the provenance.
    let root: Value =
        serde_json::from_slice(&std::fs::read(dest.join("catalog.json")).unwrap()).unwrap();
    let hrefs: Vec<&str> = root["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["href"].as_str().unwrap())
        .collect();
    assert!(hrefs.contains(&"./items.parquet"), "{hrefs:?}");
    assert!(hrefs.contains(&"./provenance.jsonl"), "{hrefs:?}");

    // The whole mirror validates, the item with a failed asset included.
    let report = pystac_report(&dest.join("catalog.json"));
    assert_eq!(report["items"], 12);
    let partial: Value =
        serde_json::from_slice(&std::fs::read(dest.join("scenes/scene 11/scene 11.json")).unwrap())
            .unwrap();
    assert_eq!(partial["assets"]["data"]["href"], "./a11.tif");
    assert!(partial["assets"]["gone"]["cairn:missing"].is_string());

    // DuckDB, GeoPandas and rustac read the index: every item with a
    // geometry (11 of 12), with the fields of the later items too.
    let index = read_index(&dest.join("items.parquet"));
    println!("index: {index}");
    for reader in ["duckdb", "duckdb_ids", "geopandas", "rustac"] {
        assert_eq!(index[reader], 11, "{reader}: {index}");
    }
    assert_eq!(index["geometry_valid"], true);
    let columns: Vec<&str> = index["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for column in ["eo:cloud_cover", "sat:orbit_state", "extra:flag", "assets"] {
        assert!(columns.contains(&column), "{column} in {columns:?}");
    }
    // The same index, written on demand into a file of the user's choice.
    let file = out.path().join("index.parquet");
    let run = export_index(&state, &dest, &file);
    // The item without a geometry is named as left out: exit 1.
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["items"], 11);
    assert_eq!(run.summary()["left_out"], 1);
    let again = read_index(&file);
    assert_eq!(again["duckdb"], 11, "{again}");

    // One provenance line per verified file, with what the server said.
    let provenance = std::fs::read_to_string(dest.join("provenance.jsonl")).unwrap();
    let lines: Vec<Value> = provenance
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), assets.len());
    for line in &lines {
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["path"].as_str().unwrap().starts_with("scenes/scene "));
        for header in ["content-length", "content-type", "last-modified"] {
            assert!(line["headers"][header].is_string(), "{header}: {line}");
        }
        let requested = line["requested"].as_str().unwrap();
        assert!(requested.ends_with("?band=1"), "{requested}");
        assert!(line["file:checksum"].as_str().unwrap().starts_with("1220"));
        assert!(line["fetched_at"].as_str().unwrap().ends_with('Z'));
    }

    // A bag of the mirror: valid for bagit.py; the verified files were not
    // hashed again.
    let bag = out.path().join("bag");
    let run = export(&state, &dest, &bag);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["reused"], assets.len(), "{summary}");
    assert_bag_valid(&bag);
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(
        info.contains(&format!("External-Identifier: {source}")),
        "{info}"
    );
    assert!(info.contains("Payload-Oxum: "), "{info}");
    assert!(bag.join("cairn-provenance.jsonl").is_file());
    assert!(bag.join("data/items.parquet").is_file());

    // No signature and no password anywhere in the mirror or the bag.
    for secret in [SIGNATURE, PASSWORD] {
        assert_eq!(holding(&dest, secret), Vec::<String>::new(), "{secret}");
        assert_eq!(holding(&bag, secret), Vec::<String>::new(), "{secret}");
    }

    // A byte flipped in the bag: bagit.py refuses it.
    let payload = bag.join("data/scenes/scene 03/a3.tif");
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&payload, bytes).unwrap();
    let validated = bagit_validate(&bag);
    assert!(!validated.status.success(), "a flipped byte passed");

    // A file changed since it was verified is hashed again, not trusted.
    let touched = dest.join("scenes/scene 04/a4.tif");
    let file = std::fs::File::options()
        .append(true)
        .open(&touched)
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let again = out.path().join("bag-2");
    let run = export(&state, &dest, &again);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.summary()["reused"], assets.len() - 1);
    assert!(bagit_validate(&again).status.success());

    // A byte changed and the old modification time given back: the file
    // is hashed again all the same (its change time moved), found not to
    // be the bytes verified, and left out of the bag, said; a file verified
    // and deleted since is said too. The bag holds the rest, whole.
    std::fs::remove_file(dest.join("scenes/scene 06/a6.tif")).unwrap();
    // A folder where a verified file was: not that file.
    std::fs::remove_file(dest.join("scenes/scene 07/a7.tif")).unwrap();
    std::fs::create_dir_all(dest.join("scenes/scene 07/a7.tif")).unwrap();
    std::fs::write(dest.join("scenes/scene 07/a7.tif/x"), b"x").unwrap();
    // An item document edited since Cairn wrote it.
    let document = dest.join("scenes/scene 08/scene 08.json");
    let text = std::fs::read_to_string(&document).unwrap();
    std::fs::write(&document, text.replace("sat-1", "sat-2")).unwrap();
    // An item document Cairn wrote, deleted since.
    std::fs::remove_file(dest.join("scenes/scene 09/scene 09.json")).unwrap();
    let edited = dest.join("scenes/scene 05/a5.tif");
    let modified = std::fs::metadata(&edited).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&edited).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&edited, &bytes).unwrap();
    std::fs::File::options()
        .append(true)
        .open(&edited)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let third = out.path().join("bag-4");
    let run = export(&state, &dest, &third);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["reused"], assets.len() - 4, "{summary}");
    assert_eq!(summary["left_out"], 5, "{summary}");
    assert_eq!(summary["to_repair"], 5, "{summary}");
    // What was hashed or reused is what the bag holds.
    assert_eq!(
        summary["files"].as_u64(),
        Some(summary["hashed"].as_u64().unwrap() + summary["reused"].as_u64().unwrap()),
        "{summary}"
    );
    let left_out = run.left_out();
    for (left, words) in [
        ("scenes/scene 05/a5.tif", "not those Cairn verified"),
        ("scenes/scene 06/a6.tif", "no longer there"),
        ("scenes/scene 07/a7.tif", "not that file"),
        (
            "scenes/scene 08/scene 08.json",
            "changed since Cairn wrote it",
        ),
        (
            "scenes/scene 09/scene 09.json",
            "Cairn wrote this item's document into the mirror, and it is no longer there",
        ),
    ] {
        assert!(
            left_out
                .iter()
                .any(|(path, why)| path == left && why.contains(words)),
            "{left}: {left_out:?}"
        );
    }
    assert!(!third.join("data/scenes/scene 05/a5.tif").exists());
    assert!(bagit_validate(&third).status.success());

    // A bag over a folder that holds something, or inside the mirror, is
    // refused in words and nothing is written.
    for (place, words) in [
        (bag.clone(), "not an empty folder"),
        (dest.join("bag"), "outside the mirror"),
    ] {
        let run = cairn(
            &state,
            &[
                "export",
                dest.to_str().unwrap(),
                "--bagit",
                place.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains(words), "{}", run.stderr);
    }
    assert!(!dest.join("bag").exists());

    // A mirror whose root catalog is a link to a file elsewhere is refused:
    // nothing outside the mirror is read into a bag.
    let elsewhere = out.path().join("elsewhere.json");
    std::fs::write(&elsewhere, br#"{"cairn:source": "LEAKED"}"#).unwrap();
    let linked = out.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.join("catalog.json")).unwrap();
    let run = cairn(
        &state,
        &[
            "export",
            linked.to_str().unwrap(),
            "--bagit",
            out.path().join("bag-3").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("link"), "{}", run.stderr);
    assert!(!out.path().join("bag-3").exists());
}

/// Serves the collection `c` linking `links` at `collection.json`.
fn put_collection_document(site: &Site, links: Vec<Value>) {
    site.put(
        "collection.json",
        Reply::json(&json!({"type": "Collection", "stac_version": "1.1.0", "id": "c",
            "description": "d", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[0, 0, 9, 1]]}, "temporal": {"interval": [[null, null]]}},
            "links": links})),
    );
}

/// A collection of `count` one-asset items on `site`; the assets' bytes.
fn put_collection(site: &Site, count: usize) -> Vec<Vec<u8>> {
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    let mut bytes = Vec::new();
    for i in 0..count {
        let body: Vec<u8> = (0..(3000 + i * 11)).map(|b| (b * 3 + i) as u8).collect();
        site.put(
            &format!("a{i}.bin"),
            Reply::bytes(body.clone(), "application/octet-stream"),
        );
        bytes.push(body);
        let x = i as f64;
        let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("i{i}"),
            "collection": "c", "bbox": [x, 0.0, x + 1.0, 1.0],
            "geometry": {"type": "Point", "coordinates": [x, 0.0]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": site.url(&format!("a{i}.bin")), "type": "application/octet-stream"}}});
        site.put(&format!("i{i}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./i{i}.json")}));
    }
    put_collection_document(site, links);
    bytes
}

#[test]
fn verify_finds_a_flipped_byte_a_lost_file_an_added_file_and_an_edited_item() {
    let site = Site::start();
    let bytes = put_collection(&site, 5);
    let (_dir, state, dest, _) = mirror_site(&site, "collection.json");
    for i in 0..5 {
        assert_eq!(site.hits(&format!("a{i}.bin")), 1);
    }
    // Four kinds of damage.
    let flipped = dest.join("c/i0/a0.bin");
    let mut damaged = bytes[0].clone();
    damaged[10] ^= 0x40;
    std::fs::write(&flipped, &damaged).unwrap();
    std::fs::remove_file(dest.join("c/i1/a1.bin")).unwrap();
    std::fs::write(dest.join("c/i2/notes.txt"), b"someone's notes").unwrap();
    let edited = dest.join("c/i3/i3.json");
    let mut item: Value = serde_json::from_slice(&std::fs::read(&edited).unwrap()).unwrap();
    item["properties"]["datetime"] = json!("1999-01-01T00:00:00Z");
    std::fs::write(&edited, serde_json::to_vec_pretty(&item).unwrap()).unwrap();

    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let lines = run.lines();
    let found: Vec<(String, String)> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("changed".to_string(), "c/i0/a0.bin".to_string()),
            ("missing".into(), "c/i1/a1.bin".into()),
            ("extra".into(), "c/i2/notes.txt".into()),
            ("edited".into(), "c/i3/i3.json".into()),
        ],
        "{lines:#?}"
    );
    let summary = run.summary();
    assert_eq!(
        (summary["problems"].as_u64(), summary["extra"].as_u64()),
        (Some(3), Some(1))
    );
    // The words say what happened.
    let run = cairn(&state, &["verify", dest.to_str().unwrap()]);
    assert!(run.stdout.contains("is missing"), "{}", run.stdout);
    assert!(
        run.stdout.contains("changed since Cairn wrote it"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("it is left as it is"), "{}", run.stdout);

    // The repair fetches the two damaged assets again, through their job,
    // and writes the item again; the added file is left alone.
    let run = cairn(
        &state,
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(
        (summary["repaired"].as_u64(), summary["problems"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(std::fs::read(&flipped).unwrap(), bytes[0]);
    assert_eq!(std::fs::read(dest.join("c/i1/a1.bin")).unwrap(), bytes[1]);
    let item: Value = serde_json::from_slice(&std::fs::read(&edited).unwrap()).unwrap();
    assert_eq!(item["properties"]["datetime"], "2024-01-01T00:00:00Z");
    assert_eq!(
        std::fs::read(dest.join("c/i2/notes.txt")).unwrap(),
        b"someone's notes"
    );
    let asked: Vec<u64> = (0..5).map(|i| site.hits(&format!("a{i}.bin"))).collect();
    assert_eq!(
        asked,
        [2, 2, 1, 1, 1],
        "only the damaged assets are asked for again"
    );
    // The server now holds other bytes for an asset: a repair never puts
    // them in place of the verified ones.
    let other: Vec<u8> = bytes[2].iter().map(|b| b ^ 0xff).collect();
    site.put("a2.bin", Reply::bytes(other, "application/octet-stream"));
    std::fs::remove_file(dest.join("c/i2/a2.bin")).unwrap();
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--repair"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("checksum does not match"),
        "{}",
        run.stdout
    );
    assert!(!dest.join("c/i2/a2.bin").exists());
    site.put(
        "a2.bin",
        Reply::bytes(bytes[2].clone(), "application/octet-stream"),
    );
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--repair"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read(dest.join("c/i2/a2.bin")).unwrap(), bytes[2]);

    // Now whole: the extra file is still said, and does not fail the check.
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.summary()["verified"], 5);
    assert_eq!(run.summary()["extra"], 1);
}

#[test]
fn items_the_index_cannot_take_are_left_out_one_by_one() {
    let site = Site::start();
    put_collection(&site, 6);
    // Items with properties that trouble a stac-geoparquet encoder.
    let odd = [
        json!({"bbox": "t"}),
        json!({"created": "yesterday"}),
        json!({"a/b": 1, "n": [[1], ["x"]]}),
        json!({"a/b": "x", "n": [[2], [3]], "id": 5}),
    ];
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for i in 0..6 {
        links.push(json!({"rel": "item", "href": format!("./i{i}.json")}));
    }
    for (n, extra) in odd.iter().enumerate() {
        let mut properties = json!({"datetime": "2024-01-01T00:00:00Z"});
        for (key, value) in extra.as_object().unwrap() {
            properties[key] = value.clone();
        }
        let item = json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("odd{n}"),
            "collection": "c", "geometry": {"type": "Point", "coordinates": [n, 1]},
            "bbox": [n, 1, n, 1], "properties": properties, "links": [],
            "assets": {"data": {"href": site.url("a0.bin")}}});
        site.put(&format!("odd{n}.json"), Reply::json(&item));
        links.push(json!({"rel": "item", "href": format!("./odd{n}.json")}));
    }
    // One whose geometry is not one.
    let broken = json!({"type": "Feature", "stac_version": "1.1.0", "id": "broken", "collection": "c",
        "geometry": "text", "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": {}});
    site.put("broken.json", Reply::json(&broken));
    links.push(json!({"rel": "item", "href": "./broken.json"}));
    put_collection_document(&site, links);
    let (dir, state, dest, _) = mirror_site(&site, "collection.json");
    let index = read_index(&dest.join("items.parquet"));
    // The six plain items and at least the odd ones the encoder takes; the
    // one without a geometry is never among them.
    let rows = index["duckdb"].as_u64().unwrap();
    assert!((6..=10).contains(&rows), "{index}");
    let file = dir.path().join("again.parquet");
    let run = export_index(&state, &dest, &file);
    let summary = run.summary();
    assert_eq!(
        summary["items"].as_u64().unwrap() + summary["left_out"].as_u64().unwrap(),
        11,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("broken"), "{}", run.stdout);
}

#[test]
fn verify_reads_no_document_outside_the_mirror() {
    let site = Site::start();
    put_collection(&site, 2);
    site.put("remote.json", Reply::json(&json!({"type": "Feature"})));
    let (dir, state, dest, _) = mirror_site(&site, "collection.json");
    // Someone adds links that lead out of the mirror.
    let outside = dir.path().join("outside.json");
    std::fs::write(&outside, br#"{"type": "Feature", "id": "outside"}"#).unwrap();
    let path = dest.join("c/collection.json");
    let mut collection: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for href in [
        "../../outside.json".to_string(),
        url::Url::from_file_path(&outside).unwrap().to_string(),
        site.url("remote.json"),
    ] {
        collection["links"]
            .as_array_mut()
            .unwrap()
            .push(json!({"rel": "item", "href": href}));
    }
    std::fs::write(&path, serde_json::to_vec(&collection).unwrap()).unwrap();
    let run = cairn(&state, &["verify", dest.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(
        run.stdout
            .matches("outside the mirror; Cairn does not read it")
            .count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(run.summary()["items"], 2);
    assert_eq!(site.hits("remote.json"), 0);
}

/// A mirror bagged with a state file that has no record of it (a new one,
/// or another job's): what its own item documents give is the proof of its
/// files, and a document its catalog links that is gone is said.
#[test]
fn a_bag_made_without_the_records_checks_the_mirror_against_its_own_documents() {
    let (dir, state, dest) = crate::support::mirror_demo();
    let damaged = "glaciers/glaciers-aletsch/samples.csv";
    let mut bytes = std::fs::read(dest.join(damaged)).unwrap();
    bytes[5] ^= 1;
    std::fs::write(dest.join(damaged), bytes).unwrap();
    std::fs::remove_file(dest.join("coastlines/collection.json")).unwrap();
    // What an export killed on its way left beside its bag (this computer,
    // a process gone) is cleared; a running one's is not.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .replace(' ', "_");
    let left = dir
        .path()
        .join(format!(".bag-cairn.cairn-bag-{host}-{}-0", u32::MAX - 1));
    let running = dir.path().join(format!(".bag-cairn.cairn-bag-{host}-1-0"));
    for folder in [&left, &running] {
        std::fs::create_dir_all(folder.join("data")).unwrap();
        std::fs::write(folder.join("data/a.bin"), b"half a bag").unwrap();
    }
    for state in [state.clone(), dir.path().join("new.db")] {
        let bag = dir
            .path()
            .join(format!("bag-{}", state.file_stem().unwrap().display()));
        let run = export(&state, &dest, &bag);
        assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
        let left_out = run.left_out();
        assert_eq!(left_out.len(), 2, "{left_out:?}");
        assert_eq!(left_out[0].0, damaged, "{left_out:?}");
        assert_eq!(left_out[1].0, "coastlines/collection.json", "{left_out:?}");
        assert!(left_out[1].1.contains("catalog links it"), "{left_out:?}");
        assert!(!bag.join("data").join(damaged).exists());
        assert!(bagit_validate(&bag).status.success());
    }
    assert!(!left.exists());
    assert!(running.join("data/a.bin").exists());
    // Bagging never makes a state file.
    assert!(!dir.path().join("new.db").exists());
    // Nor the folder the bag is to go in.
    let nowhere = dir.path().join("unplugged/bags/2024");
    let run = export(&state, &dest, &nowhere);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unplugged/bags does not exist"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("unplugged").exists());
}

/// A repair that could not write an item document again (its folder is a
/// link now, which Cairn never follows) says so: nothing is called
/// repaired that was not.
#[cfg(unix)]
#[test]
fn a_repair_that_could_not_write_a_document_says_so() {
    let (dir, state, dest) = crate::support::mirror_demo();
    let item = dest.join("glaciers/glaciers-aletsch");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&item, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &item).unwrap();
    let run = cairn(
        &state,
        &["verify", dest.to_str().unwrap(), "--repair", "--json"],
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let lines = run.lines();
    let document = lines
        .iter()
        .find(|l| l["path"] == "glaciers/glaciers-aletsch/glaciers-aletsch.json")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(document["repaired"], false, "{document}");
    assert!(
        document["reason"]
            .as_str()
            .unwrap()
            .contains("the repair failed: writing it again failed"),
        "{document}"
    );
    assert_eq!(run.summary()["repaired"], 0, "{}", run.stdout);
    // The link is left as it is, and nothing was written through it.
    assert!(
        std::fs::symlink_metadata(&item)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Ctrl-C (or SIGTERM) while a bag is made stops it between two files: the
/// export says so and exits 3, and nothing of the bag is left, neither at
/// the place asked for nor beside it.
#[cfg(unix)]
#[test]
fn an_export_stopped_on_its_way_says_so_and_leaves_nothing() {
    let (dir, state, dest) = crate::support::mirror_demo();
    // Files enough for the bag to take a while.
    let many = dest.join("notes");
    std::fs::create_dir(&many).unwrap();
    for n in 0..20_000 {
        std::fs::write(many.join(format!("{n}.txt")), n.to_string()).unwrap();
    }
    for signal in ["-INT", "-TERM"] {
        let bag = dir.path().join("bag");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["--state", state.to_str().unwrap(), "export"])
            .args([dest.to_str().unwrap(), "--bagit", bag.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let building = || {
            std::fs::read_dir(dir.path()).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".bag.cairn-bag-")
            })
        };
        let started = std::time::Instant::now();
        while !building() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the bag was not begun"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        crate::support::send_signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{signal}: {stderr}");
        assert!(
            stderr.contains("stopped: the bag was not finished, and nothing of it is left at"),
            "{signal}: {stderr}"
        );
        assert!(!bag.exists(), "{signal}");
        assert!(!building(), "{signal}: the half-made bag is left");
    }
}

/// A bag is not made of a mirror a job is copying into (its catalog files
/// change until the job ends); while a bag is made, no job copies into it.
#[cfg(unix)]
#[test]
fn a_bag_is_not_made_while_a_job_copies_into_the_mirror() {
    let (dir, state, dest) = crate::support::mirror_demo();
    let bag = dir.path().join("bag");
    // Another program copying into the folder holds it so.
    let copier = std::fs::File::open(&dest).unwrap();
    copier.try_lock().unwrap();
    let run = export(&state, &dest, &bag);
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("a job is copying into the mirror folder")
            && run.stderr.contains("Make the bag once it has ended"),
        "{}",
        run.stderr
    );
    assert!(!bag.exists());
    drop(copier);
    let run = export(&state, &dest, &bag);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(bagit_validate(&bag).status.success());
}
