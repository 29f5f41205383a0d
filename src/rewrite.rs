//! Writing STAC out: items, collections and the root catalog at the destination,
//! with relative links and hrefs, `file:size` and `file:checksum` on every
//! mirrored asset, and the original href kept as `alternate.source.href`.
//!
//! Collections and the root catalog merge what is already there, so a later job
//! into the same destination adds to the catalog instead of replacing it.

use std::collections::BTreeSet;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::store::Version;

const FILE_EXTENSION: &str = "https://stac-extensions.github.io/file/v2.1.0/schema.json";
const ALTERNATE_EXTENSION: &str =
    "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json";

/// Fields of other kinds of document (a FeatureCollection's features, an
/// API's conformance), never written into an item or a collection.
const NOT_AN_ITEMS: [&str; 3] = ["features", "conformsTo", "numberMatched"];

/// Links that describe the catalog's own structure; they are rewritten.
const STRUCTURAL: [&str; 6] = ["self", "root", "parent", "collection", "child", "item"];

/// A mirrored asset, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    /// The asset's key.
    pub key: String,
    /// Its file name, in the item's folder.
    pub file_name: String,
    /// Its verified size.
    pub size: u64,
    /// The checksum to record: the catalog's own (verified), else sha2-256.
    pub checksum: String,
    /// The absolute address it was copied from.
    pub source: String,
}

/// The item document to write at `<collection>/<item>/<item>.json`, for the
/// item read from `base`. Assets not mirrored keep an absolute href (a
/// relative one would point into the mirror, at nothing).
///
/// `missing` are the assets that could not be copied, with why: each keeps
/// its original address and says so in `cairn:missing`.
pub fn item(
    source: &Value,
    base: Option<&url::Url>,
    mirrored: &[Mirrored],
    missing: &[(String, String)],
) -> Value {
    let mut item = source.clone();
    let Some(object) = item.as_object_mut() else {
        return item;
    };
    // An item, and only that: fields that would make a reader take the
    // document for something else (a FeatureCollection with features of
    // its own, an API) are the source's, not the mirror's.
    object.insert("type".into(), json!("Feature"));
    for field in NOT_AN_ITEMS {
        object.remove(field);
    }
    if let Some(Value::Object(assets)) = object.get_mut("assets") {
        // An asset's other addresses (alternate-assets) are the source's
        // words like its links: made absolute, without credentials, and
        // left out where the source may not point.
        for asset in assets.values_mut() {
            let Value::Object(asset) = asset else {
                continue;
            };
            match asset.get_mut("alternate") {
                Some(Value::Object(alternate)) => alternate.retain(|_, entry| match entry {
                    Value::Object(entry) => match entry.get_mut("href") {
                        Some(Value::String(href)) => outside(base, href),
                        Some(_) => false,
                        None => true,
                    },
                    _ => false,
                }),
                Some(_) => {
                    asset.remove("alternate");
                }
                None => {}
            }
        }
        for done in mirrored {
            let Some(Value::Object(asset)) = assets.get_mut(&done.key) else {
                continue;
            };
            asset.insert("href".into(), json!(format!("./{}", done.file_name)));
            asset.insert("file:size".into(), json!(done.size));
            asset.insert("file:checksum".into(), json!(done.checksum));
            let alternate = asset.entry("alternate").or_insert_with(|| json!({}));
            if !alternate.is_object() {
                *alternate = json!({});
            }
            if let Value::Object(alternate) = alternate {
                alternate.insert(
                    "source".into(),
                    json!({"href": crate::provenance::redact(&done.source), "title": "Where Cairn copied it from"}),
                );
            }
        }
        for (key, asset) in assets.iter_mut() {
            if mirrored.iter().any(|done| &done.key == key) {
                continue;
            }
            let mut refused = None;
            if let (Some(base), Some(Value::String(href))) = (base, asset.get_mut("href")) {
                // Kept without credentials or a signature: the output
                // catalog never carries a signed address.
                match crate::catalog::resolve(base, href) {
                    Ok(absolute) => *href = crate::provenance::redact(absolute.as_str()),
                    // An address the source may not point at (a file on
                    // this computer, from a remote catalog) is not kept as
                    // one: a later mirror of this mirror would follow it.
                    Err(why) => {
                        refused = Some(format!("not in the mirror: {why}"));
                        *href = "data:,".to_string();
                    }
                }
            }
            if let (Some(why), Value::Object(asset)) = (refused, &mut *asset) {
                asset.insert("cairn:missing".into(), json!(why));
            }
            if let (Some((_, why)), Value::Object(asset)) =
                (missing.iter().find(|(k, _)| k == key), asset)
            {
                asset.insert(
                    "cairn:missing".into(),
                    json!(format!("not in the mirror: {why}")),
                );
            }
        }
    }
    let mut links = outside_links(object, base);
    links.push(json!({"rel": "root", "href": "../../catalog.json", "type": "application/json"}));
    links.push(json!({"rel": "parent", "href": "../collection.json", "type": "application/json"}));
    links.push(
        json!({"rel": "collection", "href": "../collection.json", "type": "application/json"}),
    );
    object.insert("links".into(), Value::Array(links));
    add_extensions(object, &[FILE_EXTENSION, ALTERNATE_EXTENSION]);
    item
}

