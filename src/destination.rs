//! Where a mirror goes: a local folder, or a bucket or container (S3, Azure
//! Blob, Google Cloud Storage) through `object_store`.
//!
//! Transfers always land on local disk first: in the folder itself, or for a
//! bucket in a staging folder beside the state file. There a partial file can
//! be resumed after a crash and verified; only verified bytes are uploaded, and
//! a staged file is removed once its upload is recorded.
//!
//! Credentials and endpoints come from the environment only (`AWS_*`, `AZURE_*`,
//! `GOOGLE_*`, as each SDK documents them), so they are never stored by Cairn.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::checksum::{Checksum, Hasher};
use crate::folder::Folder;
use crate::rewrite::Hrefs;
use crate::transit::{Checked, Store};
use crate::{Error, Result};

/// Parts of a multipart upload (S3's smallest); files smaller than one part
/// go up in one request. With one part in flight per file, an upload holds
/// about 11 MiB, whatever the file's size.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one file in flight at once (files upload side by side).
const PARTS_IN_FLIGHT: usize = 1;
/// Bytes read from the staged file at a time.
const READ_SIZE: usize = 1024 * 1024;
/// Uploads of one file, when the store says it received other bytes than
/// were sent (see transit.rs).
const UPLOAD_ATTEMPTS: u32 = 3;

/// Where a job's mirror goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A local folder.
    Folder(PathBuf),
    /// A bucket or container, with its local staging folder.
    Bucket(Arc<Bucket>),
}

/// A bucket or container prefix and the local folder where files wait for upload.
pub struct Bucket {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    staging: PathBuf,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the client: it holds the credentials.
        f.debug_struct("Bucket")
            .field("url", &self.url.as_str())
            .field("staging", &self.staging)
            .finish()
    }
}

/// Whether `text` names a bucket or container (`s3://`, `az://`, `gs://`).
pub fn is_bucket_address(text: &str) -> bool {
    matches!(text.split_once("://"), Some(("s3" | "az" | "gs", _)))
}

/// Where the root catalog of a mirror at `destination` (in its [`normalize`]d
/// form) is, for people to open.
pub fn catalog_location(destination: &str) -> String {
    if is_bucket_address(destination) {
        format!("{destination}/catalog.json")
    } else {
        Path::new(destination)
            .join("catalog.json")
            .display()
            .to_string()
    }
}

/// Bytes free on the disk a folder destination (in its [`normalize`]d form)
/// is on, found from its nearest existing folder; `None` for buckets, or when
/// the system cannot tell.
pub fn free_space(destination: &str) -> Option<u64> {
    if is_bucket_address(destination) {
        return None;
    }
    let mut folder = Path::new(destination);
    while !folder.exists() {
        folder = folder.parent()?;
    }
    fs4::available_space(folder).ok()
}

/// The canonical form of a destination typed by a person: an absolute folder
/// path, or a bucket URL (`s3://bucket/prefix`, `az://container/prefix`,
/// `gs://bucket/prefix`) without a trailing slash.
pub fn normalize(text: &str) -> Result<String> {
    if is_bucket_address(text) {
        let url = Url::parse(text).map_err(|e| {
            Error::invalid_input(format!("{text:?} is not a valid bucket address: {e}"))
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid_input(format!(
                "{text:?} names no bucket; write it as {}://bucket/folder",
                url.scheme()
            )));
        }
        return Ok(text.trim_end_matches('/').to_string());
    }
    let path = match text.split_once("://") {
        Some(("file", _)) => Url::parse(text)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| Error::invalid_input(format!("{text:?} is not a valid file address")))?,
        Some((scheme, _)) => {
            return Err(Error::invalid_input(format!(
                "Cairn cannot write to {scheme}://; give a folder, or an s3://, az:// or gs:// address"
            )));
        }
        None => PathBuf::from(text),
    };
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io {
                path: text.to_string(),
                source,
            })?
            .join(path)
    };
    if absolute.exists() && !absolute.is_dir() {
        return Err(Error::invalid_input(format!(
            "{text:?} is a file; give a folder to mirror into"
        )));
    }
    Ok(absolute.display().to_string())
}

/// What [`Destination::add_linked`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Linked {
    /// No document there.
    Absent,
    /// A collection document, its item links taken.
    Read,
    /// Something that could not be opened or fetched (a folder, a link, no
    /// permission, a bucket that did not answer): why.
    Unreadable(String),
    /// A document that is not a collection Cairn can read (cut short,
    /// edited, or a read that failed part way): why, in words, and its size.
    Damaged { why: String, size: u64 },
}

/// What became of a file to keep aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAside {
    /// It is kept under the new name.
    Kept,
    /// It was not there (or, in a bucket, not the size expected).
    Gone,
    /// Something is at the new name already: nothing was moved.
    Taken,
}

impl Destination {
    /// Opens a destination in its [`normalize`]d form; `staging` is where a
    /// bucket's files wait for upload (unused for a folder).
    pub fn open(destination: &str, staging: &Path) -> Result<Destination> {
        if !is_bucket_address(destination) {
            return Ok(Destination::Folder(PathBuf::from(destination)));
        }
        let url = Url::parse(destination)
            .map_err(|e| Error::invalid_input(format!("{destination:?}: {e}")))?;
        let store = object_store_for(&url)?;
        let prefix = ObjectPath::from_iter(url.path().split('/').filter(|s| !s.is_empty()));
        Ok(Destination::Bucket(Arc::new(Bucket {
            url,
            store,
            prefix,
            staging: staging.to_path_buf(),
        })))
    }

