//! A mirror of only the items whose properties pass a CQL2 filter, from a
//! static collection: the filter is part of the job's selection.

use serde_json::json;

use crate::support::cairn;
use crate::support::site::{Reply, Site};

/// A static collection of six items with a cloud cover each (the last has
/// none), one small asset each.
fn serve(site: &Site) -> Vec<Option<f64>> {
    let clouds = vec![
        Some(5.0),
        Some(80.0),
        Some(19.9),
        Some(20.0),
        Some(0.0),
        None,
    ];
    let mut links = vec![json!({"rel": "root", "href": "./collection.json"})];
    for (i, cloud) in clouds.iter().enumerate() {
        site.put(
            &format!("a/{i}.bin"),
            Reply::bytes(vec![i as u8; 100 + i], "application/octet-stream"),
        );
        let mut properties = json!({"datetime": "2024-01-01T00:00:00Z", "platform": "sat"});
        if let Some(cloud) = cloud {
            properties["eo:cloud_cover"] = json!(cloud);
        }
        site.put(
            &format!("c/item-{i}.json"),
            Reply::json(
                &json!({"type": "Feature", "stac_version": "1.1.0", "id": format!("item-{i}"),
                "collection": "scenes", "geometry": null, "properties": properties, "links": [],
                "assets": {"data": {"href": site.url(&format!("a/{i}.bin"))}}}),
            ),
        );
        links.push(json!({"rel": "item", "href": format!("./item-{i}.json")}));
    }
    site.put(
        "c/collection.json",
        Reply::json(&json!({"type": "Collection", "stac_version": "1.1.0", "id": "scenes",
            "description": "Scenes", "license": "CC-BY-4.0",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}},
            "links": links})),
    );
    clouds
}

#[test]
fn a_mirror_keeps_only_the_items_that_pass_the_filter() {
    let site = Site::start();
    let clouds = serve(&site);
    let dir = tempfile::tempdir().unwrap();
    let (state, dest) = (dir.path().join("cairn.db"), dir.path().join("mirror"));
    let source = site.url("c/collection.json");

    // Not CQL2: refused before anything is recorded or written.
    let bad = cairn(
        &state,
        &[
            "mirror",
            &source,
            dest.to_str().unwrap(),
            "--filter",
            "cloud < ",
        ],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("is not CQL2 text"), "{}", bad.stderr);
    assert!(!dest.exists());

    let run = cairn(
        &state,
        &[
            "mirror",
            &source,
            dest.to_str().unwrap(),
            "--filter",
            "eo:cloud_cover < 20",
            "--json",
        ],
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let kept: Vec<usize> = (0..clouds.len())
        .filter(|&i| clouds[i].is_some_and(|c| c < 20.0))
        .collect();
    assert_eq!(kept, vec![0, 2, 4]);
    for i in 0..clouds.len() {
        let there = dest.join(format!("scenes/item-{i}/item-{i}.json")).exists();
        assert_eq!(there, kept.contains(&i), "item {i}");
        assert_eq!(
            site.hits(&format!("a/{i}.bin")),
            u64::from(kept.contains(&i)),
            "asset {i}"
        );
    }
    // The filter is the job's: `cairn jobs --json` shows it in the selection.
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(
        jobs.lines()[0]["selection"]["filter"],
        "eo:cloud_cover < 20"
    );
}
