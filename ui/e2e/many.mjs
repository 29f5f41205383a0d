// A static collection of many items on loopback, one file per item, as big
// static catalogs are: one asset each, no file:size. Item documents are made
// as they are asked for, and counted.
import { createServer } from "node:http";

/** Serves `count` items; `served.items` counts the item documents sent. */
export async function serveMany(count) {
  const served = { items: 0 };
  const id = (i) => `scene-${String(i).padStart(6, "0")}`;
  const collection = JSON.stringify({
    type: "Collection", stac_version: "1.1.0", id: "many-scenes", title: "Many scenes",
    description: `${count} scenes, one file each`, license: "CC-BY-4.0",
    extent: { spatial: { bbox: [[-180, -60, 180, 80]] }, temporal: { interval: [["2024-01-01T00:00:00Z", null]] } },
    links: [
      { rel: "self", href: "./collection.json" },
      ...Array.from({ length: count }, (_, i) => ({ rel: "item", href: `./items/${id(i)}.json` })),
    ],
  });
  const item = (i) => {
    const x = -180 + (i % 360), y = -60 + (Math.floor(i / 360) % 140);
    return JSON.stringify({
      type: "Feature", stac_version: "1.1.0", id: id(i), collection: "many-scenes",
      bbox: [x, y, x + 0.8, y + 0.8],
      geometry: { type: "Polygon", coordinates: [[[x, y], [x + 0.8, y], [x + 0.8, y + 0.8], [x, y + 0.8], [x, y]]] },
      properties: { datetime: `2024-01-${String(1 + (i % 28)).padStart(2, "0")}T10:00:00Z` },
      links: [{ rel: "collection", href: "../collection.json" }],
      assets: { data: { href: `../data/${id(i)}.tif`, type: "image/tiff; application=geotiff", roles: ["data"] } },
    });
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const found = /^\/many\/items\/scene-(\d{6})\.json$/.exec(path);
    if (path === "/many/collection.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(collection);
    } else if (found && Number(found[1]) < count) {
      served.items += 1;
      res.writeHead(200, { "content-type": "application/geo+json" });
      res.end(item(Number(found[1])));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${server.address().port}/many/collection.json`,
    served,
    close: () => new Promise((done) => server.close(done)),
  };
}