    /// The local folder transfers write into (made if needed): the mirror
    /// folder itself, or a bucket's staging folder.
    pub fn local_folder(&self) -> Result<Arc<Folder>> {
        self.open_local(false)
    }

    /// [`Destination::local_folder`] for one run, which keeps the folders
    /// of its collections open (see [`Folder::keeping_parents`]).
    pub fn run_folder(&self) -> Result<Arc<Folder>> {
        self.open_local(true)
    }

    fn open_local(&self, for_run: bool) -> Result<Arc<Folder>> {
        let root = match self {
            Destination::Folder(root) => root,
            Destination::Bucket(bucket) => &bucket.staging,
        };
        Folder::open(root)
            .map(|folder| match for_run {
                true => Arc::new(folder.keeping_parents()),
                false => Arc::new(folder),
            })
            .map_err(|source| Error::Io {
                path: root.display().to_string(),
                source,
            })
    }

    /// Whether verified files are published by uploading them.
    pub fn is_bucket(&self) -> bool {
        matches!(self, Destination::Bucket(_))
    }

    /// Uploads the staged file at `relative` to its key (nothing to do for a
    /// folder). With `verified`, the checksum it was verified with, the bytes
    /// read for the upload are hashed as they go, and an upload whose bytes
    /// are not the verified ones is abandoned before it is completed: a
    /// staged copy damaged on disk never becomes the mirror's object. Each
    /// request's body is checked against the hash the store says it
    /// received (see transit.rs); an upload the store received other bytes
    /// for is removed from the store if it kept them, and tried again, up
    /// to [`UPLOAD_ATTEMPTS`] times in all. Then the object's size must be
    /// the file's.
    ///
    /// `cancel` stops a multipart upload between parts; an upload that
    /// stops for any reason is abandoned (aborted), so no unfinished upload
    /// is left for the store to keep (and bill).
    pub async fn publish(
        &self,
        staged: &Folder,
        relative: &str,
        verified: Option<&Checksum>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let Destination::Bucket(bucket) = self else {
            return Ok(());
        };
        let mut attempt = 1;
        loop {
            let error = match bucket.upload(staged, relative, verified, cancel).await {
                Err(error @ Error::ObjectStore { .. }) => error,
                done => return done,
            };
            let Error::ObjectStore { source, .. } = &error else {
                unreachable!("matched above")
            };
            let Some(stored) = crate::transit::damage(source) else {
                return Err(error);
            };
            // Never left under its key with bytes other than the verified
            // ones.
            if stored && let Err(kept) = bucket.store.delete(&bucket.object_path(relative)).await {
                return Err(Error::Verification {
                    href: format!("{}/{relative}", bucket.url),
                    reason: format!(
                        "it was damaged on its way into the store, and the damaged copy could not be removed from there ({}); it is fetched and uploaded again when the job resumes",
                        Error::ObjectStore {
                            href: bucket.url.to_string(),
                            source: kept
                        }
                        .reason()
                    ),
                });
            }
            if attempt == UPLOAD_ATTEMPTS {
                return Err(error);
            }
            tracing::warn!(
                %relative,
                attempt,
                "the store received other bytes than were sent; uploading again"
            );
            attempt += 1;
        }
    }

