//! Packages for archives: a mirror folder as a BagIt bag (RFC 8493).
//!
//! The bag holds the whole mirror under `data/` (catalog, items, assets,
//! `items.parquet`, `provenance.jsonl`), with `bagit.txt`, `bag-info.txt`
//! (the source, the dates, Cairn's version, `Payload-Oxum`), a payload
//! manifest for sha256 (and sha512 on request), a copy of the provenance
//! file as a tag file, and a tag manifest over all of those. It validates
//! with the Library of Congress's `bagit.py --validate`.
//!
//! A file whose checksum Cairn recorded when it verified it is not hashed
//! again while its size and modification time still match the record (the
//! copy itself is left to the kernel); any other file is hashed as it is
//! copied; one whose bytes are then not those verified (or an item
//! document not as Cairn wrote it) is left out of the bag and said, as is
//! a file verified into the mirror or a document written there and gone
//! since. A file the state file has no record of (a mirror made with
//! another one, or a new one) is held to the `file:checksum` the mirror's
//! own item document gives it, as `cairn verify` holds it, and a document
//! the mirror's catalog links that is gone is said too. The
//! mirror is read through its [`Folder`]: a link inside it is
//! never followed (it is reported, and the bag is not made complete with
//! whatever it points at). The bag is built under a temporary name beside
//! its place and renamed there once whole, so an interrupted export leaves
//! no half bag under the chosen name.
//!
//! A mirror in a bucket is read object by object (each hashed as it is
//! written into the bag, and left out, as above, when it is not the bytes
//! Cairn verified or wrote, or when it is gone). A bag for a bucket is
//! built in a temporary folder and uploaded under a prefix that holds nothing yet, payload first and
//! `bagit.txt` last, so that a bag cut short never looks whole.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::checksum::{Algorithm, Checksum, Hasher};
use crate::folder::{Entry, Folder};
use crate::layout::is_own_temporary;
use crate::rewrite::{PROVENANCE, SOURCE_FIELD};
use crate::store::Store;
use crate::{Error, Result};

/// How to make a bag.
#[derive(Debug, Clone, Default)]
pub struct BagOptions {
    /// Write a sha512 manifest beside the sha256 one.
    pub sha512: bool,
    /// Hash every file, even one unchanged since it was verified (bit rot
    /// that keeps a file's size and time is found only so).
    pub rehash: bool,
    /// Stops the bag between two files (what was built is removed).
    pub stop: tokio_util::sync::CancellationToken,
}

/// What a bag holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bagged {
    /// Where the bag is.
    pub path: PathBuf,
    /// Payload files.
    pub files: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Files whose recorded sha256 was used (unchanged since verified).
    pub reused: u64,
    /// Files hashed while copied.
    pub hashed: u64,
    /// What was in the mirror and is not in the bag, with why.
    pub left_out: Vec<(String, String)>,
    /// Of those, files Cairn verified into the mirror that are no longer
    /// the bytes verified, or no longer there: a repair fetches them again.
    pub to_repair: u64,
}

/// Bytes read at a time when a file is hashed as it is copied.
const CHUNK: usize = 1024 * 1024;
/// Bytes copied at a time (by the kernel) when a file is not hashed.
const SLICE: u64 = 64 * 1024 * 1024;

