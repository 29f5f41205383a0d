//! `items.parquet`: every item of a mirror in one stac-geoparquet table, at
//! the mirror's root and linked from its catalog, for DuckDB, GeoPandas,
//! rustac and every tool that reads GeoParquet.
//!
//! The items are read from the mirror itself (the root catalog's
//! collections, each collection's item links), so the index holds what the
//! mirror holds, whichever job or state file wrote it. It is written with
//! the `stac` crate's encoder (which adds the `geo` and `stac-geoparquet`
//! metadata) in row groups, in two passes over the items so that memory
//! does not follow the number of items:
//!
//! 1. Every item is looked at for the shape of its fields (each field's path
//!    and the kind of its value). The few items that bring a shape not seen
//!    before are kept: the schema inferred from them is the schema of all.
//!    A field that holds values of different kinds in different items (a
//!    number here, text there) is written as text in every row.
//! 2. Every item is encoded against that schema, a slice at a time.
//!
//! An item the encoder cannot take (no geometry, not valid STAC) stays in
//! the catalog and is left out of the index, and the summary says which.

use std::collections::HashSet;
use std::io::Write;

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::Deserialize;
use serde_json::Value;
use stac::geoparquet::{Compression, WriterOptions, WriterState, ZstdLevel};

use crate::destination::Destination;
use crate::folder::Folder;
use crate::rewrite::{Hrefs, INDEX};
use crate::{Error, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Items encoded at a time.
const SLICE: usize = 1_000;
/// Rows kept in memory before they are written as one row group.
const ROW_GROUP: usize = 10_000;
/// At most this many items set the schema; a field first seen after them is
/// left out of the index (it stays in the item's own document).
const MAX_PROBES: usize = 2_000;
/// At most this many field shapes are told apart (items whose assets have
/// keys of their own would otherwise bring new ones without end).
const MAX_SHAPES: usize = 100_000;
/// At most this many probes are tried in turn when they do not agree.
const AGREE: usize = 200;
/// Items named in the summary among those left out.
const NAMED: usize = 20;

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    /// Items in the index.
    pub items: u64,
    /// Items left out, with why (the first few).
    pub left_out: Vec<(String, String)>,
    /// How many were left out in all.
    pub left_out_count: u64,
}

impl Indexed {
    fn leave_out(&mut self, path: &str, why: impl Into<String>) {
        self.left_out_count += 1;
        if self.left_out.len() < NAMED {
            self.left_out.push((path.to_string(), why.into()));
        }
    }
}

/// Writes `items.parquet` at the root of the mirror at `destination` from
/// the items its catalog links (`local` as in [`Destination::local_folder`]).
/// A mirror without items gets none (an empty table would have no schema).
pub async fn write(
    destination: &Destination,
    local: &Folder,
    cancel: &CancellationToken,
) -> Result<Indexed> {
    let temporary = format!("{INDEX}.tmp");
    let file = local
        .create(&temporary)
        .map_err(|e| Error::io(&local.display(&temporary), e))?;
    let encoded = encode(destination, local, file, cancel).await;
    let indexed = match encoded {
        Ok(Some(indexed)) => indexed,
        Ok(None) => {
            let _ = local.remove(&temporary);
            let _ = local.remove(INDEX);
            return Ok(Indexed::default());
        }
        Err(_) if cancel.is_cancelled() => {
            let _ = local.remove(&temporary);
            return Err(Error::Cancelled);
        }
        Err(why) => {
            let _ = local.remove(&temporary);
            return Err(Error::io(&local.display(INDEX), std::io::Error::other(why)));
        }
    };
    local
        .rename(&temporary, INDEX)
        .map_err(|e| Error::io(&local.display(INDEX), e))?;
    destination.publish(local, INDEX, None, cancel).await?;
    destination.discard_staged(local, INDEX);
    Ok(indexed)
}

/// Writes the index of the mirror at `destination` into the new file
/// `path` (made through a temporary beside it); `None` when the mirror has
/// no item to index.
pub async fn write_file(
    destination: &Destination,
    local: &Folder,
    path: &std::path::Path,
    cancel: &CancellationToken,
) -> Result<Option<Indexed>> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let file = std::fs::File::create(&temporary).map_err(|e| Error::io(&temporary, e))?;
    match encode(destination, local, file, cancel).await {
        Ok(Some(indexed)) => {
            std::fs::rename(&temporary, path).map_err(|e| Error::io(path, e))?;
            Ok(Some(indexed))
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&temporary);
            Ok(None)
        }
        Err(_) if cancel.is_cancelled() => {
            let _ = std::fs::remove_file(&temporary);
            Err(Error::Cancelled)
        }
        Err(why) => {
            let _ = std::fs::remove_file(&temporary);
            Err(Error::io(path, std::io::Error::other(why)))
        }
    }
}