    /// Keeps the mirror's file at `relative` as `kept` (a sibling path), before
    /// new bytes take its place: a rename in a folder, a copy in a bucket.
    /// What is at `kept` already is never replaced: the caller chooses
    /// another name ([`SetAside::Taken`]).
    pub async fn set_aside(
        &self,
        local: &Folder,
        relative: &str,
        kept: &str,
        size: u64,
    ) -> Result<SetAside> {
        match self {
            Destination::Folder(_) => {
                if !local.has_file(relative) {
                    return Ok(SetAside::Gone);
                }
                match local.rename_new(relative, kept) {
                    Ok(()) => Ok(SetAside::Kept),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(SetAside::Taken),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SetAside::Gone),
                    Err(source) => Err(Error::io(&local.display(relative), source)),
                }
            }
            Destination::Bucket(bucket) => {
                let from = bucket.object_path(relative);
                let to = bucket.object_path(kept);
                // Not the verified bytes (another size): not a version.
                match bucket.store.head(&from).await {
                    Ok(meta) if meta.size == size => {}
                    _ => return Ok(SetAside::Gone),
                }
                match bucket.store.copy_if_not_exists(&from, &to).await {
                    Ok(()) => Ok(SetAside::Kept),
                    Err(object_store::Error::NotFound { .. }) => Ok(SetAside::Gone),
                    // Taken (some stores answer a failed precondition):
                    // nothing was copied.
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ) => Ok(SetAside::Taken),
                    // A store that cannot refuse to overwrite (S3, unless
                    // told how): the name was looked for just before and
                    // is new.
                    Err(object_store::Error::NotSupported { .. }) => {
                        match bucket.store.copy(&from, &to).await {
                            Ok(()) => Ok(SetAside::Kept),
                            Err(object_store::Error::NotFound { .. }) => Ok(SetAside::Gone),
                            Err(source) => Err(Error::ObjectStore {
                                href: format!("{}/{relative}", bucket.url),
                                source,
                            }),
                        }
                    }
                    Err(source) => Err(Error::ObjectStore {
                        href: format!("{}/{relative}", bucket.url),
                        source,
                    }),
                }
            }
        }
    }

    /// Every object of a bucket mirror, relative to its prefix, with its
    /// size, by name (empty for a folder: it is walked as one).
    pub async fn list_files(&self) -> Result<Vec<(String, u64)>> {
        let Destination::Bucket(bucket) = self else {
            return Ok(Vec::new());
        };
        let mut listed = bucket.store.list(Some(&bucket.prefix));
        let mut files = Vec::new();
        while let Some(meta) = futures::StreamExt::next(&mut listed).await {
            let meta = meta.map_err(|source| Error::ObjectStore {
                href: bucket.url.to_string(),
                source,
            })?;
            let relative: Vec<String> = meta
                .location
                .prefix_match(&bucket.prefix)
                .into_iter()
                .flatten()
                .map(|part| part.as_ref().to_string())
                .collect();
            if !relative.is_empty() {
                files.push((relative.join("/"), meta.size));
            }
        }
        files.sort();
        Ok(files)
    }

    /// The bytes of the bucket mirror's object at `relative`, as they come.
    pub async fn stream(
        &self,
        relative: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes>>> {
        let Destination::Bucket(bucket) = self else {
            return Err(Error::invalid_input(
                "a folder mirror is read as files, not streamed",
            ));
        };
        let href = format!("{}/{relative}", bucket.url);
        let wrap = {
            let href = href.clone();
            move |source| Error::ObjectStore {
                href: href.clone(),
                source,
            }
        };
        let got = bucket
            .store
            .get(&bucket.object_path(relative))
            .await
            .map_err(&wrap)?;
        Ok(Box::pin(futures::StreamExt::map(
            got.into_stream(),
            move |chunk| chunk.map_err(&wrap),
        )))
    }

    /// Whether nothing is under the destination yet (a bucket prefix with
    /// no object, a folder that does not exist or is empty).
    pub async fn is_empty(&self) -> Result<bool> {
        match self {
            Destination::Folder(root) => Ok(std::fs::read_dir(root)
                .map(|mut entries| entries.next().is_none())
                .unwrap_or(true)),
            Destination::Bucket(bucket) => {
                let mut listed = bucket.store.list(Some(&bucket.prefix));
                match futures::StreamExt::next(&mut listed).await {
                    None => Ok(true),
                    Some(Ok(_)) => Ok(false),
                    Some(Err(source)) => Err(Error::ObjectStore {
                        href: bucket.url.to_string(),
                        source,
                    }),
                }
            }
        }
    }

    /// Checks, before anything is planned, that a bucket can be reached and
    /// listed with the credentials at hand; says in words what is wrong
    /// otherwise. A folder is checked when its job starts.
    pub async fn check_access(&self) -> Result<()> {
        const WAIT: std::time::Duration = std::time::Duration::from_secs(15);
        let Destination::Bucket(bucket) = self else {
            return Ok(());
        };
        let first = async {
            let mut listed = bucket.store.list(Some(&bucket.prefix));
            futures::StreamExt::next(&mut listed).await.transpose()
        };
        match tokio::time::timeout(WAIT, first).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::ObjectStore {
                href: bucket.url.to_string(),
                source,
            }),
            Err(_) => {
                let url = bucket.url.to_string();
                let hint = match credentials_in_environment(&url) {
                    true => String::new(),
                    false => format!(
                        "; no credentials were found for it: {}",
                        crate::error::credentials_hint(&url)
                    ),
                };
                Err(Error::invalid_input(format!(
                    "{url} did not answer within {} seconds{hint}",
                    WAIT.as_secs()
                )))
            }
        }
    }

    /// Whether the mirror has a file at `relative`.
    pub async fn has_file(&self, local: &Folder, relative: &str) -> bool {
        match self {
            Destination::Folder(_) => local.has_file(relative),
            Destination::Bucket(bucket) => bucket
                .store
                .head(&bucket.object_path(relative))
                .await
                .is_ok(),
        }
    }

    /// Removes the mirror's file at `relative` (an item a sync found gone
    /// from the source, when the job mirrors deletions). No such file is
    /// not an error.
    pub async fn remove(&self, local: &Folder, relative: &str) -> Result<()> {
        match self {
            Destination::Folder(_) => local
                .remove(relative)
                .map_err(|source| Error::io(&local.display(relative), source)),
            Destination::Bucket(bucket) => {
                match bucket.store.delete(&bucket.object_path(relative)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(source) => Err(Error::ObjectStore {
                        href: format!("{}/{relative}", bucket.url),
                        source,
                    }),
                }
            }
        }
    }

    /// Removes the staged copy of a published file (a folder keeps its files).
    pub fn discard_staged(&self, staged: &Folder, relative: &str) {
        if self.is_bucket() {
            let _ = staged.remove(relative);
        }
    }

    /// Writes a JSON document of the catalog at `relative`, replacing it whole.
    /// `local` is the folder of [`Destination::local_folder`].
    pub async fn write_json(
        &self,
        local: &Folder,
        relative: &str,
        value: &impl serde::Serialize,
    ) -> Result<()> {
        match self {
            Destination::Folder(_) => local
                .write_atomic_with(relative, |file| {
                    serde_json::to_writer_pretty(file, value).map_err(std::io::Error::from)
                })
                .map_err(|source| Error::io(&local.display(relative), source)),
            Destination::Bucket(_) => {
                let text = serde_json::to_vec_pretty(value)
                    .map_err(|e| Error::invalid_input(e.to_string()))?;
                self.write_bytes(local, relative, text).await
            }
        }
    }

    /// Writes `bytes` at `relative`, replacing what was there whole (a file
    /// through a temporary and a rename).
    pub async fn write_bytes(&self, local: &Folder, relative: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Destination::Folder(_) => local
                .write_atomic(relative, &bytes)
                .map_err(|source| Error::io(&local.display(relative), source)),
            Destination::Bucket(bucket) => {
                bucket
                    .store
                    .put(&bucket.object_path(relative), PutPayload::from(bytes))
                    .await
                    .map_err(|source| Error::ObjectStore {
                        href: format!("{}/{relative}", bucket.url),
                        source,
                    })?;
                Ok(())
            }
        }
    }

    /// Refuses a destination that already holds a mirror of another source,
    /// or a STAC catalog that Cairn did not make: their ids could collide
    /// with this source's, and files verified for them be replaced.
    pub async fn check_source(&self, source: &str) -> Result<bool> {
        let where_ = match self {
            Destination::Folder(root) => root.display().to_string(),
            Destination::Bucket(bucket) => bucket.url.to_string(),
        };
        let local = self.local_folder()?;
        let existing = match self {
            Destination::Folder(_) => match local.read("catalog.json") {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(Error::Io {
                        path: local.display("catalog.json").display().to_string(),
                        source,
                    });
                }
            },
            Destination::Bucket(bucket) => {
                match bucket.store.get(&bucket.object_path("catalog.json")).await {
                    Ok(result) => Some(
                        result
                            .bytes()
                            .await
                            .map_err(|source| Error::ObjectStore {
                                href: format!("{where_}/catalog.json"),
                                source,
                            })?
                            .to_vec(),
                    ),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(source) => {
                        return Err(Error::ObjectStore {
                            href: format!("{where_}/catalog.json"),
                            source,
                        });
                    }
                }
            }
        };
        let Some(bytes) = existing else {
            return Ok(false);
        };
        let choose =
            "choose another destination (an empty folder, or a new folder inside this one)";
        let root: Value = serde_json::from_slice(&bytes).map_err(|_| {
            Error::invalid_input(format!(
                "{where_} already holds a catalog.json that is not a STAC catalog; Cairn does not write over it: {choose}"
            ))
        })?;
        let id = root.get("id").and_then(Value::as_str).unwrap_or_default();
        let recorded = root
            .get(crate::rewrite::SOURCE_FIELD)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                // Mirrors made before the field: the source is in the description.
                (id == "cairn-mirror").then(|| {
                    root.get("description")
                        .and_then(Value::as_str)
                        .and_then(|d| d.strip_prefix("A copy made by Cairn of "))
                        .and_then(|d| d.split(". ").next())
                        .unwrap_or_default()
                        .to_string()
                })
            });
        // Recorded without its credentials (see `provenance::redact`).
        let source = crate::provenance::redact(source);
        match recorded {
            Some(other) if other == source || crate::provenance::redact(&other) == source => {
                Ok(true)
            }
            Some(other) => Err(Error::invalid_input(format!(
                "{where_} already holds a mirror of {other}; a mirror of {source} there would mix two catalogs whose ids may collide, and could replace files verified for the other: {choose}"
            ))),
            None => Err(Error::invalid_input(format!(
                "{where_} already holds a STAC catalog that Cairn did not make (its catalog.json has the id {id:?}); Cairn does not write into it: {choose}"
            ))),
        }
    }

    /// A JSON document written earlier at `relative`, if there is one.
    pub async fn read_json(&self, local: &Folder, relative: &str) -> Option<Value> {
        serde_json::from_slice(&self.read(local, relative).await?).ok()
    }

    /// Adds to `hrefs` the item links of the collection document at
    /// `relative` (see [`Hrefs::add_linked_from`]), leaving out those in
    /// `left_out`. In a folder the file is read as a stream, never whole;
    /// from a bucket, the object is fetched whole first.
    pub async fn add_linked(
        &self,
        local: &Folder,
        relative: &str,
        hrefs: &mut Hrefs,
        left_out: &HashSet<String>,
    ) -> Linked {
        let (read, size) = match self {
            Destination::Folder(_) => {
                let file = match local.read_file(relative) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Linked::Absent,
                    Err(e) => return Linked::Unreadable(e.to_string()),
                };
                let size = file.metadata().map_or(0, |m| m.len());
                (hrefs.add_linked_from(file, left_out), size)
            }
            Destination::Bucket(bucket) => {
                let got = match bucket.store.get(&bucket.object_path(relative)).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                };
                let bytes = match got {
                    Ok(bytes) => bytes,
                    Err(object_store::Error::NotFound { .. }) => return Linked::Absent,
                    Err(e) => return Linked::Unreadable(e.to_string()),
                };
                (
                    hrefs.add_linked_from(&bytes[..], left_out),
                    bytes.len() as u64,
                )
            }
        };
        match read {
            Ok(()) => Linked::Read,
            Err(why) => Linked::Damaged { why, size },
        }
    }

    /// The bytes of the file at `relative`, if there is one and it can be read.
    pub async fn read(&self, local: &Folder, relative: &str) -> Option<Vec<u8>> {
        match self {
            Destination::Folder(_) => local.read(relative).ok(),
            Destination::Bucket(bucket) => {
                let result = bucket.store.get(&bucket.object_path(relative)).await.ok()?;
                Some(result.bytes().await.ok()?.to_vec())
            }
        }
    }
}

