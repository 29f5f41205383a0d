//! One document of a source at a time, for a person browsing it: what it is,
//! what it says about itself, and what it links to. The desktop app's catalog
//! tree opens each branch with [`look`] when it is unfolded.

use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::Value;

use super::api::{Api, items_link};
use super::{Kind, check_document, open};
use crate::Result;
use crate::fetch::Fetcher;

/// A catalog, collection, API or item, as a browser shows it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Where it was read from.
    pub url: String,
    /// What it is.
    pub kind: Kind,
    /// Its id (or the file's name when it has none).
    pub id: String,
    /// Its title, when it has one.
    pub title: Option<String>,
    /// Its description, as written (often Markdown).
    pub description: Option<String>,
    /// Its license, for collections.
    pub license: Option<String>,
    /// Who made, holds or serves the data.
    pub providers: Vec<String>,
    /// West, south, east, north of everything in it, when it says.
    pub bbox: Option<[f64; 4]>,
    /// First and last moment of its data (`None`: open-ended or not said).
    pub interval: Option<[Option<String>; 2]>,
    /// Sub-catalogs and collections it links to (the collections of an API).
    pub children: Vec<Child>,
    /// Items it links to directly.
    pub item_links: u64,
    /// Whether its items can be listed (it links items, has an `items`
    /// endpoint, or is an API with item search).
    pub has_items: bool,
    /// How many items it holds, when that is known without a search.
    pub item_count: Option<u64>,
    /// What is wrong with it, in plain words (browsing goes on).
    pub problems: Vec<String>,
}

/// A link to a sub-catalog or collection.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Child {
    /// Its address.
    pub url: String,
    /// The link's title, or the collection's, when given.
    pub title: Option<String>,
    /// Its id, when known without reading it (the collections of an API).
    pub id: Option<String>,
}

/// Reads the document at `source` and describes it. An API is described with
/// its collections as children.
pub async fn look(fetcher: &Fetcher, source: &str) -> Result<Entry> {
    let opened = open(fetcher, source).await?;
    let checked = check_document(
        opened.kind,
        &opened.value,
        opened.structure.as_ref(),
        &opened.url,
    );
    let value = &opened.value;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let mut entry = Entry {
        url: opened.url.to_string(),
        kind: opened.kind,
        id: checked
            .id
            .clone()
            .unwrap_or_else(|| crate::catalog::walk::file_stem(&opened.url).to_string()),
        title: checked.title.clone(),
        description: text("description"),
        license: text("license"),
        providers: providers(value),
        bbox: bbox(value),
        interval: interval(value),
        children: Vec::new(),
        item_links: 0,
        has_items: false,
        item_count: None,
        problems: checked.problems.clone(),
    };
    match opened.kind {
        Kind::Api => {
            let api = Api::new(opened.url.clone(), opened.value.clone());
            entry.title = Some(api.title());
            entry.has_items = api.can_search();
            for collection in api.collections(fetcher).await? {
                let Some(id) = collection.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let url = api
                    .root()
                    .join(&format!("collections/{id}"))
                    .map_or_else(|_| api.root().to_string(), |u| u.to_string());
                entry.children.push(Child {
                    url,
                    title: collection
                        .get("title")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    id: Some(id.to_string()),
                });
            }
        }
        Kind::ItemCollection => {
            let count = opened.features.as_ref().map_or(0, |f| f.count() as u64);
            entry.item_count = Some(count);
            entry.item_links = count;
            entry.has_items = count > 0;
        }
        _ => {
            let mut each = |link: &Value| {
                let rel = link.get("rel").and_then(Value::as_str).unwrap_or("");
                let Some(href) = link.get("href").and_then(Value::as_str) else {
                    return;
                };
                match rel {
                    "child" => {
                        if let Ok(url) = super::resolve(&opened.url, href) {
                            entry.children.push(Child {
                                url: url.to_string(),
                                title: link
                                    .get("title")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                                id: None,
                            });
                        }
                    }
                    "item" => entry.item_links += 1,
                    _ => {}
                }
            };
            for link in links_of(value) {
                each(link);
            }
            // Broken links were reported by the check above.
            if let Some(structure) = &opened.structure {
                let _ = structure.each(|link| {
                    each(&link);
                    ControlFlow::Continue(())
                });
            }
            entry.has_items =
                entry.item_links > 0 || items_link(&opened.value, &opened.url).is_some();
            entry.item_count = (entry.item_links > 0).then_some(entry.item_links);
        }
    }
    Ok(entry)
}

