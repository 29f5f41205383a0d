//! Copying one asset over HTTP to a local file: check the partial, fetch,
//! verify, commit.
//!
//! Bytes go to `<path>.part`, beside the file in its [`Place`] in the mirror
//! (opened once, never through a link). A later attempt continues it with a `Range`
//! request guarded by `If-Range`, so a file that changed on the server is
//! fetched again from the start instead of being stitched together. An attempt
//! ends with the partial verified (size and checksum) or removed; only then may
//! [`AssetCopy::commit`] rename it into place: a target file is never anything
//! but complete, verified bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::checksum::{Checksum, Fixity, Verified};
use crate::fetch::{Answer, Fetcher, MinSpeed, Outgoing, Pace};
use crate::folder::Place;
use crate::limit::Limits;
use crate::provenance::Provenance;
use crate::transfer::sniff::wrong_content;
use crate::{Error, Reach, Result};

/// One asset to copy.
#[derive(Debug, Clone)]
pub struct AssetCopy {
    /// Where the bytes come from.
    pub url: Url,
    /// Where they go: the file's place in the mirror folder (or in a
    /// bucket's staging folder), opened once for the whole copy.
    pub place: Arc<Place>,
    /// `file:size`, when the catalog gives it.
    pub expected_size: Option<u64>,
    /// `file:checksum`, when the catalog gives it.
    pub expected_checksum: Option<Checksum>,
    /// The validator (ETag or Last-Modified) the partial file was fetched under.
    pub validator: Option<String>,
    /// Flush the file to disk before reporting it (for callers that do not
    /// flush the whole file system themselves).
    pub flush: bool,
    /// The media type the catalog gives: an answer that plainly is something
    /// else (a web page) is refused.
    pub media_type: Option<String>,
    /// The slowest the server may send before the attempt is stopped.
    pub min_speed: MinSpeed,
}

/// What a finished copy was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Size and sha2-256 of the verified file.
    pub verified: Verified,
    /// Bytes that were already there from an earlier attempt.
    pub resumed_from: u64,
    /// Bytes fetched by this attempt.
    pub fetched: u64,
    /// Where the bytes came from and what the server said (`None` when a
    /// partial already held the whole file and no request was made).
    pub provenance: Option<Provenance>,
}

/// Told when the server has answered, before the body is read: the caller stores
/// the validator so that a crash mid-body can still resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Where this attempt starts in the file.
    pub offset: u64,
    /// The whole file's size, when the server says.
    pub total: Option<u64>,
    /// The strong ETag or Last-Modified of what is being fetched.
    pub validator: Option<String>,
}