/// Makes a BagIt bag of the mirror at `mirror` (a folder, or a bucket
/// address) at `out` (a new folder, or a bucket address under which
/// nothing is yet). `store`, when given, holds the checksums Cairn recorded
/// for a folder mirror. The bag's `path` is `out` as given for a bucket.
pub async fn bag(
    mirror: &str,
    out: &str,
    store: Option<&Store>,
    options: &BagOptions,
) -> Result<Bagged> {
    use crate::destination::{Destination, is_bucket_address, normalize};
    let mirror = normalize(mirror)?;
    let into_bucket = is_bucket_address(out);
    let out = match into_bucket {
        true => normalize(out)?,
        false => out.to_string(),
    };
    if into_bucket && is_bucket_address(&mirror) && (within(&out, &mirror) || within(&mirror, &out))
    {
        return Err(Error::invalid_input(format!(
            "the bag {out} and the mirror {mirror} would hold each other; put the bag under another prefix"
        )));
    }
    // A bag for a bucket is built in a folder of its own (made for this
    // export alone, readable by this user only, removed afterwards).
    let staging = match into_bucket {
        true => Some(
            tempfile::Builder::new()
                .prefix("cairn-bag-")
                .tempdir()
                .map_err(|e| Error::io(&std::env::temp_dir(), e))?,
        ),
        false => None,
    };
    let scratch = staging
        .as_ref()
        .map_or_else(std::env::temp_dir, |s| s.path().to_path_buf());
    // A bucket mirror is listed once: for the room it needs, and for the
    // bag; a folder mirror is opened and its root catalog read before
    // anything else reads it.
    let source = match is_bucket_address(&mirror) {
        true => {
            let source = Destination::open(&mirror, &scratch)?;
            let files = tokio::select! {
                files = source.list_files() => files?,
                () = options.stop.cancelled() => return Err(Error::Cancelled),
            };
            Mirror::Bucket(source, files)
        }
        false => {
            let path = Path::new(&mirror);
            let folder = Folder::open(path).map_err(|e| Error::io(path, e))?;
            // Held until the bag is made: it holds the mirror as it stood,
            // not half of a run's catalog files.
            let reading = crate::writer::Writer::read(folder.root())
                .map_err(|e| Error::io(path, e))?
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "a job is copying into the mirror folder {mirror} (the app, or a command in another terminal); its catalog files change until it ends. Make the bag once it has ended, or pause it first"
                    ))
                })?;
            let source = mirror_source(&folder)?;
            Mirror::Folder(folder, source, reading)
        }
    };
    let target = match into_bucket {
        true => {
            let target = Destination::open(&out, &scratch)?;
            refuse_taken(&target, &out).await?;
            let needed = match &source {
                Mirror::Bucket(_, files) => files.iter().map(|(_, size)| size).sum(),
                Mirror::Folder(..) => folder_bytes(Path::new(&mirror))?,
            };
            let free = crate::destination::free_space(&scratch.display().to_string());
            if let Some(free) = free.filter(|free| *free < needed + needed / 20 + (1 << 20)) {
                return Err(Error::invalid_input(format!(
                    "a bag for a bucket is built first in {}, which has {} free; the mirror holds {}. Set TMPDIR to a folder with room, or make the bag in a folder",
                    scratch.display(),
                    crate::words::human_bytes(free),
                    crate::words::human_bytes(needed)
                )));
            }
            Some(target)
        }
        false => None,
    };
    // Built in place for a folder, in the staging folder for a bucket.
    let local_out = match &target {
        Some(_) => scratch.join("bag"),
        None => PathBuf::from(&out),
    };
    // What the mirror's own item documents say of its files: the proof of
    // a file the state file has no record of.
    // (Read with this computer's own access: a bucket this user reads
    // another way is bagged on the records alone, and said.)
    let claims = tokio::select! {
        claims = crate::verify::claims(&mirror) => claims,
        () = options.stop.cancelled() => return Err(Error::Cancelled),
    };
    let claims = match claims {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(
                "the mirror's catalog could not be read for the checksums it gives ({error}); files the state file has no record of are bagged as they are"
            );
            crate::verify::Claims::default()
        }
    };
    let records = Records {
        store,
        claims: &claims,
    };
    let mut bagged = match source {
        Mirror::Bucket(source, files) => {
            bagit_of_bucket((&source, &mirror), files, &local_out, records, options).await?
        }
        Mirror::Folder(folder, source, reading) => {
            let bagged = bagit(
                (Path::new(&mirror), folder, &source),
                &local_out,
                records,
                options,
            );
            drop(reading);
            bagged?
        }
    };
    if let Some(target) = target {
        // Another export may have written there meanwhile.
        refuse_taken(&target, &out).await?;
        upload(&local_out, &target, &out, &options.stop).await?;
        bagged.path = PathBuf::from(&out);
    }
    drop(staging);
    Ok(bagged)
}

/// The mirror a bag is made of: a bucket's, with its objects (path and
/// size), or a folder, with the source its root catalog names.
enum Mirror {
    Bucket(crate::destination::Destination, Vec<(String, u64)>),
    Folder(Folder, String, crate::writer::Reading),
}