/// An item, as a map and a table show it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemSummary {
    /// Its id.
    pub id: String,
    /// Its collection, when it says.
    pub collection: Option<String>,
    /// Its own address (`self` link), when it gives one.
    pub href: Option<String>,
    /// West, south, east, north.
    pub bbox: Option<[f64; 4]>,
    /// Its footprint (GeoJSON geometry).
    pub geometry: Option<Value>,
    /// Its date and time, or the start of its range.
    pub datetime: Option<String>,
    /// Its assets, in the order the item lists them.
    pub assets: Vec<AssetSummary>,
    /// A small picture of it, when it has one (`thumbnail` role or key).
    pub thumbnail: Option<String>,
    /// Its properties in the order it gives them, each as short text (at
    /// most [`MOST_PROPERTIES`]).
    pub properties: Vec<PropertySummary>,
    /// Its links to things beside it (a license, the data it came from,
    /// other formats), resolved; not the links of the catalog's tree.
    pub links: Vec<LinkSummary>,
    /// Whether its properties and links are here: a long list keeps them
    /// for its first [`DETAILED`] items only (see [`ItemSummary::brief`]).
    pub detailed: bool,
}

/// Items of one list that keep their properties and links: about 2.5 KB
/// each for an Earth Search item, so a list of 100,000 stays light.
pub const DETAILED: usize = 2_000;

/// Properties of an item kept for its page.
pub const MOST_PROPERTIES: usize = 60;
/// Links of an item kept for its page.
const MOST_LINKS: usize = 20;
/// A property's value longer than this is cut, with an ellipsis.
const LONGEST_VALUE: usize = 160;

/// One property of an item.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertySummary {
    /// Its name, as the item gives it (`eo:cloud_cover`).
    pub name: String,
    /// Its value as text: text as it is, numbers and yes/no as written,
    /// lists of them joined by commas, anything else as compact JSON.
    pub value: String,
}

/// One link of an item.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkSummary {
    /// Its relation (`license`, `via`, `alternate`, ...).
    pub rel: String,
    /// Where it leads (resolved against the item's address).
    pub href: String,
    /// Its title, when given.
    pub title: Option<String>,
}

/// `value` as a property's text (see [`PropertySummary::value`]).
fn property_text(value: &Value) -> String {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("yes".into()),
        Value::Bool(false) => Some("no".into()),
        Value::Null => Some("none".into()),
        _ => None,
    };
    let text = scalar(value)
        .or_else(|| {
            let list: Option<Vec<String>> = value.as_array()?.iter().map(scalar).collect();
            list.map(|l| l.join(", "))
        })
        .unwrap_or_else(|| value.to_string());
    cut(text)
}

