// The world's land, bundled: the map has a basemap with no network at all.
// Online tiles are laid over it when they load.
import type { FeatureCollection } from "geojson";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import land from "world-atlas/land-110m.json";

export function landPolygons(): FeatureCollection {
  const topology = land as unknown as Topology<{ land: GeometryCollection }>;
  return feature(topology, topology.objects.land) as unknown as FeatureCollection;
}
