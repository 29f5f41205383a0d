"""Reads a mirror's items.parquet with three outside tools.

Usage: read_index.py ITEMS_PARQUET

DuckDB counts the rows and the distinct ids; GeoPandas reads it as a
GeoDataFrame (its geometry column decoded); rustac reads it as STAC items.
Prints one JSON line: {"duckdb": N, "duckdb_ids": N, "geopandas": N,
"geometry_valid": bool, "rustac": N, "columns": [...]}.
"""

import asyncio
import json
import os
import sys

import duckdb
import geopandas
import rustac


async def read_with_rustac(path: str) -> dict:
    return await rustac.read(path)


def main() -> None:
    path = sys.argv[1]
    count, ids = duckdb.sql(
        f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{path}')"
    ).fetchall()[0]
    columns = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
    frame = geopandas.read_parquet(path)
    valid = bool(frame.geometry.notna().all() and frame.geometry.is_valid.all())
    read = asyncio.run(read_with_rustac(path))
    print(
        json.dumps(
            {
                "duckdb": count,
                "duckdb_ids": ids,
                "geopandas": len(frame),
                "geometry_valid": valid,
                "rustac": len(read["features"]),
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    main()
    # rustac's runtime threads can crash the interpreter as it shuts down
    # (PyGILState_Release while finalizing): the answer is out, so leave
    # without finalizing.
    sys.stdout.flush()
    os._exit(0)