/// Whether the address `inner` is `outer` or under it.
fn within(inner: &str, outer: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// Refuses a bucket prefix that holds anything.
async fn refuse_taken(target: &crate::destination::Destination, out: &str) -> Result<()> {
    if target.is_empty().await? {
        return Ok(());
    }
    Err(Error::invalid_input(format!(
        "{out} already holds objects; Cairn does not write a bag over them: choose a new prefix"
    )))
}

/// The bytes of the files of a mirror folder (links are not followed).
fn folder_bytes(mirror: &Path) -> Result<u64> {
    let folder = Folder::open(mirror).map_err(|e| Error::io(mirror, e))?;
    let mut bytes = 0;
    folder
        .each_entry(|path, kind| {
            if matches!(kind, Entry::File) {
                bytes += folder.file_len(path).unwrap_or(0);
            }
            Ok(())
        })
        .map_err(|e| Error::io(mirror, e))?;
    Ok(bytes)
}

/// Makes a bag at `out` of the mirror in a bucket `mirror` (at `address`),
/// whose objects are `files` (path and size). An object whose bytes are
/// not those `store` recorded as verified is left out, and said, as is an
/// object verified into the mirror and gone since.
async fn bagit_of_bucket(
    (mirror, address): (&crate::destination::Destination, &str),
    files: Vec<(String, u64)>,
    out: &Path,
    records: Records<'_>,
    options: &BagOptions,
) -> Result<Bagged> {
    let root = mirror
        .stream("catalog.json")
        .await
        .map_err(|error| match error {
            Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            } => Error::invalid_input(
                "the bucket holds no catalog.json there; give the address of a mirror Cairn made",
            ),
            other => other,
        })?;
    let root = collect(root, 64 * 1024 * 1024).await?;
    let source = source_of(&root, "the bucket's catalog.json")?;
    let out = check_out(None, out)?;
    let building = temporary_beside(&out)?;
    let filled = async {
        let bag = Folder::open(&building).map_err(|e| Error::io(&building, e))?;
        let mut bagged = Bagged::default();
        let mut manifests = Manifests {
            sha256: Vec::new(),
            sha512: options.sha512.then(Vec::new),
        };
        let mut listed = std::collections::HashSet::new();
        let mut recorded_found = 0u64;
        for (path, size) in files {
            if options.stop.is_cancelled() {
                return Err(Error::Cancelled);
            }
            listed.insert(path.clone());
            let proof = Proof::of(records, address, &path)?;
            recorded_found += u64::from(proof.record.is_some());
            match copy_object(
                mirror,
                &bag,
                &path,
                (size, proof.verified.as_ref()),
                &mut manifests,
                &options.stop,
            )
            .await
            {
                Ok(true) => {
                    bagged.files += 1;
                    bagged.bytes += size;
                    bagged.hashed += 1;
                }
                Ok(false) => {
                    // A bucket is repaired only through the job that
                    // recorded the file (and an item document is written
                    // again by no repair of a bucket).
                    bagged.to_repair += u64::from(!proof.document && proof.record.is_some());
                    bagged.left_out.push((path.clone(), proof.why_not().into()));
                }
                // A key the bag's folder cannot hold as a file (a name it
                // refuses, one that is also a folder's, twins by case):
                // that object is left out, and said. A full disk is not.
                Err(Error::Io { source, .. }) => {
                    bagged.left_out.push((
                        path,
                        format!("it cannot be a file of the bag under this name: {source}"),
                    ));
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(store) = records.store {
            // (An item document is written again by no repair of a bucket.)
            let missing = Missing {
                recorded_found,
                documents_repaired: false,
            };
            missing.say(store, address, &mut bagged, |path| {
                Ok((!listed.contains(path)).then_some(Gone::Missing))
            })?;
        }
        say_unreadable(records.claims, &manifests, &mut bagged);
        write_tags(&bag, &mut manifests, &bagged, &source)?;
        Ok(bagged)
    }
    .await;
    put_in_place(&building, out, filled)
}

/// Gathers a stream of at most `limit` bytes.
async fn collect(
    mut stream: futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
    limit: usize,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > limit {
            return Err(Error::invalid_input(
                "the root catalog is too big to be the catalog of a mirror",
            ));
        }
    }
    Ok(bytes)
}

/// Writes the object `path` of a bucket mirror into the bag's `data/`,
/// hashing it on the way; its size must be the listed one. Returns false,
/// and leaves it out, when it is not the bytes `verified`.
async fn copy_object(
    mirror: &crate::destination::Destination,
    bag: &Folder,
    path: &str,
    (size, verified): (u64, Option<&Checksum>),
    manifests: &mut Manifests,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<bool> {
    let target = format!("data/{path}");
    let io_bag = |e| Error::io(&bag.display(&target), e);
    let mut to = bag.create(&target).map_err(io_bag)?;
    let mut hashes = Hashes::new(manifests, verified);
    let mut stream = mirror.stream(path).await?;
    let mut written = 0u64;
    loop {
        let chunk = tokio::select! {
            chunk = futures::StreamExt::next(&mut stream) => chunk,
            () = stop.cancelled() => return Err(Error::Cancelled),
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk?;
        hashes.update(&chunk);
        to.write_all(&chunk).map_err(io_bag)?;
        written += chunk.len() as u64;
    }
    if written != size {
        return Err(Error::invalid_input(format!(
            "{path} in the bucket changed while it was read ({size} bytes became {written}); export again"
        )));
    }
    hashes.keep(bag, to, target, manifests)
}

/// The hashes of a file taken as it is copied into the bag: sha256 for the
/// payload manifest, sha512 when one is asked for, and that of the
/// checksum recorded when Cairn verified the file, in its own algorithm.
struct Hashes {
    sha256: Hasher,
    sha512: Option<Hasher>,
    /// The recorded checksum, and its algorithm's hash when not sha256.
    check: Option<(Checksum, Option<Hasher>)>,
}

impl Hashes {
    fn new(manifests: &Manifests, verified: Option<&Checksum>) -> Hashes {
        Hashes {
            sha256: Hasher::new(Algorithm::Sha2_256),
            sha512: manifests
                .sha512
                .is_some()
                .then(|| Hasher::new(Algorithm::Sha2_512)),
            check: verified.map(|verified| {
                let own = (verified.algorithm != Algorithm::Sha2_256)
                    .then(|| Hasher::new(verified.algorithm));
                (verified.clone(), own)
            }),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(sha512) = &mut self.sha512 {
            sha512.update(bytes);
        }
        if let Some((_, Some(own))) = &mut self.check {
            own.update(bytes);
        }
    }

    /// Adds the file copied to `to` (at `target` in the bag) to the
    /// manifests, or removes it from the bag when its bytes are not the
    /// ones recorded (false).
    fn keep(
        self,
        bag: &Folder,
        to: std::fs::File,
        target: String,
        manifests: &mut Manifests,
    ) -> Result<bool> {
        let io_bag = |e| Error::io(&bag.display(&target), e);
        let sha256 = self.sha256.finish();
        let same = match self.check {
            None => true,
            Some((verified, None)) => verified.digest == sha256.digest,
            Some((verified, Some(own))) => verified.digest == own.finish().digest,
        };
        if !same {
            drop(to);
            bag.remove(&target).map_err(io_bag)?;
            return Ok(false);
        }
        // Flushed to disk with the whole bag (one syncfs) on Linux;
        // elsewhere file by file.
        if !cfg!(target_os = "linux") {
            to.sync_all().map_err(io_bag)?;
        }
        if let (Some(lines), Some(sha512)) = (&mut manifests.sha512, self.sha512) {
            lines.push((hex::encode(sha512.finish().digest), target.clone()));
        }
        manifests.sha256.push((hex::encode(&sha256.digest), target));
        Ok(true)
    }
}

/// Uploads the bag in the folder `bag` under the bucket prefix `target`
/// (`out`): the payload, then the tag files, `bagit.txt` last.
async fn upload(
    bag: &Path,
    target: &crate::destination::Destination,
    out: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<()> {
    let folder = Folder::open(bag).map_err(|e| Error::io(bag, e))?;
    let mut files = Vec::new();
    folder
        .each_entry(|path, kind| {
            if matches!(kind, Entry::File) {
                files.push(path.to_string());
            }
            Ok(())
        })
        .map_err(|e| Error::io(bag, e))?;
    // Payload first, then the other tag files, and the declaration last.
    files.sort_by_key(|path| {
        (
            !path.starts_with("data/"),
            path == "bagit.txt",
            path.clone(),
        )
    });
    let total = files.len();
    for (done, path) in files.iter().enumerate() {
        let published = match stop.is_cancelled() {
            true => Err(Error::Cancelled),
            false => target.publish(&folder, path, None, stop).await,
        };
        match published {
            Ok(_) => {}
            Err(_) if done == 0 && stop.is_cancelled() => return Err(Error::Cancelled),
            Err(error) => {
                let why = match stop.is_cancelled() {
                    true => "it was stopped".to_string(),
                    false => error.reason(),
                };
                return Err(Error::invalid_input(format!(
                    "the upload of the bag stopped after {done} of {total} files ({why}); the objects under {out} are an unfinished bag without bagit.txt: delete them, or choose a new prefix, and make the bag again"
                )));
            }
        }
    }
    Ok(())
}

/// Makes a BagIt bag at `out` of the mirror folder `mirror`. `store`, when
/// given, holds the checksums Cairn recorded for the mirror (`destination`
/// is its normalized path, as jobs record it).
fn bagit(
    (mirror, folder, source): (&Path, Folder, &str),
    out: &Path,
    records: Records<'_>,
    options: &BagOptions,
) -> Result<Bagged> {
    let out = check_out(Some(mirror), out)?;
    // A folder of the bag's own, made anew (never one that was there).
    let building = temporary_beside(&out)?;
    let bag = match Folder::open(&building) {
        Ok(bag) => bag,
        Err(error) => {
            let _ = std::fs::remove_dir(&building);
            return Err(Error::io(&building, error));
        }
    };
    let destination = mirror.display().to_string();
    let made = fill(&folder, &bag, records, &destination, options, source);
    put_in_place(&building, out, made)
}

/// Puts the bag built in `building` at `out` (checked to be new or an empty
/// folder, which the rename replaces, and nothing else) once every file of
/// it is on disk; removes what was built if the bag could not be made.
fn put_in_place(building: &Path, out: PathBuf, made: Result<Bagged>) -> Result<Bagged> {
    let placed = made.and_then(|mut bagged| {
        crate::transfer::ledger::flush_file_system(building)?;
        std::fs::rename(building, &out).map_err(|e| Error::io(&out, e))?;
        bagged.path = out;
        Ok(bagged)
    });
    if placed.is_err() {
        let _ = std::fs::remove_dir_all(building);
    }
    placed
}

/// The source a mirror was made of, from its root catalog; a folder without
/// a Cairn catalog is refused.
fn mirror_source(mirror: &Folder) -> Result<String> {
    let root = mirror.display("catalog.json");
    // Read as any file of the mirror: never through a link, never a pipe,
    // and no bigger than a root catalog can be.
    let too_big = mirror
        .file_len("catalog.json")
        .is_ok_and(|len| len > 64 * 1024 * 1024);
    if too_big {
        return Err(Error::invalid_input(format!(
            "{} is too big to be the root catalog of a mirror",
            root.display()
        )));
    }
    let bytes = mirror.read("catalog.json").map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::invalid_input(format!(
            "{} holds no catalog.json; give the folder of a mirror Cairn made",
            mirror.root().display()
        )),
        // A link, a pipe, a folder: not a mirror's root catalog.
        _ => Error::invalid_input(format!(
            "{} cannot be read as the root catalog of a mirror: {e}",
            root.display()
        )),
    })?;
    source_of(&bytes, &root.display().to_string())
}

/// The source named by the root catalog `bytes` (read from `what`).
fn source_of(bytes: &[u8], what: &str) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        Error::invalid_input(format!(
            "{what} is not a STAC catalog; give a mirror Cairn made"
        ))
    })?;
    value
        .get(SOURCE_FIELD)
        .and_then(serde_json::Value::as_str)
        // One line of bag-info.txt: control characters (a line break that
        // would add a field of its own) become spaces.
        .map(|source| {
            crate::provenance::redact(source)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        })
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "{what} is not the catalog of a mirror Cairn made (it names no source)"
            ))
        })
}