/// A staged file as it is to go up: in one request, or in parts.
enum Staged {
    Whole(Vec<u8>),
    Parts(std::fs::File),
}

impl Bucket {
    /// Uploads the staged file at `relative` once (see
    /// [`Destination::publish`]).
    async fn upload(
        &self,
        staged: &Folder,
        relative: &str,
        verified: Option<&Checksum>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let bucket = self;
        let local = staged.display(relative);
        let location = bucket.object_path(relative);
        let href = format!("{}/{relative}", bucket.url);
        let wrap = |source| Error::ObjectStore {
            href: href.clone(),
            source,
        };
        let io = |source| Error::Io {
            path: local.display().to_string(),
            source,
        };
        let mut hasher = verified.map(|c| Hasher::new(c.algorithm));
        let damaged = |hasher: Option<Hasher>| -> Option<Error> {
            let (expected, got) = (verified?, hasher?.finish());
            (&got != expected).then(|| Error::Verification {
                href: href.clone(),
                reason: format!(
                    "the file waiting for upload at {} changed on disk after it was checked ({} {} checked, {} now); it was not uploaded, and it is downloaded again when the job resumes",
                    local.display(),
                    expected.algorithm.name(),
                    expected.to_hex(),
                    got.to_hex()
                ),
            })
        };
        // A file that goes up in one request is measured, read and hashed
        // in one trip to a blocking thread (a mirror of small files uploads
        // file after file); a bigger one is read as its parts go up.
        let file = staged.read_file(relative).map_err(io)?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = file;
            let size = file.metadata()?.len();
            if size > PART_SIZE as u64 {
                return Ok((size, Staged::Parts(file), hasher));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)?;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&bytes);
            }
            Ok((size, Staged::Whole(bytes), hasher))
        })
        .await;
        let (size, read, mut hasher) = crate::error::joined(read)?.map_err(io)?;
        match read {
            Staged::Whole(bytes) => {
                if let Some(error) = damaged(hasher) {
                    return Err(error);
                }
                bucket
                    .store
                    .put(&location, PutPayload::from(bytes))
                    .await
                    .map_err(wrap)?;
            }
            Staged::Parts(file) => {
                let mut file = tokio::fs::File::from_std(file);
                let upload = bucket.store.put_multipart(&location).await.map_err(wrap)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                let sent = async {
                    let mut buffer = vec![0u8; READ_SIZE];
                    loop {
                        let read = file.read(&mut buffer).await.map_err(io)?;
                        if read == 0 {
                            break;
                        }
                        if let Some(hasher) = hasher.as_mut() {
                            hasher.update(&buffer[..read]);
                        }
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => return Err(Error::Cancelled),
                            room = writer.wait_for_capacity(PARTS_IN_FLIGHT) => room.map_err(wrap)?,
                        }
                        writer.write(&buffer[..read]);
                    }
                    // Every part up before the upload is completed.
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Err(Error::Cancelled),
                        done = writer.wait_for_capacity(0) => done.map_err(wrap)?,
                    }
                    // Completing the upload is what makes the object: not with
                    // bytes other than the verified ones.
                    match damaged(hasher) {
                        Some(error) => Err(error),
                        None => Ok(()),
                    }
                }
                .await;
                if let Err(error) = sent {
                    let _ = writer.abort().await;
                    return Err(error);
                }
                writer.finish().await.map_err(wrap)?;
            }
        }
        // What arrived must be what was verified.
        let meta = bucket.store.head(&location).await.map_err(wrap)?;
        if meta.size != size {
            return Err(Error::Verification {
                href,
                reason: format!(
                    "the bucket holds {} bytes after the upload of {size}",
                    meta.size
                ),
            });
        }
        Ok(())
    }

    /// The object at `relative` under the prefix. Cairn's own names are
    /// valid keys as they are and are written so, so that the catalog's
    /// relative hrefs name the objects for any other tool; a name a key
    /// cannot hold as it is (a control character) is percent-encoded.
    fn object_path(&self, relative: &str) -> ObjectPath {
        let segments: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
        let mut raw = self.prefix.as_ref().to_string();
        for segment in &segments {
            if !raw.is_empty() {
                raw.push('/');
            }
            raw.push_str(segment);
        }
        ObjectPath::parse(&raw).unwrap_or_else(|_| {
            let mut path = self.prefix.clone();
            for segment in segments {
                path = path.join(segment);
            }
            path
        })
    }
}