/// Adds what syncs found to an item document written by [`item`]: when the
/// source stopped listing it (`cairn:removed_upstream`, in its properties),
/// and, in each asset, the previous versions of its file kept beside it
/// (`cairn:previous_versions`: href, `file:size`, `file:checksum` and when
/// the new bytes replaced them, oldest first).
///
/// Both are this mirror's own: what the source said under these names
/// (a mirror of a mirror) is dropped, never carried over.
pub fn history(item: &mut Value, removed_at: Option<&str>, versions: &[(String, Version)]) {
    if let Some(Value::Object(properties)) = item.get_mut("properties") {
        properties.remove(REMOVED_FIELD);
        if let Some(at) = removed_at {
            properties.insert(REMOVED_FIELD.into(), json!(at));
        }
    }
    let Some(Value::Object(assets)) = item.get_mut("assets") else {
        return;
    };
    for asset in assets.values_mut() {
        if let Value::Object(asset) = asset {
            asset.remove(VERSIONS_FIELD);
        }
    }
    for (key, version) in versions {
        let Some(Value::Object(asset)) = assets.get_mut(key) else {
            continue;
        };
        let name = version.path.rsplit('/').next().unwrap_or_default();
        let entry = json!({
            "href": format!("./{name}"),
            "file:size": version.size,
            "file:checksum": version.checksum,
            "cairn:replaced_at": version.kept_at,
        });
        match asset
            .entry(VERSIONS_FIELD)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(list) => list.push(entry),
            other => *other = Value::Array(vec![entry]),
        }
    }
}

/// The property of an item the source no longer lists: when a sync found it gone.
pub const REMOVED_FIELD: &str = "cairn:removed_upstream";

/// The list, in an asset, of the previous versions of its file kept in the mirror.
pub const VERSIONS_FIELD: &str = "cairn:previous_versions";

/// The collection document at `<collection>/collection.json`, linking the
/// items in `items` (paths relative to the collection folder; add those the
/// collection there links already with
/// [`Destination::add_linked`](crate::destination::Destination::add_linked)).
///
/// The item links are written out one at a time as the document is
/// serialized, never held as JSON values: a collection may link a million.
pub fn collection(source: &Value, base: Option<&url::Url>, mut items: Hrefs) -> Collection {
    let mut collection = source.clone();
    if let Some(object) = collection.as_object_mut() {
        let mut links = outside_links(object, base);
        links.push(json!({"rel": "root", "href": "../catalog.json", "type": "application/json"}));
        links.push(json!({"rel": "parent", "href": "../catalog.json", "type": "application/json"}));
        object.insert("links".into(), Value::Array(links));
        // Collection-level assets are not mirrored: drop them rather than
        // leave links out of the mirror. Neither is what would make a
        // reader take it for something else (features, an API's).
        object.remove("assets");
        for field in NOT_AN_ITEMS {
            object.remove(field);
        }
        object.insert("type".into(), json!("Collection"));
        object.entry("stac_version").or_insert(json!("1.1.0"));
        items.sort();
    } else {
        items = Hrefs::default();
    }
    Collection {
        document: collection,
        items,
    }
}

