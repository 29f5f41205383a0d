"""Fills an S3 bucket for the transfer benchmark's s3 scenario.

Usage: s3_fill.py OUT_DIR ENDPOINT BUCKET

Writes 2,000 objects of 100 KB and 4 of 40 MB (random bytes) to OUT_DIR/files
and puts each into BUCKET at ENDPOINT (moto, with any keys) under files/,
then writes OUT_DIR/items.json: an item collection, one asset per item, each
href an s3:// address, no file:size or checksum (as most catalogs are).
"""

import json
import os
import sys

import boto3

out, endpoint, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
files = os.path.join(out, "files")
os.makedirs(files, exist_ok=True)
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
s3.create_bucket(Bucket=bucket)
features = []
shapes = [(f"small-{n:05}.bin", 100_000) for n in range(2_000)]
shapes += [(f"large-{n}.bin", 40_000_000) for n in range(4)]
for n, (name, size) in enumerate(shapes):
    path = os.path.join(files, name)
    if not os.path.exists(path) or os.path.getsize(path) != size:
        with open(path, "wb") as f:
            f.write(os.urandom(size))
    s3.upload_file(path, bucket, f"files/{name}")
    features.append({
        "type": "Feature", "stac_version": "1.1.0", "id": f"s3-{n:05}", "collection": "bench-s3",
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}, "bbox": [0.0, 0.0, 0.0, 0.0],
        "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
        "assets": {"data": {"href": f"s3://{bucket}/files/{name}", "type": "application/octet-stream"}},
    })
with open(os.path.join(out, "items.json"), "w") as f:
    json.dump({"type": "FeatureCollection", "features": features}, f)