/// Credentials for a bucket or container, typed in the app or given to
/// `cairn sign-in`. They are held by this process, and kept in the
/// system's keyring only when the person asks (see [`remember_bucket_login`]);
/// never written anywhere else. What is left empty comes from the
/// environment, as without them.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct BucketLogin {
    /// S3: the access key id. Azure: the storage account's name.
    #[serde(default)]
    pub key_id: String,
    /// S3: the secret access key. Azure: the account key, or a SAS token.
    #[serde(default)]
    pub secret: String,
    /// S3: the region.
    #[serde(default)]
    pub region: String,
    /// The service's address, for an S3-compatible store (MinIO, Ceph...)
    /// or an Azure emulator; empty for the cloud's own.
    #[serde(default)]
    pub endpoint: String,
    /// Google Cloud Storage: the path of a service account key file.
    #[serde(default)]
    pub key_file: String,
}

impl std::fmt::Debug for BucketLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketLogin")
            .field("key_id", &self.key_id)
            .field("secret", &(!self.secret.is_empty()).then_some("…"))
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl BucketLogin {
    /// The login with the spaces and line ends of a paste trimmed.
    fn trimmed(self) -> BucketLogin {
        BucketLogin {
            key_id: self.key_id.trim().to_string(),
            secret: self.secret.trim().to_string(),
            region: self.region.trim().to_string(),
            endpoint: self.endpoint.trim().to_string(),
            key_file: self.key_file.trim().to_string(),
        }
    }

    fn is_empty(&self) -> bool {
        self == &BucketLogin::default()
    }

    /// Whether it holds credentials (not only a region or an address).
    fn signs(&self) -> bool {
        !self.key_id.is_empty() || !self.secret.is_empty() || !self.key_file.is_empty()
    }

    /// An Azure SAS token, if the secret is one (a token, or a whole signed
    /// address), as the query it is.
    fn sas(&self) -> Option<&str> {
        let query = match self.secret.split_once('?') {
            Some((_, query)) => query,
            None => &self.secret,
        };
        (query.contains("sv=") && query.contains("sig=")).then_some(query)
    }
}