/// `text` cut at [`LONGEST_VALUE`] characters, with an ellipsis.
fn cut(text: String) -> String {
    match text.char_indices().nth(LONGEST_VALUE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// One asset of an item.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetSummary {
    /// Its key in the item.
    pub key: String,
    /// Where it is (resolved against the item's address).
    pub href: String,
    /// Its title, when given.
    pub title: Option<String>,
    /// Its media type, when given.
    pub media_type: Option<String>,
    /// Its roles.
    pub roles: Vec<String>,
    /// Its size in bytes (`file:size`), when given.
    pub size: Option<u64>,
    /// The names of the other addresses it offers (the alternate-assets
    /// extension: `s3`, `https`, ...), in the order it gives them.
    pub alternates: Vec<String>,
}

impl ItemSummary {
    /// Describes an item document; `None` when it has no id.
    pub fn of(item: &Value) -> Option<ItemSummary> {
        Self::summary(item, true)
    }

    /// The summary of `item`, with its properties and links when `detailed`.
    fn summary(item: &Value, detailed: bool) -> Option<ItemSummary> {
        let id = item.get("id")?.as_str()?.to_string();
        let text = |pointer: &str| {
            item.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let href = links_of(item)
            .find(|l| l.get("rel").and_then(Value::as_str) == Some("self"))
            .and_then(|l| l.get("href").and_then(Value::as_str))
            .map(str::to_string);
        let base = href.as_deref().and_then(|h| url::Url::parse(h).ok());
        let resolve = |h: &str| match &base {
            Some(base) => base
                .join(h)
                .map_or_else(|_| h.to_string(), |u| u.to_string()),
            None => h.to_string(),
        };
        let assets: Vec<AssetSummary> = item
            .get("assets")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(key, asset)| {
                let field = |k: &str| asset.get(k).and_then(Value::as_str).map(str::to_string);
                Some(AssetSummary {
                    key: key.clone(),
                    href: resolve(asset.get("href")?.as_str()?),
                    title: field("title"),
                    media_type: field("type"),
                    roles: asset
                        .get("roles")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect(),
                    size: asset.get("file:size").and_then(Value::as_u64),
                    alternates: asset
                        .get("alternate")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .filter(|(_, alternate)| {
                            alternate.get("href").is_some_and(Value::is_string)
                        })
                        .map(|(name, _)| name.clone())
                        .collect(),
                })
            })
            .collect();
        let thumbnail = assets
            .iter()
            .find(|a| a.roles.iter().any(|r| r == "thumbnail") || a.key == "thumbnail")
            .map(|a| a.href.clone());
        let bbox = item.get("bbox").and_then(corners);
        let properties = item
            .get("properties")
            .filter(|_| detailed)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .take(MOST_PROPERTIES)
            .map(|(name, value)| PropertySummary {
                name: name.clone(),
                value: property_text(value),
            })
            .collect();
        const TREE: [&str; 6] = ["self", "root", "parent", "collection", "child", "item"];
        let links = links_of(item)
            .filter(|_| detailed)
            .filter_map(|link| {
                let rel = link.get("rel")?.as_str()?;
                if TREE.contains(&rel) {
                    return None;
                }
                Some(LinkSummary {
                    rel: cut(rel.to_string()),
                    href: resolve(link.get("href")?.as_str()?),
                    title: link
                        .get("title")
                        .and_then(Value::as_str)
                        .map(|title| cut(title.to_string())),
                })
            })
            .take(MOST_LINKS)
            .collect();
        Some(ItemSummary {
            id,
            collection: text("/collection"),
            href,
            bbox,
            geometry: item.get("geometry").filter(|g| !g.is_null()).cloned(),
            datetime: text("/properties/datetime").or_else(|| text("/properties/start_datetime")),
            assets,
            thumbnail,
            properties,
            links,
            detailed,
        })
    }

    /// [`ItemSummary::of`] without the properties and links.
    pub fn brief(item: &Value) -> Option<ItemSummary> {
        Self::summary(item, false)
    }
}

/// The links of a STAC document (none when it has no list of them).
fn links_of(document: &Value) -> impl Iterator<Item = &Value> {
    document
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn providers(value: &Value) -> Vec<String> {
    value
        .get("providers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn bbox(value: &Value) -> Option<[f64; 4]> {
    corners(value.pointer("/extent/spatial/bbox/0")?)
}

/// West, south, east, north of a STAC bbox, 2D or 3D (west, south, bottom,
/// east, north, top).
fn corners(bbox: &Value) -> Option<[f64; 4]> {
    let numbers: Vec<f64> = bbox.as_array()?.iter().filter_map(Value::as_f64).collect();
    match numbers.as_slice() {
        [w, s, e, n] | [w, s, _, e, n, _] => Some([*w, *s, *e, *n]),
        _ => None,
    }
}

fn interval(value: &Value) -> Option<[Option<String>; 2]> {
    let first = value.pointer("/extent/temporal/interval/0")?.as_array()?;
    let at = |i: usize| first.get(i).and_then(Value::as_str).map(str::to_string);
    Some([at(0), at(1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_is_summarised_with_resolved_asset_addresses() {
        let item = json!({
            "id": "scene-1", "collection": "landsat",
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "geometry": {"type": "Point", "coordinates": [2.0, 3.0]},
            "properties": {"start_datetime": "2024-01-01T00:00:00Z", "datetime": null},
            "links": [{"rel": "self", "href": "https://example.org/items/scene-1.json"}],
            "assets": {
                "red": {"href": "red.tif", "type": "image/tiff", "roles": ["data"], "file:size": 42},
                "preview": {"href": "https://cdn.example.org/p.png", "roles": ["thumbnail"],
                    "alternate": {"s3": {"href": "s3://cdn/p.png"}, "broken": {"title": "no href"}}}
            }
        });
        let summary = ItemSummary::of(&item).unwrap();
        assert!(summary.assets[0].alternates.is_empty());
        assert_eq!(summary.assets[1].alternates, ["s3"]);
        assert_eq!(summary.datetime.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(summary.assets[0].href, "https://example.org/items/red.tif");
        assert_eq!(summary.assets[0].size, Some(42));
        assert_eq!(
            summary.thumbnail.as_deref(),
            Some("https://cdn.example.org/p.png")
        );
        assert_eq!(summary.bbox, Some([1.0, 2.0, 3.0, 4.0]));
        assert!(summary.links.is_empty());
        assert!(ItemSummary::of(&json!({"type": "Feature"})).is_none());
        // Brief: all but the properties and links.
        let mut item = item;
        item["properties"]["platform"] = json!("landsat-9");
        let brief = ItemSummary::brief(&item).unwrap();
        assert!(!brief.detailed && brief.properties.is_empty());
        assert_eq!(brief.assets, ItemSummary::of(&item).unwrap().assets);
    }

    #[test]
    fn an_items_properties_and_own_links_are_kept_as_short_text() {
        let long = "é".repeat(400);
        let item = json!({
            "id": "scene-1",
            "properties": {
                "datetime": "2024-01-01T00:00:00Z", "eo:cloud_cover": 12.5,
                "instruments": ["oli", "tirs"], "landsat:correction": null,
                "sat:anx": true, "proj:centroid": {"lat": 1.5, "lon": 2},
                "note": long
            },
            "links": [
                {"rel": "self", "href": "https://example.org/items/scene-1.json"},
                {"rel": "parent", "href": "../collection.json"},
                {"rel": "license", "href": "../LICENSE.txt", "title": "The license"},
                {"rel": "via", "href": "https://landsatlook.usgs.gov/stac/scene-1"},
                {"rel": "alternate"}
            ]
        });
        let summary = ItemSummary::of(&item).unwrap();
        let text: Vec<(&str, &str)> = summary
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            &text[..6],
            [
                ("datetime", "2024-01-01T00:00:00Z"),
                ("eo:cloud_cover", "12.5"),
                ("instruments", "oli, tirs"),
                ("landsat:correction", "none"),
                ("sat:anx", "yes"),
                ("proj:centroid", r#"{"lat":1.5,"lon":2}"#),
            ]
        );
        assert_eq!(text[6].1.chars().count(), LONGEST_VALUE + 1);
        assert!(text[6].1.ends_with('…'));
        let links: Vec<(&str, &str, Option<&str>)> = summary
            .links
            .iter()
            .map(|l| (l.rel.as_str(), l.href.as_str(), l.title.as_deref()))
            .collect();
        assert_eq!(
            links,
            [
                (
                    "license",
                    "https://example.org/LICENSE.txt",
                    Some("The license")
                ),
                ("via", "https://landsatlook.usgs.gov/stac/scene-1", None),
            ]
        );
    }

    #[test]
    fn extents_and_providers_are_read_from_a_collection() {
        let collection = json!({
            "providers": [{"name": "USGS"}, {"name": "Element 84"}, {"roles": ["host"]}],
            "extent": {
                "spatial": {"bbox": [[-180.0, -90.0, 0.0, 180.0, 90.0, 100.0]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}
            }
        });
        assert_eq!(providers(&collection), ["USGS", "Element 84"]);
        assert_eq!(bbox(&collection), Some([-180.0, -90.0, 180.0, 90.0]));
        assert_eq!(
            interval(&collection),
            Some([Some("2020-01-01T00:00:00Z".into()), None])
        );
    }
}
