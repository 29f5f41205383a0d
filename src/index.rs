//! `items.parquet`: every item of a mirror in one stac-geoparquet table, at
//! the mirror's root and linked from its catalog, for DuckDB, GeoPandas,
//! rustac and every tool that reads GeoParquet.
//!
//! The items are read from the mirror itself (the root catalog's
//! collections, each collection's item links), so the index holds what the
//! mirror holds, whichever job or state file wrote it. It is written with
//! the `stac` crate's encoder (which adds the `geo` and `stac-geoparquet`
//! metadata) in row groups, so that memory does not follow the number of
//! items:
//!
//! 1. Every item is looked at for the shape of its fields (each field's path
//!    and the kind of its value). The few items that bring a shape not seen
//!    before are kept: the schema inferred from them is the schema of all.
//!    A field that holds values of different kinds in different items (a
//!    number here, text there) is written as text in every row.
//! 2. Every item is encoded against that schema, a slice at a time.
//!
//! The two are one pass over the items when the items after the first slice
//! bring no new shape (see [`encode`]).
//!
//! An item the encoder cannot take (no geometry, not valid STAC) stays in
//! the catalog and is left out of the index, and the summary says which.

use std::collections::HashSet;
use std::io::{Seek, Write};

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::Deserialize;
use serde_json::Value;
use stac::geoparquet::{Compression, WriterOptions, WriterState, ZstdLevel};