/// Bumped at every sign-in to a bucket: clients made before are not reused.
static LOGINS_CHANGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times the bucket logins changed: part of the key of a cached
/// client.
pub fn logins_changed() -> u64 {
    LOGINS_CHANGED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The logins given for buckets, by `scheme://bucket`.
static LOGINS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, BucketLogin>>,
> = std::sync::LazyLock::new(Default::default);

/// `address` as a bucket address, or an error that says it is not one.
fn bucket_url(address: &str) -> Result<Url> {
    Url::parse(address.trim())
        .ok()
        .filter(|url| is_bucket_address(url.as_str()))
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "{address:?} is not a bucket address (s3://, az://, gs://)"
            ))
        })
}

/// `scheme://bucket` of a bucket address.
fn bucket_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
}

/// Signs this process in to the bucket or container of `address` with
/// `login` (`None` or an empty one: back to the login kept in the keyring,
/// else the environment's credentials), for every job, estimate and check
/// from now on.
pub fn sign_in_to_bucket(address: &str, login: Option<BucketLogin>) -> Result<()> {
    let url = bucket_url(address)?;
    let key = bucket_key(&url);
    let mut logins = LOGINS.lock().unwrap_or_else(|e| e.into_inner());
    let mut recalled = RECALLED.lock().unwrap_or_else(|e| e.into_inner());
    match login.map(BucketLogin::trimmed).filter(|l| !l.is_empty()) {
        // What the person says now stands over what the keyring keeps.
        Some(login) => {
            recalled.insert(key.clone());
            logins.insert(key, login);
        }
        // Back to what this computer has: the keyring's, else the
        // environment's.
        None => {
            recalled.remove(&key);
            logins.remove(&key);
        }
    }
    LOGINS_CHANGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// The keyring account a bucket's login is kept under (see [`crate::vault`]).
fn vault_account(url: &Url) -> String {
    format!("bucket {}", bucket_key(url))
}

/// Keeps `login` for the bucket or container of `address` in this
/// computer's keyring, for every later job, estimate and check of any
/// Cairn process (`None`: removes what is kept). Blocking: the keyring is
/// asked over D-Bus on Linux.
pub fn remember_bucket_login(address: &str, login: Option<&BucketLogin>) -> Result<()> {
    let url = bucket_url(address)?;
    let account = vault_account(&url);
    match login
        .cloned()
        .map(BucketLogin::trimmed)
        .filter(|l| !l.is_empty())
    {
        Some(login) => {
            let kept = serde_json::to_string(&login).map_err(|e| {
                Error::invalid_input(format!("the login could not be written down: {e}"))
            })?;
            crate::vault::remember(&account, &kept)
        }
        None => crate::vault::forget(&account),
    }
}

/// Held while the keyring is asked for a bucket's login.
static LOOKUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The buckets whose keyring entry was looked for (or set or cleared by
/// the person), by `scheme://bucket`: each is asked for once per process.
static RECALLED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

/// What is kept in the keyring for the bucket or container of `address`,
/// in words without its secret ("key ID AKIAEXAMPLE · a secret · region
/// us-east-1"), if anything. Blocking, as [`remember_bucket_login`].
pub fn kept_bucket_login(address: &str) -> Option<String> {
    let url = bucket_url(address).ok()?;
    let kept = crate::vault::recall(&vault_account(&url))?;
    let login: BucketLogin = serde_json::from_str(&kept).ok()?;
    let mut said = Vec::new();
    let id = match url.scheme() {
        "az" => "storage account",
        _ => "key ID",
    };
    if !login.key_id.is_empty() {
        said.push(format!("{id} {}", login.key_id));
    }
    if !login.secret.is_empty() {
        said.push("a secret".to_string());
    }
    if !login.region.is_empty() {
        said.push(format!("region {}", login.region));
    }
    if !login.endpoint.is_empty() {
        said.push(format!("service {}", login.endpoint));
    }
    if !login.key_file.is_empty() {
        said.push(format!("key file {}", login.key_file));
    }
    Some(said.join(" · "))
}

/// The login for the bucket of `url`: the one given to this process, else
/// the one kept in the keyring.
fn login_for(url: &Url) -> Option<BucketLogin> {
    let key = bucket_key(url);
    let given = || {
        LOGINS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    };
    if let Some(login) = given() {
        return Some(login);
    }
    // One lookup at a time: a second caller for the same bucket waits for
    // the first one's answer rather than going on without it.
    let _lookup = LOOKUP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(login) = given() {
        return Some(login);
    }
    if RECALLED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&key)
    {
        return None;
    }
    let kept = crate::vault::recall(&vault_account(url));
    RECALLED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone());
    let login: BucketLogin = serde_json::from_str(&kept?).ok()?;
    Some(
        LOGINS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(login)
            .clone(),
    )
}

