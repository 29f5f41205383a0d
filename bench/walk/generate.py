"""Writes a synthetic static STAC catalog: one root, C collections, N items.

Usage: python generate.py OUT_DIR ITEMS [COLLECTIONS]
Items look like real ones (polygon geometry, properties, three assets) and sit
next to their collection, as many large static catalogs do.
"""
import json
import os
import sys


def main(out, items, collections):
    per = items // collections
    os.makedirs(out, exist_ok=True)

    def write(path, value):
        with open(os.path.join(out, path), "w") as f:
            json.dump(value, f, separators=(",", ":"))

    write("catalog.json", {
        "type": "Catalog", "stac_version": "1.1.0", "id": "bench", "description": "Walk benchmark",
        "links": [{"rel": "child", "href": f"./c{c}/collection.json"} for c in range(collections)],
    })
    for c in range(collections):
        os.makedirs(os.path.join(out, f"c{c}"), exist_ok=True)
        links = [{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../catalog.json"}]
        for i in range(per):
            id_ = f"c{c}-item-{i:07d}"
            links.append({"rel": "item", "href": f"./{id_}.json", "type": "application/geo+json"})
            x, y = -180 + (i % 360), -80 + (i // 360) % 160
            write(f"c{c}/{id_}.json", {
                "type": "Feature", "stac_version": "1.1.0", "id": id_, "collection": f"c{c}",
                "bbox": [x, y, x + 0.5, y + 0.5],
                "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]]},
                "properties": {"datetime": f"2020-01-{1 + i % 28:02d}T10:00:00Z", "eo:cloud_cover": i % 100},
                "links": [{"rel": "collection", "href": "./collection.json"}, {"rel": "parent", "href": "./collection.json"},
                          {"rel": "root", "href": "../catalog.json"}],
                "assets": {
                    "data": {"href": f"./{id_}.tif", "type": "image/tiff; application=geotiff", "roles": ["data"]},
                    "thumbnail": {"href": f"./{id_}.png", "type": "image/png", "roles": ["thumbnail"]},
                    "metadata": {"href": f"./{id_}.xml", "type": "application/xml", "roles": ["metadata"]},
                },
            })
        write(f"c{c}/collection.json", {
            "type": "Collection", "stac_version": "1.1.0", "id": f"c{c}", "description": "bench", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
            "links": links,
        })


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10)