/// Refuses a bag inside the mirror (it would take itself in) or a mirror
/// inside the bag, and a place that is taken; the bag's absolute path.
fn check_out(mirror: Option<&Path>, out: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(out).map_err(|e| Error::io(out, e))?;
    if std::fs::symlink_metadata(&absolute).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::invalid_input(format!(
            "{} is a link; give a new folder for the bag",
            absolute.display()
        )));
    }
    let mirror = match mirror {
        Some(mirror) => Some(std::fs::canonicalize(mirror).map_err(|e| Error::io(mirror, e))?),
        None => None,
    };
    // The nearest existing folder decides where the bag really is.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name().unwrap_or_default().to_owned());
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    // The bag's own folder is made; the folder it goes in must be there (a
    // drive not plugged in is not made on the disk beneath).
    if rest.len() > 1
        && let Some(parent) = absolute.parent()
    {
        return Err(Error::invalid_input(format!(
            "the folder {} does not exist (is its drive plugged in?); make it first, or give the bag a place in a folder that exists",
            parent.display()
        )));
    }
    let mut real = std::fs::canonicalize(existing).map_err(|e| Error::io(existing, e))?;
    for name in rest.iter().rev() {
        real.push(name);
    }
    if let Some(mirror) = mirror
        && (real.starts_with(&mirror) || mirror.starts_with(&real))
    {
        return Err(Error::invalid_input(format!(
            "the bag {} and the mirror {} would hold each other; put the bag outside the mirror folder",
            absolute.display(),
            mirror.display()
        )));
    }
    if real.exists() {
        let empty = std::fs::read_dir(&real)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Error::invalid_input(format!(
                "{} already exists and is not an empty folder; Cairn does not write a bag over it: choose a new folder",
                absolute.display()
            )));
        }
    }
    Ok(real)
}

