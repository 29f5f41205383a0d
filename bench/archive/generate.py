"""Writes a local static collection for the archive benchmark.

Usage: generate.py OUT_DIR COUNT SIZE [FILES]

OUT_DIR/collection.json links COUNT item files under items/; each item has
one asset of SIZE bytes under assets/ (random bytes, no file:size), and the
items carry a few properties of the kinds real catalogs have. FILES, when
given, is how many distinct asset files to write (the others are hard links
to them, so that 100,000 items do not need 100,000 files' worth of bytes on
the serving side; Cairn copies each as its own file).
"""

import json
import os
import sys

out, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
distinct = int(sys.argv[4]) if len(sys.argv) > 4 else count
os.makedirs(os.path.join(out, "items"), exist_ok=True)
os.makedirs(os.path.join(out, "assets"), exist_ok=True)
links = []
for n in range(count):
    asset = os.path.join(out, "assets", f"a{n:07}.bin")
    if n < distinct:
        with open(asset, "wb") as f:
            remaining = size
            while remaining > 0:
                chunk = min(remaining, 1 << 24)
                f.write(os.urandom(chunk))
                remaining -= chunk
    else:
        os.link(os.path.join(out, "assets", f"a{n % distinct:07}.bin"), asset)
    x = (n % 3600) / 10 - 180
    y = (n // 3600 % 1800) / 10 - 90
    item = {
        "type": "Feature", "stac_version": "1.1.0", "id": f"scene-{n:07}", "collection": "archive",
        "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]]},
        "bbox": [x, y, x + 0.1, y + 0.1],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "eo:cloud_cover": n % 100,
                       "platform": f"sat-{n % 3}", "view:off_nadir": (n % 17) / 3},
        "links": [{"rel": "parent", "href": "../collection.json"}],
        "assets": {"data": {"href": f"../assets/a{n:07}.bin", "type": "application/octet-stream",
                            "roles": ["data"]}},
    }
    with open(os.path.join(out, "items", f"scene-{n:07}.json"), "w") as f:
        json.dump(item, f)
    links.append({"rel": "item", "href": f"./items/scene-{n:07}.json", "type": "application/geo+json"})
collection = {
    "type": "Collection", "stac_version": "1.1.0", "id": "archive",
    "description": f"{count:,} generated items of one {size:,}-byte asset each", "license": "other",
    "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
               "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
    "links": [{"rel": "root", "href": "./collection.json"}] + links,
}
with open(os.path.join(out, "collection.json"), "w") as f:
    json.dump(collection, f)
open(os.path.join(out, "done"), "w").close()