use crate::destination::{Destination, Linked};
use crate::folder::Folder;
use crate::rewrite::{Hrefs, INDEX};
use crate::{Error, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Items encoded at a time: small enough that the reading half fills the
/// next slice while this one is encoded (see [`QUEUE`]).
const SLICE: usize = 256;
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
    /// A collection of the mirror could not be read: the items it links
    /// are not in the index.
    pub incomplete: bool,
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
/// A mirror whose catalog cannot be read keeps the index it has: that is
/// no sign of a mirror without items (the catalog was written just before;
/// a bucket may not have answered).
pub async fn write(
    destination: &Destination,
    local: &Folder,
    cancel: &CancellationToken,
) -> Result<Indexed> {
    if destination.read(local, "catalog.json").await.is_none() {
        return Err(Error::io(
            &local.display(INDEX),
            std::io::Error::other("the mirror's catalog.json could not be read"),
        ));
    }
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

/// Encodes every item of the mirror into `out`; `None` when there is no item
/// to index. The error is said in words.
///
/// The first pass finds each item's shapes as it parses it. Once the first
/// slice of items has set the schema, each later item is also handed, as it
/// is read, to another thread that parses and encodes it: a mirror whose later
/// items bring no shape the first slice did not have (most catalogs: their
/// items share one shape) is read once. A later item with a new shape ends
/// that: the first pass goes on only looking, what it encoded is thrown away,
/// and a second pass encodes every item against the schema of all. Either
/// way the file is the same, byte for byte.
async fn encode(
    destination: &Destination,
    local: &Folder,
    out: std::fs::File,
    cancel: &CancellationToken,
) -> std::result::Result<Option<Indexed>, String> {
    let (indexed, _passes) = encode_in(destination, local, out, cancel, true).await?;
    Ok(indexed)
}

/// [`encode`], in two passes whatever the items when not `at_once`; with
/// the number of passes made.
async fn encode_in(
    destination: &Destination,
    local: &Folder,
    out: std::fs::File,
    cancel: &CancellationToken,
    at_once: bool,
) -> std::result::Result<(Option<Indexed>, u8), String> {
    let failed = |reason: String| format!("the index of the items could not be written: {reason}");
    // The file again, for a second pass.
    let mut spare = out.try_clone().map_err(|e| failed(e.to_string()))?;
    let stop = cancel.child_token();
    let (sender, batches) = mpsc::channel(QUEUE);
    let mut first = FirstPass {
        shapes: Shapes::default(),
        probes: Vec::new(),
        mode: Mode::Gathering(Vec::with_capacity(SLICE)),
        kept: Kept::default(),
        // A bucket's documents are read again over the network: those read
        // first are kept from the start, should there be a second pass.
        keep_all: destination.is_bucket(),
        start: at_once.then_some((out, batches)),
        stop: stop.clone(),
        mixed: HashSet::new(),
        writing: None,
    };
    // A collection that could not be read, and why.
    let mut unreadable = None;
    let read = each_item(
        destination,
        local,
        cancel,
        &sender,
        None,
        &mut unreadable,
        |path, bytes, rows| first.take(path, bytes, rows),
    )
    .await;
    // Fewer items than a slice: every shape is known.
    if read.is_ok() && matches!(first.mode, Mode::Gathering(_)) {
        let mut rows = Vec::new();
        first.close(&mut rows);
        if !rows.is_empty() {
            // (A writing half that stopped says why when it is joined.)
            let _ = sender.send(rows).await;
        }
    }
    drop(sender);
    let FirstPass {
        shapes,
        probes,
        mode,
        mut kept,
        writing,
        ..
    } = first;
    match (mode, writing) {
        (Mode::Encoding, Some(writing)) => {
            let mut indexed = finish(writing, read, cancel).await.map_err(failed)?;
            indexed.incomplete = unreadable.is_some();
            return Ok((Some(indexed), 1));
        }
        (_, Some(writing)) => {
            stop.cancel();
            let _ = writing.await;
        }
        (_, None) => {}
    }
    read.map_err(|e| failed(e.to_string()))?;
    if cancel.is_cancelled() {
        return Err(failed(Error::Cancelled.to_string()));
    }

    // Pass 2: every item, against the schema of all, into the file emptied.
    spare
        .set_len(0)
        .and_then(|()| spare.rewind())
        .map_err(|e| failed(e.to_string()))?;
    let mixed = shapes.mixed();
    drop(shapes);
    let Some((state, writer)) = writer_for(&probes, &mixed, spare).map_err(failed)? else {
        // No item, for want of reading them: not an empty mirror.
        if let Some(why) = unreadable {
            return Err(failed(why));
        }
        return Ok((None, 1));
    };
    drop(probes);
    let (sender, batches) = mpsc::channel(QUEUE);
    let writing = start_writing(state, writer, mixed, batches, cancel.clone());
    let read = each_item(
        destination,
        local,
        cancel,
        &sender,
        Some(&mut kept),
        &mut unreadable,
        |path, bytes, rows| rows.push((path.to_string(), bytes, None)),
    )
    .await;
    drop(sender);
    let mut indexed = finish(writing, read, cancel).await.map_err(failed)?;
    indexed.incomplete = unreadable.is_some();
    Ok((Some(indexed), 2))
}

/// An item for the writing half: its path, its document (`None` when it
/// could not be read), and the item parsed from it when the reading half
/// parsed it already. Once the schema is set, the reading half parses each
/// item as it reads it: the two halves then share the work about evenly
/// (encoding alone takes the writing half longer than reading and looking
/// at an item takes the other). Otherwise the writing half parses it.
type Row = (String, Option<Vec<u8>>, Option<ItemRow>);

/// The file's writer.
type Writer = ArrowWriter<std::io::BufWriter<std::fs::File>>;

/// The first pass over the items (see [`encode`]).
struct FirstPass {
    shapes: Shapes,
    /// The items that brought shapes not seen before, as values.
    probes: Vec<Value>,
    mode: Mode,
    /// Documents kept for a second pass, once there is to be one (or from
    /// the start when `keep_all`).
    kept: Kept,
    keep_all: bool,
    /// What the writing half starts with, until it starts (`None` for two
    /// passes whatever the items).
    start: Option<(std::fs::File, mpsc::Receiver<Vec<Row>>)>,
    /// Stops the writing half: a cancel, or its work thrown away.
    stop: CancellationToken,
    /// The fields made text, once the schema is set.
    mixed: HashSet<String>,
    writing: Option<tokio::task::JoinHandle<Rows>>,
}

/// What the first pass does with each item.
enum Mode {
    /// Keeps the first slice's documents, read before the schema is set.
    Gathering(Vec<(String, Option<Vec<u8>>)>),
    /// Hands each item's document to the writing half, which parses and
    /// encodes it against the schema the first slice set.
    Encoding,
    /// Only looks: an item brought a shape the schema does not have, or
    /// there is no schema yet.
    Looking,
}

impl FirstPass {
    /// Takes the item document read at `path`, and adds what it hands to the
    /// writing half to `rows`.
    fn take(&mut self, path: &str, bytes: Option<Vec<u8>>, rows: &mut Vec<Row>) {
        let new = bytes.as_deref().and_then(|b| self.shapes.take(b)) == Some(true);
        if new
            && self.probes.len() < MAX_PROBES
            && let Some(item) = bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .and_then(|item| prepared(item, &HashSet::new()))
        {
            self.probes.push(item);
        }
        match &mut self.mode {
            Mode::Gathering(read) => {
                if self.keep_all {
                    self.kept.keep(path, bytes.clone());
                }
                read.push((path.to_string(), bytes));
                if read.len() >= SLICE {
                    self.close(rows);
                }
            }
            Mode::Encoding if !new => {
                if self.keep_all {
                    self.kept.keep(path, bytes.clone());
                }
                let parsed = row(bytes.as_deref(), &self.mixed);
                rows.push((path.to_string(), bytes, Some(parsed)));
            }
            Mode::Encoding => {
                // What was encoded is to be thrown away: no more of it.
                self.stop.cancel();
                self.mode = Mode::Looking;
                self.kept.keep(path, bytes);
            }
            Mode::Looking => self.kept.keep(path, bytes),
        }
    }

    /// Sets the schema from the shapes seen so far, starts the writing half
    /// and adds the gathered items to `rows`; or, when there is no schema (or
    /// no writing half to start), goes on only looking.
    fn close(&mut self, rows: &mut Vec<Row>) {
        let Mode::Gathering(read) = std::mem::replace(&mut self.mode, Mode::Looking) else {
            return;
        };
        let mixed = self.shapes.mixed();
        let writing = self.start.take().and_then(|(out, batches)| {
            let (state, writer) = writer_for(&self.probes, &mixed, out).ok()??;
            Some(start_writing(
                state,
                writer,
                mixed.clone(),
                batches,
                self.stop.clone(),
            ))
        });
        let Some(writing) = writing else {
            if !self.keep_all {
                for (path, bytes) in read {
                    self.kept.keep(&path, bytes);
                }
            }
            return;
        };
        self.writing = Some(writing);
        rows.extend(read.into_iter().map(|(path, bytes)| (path, bytes, None)));
        self.mixed = mixed;
        self.mode = Mode::Encoding;
    }
}

/// The encoder and the file's writer for the schema of `probes` (items as
/// values, whose fields at `mixed` paths are made text); `None` when no probe
/// gives one. The error is said in words.
fn writer_for(
    probes: &[Value],
    mixed: &HashSet<String>,
    out: std::fs::File,
) -> std::result::Result<Option<(WriterState, Writer)>, String> {
    // A probe the encoder refuses on its own would spoil the schema of all:
    // it is left to the encoding, which leaves it out by itself.
    let probes: Vec<stac::Item> = probes
        .iter()
        .filter_map(|item| prepared(item.clone(), mixed))
        .filter_map(|item| serde_json::from_value(item).ok())
        .filter(|probe: &stac::Item| new_state(vec![probe.clone()]).is_ok())
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
            new_state(agreed)?
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
    .map_err(|e| e.to_string())?;
    Ok(Some((state, writer)))
}

/// Starts the writing half on a thread of its own: it encodes the items
/// that arrive from `batches` a slice at a time, and writes them. It stops
/// at a failed write (the reading then stops too, a hand-over later), or as
/// soon as `stop` is cancelled (without writing what it holds).
fn start_writing(
    state: WriterState,
    writer: Writer,
    mixed: HashSet<String>,
    mut batches: mpsc::Receiver<Vec<Row>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Rows> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let next = |batches: &mut mpsc::Receiver<Vec<Row>>| {
            runtime.block_on(async {
                tokio::select! {
                    _ = stop.cancelled() => None,
                    batch = batches.recv() => batch,
                }
            })
        };
        let mut rows = Rows {
            mixed,
            state,
            writer,
            indexed: Indexed::default(),
            items: Vec::with_capacity(SLICE),
            documents: Vec::with_capacity(SLICE),
            error: None,
        };
        while rows.error.is_none()
            && let Some(batch) = next(&mut batches)
        {
            for (path, bytes, parsed) in batch {
                match parsed.unwrap_or_else(|| row(bytes.as_deref(), &rows.mixed)) {
                    Ok(item) => {
                        rows.items.push(item);
                        rows.documents.push((path, bytes.unwrap_or_default()));
                        if rows.items.len() >= SLICE {
                            rows.flush();
                        }
                    }
                    Err(why) => rows.indexed.leave_out(&path, why),
                }
            }
        }
        if !stop.is_cancelled() {
            rows.flush();
        }
        rows
    })
}