/// Makes the folder where a bag for `out` is built: beside it, under a
/// name of its own that nothing had (whatever is there is left alone).
fn temporary_beside(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.cairn-bag-");
    remove_left_behind(out, &prefix);
    let me = format!("{}-{}", crate::store::host_name(), std::process::id());
    for n in 0..1000 {
        let candidate = out.with_file_name(format!("{prefix}{me}-{n}"));
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&candidate, e)),
        }
    }
    Err(Error::invalid_input(format!(
        "no free name for a temporary folder beside {}",
        out.display()
    )))
}

/// Removes the temporary folders beside `out` (named `prefix`, then the
/// computer, the process and a number) that an export stopped on its way
/// (killed, or Ctrl-C) left: only this computer's, of processes that no
/// longer run.
fn remove_left_behind(out: &Path, prefix: &str) {
    let (Some(parent), host) = (out.parent(), crate::store::host_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '-');
        let (Some(_), Some(pid), Some(at)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let folder = entry.file_type().is_ok_and(|t| t.is_dir());
        if folder && at == host && pid != std::process::id() && !crate::store::process_runs(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The manifests' lines, one list per algorithm.
struct Manifests {
    sha256: Vec<(String, String)>,
    sha512: Option<Vec<(String, String)>>,
}

fn fill(
    mirror: &Folder,
    bag: &Folder,
    records: Records<'_>,
    destination: &str,
    options: &BagOptions,
    source: &str,
) -> Result<Bagged> {
    let mut bagged = Bagged::default();
    let mut manifests = Manifests {
        sha256: Vec::new(),
        sha512: options.sha512.then(Vec::new),
    };
    let mut failure = None;
    // Files walked that a job recorded as verified.
    let mut recorded_found = 0u64;
    let walked = mirror.each_entry(|path, kind| {
        match kind {
            Entry::Folder => {}
            Entry::File
                if is_own_temporary(path)
                    && !recorded(records.store, destination, path)
                    && !records.claims.checksums.contains_key(path) =>
            {
                bagged.left_out.push((
                    path.to_string(),
                    "an unfinished download or a temporary file of Cairn's, not part of the mirror"
                        .into(),
                ));
            }
            Entry::File if options.stop.is_cancelled() => {
                failure = Some(Error::Cancelled);
                return Err(std::io::Error::other("stopped"));
            }
            Entry::File => match copy_one(
                mirror,
                bag,
                path,
                (records, options.rehash),
                destination,
                &mut manifests,
                &options.stop,
            ) {
                Ok(Copied::Bagged {
                    size,
                    reused,
                    recorded,
                }) => {
                    recorded_found += u64::from(recorded);
                    bagged.files += 1;
                    bagged.bytes += size;
                    if reused {
                        bagged.reused += 1;
                    } else {
                        bagged.hashed += 1;
                    }
                }
                Ok(Copied::Damaged { recorded, why }) => {
                    recorded_found += u64::from(recorded);
                    bagged.to_repair += 1;
                    bagged.left_out.push((path.to_string(), why.into()));
                }
                // A name the bag's folder cannot hold (a backslash...): that
                // file is left out, and said.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::InvalidInput =>
                {
                    bagged.left_out.push((
                        path.to_string(),
                        format!("its name cannot be used in the bag: {source}"),
                    ));
                }
                Err(error) => {
                    failure = Some(error);
                    return Err(std::io::Error::other("stopped"));
                }
            },
            Entry::Link => bagged.left_out.push((
                path.to_string(),
                "it is a link; Cairn never follows links inside a mirror".into(),
            )),
            Entry::Other => bagged.left_out.push((
                path.to_string(),
                "it is not a regular file (a pipe, a device or a socket)".into(),
            )),
            Entry::NotUnicode => bagged.left_out.push((
                path.to_string(),
                "its name is not valid Unicode, which a bag's manifest cannot name".into(),
            )),
            Entry::Unreadable => bagged.left_out.push((
                path.to_string(),
                "a folder that cannot be read; its files are not in the bag".into(),
            )),
        }
        Ok(())
    });
    if let Some(error) = failure {
        return Err(error);
    }
    walked.map_err(|e| Error::io(mirror.root(), e))?;
    if let Some(store) = records.store {
        let missing = Missing {
            recorded_found,
            documents_repaired: true,
        };
        missing.say(store, destination, &mut bagged, |path| {
            Ok(match mirror.file_len(path) {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Gone::Missing),
                // A folder where the file was, say: not the file verified.
                Err(e) => Some(Gone::Replaced(e.to_string())),
            })
        })?;
    }
    say_unreadable(records.claims, &manifests, &mut bagged);
    write_tags(bag, &mut manifests, &bagged, source)?;
    Ok(bagged)
}

/// What became of a file Cairn verified or wrote into a mirror, not found
/// in it.
enum Gone {
    Missing,
    /// Something else is at its name (a folder, say).
    Replaced(String),
}

/// How the files verified into a mirror and the item documents written
/// there that are gone since are said (see [`Missing::say`]).
struct Missing {
    /// The recorded files the bag found: files are looked for only when
    /// the records hold more.
    recorded_found: u64,
    /// A repair writes a missing item document again (in a folder).
    documents_repaired: bool,
}

impl Missing {
    /// Says the files verified into the mirror at `destination` and the
    /// item documents written there that are gone since (`gone` tells
    /// how, or `None` for one still there): the bag is not the whole
    /// mirror, and a repair fetches or writes them again.
    fn say(
        &self,
        store: &Store,
        destination: &str,
        bagged: &mut Bagged,
        mut gone: impl FnMut(&str) -> Result<Option<Gone>>,
    ) -> Result<()> {
        let said: std::collections::HashSet<String> = bagged
            .left_out
            .iter()
            .map(|(path, _)| path.clone())
            .collect();
        if store.count_mirrored_files(destination)? > self.recorded_found {
            store.each_mirrored_file(destination, |file| {
                if said.contains(&file.path) {
                    return Ok(());
                }
                let why = match gone(&file.path)? {
                    None => return Ok(()),
                    Some(Gone::Missing) => MISSING.to_string(),
                    Some(Gone::Replaced(e)) => format!("{REPLACED} ({e})"),
                };
                bagged.to_repair += 1;
                bagged.left_out.push((file.path.clone(), why));
                Ok(())
            })?;
        }
        let mut documents: Vec<String> =
            store.written_documents(destination)?.into_keys().collect();
        documents.sort();
        for path in documents {
            if said.contains(&path) {
                continue;
            }
            let why = match gone(&path)? {
                None => continue,
                Some(Gone::Missing) => DOCUMENT_MISSING.to_string(),
                Some(Gone::Replaced(e)) => format!("{DOCUMENT_REPLACED} ({e})"),
            };
            bagged.to_repair += u64::from(self.documents_repaired);
            bagged.left_out.push((path, why));
        }
        Ok(())
    }
}

/// What the state file holds about a file of a mirror: the checksum of the
/// bytes Cairn verified there (an asset's, or an item document's as Cairn
/// wrote it).
struct Proof {
    /// A job recorded it as a verified asset.
    record: Option<crate::store::MirroredFile>,
    /// It is an item document Cairn wrote.
    document: bool,
    /// The checksum its bytes must have (a sha256, or the catalog's own
    /// in another algorithm).
    verified: Option<Checksum>,
}

/// What vouches for the files of a mirror: the state file's records of
/// what Cairn verified and wrote, if it has them, and what the mirror's
/// own item documents say (`file:checksum`) of the files it has no record
/// of (a mirror made with another state file, or one lost).
#[derive(Clone, Copy)]
struct Records<'a> {
    store: Option<&'a Store>,
    claims: &'a crate::verify::Claims,
}

impl Proof {
    fn of(records: Records<'_>, destination: &str, path: &str) -> Result<Proof> {
        let (record, written) = match records.store {
            Some(store) => {
                let record = store.mirrored_file(destination, path)?;
                let written = match &record {
                    None => store.written_document(destination, path)?,
                    Some(_) => None,
                };
                (record, written)
            }
            None => (None, None),
        };
        let verified = record
            .as_ref()
            .map(|file| file.checksum.as_str())
            .or(written.as_deref())
            .or_else(|| records.claims.checksums.get(path).map(String::as_str))
            .and_then(|checksum| Checksum::parse(checksum).ok());
        Ok(Proof {
            record,
            document: written.is_some(),
            verified,
        })
    }

    /// Why a file that is not the bytes verified is not in the bag.
    fn why_not(&self) -> &'static str {
        match (self.document, &self.record) {
            (true, _) => EDITED,
            (false, Some(_)) => DAMAGED,
            (false, None) => NOT_AS_CLAIMED,
        }
    }
}

