"""Validates a mirror made by Cairn with pystac, offline.

Usage: validate_mirror.py CATALOG_JSON

Core objects are validated against the STAC 1.1.0 JSON schemas that pystac
ships. Extension schemas live on the web, which tests do not reach: the two
extensions Cairn writes (file, alternate-assets) are checked against the small
schemas below, written from the extensions' documentation; any other extension
a source item declares is left unchecked and named in the output. Then the
catalog is opened with pystac and every asset href must resolve to a file,
but for assets that say in `cairn:missing` why they are not in the mirror.
Prints one JSON line: {"items": N, "assets": N, "unchecked_extensions": [...]}.
"""

import json
import os
import sys

import pystac
from pystac.validation import JsonSchemaSTACValidator, set_validator, validate_all

FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
ALTERNATE_EXTENSION = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"

ASSETS_WITH = lambda fields: {  # noqa: E731
    "type": "object",
    "properties": {
        "assets": {"type": "object", "additionalProperties": {"type": "object", "properties": fields}}
    },
}

# file: `file:size` is an integer >= 0, `file:checksum` a hex multihash.
FILE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": FILE_EXTENSION,
    **ASSETS_WITH(
        {
            "file:size": {"type": "integer", "minimum": 0},
            "file:checksum": {"type": "string", "pattern": "^[a-f0-9]+$"},
        }
    ),
}
# alternate-assets: `alternate` maps names to objects with an `href`.
ALTERNATE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": ALTERNATE_EXTENSION,
    **ASSETS_WITH(
        {
            "alternate": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["href"],
                    "properties": {"href": {"type": "string", "minLength": 1}},
                },
            }
        }
    ),
}


def main() -> None:
    path = os.path.abspath(sys.argv[1])
    validator = JsonSchemaSTACValidator()
    validator.schema_cache[FILE_EXTENSION] = FILE_SCHEMA
    validator.schema_cache[ALTERNATE_EXTENSION] = ALTERNATE_SCHEMA
    set_validator(validator)

    unchecked = set()
    for folder, _, names in os.walk(os.path.dirname(path)):
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(folder, name)) as f:
                    declared = json.load(f).get("stac_extensions", [])
                unchecked.update(e for e in declared if e not in validator.schema_cache)
    for extension in unchecked:
        validator.schema_cache[extension] = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": extension,
        }

    with open(path) as f:
        root = json.load(f)
    validate_all(root, path)

    catalog = pystac.Catalog.from_file(path)
    items = assets = 0
    for item in catalog.get_items(recursive=True):
        items += 1
        for key, asset in item.assets.items():
            if "cairn:missing" in asset.extra_fields:
                # Not in the mirror, and it says why: it keeps its address.
                continue
            href = asset.get_absolute_href()
            if not os.path.isfile(href):
                sys.exit(f"{item.id} asset {key}: {href} is not a file")
            assets += 1
    print(json.dumps({"items": items, "assets": assets, "unchecked_extensions": sorted(unchecked)}))


if __name__ == "__main__":
    main()
