//! Writes a synthetic static catalog of realistic items (geometry, properties,
//! three assets), for large walks.

use std::path::Path;

use serde_json::json;

/// Writes `collections` collections of `items_per_collection` items each under
/// `dir` (`catalog.json`, `c{i}/collection.json`, `c{i}/{id}.json`).
pub fn catalog(dir: &Path, collections: usize, items_per_collection: usize) {
    let write = |path: &Path, value: &serde_json::Value| {
        std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
    };
    let children: Vec<_> = (0..collections)
        .map(|c| json!({"rel": "child", "href": format!("./c{c}/collection.json"), "type": "application/json"}))
        .collect();
    write(
        &dir.join("catalog.json"),
        &json!({"type": "Catalog", "stac_version": "1.1.0", "id": "generated",
            "description": "A generated catalog", "links": children}),
    );
    for c in 0..collections {
        std::fs::create_dir_all(dir.join(format!("c{c}"))).unwrap();
        let mut links = vec![
            json!({"rel": "root", "href": "../catalog.json"}),
            json!({"rel": "parent", "href": "../catalog.json"}),
        ];
        for i in 0..items_per_collection {
            let id = format!("c{c}-item-{i:06}");
            links.push(json!({"rel": "item", "href": format!("./{id}.json"), "type": "application/geo+json"}));
            let x = -180.0 + (i % 360) as f64;
            let y = -80.0 + ((i / 360) % 160) as f64;
            let item = json!({
                "type": "Feature", "stac_version": "1.1.0", "id": id, "collection": format!("c{c}"),
                "bbox": [x, y, x + 0.5, y + 0.5],
                "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]]},
                "properties": {"datetime": format!("2020-01-{:02}T10:00:00Z", 1 + i % 28), "eo:cloud_cover": (i % 100) as f64, "platform": "generated-1"},
                "links": [{"rel": "collection", "href": "./collection.json"}, {"rel": "parent", "href": "./collection.json"}, {"rel": "root", "href": "../catalog.json"}],
                "assets": {
                    "data": {"href": format!("./{id}.tif"), "type": "image/tiff; application=geotiff", "roles": ["data"], "file:size": 1024},
                    "thumbnail": {"href": format!("./{id}.png"), "type": "image/png", "roles": ["thumbnail"]},
                    "metadata": {"href": format!("./{id}.xml"), "type": "application/xml", "roles": ["metadata"]}
                }
            });
            write(&dir.join(format!("c{c}/{id}.json")), &item);
        }
        write(
            &dir.join(format!("c{c}/collection.json")),
            &json!({"type": "Collection", "stac_version": "1.1.0", "id": format!("c{c}"),
                "description": "generated", "license": "CC-BY-4.0",
                "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
                "links": links}),
        );
    }
}