/// Checks that Cairn can list and write under the bucket address
/// `destination`: it lists, then writes a small object and removes it.
/// Says in words what worked, or what is wrong.
pub async fn test_connection(destination: &str) -> Result<String> {
    let destination = normalize(destination)?;
    if !is_bucket_address(&destination) {
        return Err(Error::invalid_input(format!(
            "{destination} is a folder on this computer: it needs no sign-in"
        )));
    }
    let opened = Destination::open(&destination, &std::env::temp_dir())?;
    let Destination::Bucket(bucket) = &opened else {
        return Err(Error::invalid_input(format!(
            "{destination} is not a bucket"
        )));
    };
    opened.check_access().await.map_err(|error| {
        Error::invalid_input(format!(
            "Cairn could not list {destination}: {}",
            error.reason()
        ))
    })?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = bucket.object_path(&format!(".cairn-write-test-{}-{stamp}", std::process::id()));
    let wrap = |source| Error::ObjectStore {
        href: destination.clone(),
        source,
    };
    // Each step answers in time, or is said not to have.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(15);
    let why = |failed: std::result::Result<object_store::Error, tokio::time::error::Elapsed>| {
        match failed {
            Ok(source) => wrap(source).reason(),
            Err(_) => format!("it did not answer within {} seconds", WAIT.as_secs()),
        }
    };
    let put = bucket.store.put(
        &probe,
        PutPayload::from_static(b"Cairn checks that it may write here."),
    );
    match tokio::time::timeout(WAIT, put).await {
        Ok(Ok(_)) => {}
        Ok(Err(source)) => return Err(cannot_write(&destination, &why(Ok(source)))),
        Err(late) => return Err(cannot_write(&destination, &why(Err(late)))),
    }
    let removed = match tokio::time::timeout(WAIT, bucket.store.delete(&probe)).await {
        Ok(Ok(())) => None,
        Ok(Err(source)) => Some(why(Ok(source))),
        Err(late) => Some(why(Err(late))),
    };
    if let Some(why) = removed {
        return Err(Error::invalid_input(format!(
            "Cairn could write under {destination}, but not remove its test object {probe} ({why}): remove it by hand, and give the credentials leave to delete (a sync that mirrors deletions needs it)"
        )));
    }
    Ok(format!(
        "Cairn can list, write and delete under {destination}."
    ))
}

fn cannot_write(destination: &str, why: &str) -> Error {
    Error::invalid_input(format!(
        "Cairn can see {destination} but could not write there: {why}"
    ))
}

/// Whether the environment names credentials (or anonymous access) for
/// the store of `url`, or the person gave a login for its bucket.
pub(crate) fn credentials_in_environment(url: &str) -> bool {
    if Url::parse(url).is_ok_and(|url| login_for(&url).is_some_and(|l| l.signs())) {
        return true;
    }
    let set = |names: &[&str]| names.iter().any(|n| std::env::var_os(n).is_some());
    match url.split("://").next().unwrap_or_default() {
        "s3" => set(&[
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_SKIP_SIGNATURE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]),
        "az" => set(&[
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_MASTER_KEY",
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_STORAGE_TOKEN",
            "AZURE_STORAGE_USE_EMULATOR",
            "AZURE_SKIP_SIGNATURE",
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
        ]),
        "gs" => set(&[
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_SKIP_SIGNATURE",
        ]),
        _ => true,
    }
}

/// An object store client for the bucket or container that `url` names,
/// with credentials from the environment.
pub fn object_store_for(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    build_store(url, false, false)
}

