"""Writes the hostile catalog of the benchmark into a folder.

- bomb/collection.json.gz: 62 KB on the wire that unpacks to a 64 MiB JSON
  document (a collection whose `summaries` hold one list of 33 million zeros);
- catalog.json links it beside one ordinary collection with one item and one
  asset, so that a mirror has something to copy past the bomb.
"""

import gzip
import json
import os
import sys

root = sys.argv[1]
os.makedirs(os.path.join(root, "bomb"), exist_ok=True)
os.makedirs(os.path.join(root, "good"), exist_ok=True)

head = (
    '{"type": "Collection", "stac_version": "1.1.0", "id": "bomb", "description": "x",'
    ' "license": "CC0-1.0", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},'
    ' "temporal": {"interval": [[null, null]]}}, "links": [], "summaries": {"zeros": ['
)
zeros = 64 * 1024 * 1024 // 2
with gzip.open(os.path.join(root, "bomb", "collection.json.gz"), "wb", compresslevel=9) as f:
    f.write(head.encode())
    chunk = b"0," * (1024 * 1024)
    for _ in range(zeros // (1024 * 1024)):
        f.write(chunk)
    f.write(b"0]}}")

data = bytes(range(256)) * 400
with open(os.path.join(root, "good", "data.bin"), "wb") as f:
    f.write(data)
item = {
    "type": "Feature", "stac_version": "1.1.0", "id": "item", "collection": "good",
    "geometry": None, "properties": {"datetime": "2024-01-01T00:00:00Z"},
    "links": [], "assets": {"data": {"href": "./data.bin", "type": "application/octet-stream"}},
}
with open(os.path.join(root, "good", "item.json"), "w") as f:
    json.dump(item, f)
collection = {
    "type": "Collection", "stac_version": "1.1.0", "id": "good", "description": "x",
    "license": "CC0-1.0",
    "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
    "links": [{"rel": "item", "href": "./item.json"}],
}
with open(os.path.join(root, "good", "collection.json"), "w") as f:
    json.dump(collection, f)
catalog = {
    "type": "Catalog", "stac_version": "1.1.0", "id": "hostile", "description": "x",
    "links": [
        {"rel": "child", "href": "./bomb/collection.json"},
        {"rel": "child", "href": "./good/collection.json"},
    ],
}
with open(os.path.join(root, "catalog.json"), "w") as f:
    json.dump(catalog, f)