/// Writes a transfer's chunks to its file on a thread of its own, several at a
/// time with one vectored write, while the next chunks arrive: no copy into
/// an intermediate buffer, and the bytes are written while still in cache.
struct ChunkWriter {
    sender: Option<tokio::sync::mpsc::Sender<(bytes::Bytes, OwnedSemaphorePermit)>>,
    /// The bytes that may wait for the writer: each chunk holds as many
    /// permits as it has bytes (at most all of them) until it is written.
    room: Arc<Semaphore>,
    thread: tokio::task::JoinHandle<std::io::Result<std::fs::File>>,
    flush: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Chunks in flight between a transfer and its writer (hyper's are 8 to 512 KiB).
const WRITER_QUEUE: usize = 32;

/// Bytes in flight between a transfer and its writer, at most: when the
/// writer falls behind (a slow disk, a busy machine), the transfer waits
/// rather than holding more in memory (32 chunks of hyper's largest would
/// be 16 MiB a transfer).
const WRITER_BYTES: usize = 2 << 20;

impl ChunkWriter {
    fn start(mut file: std::fs::File) -> ChunkWriter {
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<(bytes::Bytes, OwnedSemaphorePermit)>(WRITER_QUEUE);
        let flush = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flush_at_end = flush.clone();
        let thread = tokio::task::spawn_blocking(move || {
            let mut batch: Vec<bytes::Bytes> = Vec::with_capacity(WRITER_QUEUE);
            let mut permits: Vec<OwnedSemaphorePermit> = Vec::with_capacity(WRITER_QUEUE);
            while let Some(first) = receiver.blocking_recv() {
                let mut next = Some(first);
                while let Some((chunk, permit)) = next.take() {
                    batch.push(chunk);
                    permits.push(permit);
                    if batch.len() < WRITER_QUEUE {
                        next = receiver.try_recv().ok();
                    }
                }
                write_all_vectored(&mut file, &batch)?;
                batch.clear();
                // Written: their room is free again.
                permits.clear();
            }
            if flush_at_end.load(Ordering::Relaxed) {
                file.sync_all()?;
            }
            Ok(file)
        });
        ChunkWriter {
            sender: Some(sender),
            room: Arc::new(Semaphore::new(WRITER_BYTES)),
            thread,
            flush,
        }
    }

    /// Queues a chunk; fails when the writer has stopped (see [`Self::finish`]).
    async fn write(&mut self, chunk: bytes::Bytes) -> std::result::Result<(), ()> {
        let Some(sender) = &self.sender else {
            return Err(());
        };
        let wanted = chunk.len().clamp(1, WRITER_BYTES) as u32;
        let room = self
            .room
            .clone()
            .acquire_many_owned(wanted)
            .await
            .map_err(|_| ())?;
        sender.send((chunk, room)).await.map_err(|_| ())
    }

    /// Waits until every queued chunk is written (and flushed to disk, if
    /// `flush`); the first write error, if any.
    async fn finish(&mut self, flush: bool) -> std::io::Result<()> {
        self.flush.store(flush, Ordering::Relaxed);
        self.sender.take();
        match (&mut self.thread).await {
            Ok(result) => result.map(drop),
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Writes every byte of `chunks`, in as few system calls as it takes.
fn write_all_vectored(file: &mut std::fs::File, chunks: &[bytes::Bytes]) -> std::io::Result<()> {
    use std::io::{IoSlice, Write};
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let written = file.write_vectored(slices)?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

/// Bodies up to this size are gathered in memory and written in one go.
const SMALL_BODY: u64 = 256 * 1024;

/// What the server said about a file's bytes when they were copied: the
/// validators a sync compares with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// Its ETag then.
    pub etag: Option<String>,
    /// Its Last-Modified then.
    pub last_modified: Option<String>,
    /// Its size.
    pub size: u64,
}

/// Whether the file at `url` is still the one `served` describes, asked
/// with one HEAD request: the same strong or weak ETag, else (when it gave
/// none) the same Last-Modified and size. `false` when it cannot be told
/// (no validators, a server that refuses HEAD, any error): the bytes are
/// then fetched and compared, which always tells.
pub async fn unchanged_at_source(
    fetcher: &Fetcher,
    url: &Url,
    served: &Served,
    cancel: &CancellationToken,
) -> bool {
    if !matches!(url.scheme(), "http" | "https")
        || (served.etag.is_none() && served.last_modified.is_none())
    {
        return false;
    }
    let mut request = Outgoing::get(url).header(ACCEPT_ENCODING, "identity");
    request.method = reqwest::Method::HEAD;
    let response = tokio::select! {
        biased;
        _ = cancel.cancelled() => return false,
        answer = fetcher.send_asset(request) => match answer {
            Ok(answer) if answer.response.status().is_success() => answer.response,
            _ => return false,
        },
    };
    let header = |name| header_text(&response, name);
    match (&served.etag, header(ETAG)) {
        (Some(before), Some(now)) => return *before == now,
        (Some(_), None) => return false,
        (None, _) => {}
    }
    let length = header(reqwest::header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    served.last_modified.is_some()
        && served.last_modified == header(LAST_MODIFIED)
        && length == Some(served.size)
}

/// The path of the partial file for `path`.
pub fn part_path(path: &str) -> String {
    format!("{path}.part")
}

impl AssetCopy {
    /// Why an answer is plainly not this asset, if it is not. With a
    /// checksum from the catalog the bytes speak for themselves: a catalog
    /// with a wrong media type and right bytes is not refused.
    fn wrong(&self, content_type: Option<&str>, first: Option<&[u8]>) -> Option<String> {
        if self.expected_checksum.is_some() {
            return None;
        }
        wrong_content(
            self.media_type.as_deref(),
            self.url.path(),
            content_type,
            first,
        )
    }

    /// The error for a failed file operation on `name` (beside the file).
    fn io(&self, name: &str, source: std::io::Error) -> Error {
        Error::io(&self.place.display(name), source)
    }

    /// Runs one attempt. `progress` counts bytes as they arrive; `limits` throttles
    /// them; `cancel` stops the attempt and keeps the partial file for later.
    pub async fn run(
        &self,
        fetcher: &Fetcher,
        limits: &Limits,
        cancel: &CancellationToken,
        progress: &Arc<AtomicU64>,
        on_start: impl FnOnce(&Started),
    ) -> Result<Copied> {
        let href = self.url.to_string();
        let part = part_path(self.place.name());
        // Small metadata calls run in place: a hop to the blocking pool would
        // cost more than they do.
        match self.url.scheme() {
            "http" | "https" => {}
            "file" => return self.run_local(limits, cancel, progress, on_start).await,
            "s3" | "az" | "gs" => {
                return self
                    .run_object(fetcher, limits, cancel, progress, on_start)
                    .await;
            }
            other => {
                return Err(Error::invalid_input(format!(
                    "{href}: Cairn cannot copy from {other}:// addresses (it copies from http, https, s3, az, gs and local files)"
                )));
            }
        }
        // Phase 1: what is already there. A partial that is already whole (the
        // process stopped between the last byte and the rename) is verified as
        // it is, without asking the server again, when the catalog's checksum
        // can prove it; otherwise the server's answer to the range says.
        let existing = self.resumable(&part);
        if existing > 0 && self.expected_size == Some(existing) && self.expected_checksum.is_some()
        {
            return self
                .verify_whole_part(&href, &part, existing, on_start)
                .await;
        }

        // Phase 2: ask for the rest.
        let mut request = Outgoing::get(&self.url).header(ACCEPT_ENCODING, "identity");
        // A range only under its validator: never bytes of another file.
        if existing > 0
            && let Some(validator) = &self.validator
            && let Ok(validator) = reqwest::header::HeaderValue::from_str(validator)
        {
            request = request
                .header(RANGE, format!("bytes={existing}-"))
                .header(IF_RANGE, validator);
        }
        let Answer { mut response, at } = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            answer = fetcher.send_asset(request) => answer?,
        };
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            // `bytes */N` with N the partial's length: it was already whole.
            if content_range_total(&response) == Some(existing) {
                return self
                    .verify_whole_part(&href, &part, existing, on_start)
                    .await;
            }
            let _ = self.place.remove(&part);
            return Err(Error::Unavailable {
                href,
                reason: "the partial download no longer fits the file on the server; it will start again".into(),
                retry_after: None,
                reach: Reach::Unknown,
            });
        }
        if !status.is_success() {
            return Err(crate::fetch::status_error_of(&href, &mut response).await);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(reason) = self.wrong(content_type.as_deref(), None) {
            return Err(Error::WrongContent { href, reason });
        }
        let offset = if status == StatusCode::PARTIAL_CONTENT {
            // A server that ignores If-Range sends the rest of another
            // version: its validator says so.
            if let (Some(now), Some(then)) = (validator_of(&response), &self.validator)
                && &now != then
            {
                let _ = self.place.remove(&part);
                return Err(changed_since_partial(href));
            }
            match content_range_start(&response) {
                Some(start) if start == existing => existing,
                _ => {
                    return Err(Error::Unavailable {
                        href,
                        reason: "the server answered a resumed download with the wrong range"
                            .into(),
                        retry_after: None,
                        reach: Reach::Unknown,
                    });
                }
            }
        } else {
            0
        };
        let declared = response.content_length();
        let started = Started {
            offset,
            total: content_range_total(&response).or(declared.map(|d| d + offset)),
            validator: validator_of(&response),
        };
        // Starting again: the old partial goes before the new validator is
        // recorded, so that a crash in between never leaves old bytes under
        // the new version's validator. (A folder made just now holds none,
        // unless one was found there all the same.)
        if offset == 0 && (existing > 0 || !self.place.is_new()) {
            let _ = self.place.remove(&part);
        }
        on_start(&started);
        let provenance = Provenance::of_response(&self.url, &at, &response, offset);
        if offset == 0 && declared.is_some_and(|d| d <= SMALL_BODY) {
            return self
                .fetch_small(
                    &href,
                    (response, content_type.as_deref()),
                    (&started, provenance),
                    (limits, cancel, progress),
                )
                .await;
        }

        // Phase 3: stream the body to the partial file.
        let mut intake = Intake::new(self, limits, progress);
        self.receive(
            &href,
            Body::Http(response),
            (offset, content_type.as_deref()),
            &mut intake,
            cancel,
        )
        .await?;

        // Phase 4: verify. A server that announced more bytes than it sent, or a
        // file that is not what the catalog promised, is never committed.
        let fetched = intake.fetched;
        if let Some(declared) = declared
            && declared != fetched
        {
            let _ = self.place.remove(&part);
            return Err(short_body(&href, declared, fetched));
        }
        let expected_size = self.expected_size.or(started.total);
        let verified = verify_part(&href, &self.place, &part, intake.fixity, expected_size)?;
        Ok(Copied {
            verified,
            resumed_from: offset,
            fetched,
            provenance: Some(provenance),
        })
    }

    /// Streams `body` into the partial file, after the `offset` bytes already
    /// there (which are hashed first, as part of the checksum): throttled,
    /// hashed and counted by `intake`. A first piece that is plainly not this
    /// asset is refused and nothing is kept; on any other error what arrived
    /// is kept, for the next attempt to resume from.
    async fn receive(
        &self,
        href: &str,
        mut body: Body,
        (offset, content_type): (u64, Option<&str>),
        intake: &mut Intake<'_>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let part = part_path(self.place.name());
        let file = if offset > 0 {
            rehash(&self.place, &part, offset, &mut intake.fixity).await?;
            self.place.append(&part)
        } else {
            self.place.create(&part)
        }
        .map_err(|e| self.io(&part, e))?;
        let mut writer = ChunkWriter::start(file);
        // A server's answer may be an error page in place of the file; a
        // file on this computer is what it is.
        let mut first = offset == 0 && !matches!(body, Body::File(..));
        loop {
            let chunk = match body.next(&mut intake.pace, cancel, href).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => {
                    writer.finish(false).await.map_err(|e| self.io(&part, e))?;
                    return Err(error);
                }
            };
            if first {
                first = false;
                if let Some(reason) = self.wrong(content_type, Some(&chunk)) {
                    writer.finish(false).await.map_err(|e| self.io(&part, e))?;
                    let _ = self.place.remove(&part);
                    return Err(Error::WrongContent {
                        href: href.to_string(),
                        reason,
                    });
                }
            }
            if let Err(error) = intake.take(&chunk, cancel).await {
                writer.finish(false).await.map_err(|e| self.io(&part, e))?;
                return Err(error);
            }
            if writer.write(chunk).await.is_err() {
                // The writer stopped: its error says why.
                writer.finish(false).await.map_err(|e| self.io(&part, e))?;
                return Err(self.io(&part, std::io::Error::other("the write stopped")));
            }
        }
        writer
            .finish(self.flush)
            .await
            .map_err(|e| self.io(&part, e))
    }

    /// A small body: gathered in memory, verified, then written in one go, so
    /// that thousands of small files cost few system calls and no thread hops.
    /// Nothing is written unless it verifies; a cut transfer starts again.
    async fn fetch_small(
        &self,
        href: &str,
        (mut response, content_type): (reqwest::Response, Option<&str>),
        (started, provenance): (&Started, Provenance),
        (limits, cancel, progress): (&Limits, &CancellationToken, &Arc<AtomicU64>),
    ) -> Result<Copied> {
        let declared = response.content_length().unwrap_or(0);
        let mut body = Vec::with_capacity(declared as usize);
        let mut intake = Intake::new(self, limits, progress);
        while let Some(chunk) = next_chunk(&mut response, &mut intake.pace, cancel, href).await? {
            intake.take(&chunk, cancel).await?;
            body.extend_from_slice(&chunk);
        }
        let fetched = intake.fetched;
        if fetched != declared {
            return Err(short_body(href, declared, fetched));
        }
        if let Some(reason) = self.wrong(content_type, Some(&body)) {
            return Err(Error::WrongContent {
                href: href.to_string(),
                reason,
            });
        }
        let verified = intake
            .fixity
            .finish(self.expected_size.or(started.total))
            .map_err(|mismatch| Error::Verification {
                href: href.to_string(),
                reason: mismatch.to_string(),
            })?;
        let part = part_path(self.place.name());
        let write = || -> std::io::Result<()> {
            let mut file = self.place.create(&part)?;
            std::io::Write::write_all(&mut file, &body)?;
            if self.flush {
                file.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| self.io(&part, e))?;
        Ok(Copied {
            verified,
            resumed_from: 0,
            fetched,
            provenance: Some(provenance),
        })
    }

    /// Moves the verified partial into place (phase 5). Call it only after
    /// [`AssetCopy::run`] succeeded, once the verified checksum is recorded.
    pub async fn commit(&self) -> Result<()> {
        let part = part_path(self.place.name());
        let name = self.place.name();
        self.place
            .rename(&part, name)
            .map_err(|e| self.io(name, e))?;
        if self.flush {
            let _ = self.place.sync();
        }
        Ok(())
    }

    /// A partial that already holds the whole file: verify it without a request.
    async fn verify_whole_part(
        &self,
        href: &str,
        part: &str,
        length: u64,
        on_start: impl FnOnce(&Started),
    ) -> Result<Copied> {
        on_start(&Started {
            offset: length,
            total: Some(length),
            validator: self.validator.clone(),
        });
        let mut fixity = Fixity::new(self.expected_checksum.clone());
        rehash(&self.place, part, length, &mut fixity).await?;
        let verified = verify_part(href, &self.place, part, fixity, Some(length))?;
        Ok(Copied {
            verified,
            resumed_from: length,
            fetched: 0,
            provenance: None,
        })
    }

    /// The partial file's length, when an earlier attempt left one under
    /// a validator (else nothing is resumed).
    fn resumable(&self, part: &str) -> u64 {
        if self.validator.is_none() {
            return 0;
        }
        let length = self.place.own_len(part).unwrap_or(0);
        // Last written before the computer started: a power cut may have
        // left some of it unwritten, or holding other bytes (file systems
        // such as exFAT keep no order between a file's size and its
        // bytes), so it is not continued. Within one boot (a crash, a
        // kill) every byte written is there.
        let before_boot = || {
            let written = self
                .place
                .read_file(part)
                .and_then(|f| f.metadata()?.modified());
            crate::boot::started().is_some_and(|boot| written.is_ok_and(|at| at < boot))
        };
        if length > 0 && before_boot() {
            return 0;
        }
        length
    }

    /// An object in a bucket: read (the rest of it, from where a partial
    /// ends, while its ETag is still the one it was started under), verify
    /// and commit, the same way as over HTTP.
    async fn run_object(
        &self,
        fetcher: &Fetcher,
        limits: &Limits,
        cancel: &CancellationToken,
        progress: &Arc<AtomicU64>,
        on_start: impl FnOnce(&Started),
    ) -> Result<Copied> {
        use object_store::{GetOptions, GetRange, ObjectStoreExt};
        let href = self.url.to_string();
        let wrap = |source: object_store::Error| object_error(&href, source);
        let store = fetcher.object_store(&self.url)?;
        let key = object_store::path::Path::from_url_path(self.url.path()).map_err(|e| {
            Error::invalid_input(format!("{href} is not a valid object address: {e}"))
        })?;
        let part = part_path(self.place.name());
        let existing = self.resumable(&part);
        if existing > 0 && self.expected_size == Some(existing) && self.expected_checksum.is_some()
        {
            return self
                .verify_whole_part(&href, &part, existing, on_start)
                .await;
        }
        let mut options = GetOptions::default();
        if existing > 0 {
            options.if_match = self.validator.clone();
            options.range = Some(GetRange::Offset(existing));
        }
        let got = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            got = store.get_opts(&key, options) => got,
        };
        let got = match got {
            Ok(got) => got,
            Err(object_store::Error::Precondition { .. }) => {
                let _ = self.place.remove(&part);
                return Err(changed_since_partial(href));
            }
            // A range the store would not serve: the partial may already
            // hold every byte (a range from the end), if the object is still
            // the one it was started from; else it starts again.
            Err(error)
                if existing > 0 && !matches!(error, object_store::Error::NotFound { .. }) =>
            {
                let head = store.head(&key).await.map_err(wrap)?;
                if head.size == existing && head.e_tag.is_some() && head.e_tag == self.validator {
                    return self
                        .verify_whole_part(&href, &part, existing, on_start)
                        .await;
                }
                let _ = self.place.remove(&part);
                return Err(Error::Unavailable {
                    href,
                    reason: "the partial download could not be continued; it will start again"
                        .into(),
                    retry_after: None,
                    reach: Reach::Unknown,
                });
            }
            Err(error) => return Err(wrap(error)),
        };
        let (meta, offset) = (got.meta.clone(), got.range.start);
        // A store that ignores If-Match sends the rest of another version:
        // its ETag says so.
        if existing > 0 && meta.e_tag != self.validator {
            let _ = self.place.remove(&part);
            return Err(changed_since_partial(href));
        }
        if offset != existing {
            let _ = self.place.remove(&part);
            return Err(Error::Unavailable {
                href,
                reason: "the bucket answered a resumed download with the wrong range".into(),
                retry_after: None,
                reach: Reach::Unknown,
            });
        }
        let started = Started {
            offset,
            total: Some(meta.size),
            validator: meta.e_tag.clone(),
        };
        // As over HTTP: no old partial under the new validator (a folder
        // made just now holds none).
        if offset == 0 && (existing > 0 || !self.place.is_new()) {
            let _ = self.place.remove(&part);
        }
        on_start(&started);
        let provenance = Provenance::of_object(&self.url, &meta, offset);
        let mut intake = Intake::new(self, limits, progress);
        self.receive(
            &href,
            Body::Object(got.into_stream()),
            (offset, None),
            &mut intake,
            cancel,
        )
        .await?;
        let fetched = intake.fetched;
        if offset + fetched != meta.size {
            let _ = self.place.remove(&part);
            return Err(short_body(&href, meta.size - offset, fetched));
        }
        let expected_size = self.expected_size.or(Some(meta.size));
        let verified = verify_part(&href, &self.place, &part, intake.fixity, expected_size)?;
        Ok(Copied {
            verified,
            resumed_from: offset,
            fetched,
            provenance: Some(provenance),
        })
    }

    /// A local source: read, verify and commit, the same way as over HTTP.
    async fn run_local(
        &self,
        limits: &Limits,
        cancel: &CancellationToken,
        progress: &Arc<AtomicU64>,
        on_start: impl FnOnce(&Started),
    ) -> Result<Copied> {
        let href = self.url.to_string();
        let source = self
            .url
            .to_file_path()
            .map_err(|()| Error::invalid_input(format!("{href} is not a valid file address")))?;
        let missing = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { href: href.clone() },
            _ => Error::io(&source, e),
        };
        // Looked at, opened and looked at again in one trip to a blocking
        // thread, and a small file read whole in the same trip: a trip is a
        // hand-over between threads, and a folder of small files cost
        // several each.
        let path = source.clone();
        let opened = tokio::task::spawn_blocking(move || {
            // Known by the file opened, not by the path: a file put in its
            // place in between is not taken for it.
            let Some((mut file, meta)) = crate::fetch::open_regular(&path)? else {
                return Ok(None);
            };
            let early = match meta.len() < FILE_PIECE as u64 {
                true => Some(read_early(&mut file, &path, meta.len())?),
                false => None,
            };
            Ok::<_, std::io::Error>(Some((file, meta, early)))
        })
        .await;
        let opened = crate::error::joined(opened)?.map_err(missing)?;
        let Some((mut reader, opened, early)) = opened else {
            return Err(Error::invalid_input(format!(
                "{href} is not a regular file (a folder, a device or a pipe); Cairn copies only files"
            )));
        };
        let len = opened.len();
        // A cut copy goes on from where it stopped while the file is the
        // one it was started from (see `file_validator`); otherwise, and
        // where the system cannot tell, it starts again.
        let validator = file_validator(&opened);
        let part = part_path(self.place.name());
        let mut offset = match (&self.validator, &validator) {
            (Some(then), Some(now)) if then == now => self.resumable(&part),
            _ => 0,
        };
        // A partial as long as the file is taken as whole only when a
        // checksum can vouch for it (a crash may leave a tail of zeros).
        if offset > len || (offset == len && self.expected_checksum.is_none()) {
            offset = 0;
        }
        if offset > 0 && offset == len {
            return self.verify_whole_part(&href, &part, offset, on_start).await;
        }
        // What was read early, unless the copy goes on from a partial.
        let early = early.filter(|_| offset == 0);
        if offset > 0 {
            use std::io::Seek;
            reader
                .seek(std::io::SeekFrom::Start(offset))
                .map_err(|e| Error::io(&source, e))?;
        } else if !self.place.is_new() {
            // No old partial under the new validator (a folder made just
            // now holds none).
            let _ = self.place.remove(&part);
        }
        // The file as it was once its last byte was read: known already
        // when it was read whole early.
        let (first, ended, after_early) = match early {
            Some(Early {
                piece,
                ended,
                after,
            }) => (Some(piece), ended, ended.then_some(after)),
            None => (None, false, None),
        };
        // Longer than it was when it was opened: changed, not copied.
        if first.is_some() && !ended {
            return Err(changed_while_copied(&href));
        }
        let read_early = first.as_ref().map_or(0, |piece| piece.len() as u64);
        on_start(&Started {
            offset,
            total: Some(len),
            validator: validator.clone(),
        });
        let mut intake = Intake::new(self, limits, progress);
        let received = self
            .receive(
                &href,
                Body::File(LocalFile {
                    file: Some(reader),
                    path: source.clone(),
                    href: href.clone(),
                    validator: validator.clone(),
                    first,
                    left: (len - offset).saturating_sub(read_early),
                    ended,
                }),
                (offset, None),
                &mut intake,
                cancel,
            )
            .await;
        if let Err(error) = received {
            // Found changed part way: what was read is of no one version.
            if is_changed_while_copied(&error) {
                let _ = self.place.remove(&part);
            }
            return Err(error);
        }
        // The file must still be the one that was read.
        let after = match after_early {
            Some(after) => after,
            None => {
                let path = source.clone();
                tokio::task::spawn_blocking(move || std::fs::metadata(path).ok())
                    .await
                    .ok()
                    .flatten()
            }
        };
        if offset + intake.fetched != len || after.as_ref().and_then(file_validator) != validator {
            let _ = self.place.remove(&part);
            return Err(changed_while_copied(&href));
        }
        let expected_size = self.expected_size.or(Some(len));
        let verified = verify_part(&href, &self.place, &part, intake.fixity, expected_size)?;
        Ok(Copied {
            verified,
            resumed_from: offset,
            fetched: intake.fetched,
            provenance: Some(Provenance::of_file(
                &self.url,
                len,
                opened.modified().ok(),
                offset,
            )),
        })
    }
}

/// Why a copy of a local file that changed while it was copied is not kept.
const CHANGED_WHILE_COPIED: &str =
    "changed while it was copied, so the copy is not kept (a next try copies it from its start)";

/// A local file that changed while it was copied.
fn changed_while_copied(href: &str) -> Error {
    Error::Unavailable {
        href: href.to_string(),
        reason: CHANGED_WHILE_COPIED.into(),
        retry_after: None,
        reach: Reach::Unknown,
    }
}

fn is_changed_while_copied(error: &Error) -> bool {
    matches!(error, Error::Unavailable { reason, .. } if reason == CHANGED_WHILE_COPIED)
}

/// What a local file is known by while a copy of it is cut: its size,
/// modification and change times, device and inode. A file replaced by
/// another, or written to, no longer matches. `None` where the system gives
/// no inode (a cut copy then starts again).
fn file_validator(meta: &std::fs::Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(format!(
            "file:{}:{}.{}:{}.{}:{}:{}",
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.dev(),
            meta.ino()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Phase 4: checks what was written against `expected_size` and the expected
/// checksum; removes the partial if it does not match.
fn verify_part(
    href: &str,
    place: &Place,
    part: &str,
    fixity: Fixity,
    expected_size: Option<u64>,
) -> Result<Verified> {
    match fixity.finish(expected_size) {
        Ok(verified) => Ok(verified),
        Err(mismatch) => {
            let _ = place.remove(part);
            Err(Error::Verification {
                href: href.to_string(),
                reason: mismatch.to_string(),
            })
        }
    }
}

/// What an attempt has taken in: throttled, hashed and counted, chunk by chunk.
struct Intake<'a> {
    limits: &'a Limits,
    progress: &'a AtomicU64,
    fixity: Fixity,
    fetched: u64,
    pace: Pace,
}

impl<'a> Intake<'a> {
    fn new(copy: &AssetCopy, limits: &'a Limits, progress: &'a AtomicU64) -> Intake<'a> {
        Intake {
            limits,
            progress,
            fixity: Fixity::new(copy.expected_checksum.clone()),
            fetched: 0,
            pace: Pace::new(copy.min_speed),
        }
    }

    /// Takes `bytes` in once the bandwidth limits allow; a cancel does not
    /// wait for them (at a few bytes a second, a wait is long).
    async fn take(&mut self, bytes: &[u8], cancel: &CancellationToken) -> Result<()> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            () = self.limits.consume(bytes.len()) => {}
        }
        self.fixity.update(bytes);
        self.fetched += bytes.len() as u64;
        self.progress
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The body of one answer: an HTTP response's, or an object store's stream.
enum Body {
    Http(reqwest::Response),
    Object(futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>),
    /// A file on this computer, read a piece at a time.
    File(LocalFile),
}

/// A local file being read: each piece in one trip to a blocking thread,
/// the size of what is left (a small file is one trip, and its end is
/// known without another).
struct LocalFile {
    /// The file (`None` while a piece is read).
    file: Option<std::fs::File>,
    path: std::path::PathBuf,
    href: String,
    /// What the file was known by when it was opened (see
    /// [`file_validator`]): looked at again after each piece.
    validator: Option<String>,
    /// The first piece, when it was read as the file was opened.
    first: Option<Vec<u8>>,
    /// The bytes its size says are left.
    left: u64,
    ended: bool,
}

impl LocalFile {
    async fn next(&mut self) -> Result<Option<bytes::Bytes>> {
        if let Some(first) = self.first.take().filter(|piece| !piece.is_empty()) {
            return Ok(Some(bytes::Bytes::from(first)));
        }
        if self.ended {
            return Ok(None);
        }
        let Some(mut file) = self.file.take() else {
            return Ok(None);
        };
        let room = piece_room(self.left);
        let read = tokio::task::spawn_blocking(move || {
            let read = read_piece(&mut file, room);
            // Written to since it was opened (its size or time moved)?
            let now = file.metadata().ok();
            (file, read, now)
        })
        .await;
        let (file, read, now) = crate::error::joined(read)?;
        let piece = read.map_err(|e| Error::io(&self.path, e))?;
        // More than its size said, or written to: it changes while it is
        // copied, and is given up at once (a file appended to without end
        // would never be done).
        if piece.len() as u64 > self.left || now.as_ref().and_then(file_validator) != self.validator
        {
            return Err(changed_while_copied(&self.href));
        }
        self.file = Some(file);
        // A piece short of its room: the file's end was read.
        self.ended = piece.len() < room;
        self.left = self.left.saturating_sub(piece.len() as u64);
        Ok((!piece.is_empty()).then(|| bytes::Bytes::from(piece)))
    }
}

/// The most to read of a file that its size says holds `left` bytes more:
/// one byte more than that, so that a file that grew is found changed, not
/// cut short.
fn piece_room(left: u64) -> usize {
    match left {
        0 => FILE_PIECE,
        left => left.saturating_add(1).min(FILE_PIECE as u64) as usize,
    }
}

/// Reads from `file` until `room` bytes are read or its end is (into
/// memory not zeroed first: a big file is read 256 KiB at a time).
fn read_piece(file: &mut std::fs::File, room: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut piece = Vec::with_capacity(room);
    file.by_ref().take(room as u64).read_to_end(&mut piece)?;
    Ok(piece)
}

/// A small file's first piece, read as it was opened.
struct Early {
    piece: Vec<u8>,
    /// The piece holds the file to its end...
    ended: bool,
    /// ...and this is what its path showed then.
    after: Option<std::fs::Metadata>,
}

/// Reads the first piece of the file at `path`, opened as `file`, whose size
/// was `len`; looks at its path again when that was the whole file.
fn read_early(
    file: &mut std::fs::File,
    path: &std::path::Path,
    len: u64,
) -> std::io::Result<Early> {
    // (An empty file: one byte, to find that it is still empty.)
    let room = if len == 0 { 1 } else { piece_room(len) };
    let piece = read_piece(file, room)?;
    let ended = piece.len() < room;
    let after = match ended {
        true => std::fs::metadata(path).ok(),
        false => None,
    };
    Ok(Early {
        piece,
        ended,
        after,
    })
}

/// The most read from a local file at a time.
const FILE_PIECE: usize = 256 * 1024;

impl Body {
    /// The next piece (`None` at the end), waited for no longer than `pace`
    /// allows; stops on `cancel`.
    async fn next(
        &mut self,
        pace: &mut Pace,
        cancel: &CancellationToken,
        href: &str,
    ) -> Result<Option<bytes::Bytes>> {
        use futures::StreamExt;
        let stream = match self {
            Body::Http(response) => return next_chunk(response, pace, cancel, href).await,
            Body::Object(stream) => stream,
            Body::File(file) => {
                if cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                return file.next().await;
            }
        };
        let size = |c: &Option<object_store::Result<bytes::Bytes>>| {
            c.as_ref()
                .and_then(|c| c.as_ref().ok())
                .map_or(0, bytes::Bytes::len)
        };
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            next = pace.wait(href, stream.next(), size) => next?,
        };
        next.transpose()
            .map_err(|source| object_error(href, source))
    }
}

/// An object store's error, with a missing object said as such.
fn object_error(href: &str, source: object_store::Error) -> Error {
    match source {
        object_store::Error::NotFound { .. } => Error::NotFound {
            href: href.to_string(),
        },
        source => Error::ObjectStore {
            href: href.to_string(),
            source,
        },
    }
}

/// The next piece of a body (`None` at its end); stops on `cancel`.
async fn next_chunk(
    response: &mut reqwest::Response,
    pace: &mut Pace,
    cancel: &CancellationToken,
    href: &str,
) -> Result<Option<bytes::Bytes>> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::Cancelled),
        chunk = pace.chunk(href, response) => chunk,
    }
}