/// Ends the file that `writing` wrote from the items `read` handed it: its
/// metadata, then the file flushed to disk. The error is said in words.
async fn finish(
    writing: tokio::task::JoinHandle<Rows>,
    read: Result<()>,
    cancel: &CancellationToken,
) -> std::result::Result<Indexed, String> {
    let Rows {
        state,
        mut writer,
        indexed,
        error,
        ..
    } = writing.await.map_err(|e| e.to_string())?;
    read.map_err(|e| e.to_string())?;
    if cancel.is_cancelled() {
        return Err(Error::Cancelled.to_string());
    }
    if let Some(why) = error {
        return Err(why);
    }
    for entry in state.into_metadata().map_err(|e| e.to_string())? {
        writer.append_key_value_metadata(entry);
    }
    let mut out = writer.into_inner().map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    out.get_ref().sync_all().map_err(|e| e.to_string())?;
    Ok(indexed)
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

/// Items handed to the thread that takes them in at a time.
const HAND_OVER: usize = 32;
/// Hand-overs read ahead of the thread that takes them in: a slice's worth,
/// so that reading goes on while a slice is encoded.
const QUEUE: usize = SLICE / HAND_OVER;
const _: () = assert!(SLICE >= HAND_OVER, "a slice holds at least one hand-over");

/// An item as the index takes it: parsed, or why it is left out.
type ItemRow = std::result::Result<stac::Item, String>;

/// The writing half: the encoder, the file, and the slice of items waiting
/// to be encoded (with their documents, to take them again one by one).
struct Rows {
    mixed: HashSet<String>,
    state: WriterState,
    writer: Writer,
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
    /// Notes the shapes of the item document `bytes` as it is parsed (as
    /// [`prepared`] would leave it, without building it); whether any was
    /// new. `None`, and nothing noted, when it is not JSON or not an item
    /// the index takes (no geometry). (A key given twice has the shapes of
    /// both its values here, where a parsed value keeps the last.)
    fn take(&mut self, bytes: &[u8]) -> Option<bool> {
        let mut found = HashSet::new();
        let mut reader = serde_json::Deserializer::from_slice(bytes);
        let item = TopWalk {
            seen: &self.seen,
            found: &mut found,
        };
        let geometry = serde::de::DeserializeSeed::deserialize(item, &mut reader).ok()?;
        reader.end().ok()?;
        if !geometry {
            return None;
        }
        let mut new = false;
        for shape in found {
            if self.seen.len() >= MAX_SHAPES {
                break;
            }
            new |= self.seen.insert(shape);
        }
        Some(new)
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

/// An item document's top level, walked for [`Shapes::take`]: the geometry
/// is encoded apart (only whether it is an object counts), a bbox by its
/// length, and the properties without the names [`prepared`] takes out.
/// Answers whether the geometry is an object.
struct TopWalk<'a> {
    seen: &'a HashSet<String>,
    found: &'a mut HashSet<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for TopWalk<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, reader: D) -> Result<bool, D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TopWalk<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an item")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut geometry = false;
        let mut path = String::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key {
                "geometry" => geometry = map.next_value::<Outline>()? == Outline::Object,
                "bbox" => {
                    let len = match map.next_value()? {
                        Outline::Array(len) => len,
                        _ => 0,
                    };
                    note(self.seen, self.found, &format!("{KEY}\"bbox\"{KIND}{len}"));
                }
                name => {
                    path.clear();
                    push_key(&mut path, name);
                    map.next_value_seed(Walk {
                        seen: self.seen,
                        found: self.found,
                        path: &mut path,
                        properties: name == "properties",
                    })?;
                }
            }
        }
        Ok(geometry)
    }
    // Anything but an object is no item: the default answer, an error.
}