/// A collection document to write, with its item links apart (see
/// [`collection`]); serializes as the whole document.
#[derive(Debug)]
pub struct Collection {
    /// The document, its `links` without the item links.
    document: Value,
    /// The item links, sorted, each once.
    items: Hrefs,
}

impl Collection {
    /// The whole document as one value.
    #[cfg(test)]
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Collection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(object) = self.document.as_object() else {
            return self.document.serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(object.len()))?;
        for (key, value) in object {
            if key == "links" {
                map.serialize_entry(key, &Links(value, &self.items))?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// A collection's `links`: its own, then one per item.
struct Links<'a>(&'a Value, &'a Hrefs);

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let own = self.0.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut seq = serializer.serialize_seq(Some(own.len() + self.1.len()))?;
        for link in own {
            seq.serialize_element(link)?;
        }
        for href in self.1.iter() {
            seq.serialize_element(&ItemLink(href))?;
        }
        seq.end()
    }
}

/// `{"rel": "item", "href": ..., "type": "application/geo+json"}`.
struct ItemLink<'a>(&'a str);

impl Serialize for ItemLink<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("rel", "item")?;
        map.serialize_entry("href", self.0)?;
        map.serialize_entry("type", "application/geo+json")?;
        map.end()
    }
}

/// Many hrefs in one string: a collection's item links, 8 bytes each beside
/// their text (a `Vec<String>` takes 24, and a JSON link several hundred).
#[derive(Debug, Default, Clone)]
pub struct Hrefs {
    text: String,
    /// Where each href starts and ends in `text`; `u32`, as `text` stays far
    /// below 4 GiB (a million links take about 40 MB).
    spans: Vec<(u32, u32)>,
}

impl Hrefs {
    /// No hrefs.
    pub fn new() -> Hrefs {
        Hrefs::default()
    }

    /// Room for `count` hrefs of `bytes` in all.
    pub fn with_capacity(count: usize, bytes: usize) -> Hrefs {
        Hrefs {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(count),
        }
    }

    /// Adds `href`.
    pub fn push(&mut self, href: &str) {
        self.push_parts(&[href]);
    }

    /// Adds the href made of `parts`, one after the other. An href that
    /// would take the text past 4 GiB is not added.
    pub fn push_parts(&mut self, parts: &[&str]) {
        let start = self.text.len();
        let length: usize = parts.iter().map(|p| p.len()).sum();
        let (Ok(from), Ok(to)) = (u32::try_from(start), u32::try_from(start + length)) else {
            tracing::warn!(
                "a collection links more than 4 GiB of item addresses; the rest are not linked"
            );
            return;
        };
        for part in parts {
            self.text.push_str(part);
        }
        self.spans.push((from, to));
    }

    /// [`Hrefs::add_linked_from`] for the document `bytes`.
    #[cfg(test)]
    pub fn add_linked(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        self.add_linked_from(bytes, &std::collections::HashSet::new())
    }