/// A server that sent fewer (or more) bytes than it announced.
fn short_body(href: &str, declared: u64, fetched: u64) -> Error {
    Error::Unavailable {
        href: href.to_string(),
        reason: format!("the server announced {declared} bytes but sent {fetched}"),
        retry_after: None,
        reach: Reach::Unknown,
    }
}

/// Hashes a file that is already in place and checks it against what the
/// catalog promises: `Some` when it is complete and verified.
pub async fn verify_existing(
    place: &Place,
    expected_size: Option<u64>,
    expected_checksum: Option<Checksum>,
) -> Option<Verified> {
    let len = place.file_len(place.name()).ok()?;
    if expected_size.is_some_and(|size| size != len) {
        return None;
    }
    let file = place.read_file(place.name()).ok()?;
    // Read and hashed in one trip to a blocking thread, not a trip per
    // piece: a mirror of small files is checked file after file.
    let fixity = tokio::task::spawn_blocking(move || {
        let mut fixity = Fixity::new(expected_checksum);
        // Room for the whole of a small file (and its end), at least 8 KiB.
        let room = piece_room(len).max(8 * 1024);
        hash_whole(file, room, &mut fixity).ok()?;
        Some(fixity)
    })
    .await;
    let fixity = crate::error::joined(fixity).ok()??;
    fixity.finish(expected_size).ok()
}

