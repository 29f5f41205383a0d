"""Writes the files and the STAC catalogs of a transfer benchmark.

Usage: generate.py OUT_DIR BASE_URL big|small

big:   20 files of 200 MB, one asset per item.
small: 20,000 files of 20 KB, described four ways (the shapes real catalogs
       have, beside the one that suits a copier best):
       items.json   ten assets per item, file:size and file:checksum given
       one.json     one asset per item, file:size given
       nosize.json  one asset per item, no file:size, no checksum
       static/      a static collection linking one item file per item
                    (one asset each, no file:size): twice the requests
Files go to OUT_DIR/files/, the catalogs beside them (hrefs under
BASE_URL/files/), and the list of file URLs to OUT_DIR/urls.txt.
"""

import hashlib
import json
import os
import sys

out, base, scenario = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
count, size, per_item = {"big": (20, 200_000_000, 1), "small": (20_000, 20_000, 10)}[scenario]
files = os.path.join(out, "files")
os.makedirs(files, exist_ok=True)

features, urls = [], []
for n in range(count):
    name = f"{scenario}-{n:05}.bin"
    path = os.path.join(files, name)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    url = f"{base}/files/{name}"
    urls.append(url)
    if n % per_item == 0:
        features.append({
            "type": "Feature", "stac_version": "1.1.0", "id": f"{scenario}-item-{n // per_item:05}",
            "collection": f"bench-{scenario}",
            "stac_extensions": ["https://stac-extensions.github.io/file/v2.1.0/schema.json"],
            "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}, "bbox": [0.0, 0.0, 0.0, 0.0],
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": {},
        })
    features[-1]["assets"][f"data-{n % per_item}"] = {
        "href": url, "type": "application/octet-stream", "roles": ["data"],
        "file:size": size, "file:checksum": "1220" + digest.hexdigest(),
    }

with open(os.path.join(out, "items.json"), "w") as f:
    json.dump({"type": "FeatureCollection", "features": features}, f)

if scenario == "small":
    def one_asset_item(n, url, sizes):
        asset = {"href": url, "type": "application/octet-stream", "roles": ["data"]}
        if sizes:
            asset["file:size"] = size
        return {
            "type": "Feature", "stac_version": "1.1.0", "id": f"one-{n:05}",
            "collection": "bench-one",
            "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}, "bbox": [0.0, 0.0, 0.0, 0.0],
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": {"data": asset},
        }

    for name, sizes in (("one.json", True), ("nosize.json", False)):
        with open(os.path.join(out, name), "w") as f:
            json.dump({"type": "FeatureCollection",
                       "features": [one_asset_item(n, url, sizes) for n, url in enumerate(urls)]}, f)
    static = os.path.join(out, "static")
    os.makedirs(os.path.join(static, "items"), exist_ok=True)
    links = [{"rel": "root", "href": "./collection.json"}, {"rel": "self", "href": f"{base}/static/collection.json"}]
    for n, url in enumerate(urls):
        item = one_asset_item(n, url, False)
        item["links"] = [{"rel": "collection", "href": "../collection.json"},
                         {"rel": "parent", "href": "../collection.json"}]
        with open(os.path.join(static, "items", f"{item['id']}.json"), "w") as f:
            json.dump(item, f)
        links.append({"rel": "item", "href": f"./items/{item['id']}.json", "type": "application/geo+json"})
    with open(os.path.join(static, "collection.json"), "w") as f:
        json.dump({
            "type": "Collection", "stac_version": "1.1.0", "id": "bench-static",
            "description": "20,000 items of one small asset each, one file per item",
            "license": "other",
            "extent": {"spatial": {"bbox": [[0.0, 0.0, 0.0, 0.0]]},
                       "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
            "links": links,
        }, f)
with open(os.path.join(out, "urls.txt"), "w") as f:
    f.write("\n".join(urls) + "\n")