/// Encodes every item of the mirror into `out`, in two passes; `None` when
/// there is no item to index. The error is said in words.
///
/// In each pass the items are read and parsed here while another thread
/// takes them in (their shapes, then their rows), so that the two halves of
/// the work share the machine's cores.
async fn encode(
    destination: &Destination,
    local: &Folder,
    out: std::fs::File,
    cancel: &CancellationToken,
) -> std::result::Result<Option<Indexed>, String> {
    let failed = |reason: String| format!("the index of the items could not be written: {reason}");
    // Pass 1: the shapes of every item; the items that bring new ones.
    let (sender, mut items) = mpsc::channel::<Option<Value>>(QUEUE);
    let shaping = tokio::task::spawn_blocking(move || {
        let mut shapes = Shapes::default();
        let mut probes: Vec<Value> = Vec::new();
        while let Some(item) = items.blocking_recv() {
            let Some(item) = item else { continue };
            if shapes.take(&item) && probes.len() < MAX_PROBES {
                probes.push(item);
            }
        }
        (shapes, probes)
    });
    let none = HashSet::new();
    let read = each_item(destination, local, cancel, &sender, |_, bytes| {
        bytes
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .and_then(|item| prepared(item, &none))
    })
    .await;
    drop(sender);
    let (shapes, probes) = shaping.await.map_err(|e| failed(e.to_string()))?;
    read.map_err(|e| failed(e.to_string()))?;
    let mixed = shapes.mixed();
    drop(shapes);
    let probes: Vec<stac::Item> = probes
        .into_iter()
        .filter_map(|item| prepared(item, &mixed))
        .filter_map(|item| serde_json::from_value(item).ok())
        .collect();
    // A probe the encoder refuses on its own would spoil the schema of all:
    // it is left to the second pass, which leaves it out by itself.
    let probes: Vec<stac::Item> = probes
        .into_iter()
        .filter(|probe| new_state(vec![probe.clone()]).is_ok())
        .collect();
    if probes.is_empty() {
        return Ok(None);
    }
    let (state, first) = match new_state(probes.clone()) {
        Ok(made) => made,
        // Probes that the encoder takes one by one and not together: as many
        // as agree, taken in turn.
        Err(_) => {
            let mut agreed: Vec<stac::Item> = Vec::new();
            for probe in probes.into_iter().take(AGREE) {
                let mut trial = agreed.clone();
                trial.push(probe.clone());
                if new_state(trial).is_ok() {
                    agreed.push(probe);
                }
            }
            new_state(agreed).map_err(failed)?
        }
    };
    let properties: WriterProperties = WriterOptions::new()
        .with_compression(ZstdLevel::try_new(3).map_or(Compression::SNAPPY, Compression::ZSTD))
        .with_max_row_group_row_count(ROW_GROUP)
        .into();
    let writer = ArrowWriter::try_new(
        std::io::BufWriter::new(out),
        first.schema(),
        Some(properties),
    )
    .map_err(|e| failed(e.to_string()))?;
    drop(first);

    // Pass 2: every item, against that schema. Parsed here, encoded and
    // written by the other thread.
    let (sender, mut items) = mpsc::channel::<(String, Vec<u8>, ItemRow)>(QUEUE);
    let kept_mixed = mixed.clone();
    let stop = cancel.clone();
    let writing = tokio::task::spawn_blocking(move || {
        let mut rows = Rows {
            mixed: kept_mixed,
            state,
            writer,
            indexed: Indexed::default(),
            items: Vec::with_capacity(SLICE),
            documents: Vec::with_capacity(SLICE),
            error: None,
        };
        // Stops at a failed write (the reading then stops too) or a cancel.
        while rows.error.is_none()
            && !stop.is_cancelled()
            && let Some((path, bytes, item)) = items.blocking_recv()
        {
            match item {
                Ok(item) => {
                    rows.items.push(item);
                    rows.documents.push((path, bytes));
                    if rows.items.len() >= SLICE {
                        rows.flush();
                    }
                }
                Err(why) => rows.indexed.leave_out(&path, why),
            }
        }
        if !stop.is_cancelled() {
            rows.flush();
        }
        rows
    });
    let read = each_item(destination, local, cancel, &sender, |path, bytes| {
        let item = row(bytes.as_deref(), &mixed);
        (path.to_string(), bytes.unwrap_or_default(), item)
    })
    .await;
    drop(sender);
    let Rows {
        state,
        mut writer,
        indexed,
        error,
        ..
    } = writing.await.map_err(|e| failed(e.to_string()))?;
    read.map_err(|e| failed(e.to_string()))?;
    if cancel.is_cancelled() {
        return Err(failed(Error::Cancelled.to_string()));
    }
    if let Some(why) = error {
        return Err(failed(why));
    }
    for entry in state.into_metadata().map_err(|e| failed(e.to_string()))? {
        writer.append_key_value_metadata(entry);
    }
    let mut out = writer.into_inner().map_err(|e| failed(e.to_string()))?;
    out.flush().map_err(|e| failed(e.to_string()))?;
    out.get_ref()
        .sync_all()
        .map_err(|e| failed(e.to_string()))?;
    Ok(Some(indexed))
}