    /// Adds the hrefs of the `item` links of the collection document
    /// `reader` gives (one already at the destination), leaving out those
    /// in `left_out` (items taken out of the mirror); nothing if it is not
    /// one, and then why, in words. It is read as a stream (a collection
    /// linking a million items is over 100 MB), and only the hrefs are
    /// kept, never the links as values.
    pub fn add_linked_from(
        &mut self,
        reader: impl std::io::Read,
        left_out: &std::collections::HashSet<String>,
    ) -> std::result::Result<(), String> {
        let (text, spans) = (self.text.len(), self.spans.len());
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
            1 << 16,
            reader,
        ));
        let read = serde::de::DeserializeSeed::deserialize(
            linked::Document {
                hrefs: self,
                left_out,
            },
            &mut de,
        )
        .and_then(|()| de.end());
        read.map_err(|error| {
            self.text.truncate(text);
            self.spans.truncate(spans);
            let (line, column) = (error.line(), error.column());
            match error.classify() {
                serde_json::error::Category::Eof => "it is cut short".into(),
                serde_json::error::Category::Syntax => {
                    format!("it is not valid JSON at line {line}, column {column}")
                }
                serde_json::error::Category::Data => "it is not a collection document".into(),
                serde_json::error::Category::Io => format!("it could not be read: {error}"),
            }
        })
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each href, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.spans
            .iter()
            .map(|&(start, end)| &self.text[start as usize..end as usize])
    }

    /// Sorts them and keeps each once.
    fn sort(&mut self) {
        let text = &self.text;
        let of = |&(start, end): &(u32, u32)| &text[start as usize..end as usize];
        self.spans.sort_unstable_by(|a, b| of(a).cmp(of(b)));
        self.spans.dedup_by(|a, b| of(a) == of(b));
    }
}

/// The visitors of [`Hrefs::add_linked_from`]: they take a collection
/// document's `item` links one at a time, and keep nothing else.
mod linked {
    use std::collections::HashSet;
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    use super::Hrefs;

    /// A collection document: an object whose `links` are read.
    pub struct Document<'a> {
        pub hrefs: &'a mut Hrefs,
        pub left_out: &'a HashSet<String>,
    }

    impl<'de> DeserializeSeed<'de> for Document<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
            de.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Document<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a collection document")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = false;
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Links if seen => {
                        return Err(serde::de::Error::duplicate_field("links"));
                    }
                    Key::Links => {
                        seen = true;
                        map.next_value_seed(Links {
                            hrefs: &mut *self.hrefs,
                            left_out: self.left_out,
                        })?;
                    }
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The `links` array; anything else is an error (the document is not
    /// one Cairn wrote).
    struct Links<'a> {
        hrefs: &'a mut Hrefs,
        left_out: &'a HashSet<String>,
    }

    impl<'de> DeserializeSeed<'de> for Links<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
            de.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Links<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of links")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            // One link at a time: only the one being read is held.
            while let Some(link) = seq.next_element::<MaybeLink>()? {
                if let MaybeLink::Link { rel, href } = link
                    && rel == "item"
                    && !self.left_out.contains(&href)
                {
                    self.hrefs.push(&href);
                }
            }
            Ok(())
        }
    }

    /// A link with a text `rel` and `href` (each once), or anything else.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum MaybeLink {
        Link {
            rel: String,
            href: String,
        },
        #[allow(dead_code)]
        Other(IgnoredAny),
    }

    /// The keys of a document that matter: `links`, and the rest.
    enum Key {
        Links,
        Other,
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Key, D::Error> {
            struct Text;
            impl Visitor<'_> for Text {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                    Ok(match key {
                        "links" => Key::Links,
                        _ => Key::Other,
                    })
                }
            }
            de.deserialize_str(Text)
        }
    }
}

/// `document` without its structural links (`self`, `root`, `parent`,
/// `child`, `item`...), which the mirror's own replace: what is kept of a
/// collection while it is mirrored. A collection linking a million items is
/// kept without the million links.
pub fn without_structure(document: &Value) -> Value {
    match document.as_object() {
        Some(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match key.as_str() {
                    "links" => (key.clone(), Value::Array(other_links(object))),
                    _ => (key.clone(), value.clone()),
                })
                .collect(),
        ),
        None => document.clone(),
    }
}

/// A collection for items the source gave none.
pub fn stand_in_collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.1.0", "id": id,
        "description": "Items that had no collection in the source.",
        "license": "other",
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]}, "temporal": {"interval": [[null, null]]}},
        "links": []
    })
}