/// An object store client to read from the bucket or container that `url`
/// names: with the credentials the environment names, else unsigned, as
/// public buckets are read (`--no-sign-request`), rather than asking a
/// cloud's metadata service that is not there.
///
/// With `requester_pays`, S3 buckets are read as requester-pays buckets
/// (`x-amz-request-payer: requester`): signed, so that their owners can
/// bill the account that signs.
pub fn object_store_for_reading(url: &Url, requester_pays: bool) -> Result<Arc<dyn ObjectStore>> {
    let unsigned = !credentials_in_environment(url.as_str());
    let requester_pays = requester_pays && url.scheme() == "s3";
    if requester_pays && unsigned {
        return Err(Error::invalid_input(format!(
            "{url} is to be read as a requester-pays bucket, which needs AWS credentials: the bucket's owner bills the account that signs the requests. {}",
            crate::error::credentials_hint(url.as_str())
        )));
    }
    build_store(url, unsigned, requester_pays)
}

fn build_store(url: &Url, unsigned: bool, requester_pays: bool) -> Result<Arc<dyn ObjectStore>> {
    let login = login_for(url);
    let wrap = |source: object_store::Error| Error::ObjectStore {
        href: url.to_string(),
        source,
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        // Each upload request carries the SHA-256 of its body, which S3
        // checks and keeps with the object (and names in its answer, which
        // transit.rs compares).
        "s3" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_skip_signature(unsigned)
                .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                .with_request_payer(requester_pays)
                .with_http_connector(Checked(Store::S3));
            if let Some(login) = &login {
                if !login.key_id.is_empty() {
                    builder = builder.with_access_key_id(&login.key_id);
                }
                if !login.secret.is_empty() {
                    builder = builder.with_secret_access_key(&login.secret);
                }
                if !login.region.is_empty() {
                    builder = builder.with_region(&login.region);
                }
                if !login.endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(&login.endpoint)
                        .with_allow_http(login.endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
            }
            Arc::new(builder.build().map_err(wrap)?)
        }
        "az" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_skip_signature(unsigned)
                .with_http_connector(Checked(Store::Azure));
            if let Some(login) = &login {
                if !login.key_id.is_empty() {
                    builder = builder.with_account(&login.key_id);
                }
                if let Some(query) = login.sas() {
                    builder =
                        builder.with_config(object_store::azure::AzureConfigKey::SasKey, query);
                } else if !login.secret.is_empty() {
                    builder = builder.with_access_key(&login.secret);
                }
                if !login.endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(login.endpoint.clone())
                        .with_allow_http(login.endpoint.starts_with("http://"));
                }
            }
            Arc::new(builder.build().map_err(wrap)?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_skip_signature(unsigned)
                .with_http_connector(Checked(Store::Gcs));
            if let Some(login) = &login
                && !login.key_file.is_empty()
            {
                builder = builder.with_service_account_path(&login.key_file);
            }
            Arc::new(builder.build().map_err(wrap)?)
        }
        other => {
            return Err(Error::invalid_input(format!(
                "{url} uses {other}://, which is not an object store (s3://, az://, gs://)"
            )));
        }
    };
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Algorithm;

    /// A bucket whose store is a real one on local disk
    /// (object_store's `LocalFileSystem`, multipart uploads included).
    fn bucket(dir: &Path) -> Destination {
        let root = dir.join("store");
        std::fs::create_dir_all(&root).unwrap();
        Destination::Bucket(Arc::new(Bucket {
            url: Url::parse("s3://test/m").unwrap(),
            store: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&root).unwrap()),
            prefix: ObjectPath::from("m"),
            staging: dir.join("staging"),
        }))
    }

    #[tokio::test]
    async fn an_upload_of_bytes_other_than_the_verified_ones_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let destination = bucket(dir.path());
        let staged = destination.local_folder().unwrap();
        // One request, and several parts.
        for (name, size) in [("small.bin", 70_000), ("large.bin", PART_SIZE * 2 + 123)] {
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let verified = Checksum::of(Algorithm::Sha2_256, &bytes);
            let mut damaged = bytes.clone();
            damaged[size / 2] ^= 1;
            staged.write_atomic(name, &damaged).unwrap();
            let error = destination
                .publish(&staged, name, Some(&verified), &CancellationToken::new())
                .await
                .unwrap_err();
            let reason = error.reason();
            assert!(
                reason.contains("changed on disk after it was checked"),
                "{reason}"
            );
            assert!(
                !destination.has_file(&staged, name).await,
                "{name} was uploaded"
            );
            // The verified bytes go up.
            staged.write_atomic(name, &bytes).unwrap();
            destination
                .publish(&staged, name, Some(&verified), &CancellationToken::new())
                .await
                .unwrap();
            let stored = std::fs::read(dir.path().join("store/m").join(name)).unwrap();
            assert_eq!(Checksum::of(Algorithm::Sha2_256, &stored), verified);
        }
        // Nothing half-made is left in the store.
        let left: Vec<_> = walk(&dir.path().join("store"));
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[tokio::test]
    async fn a_stopped_upload_is_abandoned_not_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let destination = bucket(dir.path());
        let staged = destination.local_folder().unwrap();
        let bytes: Vec<u8> = (0..PART_SIZE * 3).map(|i| (i % 253) as u8).collect();
        staged.write_atomic("large.bin", &bytes).unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let stopped = destination
            .publish(&staged, "large.bin", None, &cancel)
            .await;
        assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
        // No object, and no part of an unfinished upload.
        let left = walk(&dir.path().join("store"));
        assert!(left.is_empty(), "{left:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