/// Says the documents the mirror's catalog links that could not be read
/// and are not in the bag (gone, or something else in their place).
fn say_unreadable(claims: &crate::verify::Claims, manifests: &Manifests, bagged: &mut Bagged) {
    let bagged_paths: std::collections::HashSet<&str> = manifests
        .sha256
        .iter()
        .filter_map(|(_, target)| target.strip_prefix("data/"))
        .collect();
    let said: std::collections::HashSet<String> = bagged
        .left_out
        .iter()
        .map(|(path, _)| path.clone())
        .collect();
    for (path, why) in &claims.unreadable {
        if !bagged_paths.contains(path.as_str()) && !said.contains(path) {
            bagged.left_out.push((
                path.clone(),
                format!("the mirror's catalog links it ({why})"),
            ));
        }
    }
}

/// Whether a job of `store` recorded the file at `path` of the mirror as
/// verified (an asset may have a name that ends like a temporary; without
/// the records, the mirror's item documents naming it tell).
fn recorded(store: Option<&Store>, destination: &str, path: &str) -> bool {
    store.is_some_and(|s| s.mirrored_file(destination, path).ok().flatten().is_some())
}

/// Why a file whose bytes are not those verified is not in the bag.
const DAMAGED: &str = "its bytes are not those Cairn verified (damaged or edited since)";

/// Why an item document changed since Cairn wrote it is not in the bag.
const EDITED: &str = "the item's document was changed since Cairn wrote it";

/// Why a file verified into the mirror and gone since is not in the bag.
const MISSING: &str = "Cairn verified it into the mirror, and it is no longer there";