/// The item document `bytes` as the second pass encodes it (see
/// [`prepared`]), or why it is left out.
fn row(bytes: Option<&[u8]>, mixed: &HashSet<String>) -> ItemRow {
    const UNREADABLE: &str = "it could not be read, or is not JSON";
    let Some(bytes) = bytes else {
        return Err(UNREADABLE.into());
    };
    // Straight into an item when no field is to be made text: the same
    // item as by way of a JSON value, parsed once.
    if mixed.is_empty()
        && let Ok(mut item) = serde_json::from_slice::<stac::Item>(bytes)
        && item.geometry.is_some()
    {
        let properties = &mut item.properties.additional_fields;
        properties.remove("proj:geometry");
        for name in TOP_LEVEL {
            properties.remove(name);
        }
        return Ok(item);
    }
    // Otherwise, and to say why an item is left out, by way of the value.
    let Ok(item) = serde_json::from_slice::<Value>(bytes) else {
        return Err(UNREADABLE.into());
    };
    let Some(item) = prepared(item, mixed) else {
        return Err("it has no geometry".into());
    };
    stac::Item::deserialize(&item).map_err(|e| format!("it is not a valid STAC item ({e})"))
}

/// Items read ahead of the thread that takes them in.
const QUEUE: usize = 64;

/// An item as the second pass reads it: parsed, or why it is left out.
type ItemRow = std::result::Result<stac::Item, String>;

/// The second pass's writing half: the encoder, the file, and the slice of
/// items waiting to be encoded (with their documents, to take them again one
/// by one).
struct Rows {
    mixed: HashSet<String>,
    state: WriterState,
    writer: ArrowWriter<std::io::BufWriter<std::fs::File>>,
    indexed: Indexed,
    items: Vec<stac::Item>,
    documents: Vec<(String, Vec<u8>)>,
    error: Option<String>,
}

impl Rows {
    /// Encodes and writes the slice. A slice the encoder refuses is encoded
    /// again one item at a time, so that only the items it refuses are left
    /// out (and named).
    fn flush(&mut self) {
        let whole = std::mem::take(&mut self.items);
        let documents = std::mem::take(&mut self.documents);
        if whole.is_empty() || self.error.is_some() {
            return;
        }
        let count = whole.len() as u64;
        let batches = match encoded(&mut self.state, whole) {
            Ok(batch) => vec![(batch, count)],
            Err(_) => documents
                .iter()
                .filter_map(|(path, bytes)| {
                    let one = row(Some(bytes), &self.mixed)
                        .and_then(|item| encoded(&mut self.state, vec![item]));
                    match one {
                        Ok(batch) => Some((batch, 1)),
                        Err(why) => {
                            self.indexed
                                .leave_out(path, format!("the index cannot take it: {why}"));
                            None
                        }
                    }
                })
                .collect(),
        };
        for (batch, count) in batches {
            match self.writer.write(&batch) {
                Ok(()) => self.indexed.items += count,
                Err(why) => {
                    self.error = Some(why.to_string());
                    return;
                }
            }
        }
    }
}

/// Fields of an item that the encoder puts beside its properties: a
/// property of one of these names would collide with them (and the encoder
/// fails on it), so it stays in the item's document, out of the index.
const TOP_LEVEL: [&str; 9] = [
    "type",
    "stac_version",
    "stac_extensions",
    "id",
    "geometry",
    "bbox",
    "links",
    "assets",
    "collection",
];