/// Notes `shape` among those found in an item, unless seen before.
/// As many as [`MAX_SHAPES`] in all are told apart.
fn note(seen: &HashSet<String>, found: &mut HashSet<String>, shape: &str) {
    if seen.len() + found.len() < MAX_SHAPES && !seen.contains(shape) && !found.contains(shape) {
        found.insert(shape.to_string());
    }
}

/// A value below an item's top level, walked for [`Shapes::take`]: the
/// shape of every field, each path with the kind of its value.
struct Walk<'a> {
    seen: &'a HashSet<String>,
    found: &'a mut HashSet<String>,
    path: &'a mut String,
    /// The item's properties: the names [`prepared`] takes out are skipped.
    properties: bool,
}

impl Walk<'_> {
    fn note(&mut self, kind: char) {
        let at = self.path.len();
        self.path.push(KIND);
        self.path.push(kind);
        note(self.seen, self.found, self.path);
        self.path.truncate(at);
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, reader: D) -> Result<(), D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.note('n');
        Ok(())
    }
    fn visit_bool<E>(mut self, _: bool) -> Result<(), E> {
        self.note('b');
        Ok(())
    }
    fn visit_i64<E>(mut self, _: i64) -> Result<(), E> {
        self.note('i');
        Ok(())
    }
    fn visit_u64<E>(mut self, _: u64) -> Result<(), E> {
        self.note('i');
        Ok(())
    }
    fn visit_f64<E>(mut self, _: f64) -> Result<(), E> {
        self.note('f');
        Ok(())
    }
    fn visit_str<E>(mut self, _: &str) -> Result<(), E> {
        self.note('s');
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.note('a');
        let at = self.path.len();
        self.path.push(EACH);
        loop {
            let element = Walk {
                seen: self.seen,
                found: self.found,
                path: self.path,
                properties: false,
            };
            if seq.next_element_seed(element)?.is_none() {
                break;
            }
        }
        self.path.truncate(at);
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.note('o');
        let at = self.path.len();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if self.properties && (&*key == "proj:geometry" || TOP_LEVEL.contains(&&*key)) {
                map.next_value::<Outline>()?;
                continue;
            }
            self.path.truncate(at);
            push_key(self.path, &key);
            map.next_value_seed(Walk {
                seen: self.seen,
                found: self.found,
                path: self.path,
                properties: false,
            })?;
        }
        self.path.truncate(at);
        Ok(())
    }
}