/// Why a file Cairn has no record of, whose bytes are not those its item
/// document gives, is not in the bag.
const NOT_AS_CLAIMED: &str =
    "its bytes are not those its item's document gives (file:checksum): damaged or edited since";

/// Why an item document Cairn wrote and gone since is not in the bag.
const DOCUMENT_MISSING: &str =
    "Cairn wrote this item's document into the mirror, and it is no longer there";

/// Why an item document Cairn wrote whose name now leads to something else
/// is not in the bag.
const DOCUMENT_REPLACED: &str = "Cairn wrote this item's document into the mirror at this name, and what is there now is not that document";

/// Why a file verified into the mirror whose name now leads to something
/// else (a folder) is not in the bag.
const REPLACED: &str =
    "Cairn verified a file into the mirror at this name, and what is there now is not that file";

/// What became of a file of the mirror.
enum Copied {
    /// In the bag: its size, whether a recorded checksum was used rather
    /// than hashing it, and whether a job recorded it as verified.
    Bagged {
        size: u64,
        reused: bool,
        recorded: bool,
    },
    /// Hashed, and not the bytes verified (or the item document Cairn
    /// wrote): left out of the bag, for why; and whether a job recorded it.
    Damaged { recorded: bool, why: &'static str },
}

/// Copies one file of the mirror into the bag's `data/`. `store` holds the
/// checksum recorded when the file was verified: it is used rather than
/// hashing the file while the file keeps its size and times (unless
/// `rehash`), and a file hashed that differs from it is left out.
fn copy_one(
    mirror: &Folder,
    bag: &Folder,
    path: &str,
    (records, rehash): (Records<'_>, bool),
    destination: &str,
    manifests: &mut Manifests,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Copied> {
    let io_mirror = |e| Error::io(&mirror.display(path), e);
    let target = format!("data/{path}");
    let io_bag = |e| Error::io(&bag.display(&target), e);
    let mut from = mirror.read_file(path).map_err(io_mirror)?;
    let meta = from.metadata().map_err(io_mirror)?;
    let size = meta.len();
    let mtime = meta.modified().ok().map(crate::folder::nanos);
    let proof = Proof::of(records, destination, path)?;
    let (record, verified) = (&proof.record, &proof.verified);
    // Unchanged since verified: its size and modification time, and its
    // change time too, which no one can set back (bytes edited and given
    // their old modification time again are hashed).
    let unchanged = record.as_ref().is_some_and(|file| {
        file.size == size
            && mtime.is_some()
            && file.mtime == mtime
            && file.changed.is_some()
            && file.changed == crate::folder::changed_at(&meta)
    });
    let mut to = bag.create(&target).map_err(io_bag)?;
    // Unchanged, and recorded as a sha256: copied by the kernel, and listed
    // under its record.
    let reused = unchanged
        && !rehash
        && manifests.sha512.is_none()
        && verified
            .as_ref()
            .is_some_and(|verified| verified.algorithm == Algorithm::Sha2_256);
    match verified.as_ref().filter(|_| reused) {
        Some(recorded) => {
            // (A slice at a time, so that a big file does not keep a stop
            // waiting.)
            let mut copied = 0;
            loop {
                if stop.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let slice =
                    std::io::copy(&mut Read::take(&mut from, SLICE), &mut to).map_err(io_bag)?;
                copied += slice;
                if slice < SLICE {
                    break;
                }
            }
            if copied != size {
                return Err(io_mirror(std::io::Error::other(format!(
                    "it changed while it was copied ({size} bytes became {copied})"
                ))));
            }
            if !cfg!(target_os = "linux") {
                to.sync_all().map_err(io_bag)?;
            }
            manifests
                .sha256
                .push((hex::encode(&recorded.digest), target));
        }
        None => {
            let mut hashes = Hashes::new(manifests, verified.as_ref());
            let mut buffer = vec![0u8; CHUNK];
            loop {
                if stop.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let read = from.read(&mut buffer).map_err(io_mirror)?;
                if read == 0 {
                    break;
                }
                hashes.update(&buffer[..read]);
                to.write_all(&buffer[..read]).map_err(io_bag)?;
            }
            if !hashes.keep(bag, to, target, manifests)? {
                return Ok(Copied::Damaged {
                    recorded: proof.record.is_some(),
                    why: proof.why_not(),
                });
            }
        }
    }
    Ok(Copied::Bagged {
        size,
        reused,
        recorded: record.is_some(),
    })
}

/// `path` as a manifest names it: CR, LF and `%` percent-encoded (RFC 8493
/// section 2.1.3).
fn manifest_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn manifest_text(lines: &mut [(String, String)]) -> String {
    lines.sort_by(|a, b| a.1.cmp(&b.1));
    let mut text = String::new();
    for (digest, path) in lines.iter() {
        text.push_str(digest);
        text.push_str("  ");
        text.push_str(&manifest_path(path));
        text.push('\n');
    }
    text
}

/// Writes the tag files: bagit.txt, bag-info.txt, the payload manifests,
/// the provenance, and the tag manifests over them.
fn write_tags(
    bag: &Folder,
    manifests: &mut Manifests,
    bagged: &Bagged,
    source: &str,
) -> Result<()> {
    let write = |name: &str, text: &[u8]| -> Result<()> {
        bag.write_atomic(name, text)
            .map_err(|e| Error::io(&bag.display(name), e))
    };
    let mut tags: Vec<(String, Vec<u8>)> = Vec::new();
    tags.push((
        "bagit.txt".into(),
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n".to_vec(),
    ));
    let today = crate::provenance::timestamp(std::time::SystemTime::now());
    let info = format!(
        "External-Description: A copy made by Cairn of the STAC catalog {source}. Cairn verified every asset it copied against its file:size and file:checksum as it copied it; data/provenance.jsonl says where each file came from, and an asset that could not be copied says why in its item (cairn:missing).\n\
         External-Identifier: {source}\n\
         Bagging-Date: {}\n\
         Bag-Software-Agent: Cairn {}\n\
         Payload-Oxum: {}.{}\n\
         Bag-Size: {}\n",
        &today[..10],
        env!("CARGO_PKG_VERSION"),
        bagged.bytes,
        bagged.files,
        crate::words::human_bytes(bagged.bytes),
    );
    tags.push(("bag-info.txt".into(), info.into_bytes()));
    tags.push((
        "manifest-sha256.txt".into(),
        manifest_text(&mut manifests.sha256).into_bytes(),
    ));
    if let Some(lines) = &mut manifests.sha512 {
        tags.push((
            "manifest-sha512.txt".into(),
            manifest_text(lines).into_bytes(),
        ));
    }
    // The provenance, as a tag file too: where the payload came from.
    if let Ok(provenance) = bag.read(&format!("data/{PROVENANCE}")) {
        tags.push((format!("cairn-{PROVENANCE}"), provenance));
    }
    for (name, text) in &tags {
        write(name, text)?;
    }
    let mut algorithms = vec![Algorithm::Sha2_256];
    if manifests.sha512.is_some() {
        algorithms.push(Algorithm::Sha2_512);
    }
    for algorithm in algorithms {
        let mut lines: Vec<(String, String)> = tags
            .iter()
            .map(|(name, text)| {
                (
                    hex::encode(Checksum::of(algorithm, text).digest),
                    name.clone(),
                )
            })
            .collect();
        let name = match algorithm {
            Algorithm::Sha2_512 => "tagmanifest-sha512.txt",
            _ => "tagmanifest-sha256.txt",
        };
        write(name, manifest_text(&mut lines).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_recorded_in_another_algorithm_is_checked_in_that_one() {
        let dir = tempfile::tempdir().unwrap();
        let bag = Folder::open(dir.path()).unwrap();
        let bytes = b"the bytes the catalog spoke for".to_vec();
        let mut manifests = Manifests {
            sha256: Vec::new(),
            sha512: None,
        };
        for (record, kept) in [
            (Checksum::of(Algorithm::Md5, &bytes), true),
            (Checksum::of(Algorithm::Md5, b"other bytes"), false),
            (Checksum::of(Algorithm::Sha2_512, &bytes), true),
            (Checksum::of(Algorithm::Sha2_512, b"other bytes"), false),
        ] {
            let mut to = bag.create("data/a.bin").unwrap();
            to.write_all(&bytes).unwrap();
            let mut hashes = Hashes::new(&manifests, Some(&record));
            hashes.update(&bytes);
            let held = hashes
                .keep(&bag, to, "data/a.bin".into(), &mut manifests)
                .unwrap();
            assert_eq!(held, kept, "{record:?}");
            assert_eq!(bag.file_len("data/a.bin").is_ok(), kept);
            if kept {
                // Listed under its sha256 all the same.
                let (digest, _) = manifests.sha256.pop().unwrap();
                assert_eq!(
                    digest,
                    Checksum::of(Algorithm::Sha2_256, &bytes).to_hex()[4..]
                );
                bag.remove("data/a.bin").unwrap();
            }
        }
        assert!(manifests.sha256.is_empty());
    }

    #[test]
    fn a_source_is_one_line_of_bag_info() {
        let catalog = serde_json::json!({SOURCE_FIELD: "http://x/\nPayload-Oxum: 1.1\r\nBag-Group-Identifier: forged"});
        let source = source_of(catalog.to_string().as_bytes(), "it").unwrap();
        assert!(!source.contains(['\n', '\r']), "{source:?}");
        assert!(source.starts_with("http://x/ Payload-Oxum"), "{source:?}");
    }

    #[test]
    fn manifest_paths_escape_what_rfc_8493_asks() {
        assert_eq!(manifest_path("data/a b%\n\r.tif"), "data/a b%25%0A%0D.tif");
    }

    #[test]
    fn a_bag_is_refused_inside_its_mirror_and_over_a_full_folder() {
        let mirror = tempfile::tempdir().unwrap();
        let inner = mirror.path().join("bag");
        assert!(check_out(Some(mirror.path()), &inner).is_err());
        assert!(check_out(Some(&mirror.path().join(".")), mirror.path()).is_err());
        let taken = tempfile::tempdir().unwrap();
        std::fs::write(taken.path().join("x"), b"x").unwrap();
        assert!(check_out(Some(mirror.path()), taken.path()).is_err());
        let free = tempfile::tempdir().unwrap();
        assert!(check_out(Some(mirror.path()), &free.path().join("new")).is_ok());
        assert!(check_out(Some(mirror.path()), free.path()).is_ok());
        // A bag of a bucket mirror into a bucket: never one in the other.
        assert!(within("s3://b/m/bag", "s3://b/m"));
        assert!(within("s3://b/m", "s3://b/m/"));
        assert!(!within("s3://b/mirror-bag", "s3://b/m"));
        // A bag of a bucket mirror: only the place is checked.
        assert!(check_out(None, taken.path()).is_err());
        assert!(check_out(None, &free.path().join("other")).is_ok());
    }
}