/// A new encoder whose schema comes from `items`, with their batch. The
/// encoder of the stac crate panics on some shapes it does not expect: that
/// is an error here, never the end of the job.
fn new_state(
    items: Vec<stac::Item>,
) -> std::result::Result<(WriterState, arrow_array::RecordBatch), String> {
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        WriterState::new(stac::geoarrow::Options::default(), items)
    }));
    match made {
        Ok(made) => made.map_err(|e| e.to_string()),
        Err(_) => Err("the encoder could not take it".into()),
    }
}

/// `items` encoded by `state` (see [`new_state`] for the panics).
fn encoded(
    state: &mut WriterState,
    items: Vec<stac::Item>,
) -> std::result::Result<arrow_array::RecordBatch, String> {
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.encode(items)));
    match made {
        Ok(made) => made.map_err(|e| e.to_string()),
        Err(_) => Err("the encoder could not take it".into()),
    }
}

/// `item` as it goes into the index, or `None` when it cannot: without a
/// geometry, or not an object. `proj:geometry` is left out (the encoder
/// takes it only when every item has one), and so are properties named as
/// the item's own fields; fields at `mixed` paths are made text.
fn prepared(mut item: Value, mixed: &HashSet<String>) -> Option<Value> {
    let object = item.as_object_mut()?;
    if !object.get("geometry").is_some_and(Value::is_object) {
        return None;
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.remove("proj:geometry");
        for name in TOP_LEVEL {
            properties.remove(name);
        }
    }
    for path in mixed {
        to_text(&mut item, &steps(path));
    }
    Some(item)
}

/// Marks an object's key in a path (the key follows, as JSON text, so that
/// no key can contain the marks).
const KEY: char = '\u{1f}';
/// Marks every element of an array in a path.
const EACH: char = '\u{1e}';
/// Separates a path from the kind of its value.
const KIND: char = '\u{1d}';

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Each,
}

/// The steps of a path made by [`Shapes`].
fn steps(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = path;
    while let Some(mark) = rest.chars().next() {
        rest = &rest[mark.len_utf8()..];
        if mark == EACH {
            steps.push(Step::Each);
            continue;
        }
        let end = rest.find([KEY, EACH]).unwrap_or(rest.len());
        if let Ok(key) = serde_json::from_str::<String>(&rest[..end]) {
            steps.push(Step::Key(key));
        }
        rest = &rest[end..];
    }
    steps
}

/// Makes the values at `path` JSON text.
fn to_text(value: &mut Value, path: &[Step]) {
    let Some((first, rest)) = path.split_first() else {
        if !value.is_null() && !value.is_string() {
            *value = Value::String(value.to_string());
        }
        return;
    };
    match (first, value) {
        (Step::Each, Value::Array(elements)) => {
            for element in elements {
                to_text(element, rest);
            }
        }
        (Step::Key(key), Value::Object(object)) => {
            if let Some(v) = object.get_mut(key) {
                to_text(v, rest);
            }
        }
        // Not what the path expects here: the whole value becomes text.
        (_, value) => to_text(value, &[]),
    }
}

/// The shapes of the items seen so far: every field's path with the kind
/// of its value.
#[derive(Debug, Default)]
struct Shapes {
    seen: HashSet<String>,
}

impl Shapes {
    /// Notes the shapes of `item`; whether any was new.
    fn take(&mut self, item: &Value) -> bool {
        let mut path = String::new();
        let mut new = false;
        if let Value::Object(object) = item {
            for (key, value) in object {
                // The geometry is encoded apart; a bbox by its length.
                match key.as_str() {
                    "geometry" => continue,
                    "bbox" => {
                        let len = value.as_array().map_or(0, Vec::len);
                        new |= self.insert(&format!("{KEY}\"bbox\"{KIND}{len}"));
                        continue;
                    }
                    _ => {}
                }
                path.clear();
                push_key(&mut path, key);
                new |= self.walk(&mut path, value);
            }
        }
        new
    }

    /// Notes `shape`; whether it was new (made into a `String` only then).
    fn insert(&mut self, shape: &str) -> bool {
        if self.seen.len() >= MAX_SHAPES || self.seen.contains(shape) {
            return false;
        }
        self.seen.insert(shape.to_string())
    }

