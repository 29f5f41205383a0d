"""Writes the files and the STAC item collection of a transfer benchmark.

Usage: generate.py OUT_DIR BASE_URL big|small

big:   20 files of 200 MB, one asset per item.
small: 20,000 files of 20 KB, ten assets per item.
Files go to OUT_DIR/files/, the item collection to OUT_DIR/items.json (hrefs
under BASE_URL/files/), and the list of file URLs to OUT_DIR/urls.txt.
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
with open(os.path.join(out, "urls.txt"), "w") as f:
    f.write("\n".join(urls) + "\n")