/// Feeds everything `reader` holds to `fixity`, read `room` bytes at most
/// at a time (on a blocking thread: it reads a file).
fn hash_whole(
    mut reader: impl std::io::Read,
    room: usize,
    fixity: &mut Fixity,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; room];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => fixity.update(&buffer[..read]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Feeds the first `length` bytes of `name` (beside the file) to `fixity`.
async fn rehash(place: &Place, name: &str, length: u64, fixity: &mut Fixity) -> Result<()> {
    let path = &place.display(name);
    let file = place.read_file(name).map_err(|e| Error::io(path, e))?;
    // Hashed on a blocking thread, in one trip (see `hash_whole`).
    let mut taken = std::mem::replace(fixity, Fixity::new(None));
    let hashed = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let hashed = hash_whole(file.take(length), FILE_PIECE, &mut taken);
        (taken, hashed)
    })
    .await;
    let (taken, hashed) = crate::error::joined(hashed)?;
    *fixity = taken;
    hashed.map_err(|e| Error::io(path, e))?;
    if fixity.size() != length {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the partial file is shorter than recorded",
            ),
        ));
    }
    // Truncate anything past `length` (a write that was cut off mid-buffer).
    let file = place.modify(name).map_err(|e| Error::io(path, e))?;
    file.set_len(length).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// A strong ETag, else Last-Modified: what `If-Range` may carry.