    fn walk(&mut self, path: &mut String, value: &Value) -> bool {
        let kind = match value {
            Value::Null => 'n',
            Value::Bool(_) => 'b',
            Value::Number(n) if n.is_f64() => 'f',
            Value::Number(_) => 'i',
            Value::String(_) => 's',
            Value::Array(_) => 'a',
            Value::Object(_) => 'o',
        };
        let at = path.len();
        path.push(KIND);
        path.push(kind);
        let mut new = self.insert(path);
        path.truncate(at);
        match value {
            Value::Array(elements) => {
                path.push(EACH);
                for element in elements {
                    new |= self.walk(path, element);
                }
            }
            Value::Object(object) => {
                for (key, element) in object {
                    path.truncate(at);
                    push_key(path, key);
                    new |= self.walk(path, element);
                }
            }
            _ => {}
        }
        path.truncate(at);
        new
    }

    /// The paths whose values are of more than one kind (numbers of both
    /// kinds and nulls aside), which the index writes as text. A path under
    /// another such path is left to it.
    fn mixed(&self) -> HashSet<String> {
        let mut kinds: std::collections::BTreeMap<&str, HashSet<char>> = Default::default();
        for shape in &self.seen {
            let Some((path, kind)) = shape.rsplit_once(KIND) else {
                continue;
            };
            let kind = match kind {
                "n" => continue,
                "f" | "i" => 'i',
                other => other.chars().next().unwrap_or('?'),
            };
            if path == format!("{KEY}\"bbox\"") {
                continue;
            }
            kinds.entry(path).or_default().insert(kind);
        }
        let mixed: Vec<&str> = kinds
            .into_iter()
            .filter(|(_, kinds)| kinds.len() > 1)
            .map(|(path, _)| path)
            .collect();
        mixed
            .iter()
            .filter(|path| {
                !mixed.iter().any(|other| {
                    path.len() > other.len()
                        && path.starts_with(*other)
                        && path[other.len()..].starts_with([KEY, EACH])
                })
            })
            .map(|path| path.to_string())
            .collect()
    }
}

/// Adds `key` to a path.
fn push_key(path: &mut String, key: &str) {
    path.push(KEY);
    path.push_str(&serde_json::to_string(key).unwrap_or_default());
}