/// The root `catalog.json`, linking `children` (collection folders) and any
/// already linked there.
pub fn root(
    existing: Option<&Value>,
    source_url: &str,
    title: Option<&str>,
    children: &[String],
) -> Value {
    let mut hrefs: BTreeSet<String> = linked(existing, "child");
    hrefs.extend(
        children
            .iter()
            .map(|dir| format!("./{dir}/collection.json")),
    );
    let mut links =
        vec![json!({"rel": "root", "href": "./catalog.json", "type": "application/json"})];
    links.extend(
        hrefs
            .into_iter()
            .map(|href| json!({"rel": "child", "href": href, "type": "application/json"})),
    );
    let mut catalog = existing.cloned().unwrap_or_else(|| {
        json!({
            "type": "Catalog", "stac_version": "1.1.0", "id": "cairn-mirror",
            "title": title.map_or_else(|| "A Cairn mirror".to_string(), |t| format!("Mirror of {t}")),
            "description": format!("A copy made by Cairn of {}. Every asset was verified (file:size, file:checksum); each keeps its original address as alternate.source.href.", crate::provenance::redact(source_url)),
        })
    });
    if let Some(object) = catalog.as_object_mut() {
        object.insert("links".into(), Value::Array(links));
        // Which source this mirror is of: a job from another source is
        // refused here rather than mixed in (see `Destination::check_source`).
        object
            .entry(SOURCE_FIELD)
            .or_insert_with(|| json!(crate::provenance::redact(source_url)));
    }
    catalog
}

/// The stac-geoparquet index of every item of a mirror, at its root.
pub const INDEX: &str = "items.parquet";
/// Where every file of a mirror came from, one JSON object a line, at its root.
pub const PROVENANCE: &str = "provenance.jsonl";

/// Whether the root catalog `root` links the mirror's index and its
/// provenance file.
pub fn links_index(root: Option<&Value>) -> (bool, bool) {
    let hrefs = linked(root, "alternate");
    let described = linked(root, "describedby");
    (
        hrefs.contains(&format!("./{INDEX}")),
        described.contains(&format!("./{PROVENANCE}")),
    )
}

/// Links the root catalog to the mirror's index and to its provenance file,
/// each when the mirror has it.
pub fn link_index(root: &mut Value, (index, provenance): (bool, bool)) {
    let Some(Value::Array(links)) = root.get_mut("links") else {
        return;
    };
    links.retain(|link| {
        let href = link.get("href").and_then(Value::as_str).unwrap_or_default();
        href != format!("./{INDEX}") && href != format!("./{PROVENANCE}")
    });
    if index {
        links.push(json!({
            "rel": "alternate", "href": format!("./{INDEX}"),
            "type": "application/vnd.apache.parquet",
            "title": "Every item of this mirror in one table (stac-geoparquet)"
        }));
    }
    if provenance {
        links.push(json!({
            "rel": "describedby", "href": format!("./{PROVENANCE}"),
            "type": "application/x-ndjson",
            "title": "Where every file of this mirror came from and what the server said (JSON Lines)"
        }));
    }
}

/// The root catalog's field naming the source a mirror was made from.
pub const SOURCE_FIELD: &str = "cairn:source";