/// What a value is, read without keeping it: an item's geometry must be an
/// object, and its bbox is noted by its length. Every value passed over is
/// read as one, as strictly as a `Value` would be (text, numbers and depth
/// checked), so that a document the walk takes is one that parses.
#[derive(Debug, PartialEq)]
enum Outline {
    Object,
    Array(usize),
    Other,
}

impl<'de> Deserialize<'de> for Outline {
    fn deserialize<D: serde::Deserializer<'de>>(reader: D) -> Result<Outline, D::Error> {
        reader.deserialize_any(OutlineOf)
    }
}

struct OutlineOf;

impl<'de> serde::de::Visitor<'de> for OutlineOf {
    type Value = Outline;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Outline, A::Error> {
        while map.next_entry::<Key<'de>, Outline>()?.is_some() {}
        Ok(Outline::Object)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Outline, A::Error> {
        let mut len = 0;
        while seq.next_element::<Outline>()?.is_some() {
            len += 1;
        }
        Ok(Outline::Array(len))
    }
    fn visit_unit<E>(self) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Outline, E> {
        Ok(Outline::Other)
    }
}

/// A key, borrowed from the document unless it has escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl std::ops::Deref for Key<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(reader: D) -> Result<Key<'de>, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key.to_string())))
            }
        }
        reader.deserialize_str(Text)
    }
}

/// Item documents the first pass read, up to [`KEEP`] bytes of them (the
/// first ones from the moment it keeps any, in the order they are read:
/// from the start for a bucket, else from the item that brought a new
/// shape on): the second pass takes them from here rather than reading them
/// again, and costs at most [`KEEP`] more.
#[derive(Default)]
struct Kept {
    documents: std::collections::VecDeque<(String, Vec<u8>)>,
    bytes: usize,
    full: bool,
}

/// Bytes of item documents kept between the two passes, at most.
const KEEP: usize = 16 << 20;

impl Kept {
    /// Keeps the document read at `path`, while there is room.
    fn keep(&mut self, path: &str, bytes: Option<Vec<u8>>) {
        let Some(bytes) = bytes.filter(|_| !self.full) else {
            return;
        };
        if self.bytes + bytes.len() + path.len() > KEEP {
            // Only the first ones: the second pass meets them in order.
            self.full = true;
            return;
        }
        self.bytes += bytes.len() + path.len();
        self.documents.push_back((path.to_string(), bytes));
    }

    /// The document kept for `path`, when it is the next one kept.
    fn take(&mut self, path: &str) -> Option<Vec<u8>> {
        match self.documents.front() {
            Some((kept, _)) if kept == path => self.documents.pop_front().map(|(_, bytes)| bytes),
            _ => None,
        }
    }
}

/// Where [`each_item`] hands its answers, [`HAND_OVER`] at a time.
type Hand<T> = mpsc::Sender<Vec<T>>;

