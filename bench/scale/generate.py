"""Writes a big generated collection for the scale benchmark.

Usage: generate.py OUT_DIR BASE_URL static|pages|file COUNT

Every item has one small asset without file:size (the shape most big
collections have); every asset href is BASE_URL/assets/<id>.bin, which the
benchmark's nginx answers with one small file, so that a million assets need
no million files on the serving side.

static: OUT_DIR/collection.json linking COUNT item files under items/
pages:  OUT_DIR/collection.json whose `items` link leads to pages of 1,000
        items each (pages/0.json, pages/1.json ...), chained by `next`
        links: what a STAC API serves, as static files
file:   OUT_DIR/items.json, one item collection of COUNT items
"""

import json
import os
import sys

out, base, shape, count = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], int(sys.argv[4])
PAGE = 1000
os.makedirs(out, exist_ok=True)


def item(n):
    x = (n % 3600) / 10 - 180
    y = (n // 3600 % 1800) / 10 - 90
    return {
        "type": "Feature", "stac_version": "1.1.0", "id": f"chip-{n:07}", "collection": f"scale-{shape}",
        "geometry": {"type": "Point", "coordinates": [x, y]}, "bbox": [x, y, x, y],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "label": n % 7},
        "links": [],
        "assets": {"data": {"href": f"{base}/assets/chip-{n:07}.bin", "type": "application/octet-stream",
                            "roles": ["data"]}},
    }


def collection(links):
    return {
        "type": "Collection", "stac_version": "1.1.0", "id": f"scale-{shape}",
        "description": f"{count:,} generated items of one small asset each",
        "license": "other",
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                   "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
        "links": [{"rel": "root", "href": "./collection.json"}] + links,
    }


if shape == "static":
    os.makedirs(os.path.join(out, "items"), exist_ok=True)
    links = []
    for n in range(count):
        document = item(n)
        document["links"] = [{"rel": "parent", "href": "../collection.json"}]
        with open(os.path.join(out, "items", f"{document['id']}.json"), "w") as f:
            json.dump(document, f)
        links.append({"rel": "item", "href": f"./items/{document['id']}.json", "type": "application/geo+json"})
    with open(os.path.join(out, "collection.json"), "w") as f:
        json.dump(collection(links), f)
elif shape == "pages":
    os.makedirs(os.path.join(out, "pages"), exist_ok=True)
    pages = (count + PAGE - 1) // PAGE
    for p in range(pages):
        features = [item(n) for n in range(p * PAGE, min(count, (p + 1) * PAGE))]
        links = [{"rel": "self", "href": f"{base}/pages/{p}.json"}]
        if p + 1 < pages:
            links.append({"rel": "next", "href": f"{base}/pages/{p + 1}.json", "type": "application/geo+json"})
        with open(os.path.join(out, "pages", f"{p}.json"), "w") as f:
            json.dump({"type": "FeatureCollection", "features": features, "links": links}, f)
    with open(os.path.join(out, "collection.json"), "w") as f:
        json.dump(collection([{"rel": "items", "href": "./pages/0.json", "type": "application/geo+json"}]), f)
elif shape == "file":
    with open(os.path.join(out, "items.json"), "w") as f:
        f.write('{"type": "FeatureCollection", "features": [')
        for n in range(count):
            if n:
                f.write(",")
            json.dump(item(n), f)
        f.write("]}")
else:
    sys.exit(f"unknown shape {shape}")
with open(os.path.join(out, "done"), "w") as f:
    f.write("ok\n")