/// Sends `each`'s answer for the path and document bytes of every item of
/// the mirror to `to` (and stops when nothing takes them any more):
/// the root catalog's child links to collections, then each collection's
/// item links, as Cairn writes them (relative, inside the mirror). A link
/// that leads anywhere else is not followed.
async fn each_item<T>(
    destination: &Destination,
    local: &Folder,
    cancel: &CancellationToken,
    to: &mpsc::Sender<T>,
    mut each: impl FnMut(&str, Option<Vec<u8>>) -> T,
) -> Result<()> {
    let Some(root) = destination.read_json(local, "catalog.json").await else {
        return Ok(());
    };
    let mut collections: Vec<String> = links(&root, "child")
        .filter_map(|href| inside("", href))
        .collect();
    collections.sort();
    collections.dedup();
    for collection in collections {
        let Some(bytes) = destination.read(local, &collection).await else {
            continue;
        };
        let mut hrefs = Hrefs::new();
        hrefs.add_linked(&bytes);
        drop(bytes);
        let dir = collection.rsplit_once('/').map_or("", |(dir, _)| dir);
        for href in hrefs.iter() {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let Some(path) = inside(dir, href) else {
                continue;
            };
            let bytes = destination.read(local, &path).await;
            if to.send(each(&path, bytes)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The hrefs of `document`'s links of relation `rel`.
fn links<'a>(document: &'a Value, rel: &'a str) -> impl Iterator<Item = &'a str> {
    document
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |link| link.get("rel").and_then(Value::as_str) == Some(rel))
        .filter_map(|link| link.get("href").and_then(Value::as_str))
}

/// The path in the mirror of the relative `href` found in the folder
/// `dir`, or `None` when it is not a plain path beneath it (an address, an
/// absolute path, `..`).
pub fn inside(dir: &str, href: &str) -> Option<String> {
    let relative = href.strip_prefix("./").unwrap_or(href);
    if relative.contains("://") || relative.starts_with('/') {
        return None;
    }
    let segments: Vec<&str> = relative.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains(['\\', '\0']))
    {
        return None;
    }
    Some(if dir.is_empty() {
        relative.to_string()
    } else {
        format!("{dir}/{relative}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_parsed_once_is_the_item_parsed_by_way_of_a_value() {
        let slow = |document: &Value| {
            stac::Item::deserialize(&prepared(document.clone(), &HashSet::new()).unwrap()).unwrap()
        };
        let document = json!({
            "type": "Feature", "stac_version": "1.1.0", "id": "a", "collection": "c",
            "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
            "bbox": [1.0, 2.0, 1.0, 2.0],
            "properties": {
                "datetime": "2024-01-01T00:00:00Z", "title": "A", "created": "2024-01-02T00:00:00Z",
                "id": "clash", "bbox": [0], "proj:geometry": {"type": "Point", "coordinates": [0, 0]},
                "platform": "x", "links": "clash", "eo:cloud_cover": 3
            },
            "links": [], "assets": {"data": {"href": "./a.bin"}}
        });
        let bytes = serde_json::to_vec(&document).unwrap();
        let fast = row(Some(&bytes), &HashSet::new()).unwrap();
        assert_eq!(
            serde_json::to_value(&fast).unwrap(),
            serde_json::to_value(slow(&document)).unwrap()
        );
        assert!(
            !fast
                .properties
                .additional_fields
                .contains_key("proj:geometry")
        );
        assert!(!fast.properties.additional_fields.contains_key("id"));
        // No geometry, or a null one: left out, and said why.
        for geometry in [Value::Null, json!("text")] {
            let mut without = document.clone();
            without["geometry"] = geometry;
            let bytes = serde_json::to_vec(&without).unwrap();
            assert_eq!(
                row(Some(&bytes), &HashSet::new()).unwrap_err(),
                "it has no geometry"
            );
        }
        assert_eq!(
            row(Some(b"not json"), &HashSet::new()).unwrap_err(),
            "it could not be read, or is not JSON"
        );
    }

    #[test]
    fn fields_of_two_kinds_are_found_once() {
        let mut shapes = Shapes::default();
        assert!(shapes.take(&json!({"properties": {"a": 1, "b": "x", "c": {"d": 1}, "e/f[]": 1}})));
        assert!(
            !shapes.take(&json!({"properties": {"a": 2, "b": "y", "c": {"d": 2}, "e/f[]": 2}}))
        );
        assert!(shapes.take(&json!({"properties": {"a": 2.5, "b": 3, "c": "flat", "e/f[]": "x"}})));
        let mut mixed: Vec<Vec<Step>> = shapes.mixed().iter().map(|p| steps(p)).collect();
        mixed.sort_by_key(|p| format!("{p:?}"));
        let key = |k: &str| Step::Key(k.to_string());
        assert_eq!(
            mixed,
            [
                vec![key("properties"), key("b")],
                vec![key("properties"), key("c")],
                vec![key("properties"), key("e/f[]")],
            ]
        );
    }

    #[test]
    fn mixed_fields_become_text_and_items_without_geometry_stay_out() {
        let mut shapes = Shapes::default();
        shapes.take(&json!({"properties": {"b": 3, "list": [1, "x"], "n": [[1], ["x"]]}}));
        let mixed = shapes.mixed();
        let item = json!({"geometry": {"type": "Point", "coordinates": [0, 0]},
            "properties": {"b": 3, "list": [1, "x"], "n": [[1], ["x"]], "proj:geometry": {"type": "Point"},
                "bbox": "t", "id": 5}});
        let done = prepared(item, &mixed).unwrap();
        assert_eq!(done["properties"]["list"], json!(["1", "x"]));
        assert_eq!(done["properties"]["n"], json!([["1"], ["x"]]));
        for gone in ["proj:geometry", "bbox", "id"] {
            assert!(done["properties"].get(gone).is_none(), "{gone}");
        }
        assert!(prepared(json!({"geometry": null}), &mixed).is_none());
        assert!(prepared(json!({"geometry": "text"}), &mixed).is_none());
    }

    #[test]
    fn links_lead_only_beneath_the_mirror() {
        assert_eq!(inside("c", "./i/i.json").as_deref(), Some("c/i/i.json"));
        assert_eq!(
            inside("", "./c/collection.json").as_deref(),
            Some("c/collection.json")
        );
        for bad in [
            "../x.json",
            "/etc/passwd",
            "https://x.test/a.json",
            "./a/../../b",
            "a//b",
        ] {
            assert_eq!(inside("c", bad), None, "{bad}");
        }
    }
}
