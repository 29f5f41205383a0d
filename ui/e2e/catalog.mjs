// A static STAC catalog served on loopback for the app's end-to-end tests:
// one collection of tiles over Europe, each with one data file of random
// bytes, its size and sha2-256 in the catalog. Files are sent slowly (so a
// person, or a test, can watch, pause and restart a job), with ETag and Range
// support (so a restarted job continues its partial files).
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";

export const TILE_BYTES = 3 * 1024 * 1024;

/** The tiles: a 4 x 2 grid of 5-degree boxes from 0°E, 40°N. */
export function tiles() {
  const out = [];
  for (let row = 0; row < 2; row++) {
    for (let col = 0; col < 4; col++) {
      const w = col * 5, s = 40 + row * 5;
      out.push({ id: `tile-${row}-${col}`, bbox: [w, s, w + 5, s + 5], day: 1 + row * 4 + col });
    }
  }
  return out;
}

export function intersects(a, b) {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

function documents(base) {
  const files = new Map();
  const json = new Map();
  const list = tiles();
  json.set("/catalog.json", {
    type: "Catalog", stac_version: "1.1.0", id: "loopback", title: "Loopback test catalog",
    description: "Tiles served by the end-to-end test",
    links: [
      { rel: "root", href: "./catalog.json" },
      { rel: "child", href: "./tiles/collection.json", title: "Europe tiles" },
    ],
  });
  json.set("/tiles/collection.json", {
    type: "Collection", stac_version: "1.1.0", id: "europe-tiles", title: "Europe tiles",
    description: "Eight tiles of random bytes.", license: "CC0-1.0",
    providers: [{ name: "Cairn tests", roles: ["host"] }],
    extent: { spatial: { bbox: [[0, 40, 20, 50]] }, temporal: { interval: [["2024-01-01T00:00:00Z", "2024-01-31T00:00:00Z"]] } },
    links: [
      { rel: "root", href: "../catalog.json" },
      { rel: "parent", href: "../catalog.json" },
      ...list.map((t) => ({ rel: "item", href: `./${t.id}/${t.id}.json` })),
    ],
  });
  for (const t of list) {
    const bytes = randomBytes(TILE_BYTES);
    const digest = createHash("sha256").update(bytes).digest("hex");
    files.set(`/tiles/${t.id}/data.bin`, { bytes, etag: `"${digest.slice(0, 16)}"` });
    const [w, s, e, n] = t.bbox;
    json.set(`/tiles/${t.id}/${t.id}.json`, {
      type: "Feature", stac_version: "1.1.0", id: t.id, collection: "europe-tiles",
      stac_extensions: [
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
      ],
      bbox: t.bbox,
      geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
      properties: {
        datetime: `2024-01-${String(t.day).padStart(2, "0")}T00:00:00Z`,
        platform: "sentinel-2a",
        "eo:cloud_cover": (t.day * 7) % 100,
      },
      links: [
        { rel: "collection", href: "../collection.json" },
        { rel: "parent", href: "../collection.json" },
        { rel: "license", href: "https://creativecommons.org/licenses/by/4.0/", title: "CC BY 4.0" },
      ],
      assets: {
        data: {
          href: `${base}/tiles/${t.id}/data.bin`, type: "application/octet-stream", roles: ["data"],
          "file:size": TILE_BYTES, "file:checksum": `1220${digest}`,
          // A copy in a bucket, as Earth Search offers: the app reads the
          // web copy unless told otherwise.
          alternate: { s3: { href: `s3://europe-tiles/${t.id}/data.bin` } },
        },
      },
    });
  }
  return { files, json };
}

/**
 * Starts the server; `rate` is bytes per second per file. With `token`, every
 * request must carry `Authorization: Bearer <token>` (else 401), as a
 * catalog behind a login does. Resolves to { url, close, served, down, up }:
 * `down` stops it answering (connections dropped, the port closed), as a
 * server that goes away does; `up` serves again on the same port.
 */
export async function serveCatalog({ rate = 512 * 1024, token = null } = {}) {
  const server = createServer();
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const base = `http://127.0.0.1:${server.address().port}`;
  const { files, json } = documents(base);
  const served = { bytes: 0, refused: 0, signed: 0 };
  server.on("request", (req, res) => {
    const path = new URL(req.url, base).pathname;
    if (token !== null) {
      if (req.headers.authorization !== `Bearer ${token}`) {
        served.refused += 1;
        res.writeHead(401, { "www-authenticate": "Bearer" }).end("a token is needed");
        return;
      }
      served.signed += 1;
    }
    if (json.has(path)) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(json.get(path)));
      return;
    }
    const file = files.get(path);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const ifRange = req.headers["if-range"];
    if (range && (!ifRange || ifRange === file.etag)) start = Number(range[1]);
    const body = file.bytes.subarray(start);
    const headers = { "content-type": "application/octet-stream", etag: file.etag, "accept-ranges": "bytes", "content-length": body.length };
    if (req.method === "HEAD") {
      res.writeHead(200, { ...headers, "content-length": file.bytes.length });
      res.end();
      return;
    }
    if (start > 0) {
      res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}` });
    } else {
      res.writeHead(200, headers);
    }
    // A slow server: a slice every tenth of a second.
    const slice = Math.max(1, Math.floor(rate / 10));
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      const chunk = body.subarray(at, at + slice);
      at += chunk.length;
      served.bytes += chunk.length;
      if (at >= body.length) {
        clearInterval(timer);
        res.end(chunk);
      } else {
        res.write(chunk);
      }
    }, 100);
    res.on("close", () => clearInterval(timer));
  });
  const port = server.address().port;
  const close = () => new Promise((done) => { server.closeAllConnections(); server.close(done); });
  return {
    url: `${base}/catalog.json`,
    served,
    close,
    down: close,
    up: () => new Promise((done) => server.listen(port, "127.0.0.1", done)),
  };
}