/// A response header's value, when it is text.
fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The file changed at its source since the partial download: what is kept
/// of it is dropped, and the next attempt fetches it whole.
fn changed_since_partial(href: String) -> Error {
    Error::Unavailable {
        href,
        reason: "the file changed at its source since the partial download; it will start again"
            .into(),
        retry_after: None,
        reach: Reach::Unknown,
    }
}

fn validator_of(response: &reqwest::Response) -> Option<String> {
    let header = |name| header_text(response, name);
    header(ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| header(LAST_MODIFIED))
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL` on a 416):
/// the start, when there is one, and the total, when known.
fn content_range(response: &reqwest::Response) -> Option<(Option<u64>, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let start = span
        .split_once('-')
        .and_then(|(start, _)| start.trim().parse().ok());
    Some((start, total.trim().parse().ok()))
}

fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    content_range(response).and_then(|(start, _)| start)
}

fn content_range_total(response: &reqwest::Response) -> Option<u64> {
    content_range(response).and_then(|(_, total)| total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local file read as its size said when it was opened.
    fn reading(path: &std::path::Path, left: u64) -> LocalFile {
        LocalFile {
            file: Some(std::fs::File::open(path).unwrap()),
            path: path.to_path_buf(),
            href: "file:///source.bin".into(),
            validator: file_validator(&std::fs::metadata(path).unwrap()),
            first: None,
            left,
            ended: false,
        }
    }

    #[tokio::test]
    async fn a_local_file_is_read_to_its_end_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source.bin");
        for size in [0, 1, 10, FILE_PIECE - 1, FILE_PIECE, 2 * FILE_PIECE + 3] {
            let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            // As long as its size said: read whole, in pieces.
            let mut file = reading(&path, size as u64);
            let mut read = Vec::new();
            while let Some(piece) = file.next().await.unwrap() {
                assert!(piece.len() <= FILE_PIECE);
                read.extend_from_slice(&piece);
            }
            assert_eq!(read, data, "{size}");
            assert!(file.next().await.unwrap().is_none());
            // Longer than its size said (it grew after it was opened): the
            // copy stops there, changed, rather than read on without end.
            if size > 0 {
                let mut file = reading(&path, size as u64 - 1);
                let error = loop {
                    match file.next().await {
                        Ok(Some(_)) => {}
                        Ok(None) => panic!("{size}: read to its end"),
                        Err(error) => break error,
                    }
                };
                assert!(
                    error.to_string().contains("changed while it was copied"),
                    "{error}"
                );
            }
        }
    }
}