/// Calls `each` with the path and document bytes of every item of the
/// mirror, and sends what it adds to the batch to `to` (and stops when
/// nothing takes them any more): the root catalog's child links to
/// collections, then each collection's item links, as Cairn writes them
/// (relative, inside the mirror). A link that leads anywhere else is not
/// followed.
async fn each_item<T>(
    destination: &Destination,
    local: &Folder,
    cancel: &CancellationToken,
    to: &Hand<T>,
    mut kept: Option<&mut Kept>,
    unreadable: &mut Option<String>,
    mut each: impl FnMut(&str, Option<Vec<u8>>, &mut Vec<T>),
) -> Result<()> {
    let mut batch = Vec::new();
    let mut read = 0usize;
    let Some(root) = destination.read_json(local, "catalog.json").await else {
        return Ok(());
    };
    let mut collections: Vec<String> = links(&root, "child")
        .filter_map(|href| inside("", href))
        .collect();
    collections.sort();
    collections.dedup();
    for collection in collections {
        // A document that is not a collection Cairn wrote links nothing;
        // one that could not be read is noted (its items are missing).
        let mut hrefs = Hrefs::new();
        match destination
            .add_linked(local, &collection, &mut hrefs, &HashSet::new())
            .await
        {
            Linked::Absent | Linked::Read => {}
            Linked::Unreadable(why) | Linked::Damaged { why, .. } => {
                unreadable.get_or_insert(format!("{collection} could not be read ({why})"));
            }
        }
        let dir = collection.rsplit_once('/').map_or("", |(dir, _)| dir);
        // A collection's folder is opened once for its items.
        let folder = match destination {
            Destination::Folder(_) => local.sub(dir).ok(),
            Destination::Bucket(_) => None,
        };
        for href in hrefs.iter() {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let Some(beneath) = inside("", href) else {
                continue;
            };
            let path = match dir {
                "" => beneath.clone(),
                dir => format!("{dir}/{beneath}"),
            };
            let bytes = match (kept.as_deref_mut().and_then(|k| k.take(&path)), &folder) {
                (Some(bytes), _) => Some(bytes),
                (None, Some(folder)) => folder.read(&beneath).ok(),
                (None, None) => destination.read(local, &path).await,
            };
            each(&path, bytes, &mut batch);
            read += 1;
            if batch.len() >= HAND_OVER {
                if to.send(std::mem::take(&mut batch)).await.is_err() {
                    return Ok(());
                }
            } else if read.is_multiple_of(HAND_OVER) {
                // Nothing handed over lately: other tasks get their turn.
                tokio::task::yield_now().await;
            }
        }
    }
    if !batch.is_empty() {
        let _ = to.send(batch).await;
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
    fn the_first_documents_are_kept_for_the_second_pass_up_to_the_budget() {
        let mut kept = Kept::default();
        let document = vec![b'x'; KEEP / 3];
        for n in 0..5 {
            kept.keep(&format!("c/{n}/{n}.json"), Some(document.clone()));
        }
        // Three do not fit with their names; after the first that does not
        // fit, none is kept (the second pass meets them in order).
        kept.keep("c/small/small.json", Some(b"{}".to_vec()));
        assert_eq!(kept.documents.len(), 2);
        assert!(kept.bytes <= KEEP);
        // Taken in order; a path that is not the next one kept is read.
        assert_eq!(kept.take("c/1/1.json"), None);
        assert_eq!(kept.take("c/0/0.json"), Some(document.clone()));
        assert_eq!(kept.take("c/0/0.json"), None);
        assert_eq!(kept.take("c/1/1.json"), Some(document));
        assert_eq!(kept.take("c/2/2.json"), None);
        // An unreadable document is not kept.
        let mut kept = Kept::default();
        kept.keep("c/a/a.json", None);
        assert!(kept.documents.is_empty());
    }

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

    /// Notes the shapes of an item with `properties` and a geometry.
    fn take(shapes: &mut Shapes, properties: Value) -> bool {
        let item =
            json!({"geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": properties});
        shapes.take(&serde_json::to_vec(&item).unwrap()).unwrap()
    }

    #[test]
    fn fields_of_two_kinds_are_found_once() {
        let mut shapes = Shapes::default();
        assert!(take(
            &mut shapes,
            json!({"a": 1, "b": "x", "c": {"d": 1}, "e/f[]": 1})
        ));
        assert!(!take(
            &mut shapes,
            json!({"a": 2, "b": "y", "c": {"d": 2}, "e/f[]": 2})
        ));
        assert!(take(
            &mut shapes,
            json!({"a": 2.5, "b": 3, "c": "flat", "e/f[]": "x"})
        ));
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
        take(
            &mut shapes,
            json!({"b": 3, "list": [1, "x"], "n": [[1], ["x"]]}),
        );
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
    fn shapes_are_those_of_the_item_as_the_index_takes_it() {
        let mut shapes = Shapes::default();
        let item = json!({
            "type": "Feature", "id": "a", "bbox": [1, 2, 3, 4],
            "properties": {"n": null, "t": true, "i": -3, "u": 3, "f": 1.5, "s": "x",
                "list": [1, {"k": "v"}], "proj:geometry": {"type": "Point"}, "id": 5, "links": []},
            "geometry": {"type": "Point", "coordinates": [0, 0]},
        });
        let bytes = serde_json::to_vec(&item).unwrap();
        assert_eq!(shapes.take(&bytes), Some(true));
        assert_eq!(shapes.take(&bytes), Some(false));
        let readable = |shape: &String| {
            shape
                .replace(KEY, ".")
                .replace(EACH, "[]")
                .replace(KIND, ":")
                .replace('"', "")
        };
        let mut found: Vec<String> = shapes.seen.iter().map(readable).collect();
        found.sort();
        assert_eq!(
            found,
            [
                ".bbox:4",
                ".id:s",
                ".properties.f:f",
                ".properties.i:i",
                ".properties.list:a",
                ".properties.list[].k:s",
                ".properties.list[]:i",
                ".properties.list[]:o",
                ".properties.n:n",
                ".properties.s:s",
                ".properties.t:b",
                ".properties.u:i",
                ".properties:o",
                ".type:s",
            ]
        );
        // Not an item the index takes: nothing noted.
        let mut none = Shapes::default();
        for bad in [
            json!({"geometry": null, "id": "a"}),
            json!({"geometry": [0, 0], "id": "a"}),
            json!({"id": "a"}),
            json!([{"geometry": {}}]),
            json!("text"),
        ] {
            assert_eq!(none.take(&serde_json::to_vec(&bad).unwrap()), None, "{bad}");
        }
        // Not JSON, even in the parts passed over (a number out of range, a
        // lone surrogate, text that is not UTF-8).
        for bad in [
            &b"not json"[..],
            b"{\"geometry\": {}} trailing",
            b"{\"geometry\": {}",
            b"{\"geometry\": {\"c\": 1e400}}",
            b"{\"geometry\": {}, \"properties\": {\"id\": \"\\ud800\"}}",
            b"{\"geometry\": {}, \"bbox\": [\"\xff\"]}",
        ] {
            assert_eq!(none.take(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(none.seen.is_empty());
        // However many keys an item has, as many shapes as the index tells
        // apart are kept.
        let keys: serde_json::Map<String, Value> = (0..MAX_SHAPES + 50_000)
            .map(|n| (format!("k{n}"), json!(n)))
            .collect();
        let mut many = Shapes::default();
        assert!(take(&mut many, Value::Object(keys)));
        assert_eq!(many.seen.len(), MAX_SHAPES);
    }

    /// A mirror at `root` whose one collection links `items` (documents as
    /// text), in order.
    fn mirror_of(root: &std::path::Path, items: &[String]) {
        let collection = root.join("c");
        let links: Vec<Value> = (0..items.len())
            .map(|n| json!({"rel": "item", "href": format!("./i{n}/i{n}.json")}))
            .collect();
        std::fs::create_dir_all(&collection).unwrap();
        for (n, item) in items.iter().enumerate() {
            std::fs::create_dir_all(collection.join(format!("i{n}"))).unwrap();
            std::fs::write(collection.join(format!("i{n}/i{n}.json")), item).unwrap();
        }
        let document = json!({"type": "Collection", "id": "c", "links": links});
        std::fs::write(collection.join("collection.json"), document.to_string()).unwrap();
        let root_document = json!({"type": "Catalog", "id": "m",
            "links": [{"rel": "child", "href": "./c/collection.json"}]});
        std::fs::write(root.join("catalog.json"), root_document.to_string()).unwrap();
    }

    /// An item document with `properties` besides its datetime.
    fn item(n: usize, properties: Value) -> String {
        let mut document = json!({
            "type": "Feature", "stac_version": "1.1.0", "id": format!("i{n}"), "collection": "c",
            "geometry": {"type": "Point", "coordinates": [n as f64 / 1000.0, 2.0]},
            "bbox": [n as f64 / 1000.0, 2.0, n as f64 / 1000.0, 2.0],
            "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "links": [], "assets": {"data": {"href": format!("./i{n}.tif"), "type": "image/tiff"}}
        });
        if let (Some(all), Value::Object(more)) =
            (document["properties"].as_object_mut(), properties)
        {
            all.extend(more);
        }
        document.to_string()
    }

    /// The index of the mirror at `root` with and without the one pass: the
    /// same file, the same summary; and how many passes the one pass made,
    /// with how many items were left out.
    async fn both_ways(root: &std::path::Path) -> (u8, u64) {
        let destination = Destination::open(&root.to_string_lossy(), root).unwrap();
        let local = destination.local_folder().unwrap();
        let cancel = CancellationToken::new();
        let mut made = Vec::new();
        for at_once in [true, false] {
            let path = root.join(format!("index-{at_once}.parquet"));
            let out = std::fs::File::create(&path).unwrap();
            let (indexed, passes) = encode_in(&destination, &local, out, &cancel, at_once)
                .await
                .unwrap();
            made.push((std::fs::read(&path).unwrap(), indexed, passes));
        }
        let (once, twice) = (&made[0], &made[1]);
        assert_eq!(twice.2, 2);
        assert!(once.1.as_ref().is_some_and(|i| i.items > 0), "{:?}", once.1);
        assert_eq!(once.1, twice.1);
        assert!(once.0 == twice.0, "the two files differ");
        (once.2, once.1.as_ref().map_or(0, |i| i.left_out_count))
    }

    #[tokio::test]
    async fn the_index_is_made_in_one_pass_when_later_items_bring_no_new_shape() {
        let count = SLICE + 100;
        // Every item alike, and optional fields the first slice already had.
        let alike: Vec<String> = (0..count)
            .map(|n| {
                item(
                    n,
                    json!({"eo:cloud_cover": n % 7, "title": format!("item {n}")}),
                )
            })
            .map(|document| document.to_string())
            .collect();
        let mut varied = alike.clone();
        varied[3] = item(3, json!({"note": "only some have it"}));
        varied[count - 1] = item(count - 1, json!({}));
        // Fewer than a slice, shapes of every kind: one pass, all known.
        let mut few = varied[..40].to_vec();
        few[30] = item(30, json!({"eo:cloud_cover": "cloudy"}));
        // Items the index cannot take, after the first slice: unreadable,
        // without geometry, and one the encoder refuses (its slice is then
        // encoded one item at a time).
        let mut refused = alike.clone();
        refused[SLICE + 10] = "not json".into();
        refused[SLICE + 20] = json!({"type": "Feature", "id": "x", "geometry": null}).to_string();
        let dated = |n: usize, created: &str| item(n, json!({"created": created}));
        let mut dates: Vec<String> = (0..count)
            .map(|n| dated(n, "2024-01-02T00:00:00Z"))
            .collect();
        dates[SLICE + 30] = dated(SLICE + 30, "yesterday");
        for (name, items, left_out) in [
            ("alike", alike.clone(), 0),
            ("varied", varied, 0),
            ("few", few, 0),
            ("a slice", alike[..SLICE].to_vec(), 0),
            ("refused", refused, 2),
            ("dates", dates, 1),
        ] {
            let dir = tempfile::tempdir().unwrap();
            mirror_of(dir.path(), &items);
            assert_eq!(both_ways(dir.path()).await, (1, left_out), "{name}");
        }
        // A later item with a field the first slice did not have, one whose
        // field is of another kind, one with a nested field: two passes,
        // and the same file.
        for late in [
            json!({"new:field": 1.5}),
            json!({"eo:cloud_cover": "cloudy"}),
            json!({"title": {"en": "nested"}}),
        ] {
            for at in [SLICE, count - 1] {
                let mut items = alike.clone();
                items[at] = item(at, late.clone());
                let dir = tempfile::tempdir().unwrap();
                mirror_of(dir.path(), &items);
                assert_eq!(both_ways(dir.path()).await, (2, 0), "{late} at {at}");
            }
        }
        // A new shape after a whole row group was written: the file is
        // emptied and written anew.
        let mut many: Vec<String> = (0..ROW_GROUP + SLICE).map(|n| item(n, json!({}))).collect();
        let last = many.len() - 1;
        many[last] = item(last, json!({"new:field": true}));
        let dir = tempfile::tempdir().unwrap();
        mirror_of(dir.path(), &many);
        assert_eq!(both_ways(dir.path()).await, (2, 0));
        // No item: no index either way.
        let dir = tempfile::tempdir().unwrap();
        mirror_of(dir.path(), &[]);
        let destination = Destination::open(&dir.path().to_string_lossy(), dir.path()).unwrap();
        let local = destination.local_folder().unwrap();
        let cancel = CancellationToken::new();
        for at_once in [true, false] {
            let out = std::fs::File::create(dir.path().join("index.parquet")).unwrap();
            let (indexed, _) = encode_in(&destination, &local, out, &cancel, at_once)
                .await
                .unwrap();
            assert_eq!(indexed, None);
        }
    }

    #[tokio::test]
    async fn a_collection_that_cannot_be_read_makes_the_index_incomplete_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        mirror_of(root, &[item(0, json!({})), item(1, json!({}))]);
        let destination = Destination::open(&root.to_string_lossy(), root).unwrap();
        let local = destination.local_folder().unwrap();
        let cancel = CancellationToken::new();
        let indexed = write(&destination, &local, &cancel).await.unwrap();
        assert_eq!((indexed.items, indexed.incomplete), (2, false));

        // A second collection whose document is a folder: the index holds
        // the first one's items, and says it lacks some.
        std::fs::create_dir_all(root.join("d/collection.json")).unwrap();
        let root_document = json!({"type": "Catalog", "id": "m", "links": [
            {"rel": "child", "href": "./c/collection.json"},
            {"rel": "child", "href": "./d/collection.json"}]});
        std::fs::write(root.join("catalog.json"), root_document.to_string()).unwrap();
        let indexed = write(&destination, &local, &cancel).await.unwrap();
        assert_eq!((indexed.items, indexed.incomplete), (2, true));

        // Nothing readable at all: an error, and the index there is kept.
        std::fs::remove_file(root.join("c/collection.json")).unwrap();
        std::fs::create_dir(root.join("c/collection.json")).unwrap();
        let refused = write(&destination, &local, &cancel).await.unwrap_err();
        assert!(
            refused.to_string().contains("could not be read"),
            "{refused}"
        );
        assert!(root.join(INDEX).is_file());
        // Nor is it taken away when the catalog cannot be read.
        std::fs::remove_file(root.join("catalog.json")).unwrap();
        std::fs::create_dir(root.join("catalog.json")).unwrap();
        assert!(write(&destination, &local, &cancel).await.is_err());
        assert!(root.join(INDEX).is_file());
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