fn other_links(object: &Map<String, Value>) -> Vec<Value> {
    object
        .get("links")
        .and_then(Value::as_array)
        .map(|links| {
            links
                .iter()
                .filter(|l| {
                    let rel = l.get("rel").and_then(Value::as_str).unwrap_or_default();
                    !STRUCTURAL.contains(&rel) && rel != "items"
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The links of a document read from `base` that are not its structure
/// (license, via, derived_from...): they keep pointing where they did, made
/// absolute and without credentials or a signature, and are left out when
/// the source may not point there (a file on this computer, from a remote
/// catalog), so that a later mirror of the mirror never follows them there.
fn outside_links(object: &Map<String, Value>, base: Option<&url::Url>) -> Vec<Value> {
    other_links(object)
        .into_iter()
        .filter_map(|mut link| {
            let keep = match link.get_mut("href") {
                Some(Value::String(href)) => outside(base, href),
                Some(_) => false,
                None => true,
            };
            keep.then_some(link)
        })
        .collect()
}

/// Makes `href`, read in a document from `base`, the absolute address to
/// keep in the mirror (without credentials or a signature); false when the
/// document may not point there (see [`crate::catalog::resolve`]). Without
/// a base, only an absolute address that is not a file's is kept.
fn outside(base: Option<&url::Url>, href: &mut String) -> bool {
    let absolute = match base {
        Some(base) => crate::catalog::resolve(base, href).ok(),
        None => url::Url::parse(href)
            .ok()
            .filter(|url| url.scheme() != "file"),
    };
    match absolute {
        Some(absolute) => {
            *href = crate::provenance::redact(absolute.as_str());
            true
        }
        None => false,
    }
}

fn linked(existing: Option<&Value>, rel: &str) -> BTreeSet<String> {
    existing
        .and_then(|v| v.get("links"))
        .and_then(Value::as_array)
        .map(|links| {
            links
                .iter()
                .filter(|l| l.get("rel").and_then(Value::as_str) == Some(rel))
                .filter_map(|l| l.get("href").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn add_extensions(object: &mut Map<String, Value>, extensions: &[&str]) {
    let list = object.entry("stac_extensions").or_insert_with(|| json!([]));
    if let Value::Array(list) = list {
        for extension in extensions {
            if !list.iter().any(|e| e.as_str() == Some(extension)) {
                list.push(json!(extension));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_points_at_its_local_files_and_keeps_its_sources() {
        let source = json!({"type": "Feature", "id": "i", "links": [
                {"rel": "self", "href": "https://x.test/i.json"},
                {"rel": "license", "href": "https://x.test/license"},
                {"rel": "via", "href": "file:///home/someone/notes.txt"},
                {"rel": "derived_from", "href": "../raw/i.json"}],
            "assets": {"data": {"href": "https://x.test/d.tif", "roles": ["data"]},
                       "other": {"href": "https://x.test/o.tif"}}});
        let base = url::Url::parse("https://x.test/c/i.json").unwrap();
        let mut source = source;
        source["assets"]["thumb"] = json!({"href": "./t.png"});
        source["assets"]["local"] = json!({"href": "file:///etc/passwd"});
        let out = item(
            &source,
            Some(&base),
            &[Mirrored {
                key: "data".into(),
                file_name: "d.tif".into(),
                size: 3,
                checksum: "1220ab".into(),
                source: "https://x.test/d.tif".into(),
            }],
            &[("thumb".to_string(), "was not found".to_string())],
        );
        assert_eq!(out["assets"]["thumb"]["href"], "https://x.test/c/t.png");
        assert_eq!(out["assets"]["local"]["href"], "data:,");
        assert!(
            out["assets"]["local"]["cairn:missing"]
                .as_str()
                .unwrap()
                .contains("a file on this computer")
        );
        assert_eq!(
            out["assets"]["thumb"]["cairn:missing"],
            "not in the mirror: was not found"
        );
        let data = &out["assets"]["data"];
        assert_eq!(data["href"], "./d.tif");
        assert_eq!(data["file:size"], 3);
        assert_eq!(data["alternate"]["source"]["href"], "https://x.test/d.tif");
        assert_eq!(out["assets"]["other"]["href"], "https://x.test/o.tif");
        let rels: Vec<&str> = out["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(
            rels,
            ["license", "derived_from", "root", "parent", "collection"]
        );
        assert_eq!(out["links"][1]["href"], "https://x.test/raw/i.json");
        assert!(
            out["stac_extensions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == FILE_EXTENSION)
        );
    }

    #[test]
    fn other_addresses_of_assets_and_collections_are_kept_only_where_the_source_may_point() {
        let base = url::Url::parse("https://x.test/c/i.json").unwrap();
        let hostile = json!({
            "evil": {"href": "file:///etc/passwd"},
            "up": {"href": "../../up.tif"},
            "signed": {"href": "https://u:secret@x.test/d.tif?X-Amz-Signature=abc&v=2"},
            "odd": {"href": 7},
            "flat": "file:///etc/passwd",
            "plain": {"title": "no address"}});
        let source = json!({"type": "FeatureCollection", "id": "i", "links": [],
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core"],
            "features": [{"type": "Feature", "id": "inner",
                          "assets": {"x": {"href": "file:///etc/passwd"}}}],
            "assets": {"data": {"href": "https://x.test/d.tif", "alternate": hostile.clone()},
                       "other": {"href": "https://x.test/o.tif", "alternate": hostile},
                       "flat": {"href": "https://x.test/f.tif", "alternate": "file:///etc/passwd"}}});
        let done = |key: &str| Mirrored {
            key: key.into(),
            file_name: format!("{key}.tif"),
            size: 1,
            checksum: "1220ab".into(),
            source: format!("https://x.test/{key}.tif"),
        };
        let out = item(&source, Some(&base), &[done("data"), done("flat")], &[]);
        for key in ["data", "other"] {
            let alternate = out["assets"][key]["alternate"].as_object().unwrap();
            assert!(!alternate.contains_key("evil"), "{alternate:?}");
            assert!(!alternate.contains_key("odd"), "{alternate:?}");
            assert!(!alternate.contains_key("flat"), "{alternate:?}");
            assert_eq!(alternate["up"]["href"], "https://x.test/up.tif");
            assert_eq!(alternate["signed"]["href"], "https://x.test/d.tif?v=2");
            assert_eq!(alternate["plain"]["title"], "no address");
        }
        assert_eq!(
            out["assets"]["data"]["alternate"]["source"]["href"],
            "https://x.test/data.tif"
        );
        assert_eq!(
            out["assets"]["flat"]["alternate"],
            json!({"source": {"href": "https://x.test/flat.tif", "title": "Where Cairn copied it from"}})
        );
        assert!(!out.to_string().contains("/etc/passwd"));
        // An item, whatever the source called it, with nothing of another
        // kind of document.
        assert_eq!(out["type"], "Feature");
        assert!(out.get("features").is_none() && out.get("conformsTo").is_none());

        let base = url::Url::parse("https://x.test/c/collection.json").unwrap();
        let source = json!({"id": "c", "conformsTo": ["https://api.stacspec.org/v1.0.0/core"],
            "features": [], "links": [
            {"rel": "license", "href": "../LICENSE"},
            {"rel": "via", "href": "file:///etc/passwd"},
            {"rel": "related", "href": "https://u:p@x.test/r?sig=s&sv=1&sp=r&keep=1"},
            {"rel": "describedby", "href": ["not", "an", "address"]},
            {"rel": "item", "href": "./i.json"}]});
        let out = collection(&source, Some(&base), Hrefs::new()).to_value();
        let links: Vec<(&str, &str)> = out["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["rel"].as_str().unwrap(), l["href"].as_str().unwrap()))
            .collect();
        assert_eq!(
            links,
            [
                ("license", "https://x.test/LICENSE"),
                ("related", "https://x.test/r?keep=1"),
                ("root", "../catalog.json"),
                ("parent", "../catalog.json"),
            ]
        );
        assert_eq!(out["type"], "Collection");
        assert!(out.get("features").is_none() && out.get("conformsTo").is_none());
    }

    #[test]
    fn item_links_are_read_as_a_stream_leaving_out_those_taken_out() {
        let mut links = Vec::new();
        for n in 0..3000 {
            links.push(json!({"rel": "item", "href": format!("./i{n}/i{n}.json"), "type": "application/geo+json"}));
        }
        links.push(json!({"type": "application/json", "href": "../catalog.json", "rel": "root"}));
        // Escapes, keys in any order and values of other kinds.
        links.push(
            json!({"href": "./\u{e9}/\u{e9}.json", "title": {"a": [1, null]}, "rel": "item"}),
        );
        let document =
            json!({"id": "c", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}}, "links": links});
        let text = serde_json::to_string_pretty(&document).unwrap();
        let bytes = text.replace('\u{e9}', "\\u00e9").into_bytes();
        let left_out = ["./i7/i7.json".to_string()].into_iter().collect();
        let mut streamed = Hrefs::new();
        // One byte at a time: nothing depends on how the reader splits it.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        streamed
            .add_linked_from(Trickle(&bytes), &left_out)
            .unwrap();
        assert_eq!(streamed.len(), 3000);
        let hrefs: Vec<&str> = streamed.iter().collect();
        assert_eq!(hrefs[0], "./i0/i0.json");
        assert!(!hrefs.contains(&"./i7/i7.json"));
        assert_eq!(hrefs[2999], "./\u{e9}/\u{e9}.json");
    }

    #[test]
    fn collections_and_the_root_merge_what_is_already_there() {
        let mut items = Hrefs::new();
        items.push("./b/b.json");
        let before = collection(&json!({"id": "c", "links": []}), None, items).to_value();
        let mut items = Hrefs::new();
        items.push("./a/a.json");
        items
            .add_linked(&serde_json::to_vec(&before).unwrap())
            .unwrap();
        // Links that are not item links, or not links at all, are left out.
        items
            .add_linked(
                br#"{"links": [7, {"rel": 1, "href": "./x/x.json"}, {"rel": "item", "href": 2},
                {"rel": "child", "href": "./y"}, {"rel": "item", "href": "./b/b.json"}]}"#,
            )
            .unwrap();
        // A link with two rels or two hrefs is not taken.
        items
            .add_linked(
                br#"{"links": [{"rel": "self", "rel": "item", "href": "./d/d.json"},
                {"rel": "item", "href": "./e/e.json", "href": "./f/f.json"}]}"#,
            )
            .unwrap();
        // A value out of range or a lone surrogate anywhere in a link spoils
        // the document, as do links that are not a list, text that is not
        // JSON, and a document that breaks off or goes on after its end: it
        // adds none of its links, and says why.
        let spoiled: [(&[u8], &str); 7] = [
            (br#"{"links": null}"#, "not a collection"),
            (b"not json", "not valid JSON at line 1, column 2"),
            (
                br#"{"links": [{"rel": "item", "href": "./z/z.json", "title": 1e999}]}"#,
                "not",
            ),
            (
                br#"{"links": [{"rel": "item", "href": "./z/z.json", "t": "\ud800"}]}"#,
                "not",
            ),
            (
                br#"{"links": [{"rel": "item", "href": "./z/z.json"}"#,
                "cut short",
            ),
            (
                br#"{"links": [{"rel": "item", "href": "./z/z.json"}]} x"#,
                "not valid JSON",
            ),
            (
                br#"{"links": [{"rel": "item", "href": "./z/z.json"}], "links": []}"#,
                "not",
            ),
        ];
        for (bytes, why) in spoiled {
            let said = items.add_linked(bytes).unwrap_err();
            assert!(said.contains(why), "{said}");
        }
        let after = collection(&json!({"id": "c", "links": []}), None, items).to_value();
        let items: Vec<&str> = after["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["rel"] == "item")
            .map(|l| l["href"].as_str().unwrap())
            .collect();
        assert_eq!(items, ["./a/a.json", "./b/b.json"]);
        assert_eq!(after["links"][0]["rel"], "root");
        assert_eq!(after["links"][2]["type"], "application/geo+json");
        let first = root(
            None,
            "https://x.test/catalog.json",
            Some("X"),
            &["c".into()],
        );
        let second = root(
            Some(&first),
            "https://x.test/catalog.json",
            Some("X"),
            &["d".into()],
        );
        assert_eq!(second["title"], "Mirror of X");
        assert_eq!(second["links"].as_array().unwrap().len(), 3);
    }
}
