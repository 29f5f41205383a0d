//! The one error type of the engine.
//!
//! Variants are named for what the caller can do about them, and every message is
//! written for a person who does not program: what happened, and what to try.

use std::time::Duration;

/// Whether a server was reached, as far as a temporary failure shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No connection could be made (refused, no route to the host or its
    /// network, no answer in time, no name server): the server, or the
    /// network, is down.
    None,
    /// The server answered, with this HTTP status (busy, or in trouble).
    Answered(u16),
    /// Nothing certain either way: a connection dropped, a body cut short,
    /// an answer that did not fit.
    Unknown,
}

/// A result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What the user typed cannot be used (a malformed URL, bbox, datetime...).
    #[error("{message}")]
    InvalidInput {
        /// A plain-words explanation, naming the offending value.
        message: String,
    },

    /// The server or file system says the thing does not exist.
    #[error("{href} {}", self.reason())]
    NotFound {
        /// The location that was asked for.
        href: String,
    },

    /// The server refused access.
    #[error("{href} {}", self.reason())]
    AccessDenied {
        /// The location that was asked for.
        href: String,
        /// The HTTP status code.
        status: u16,
    },

    /// A temporary failure: the server is busy, down, or the network dropped.
    /// Trying again later may work.
    #[error("{href} {}", self.reason())]
    Unavailable {
        /// The location that was asked for.
        href: String,
        /// What went wrong, in plain words.
        reason: String,
        /// How long the server asked us to wait, if it said.
        retry_after: Option<Duration>,
        /// Whether the server was reached, as far as the failure shows.
        reach: Reach,
    },

    /// A document too large to read within Cairn's memory for documents.
    #[error("{href} {reason}")]
    TooLarge {
        /// The document.
        href: String,
        /// How large, and the limit, in plain words.
        reason: String,
    },

    /// The server sent Cairn elsewhere, and Cairn does not follow (to
    /// another scheme than http(s), from https to http, or round in circles).
    #[error("{href} {}", self.reason())]
    Redirect {
        /// The location that was asked for.
        href: String,
        /// Where it was sent and why that is not followed, in plain words.
        reason: String,
    },

    /// The server answered with an error that retrying will not fix.
    #[error("{href} {}", self.reason())]
    Http {
        /// The location that was asked for.
        href: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the server's explanation, if it gave one.
        detail: Option<String>,
    },

    /// The document is not valid JSON.
    #[error("{href} {}", self.reason())]
    InvalidJson {
        /// The location of the document.
        href: String,
        /// The parser's complaint, with line and column.
        source: serde_json::Error,
    },

    /// The document is JSON but not a STAC object Cairn can use.
    #[error("{href} {}", self.reason())]
    NotStac {
        /// The location of the document.
        href: String,
        /// What is missing or wrong.
        reason: String,
    },

    /// Bytes arrived but are not what the catalog or the server promised.
    #[error("{href} {}", self.reason())]
    Verification {
        /// The asset's source address.
        href: String,
        /// What did not match, with both values.
        reason: String,
    },

    /// The server answered with something that plainly is not the asset the
    /// catalog describes (a web page for a GeoTIFF). Trying again will not help.
    #[error("{href} {}", self.reason())]
    WrongContent {
        /// The asset's source address.
        href: String,
        /// What arrived instead, in plain words.
        reason: String,
    },

    /// A cloud object store (S3, Azure, GCS) failed.
    #[error("{href}: {}", self.reason())]
    ObjectStore {
        /// The location that was asked for.
        href: String,
        /// The object store's error.
        source: object_store::Error,
    },

    /// A local file could not be read or written.
    #[error("{path}: {}", io_words(source))]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The disk that receives the mirror is full. Nothing is lost: the job
    /// stops and continues once there is room.
    #[error(
        "the disk that holds {path} is full; free some space there (or choose another destination), then resume the job"
    )]
    DiskFull {
        /// The file that could not be written.
        path: String,
    },

    /// The state database failed.
    #[error("{}", database_words(.0))]
    Database(#[from] rusqlite::Error),

    /// The state database is damaged or was written by a newer Cairn.
    #[error("{0}")]
    DatabaseVersion(String),

    /// The state file cannot be used: it is a folder, damaged, another
    /// program's database, or cannot be written. It is left as it is.
    #[error("the state file {path} {reason}")]
    StateFile {
        /// The file.
        path: String,
        /// What is wrong and what to do, in plain words.
        reason: String,
    },

    /// The work was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// What a task on a blocking thread gave back: its panic goes on
/// unwinding, and a task the runtime dropped as it shut down was cancelled.
pub fn joined<T>(joined: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    joined.map_err(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(_) => Error::Cancelled,
    })
}

impl Error {
    /// Whether a disk is full: the mirror's, or the state file's. The job
    /// stops, to be resumed once there is room.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::DiskFull { .. } => true,
            Error::Database(error) => {
                error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            _ => false,
        }
    }

    /// Whether this is the state database finding its file damaged (or a
    /// record in it edited by hand).
    pub fn is_damaged_state(&self) -> bool {
        matches!(self, Error::Database(error) if damaged_state(error))
    }

    /// What happened, without the address it happened to (for lists that show
    /// the address apart, such as the failed assets of a job).
    pub fn reason(&self) -> String {
        match self {
            Error::NotFound { .. } => "was not found (it may have been moved or deleted)".into(),
            Error::AccessDenied { status, .. } => format!(
                "refused access (HTTP {status}); check that the address is public or that your credentials are set"
            ),
            Error::Unavailable { reason, .. } => format!("could not be read: {reason}"),
            Error::Http { status, detail, .. } => format!(
                "answered with an error (HTTP {status}){}",
                detail_suffix(detail)
            ),
            Error::InvalidJson { source, .. } => format!(
                "is not a STAC document: it is not JSON (the first fault is {source}); check the address"
            ),
            Error::NotStac { reason, .. } => {
                format!("is not a STAC object Cairn can use: {reason}")
            }
            Error::Verification { reason, .. } => format!("failed verification: {reason}"),
            Error::WrongContent { reason, .. } => reason.clone(),
            Error::Redirect { reason, .. } => format!("was redirected, and {reason}"),
            Error::TooLarge { reason, .. } => reason.clone(),
            Error::ObjectStore { href, source } => object_store_words(href, source),
            other => other.to_string(),
        }
    }

    /// Whether the server could not be reached at all (it is down, or the
    /// network is gone), rather than answering with an error.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable {
                reach: Reach::None,
                ..
            }
        )
    }

    /// Whether the error is the server's answer (a status it sent, busy
    /// ones included), which shows it can be reached.
    pub fn is_answer(&self) -> bool {
        match self {
            Error::Http { .. } | Error::NotFound { .. } | Error::AccessDenied { .. } => true,
            // 408, 429, 500, 502-504.
            Error::Unavailable {
                reach: Reach::Answered(_),
                ..
            } => true,
            _ => false,
        }
    }

    /// Whether trying the same thing again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::ObjectStore { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
            ),
            _ => false,
        }
    }

    /// A stable, machine-readable code for the UI and `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::NotFound { .. } => "not_found",
            Error::AccessDenied { .. } => "access_denied",
            Error::Unavailable { .. } => "unavailable",
            Error::Http { .. } => "http",
            Error::InvalidJson { .. } => "invalid_json",
            Error::NotStac { .. } => "not_stac",
            Error::Verification { .. } => "verification",
            Error::WrongContent { .. } => "wrong_content",
            Error::Redirect { .. } => "redirect",
            Error::TooLarge { .. } => "too_large",
            Error::ObjectStore { .. } => "object_store",
            Error::Io { .. } => "io",
            Error::Database(_) => "database",
            Error::DatabaseVersion(_) => "database_version",
            Error::StateFile { .. } => "state_file",
            Error::Cancelled => "cancelled",
            Error::DiskFull { .. } => "disk_full",
        }
    }

    /// How long the server asked us to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// An [`Error::InvalidInput`] with `message`.
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    /// The error for a failed file operation at `path` (a full disk is said
    /// as such: no other file would fit either).
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        let path = path.display().to_string();
        if source.kind() == std::io::ErrorKind::StorageFull {
            return Error::DiskFull { path };
        }
        Error::Io { path, source }
    }

    pub(crate) fn not_stac(href: impl ToString, reason: impl Into<String>) -> Error {
        Error::NotStac {
            href: href.to_string(),
            reason: reason.into(),
        }
    }
}

/// A file system error in words: the system's own message for an error
/// Cairn made with words of its own, else what the kind of error means
/// (never the bare "(os error 13)").
/// What a failure of the state database means, in words: the common
/// causes said as what to do, the rest as SQLite says them.
fn database_words(error: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    if damaged_state(error) && error.sqlite_error_code() != Some(ErrorCode::DatabaseCorrupt) {
        return format!(
            "the state file holds a record this Cairn cannot read ({error}): it is damaged, was changed by another program, or was written by a newer Cairn. Keep a copy of it; use the Cairn that wrote it, or start with a new state file (--state)"
        );
    }
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the state file could not be written: its disk is full; make room on it, then resume the job (nothing copied is lost)".into(),
        Some(ErrorCode::ReadOnly) => "the state file could not be written: it, or its folder, can only be read; make it writable, then try again".into(),
        Some(ErrorCode::SystemIoFailure) => "the state file could not be read or written (a disk error, or its -wal file was removed while Cairn used it); try again, and if it persists, check the disk".into(),
        Some(ErrorCode::DatabaseCorrupt) => "the state file is damaged, so Cairn stops here. Keep a copy of it (someone at ease with SQLite may save what it holds with `sqlite3 FILE .recover | sqlite3 NEW_FILE`), then start with a new state file (--state)".into(),
        _ => format!("the state database failed: {error}"),
    }
}

/// Whether a failure of the state database says the file is damaged (or
/// edited by hand): SQLite finds it malformed, or a record in it cannot be
/// what Cairn wrote there.
pub(crate) fn damaged_state(error: &rusqlite::Error) -> bool {
    use rusqlite::Error as E;
    match error {
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => true,
        E::SqliteFailure(failure, message) => {
            matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) || message.as_deref().is_some_and(|m| {
                m.contains("malformed JSON") || m.contains("unsupported file format")
            })
        }
        _ => false,
    }
}

fn io_words(source: &std::io::Error) -> String {
    use std::io::ErrorKind;
    if source.get_ref().is_some() {
        return source.to_string();
    }
    match source.kind() {
        ErrorKind::NotFound => "does not exist".into(),
        ErrorKind::PermissionDenied => {
            "cannot be read or written: the system does not allow it (check the permissions of the folder, or choose another)".into()
        }
        ErrorKind::AlreadyExists => "is already there".into(),
        ErrorKind::ReadOnlyFilesystem => "is on a disk that can only be read".into(),
        ErrorKind::StorageFull => "cannot be written: the disk is full".into(),
        ErrorKind::IsADirectory => "is a folder, not a file".into(),
        ErrorKind::NotADirectory => "is not in a folder: a file stands where a folder should be".into(),
        ErrorKind::InvalidFilename => "is a name this file system cannot hold".into(),
        ErrorKind::DirectoryNotEmpty => "is a folder that is not empty".into(),
        _ => crate::words::without_error_number(&source.to_string()),
    }
}

/// An object store's error in words: missing credentials, a missing
/// bucket, refused access, and only then the store's own message (its
/// first line, without the service's internals).
fn object_store_words(href: &str, source: &object_store::Error) -> String {
    if crate::transit::damage(source).is_some() {
        return "was damaged on its way into the store: the store received other bytes than Cairn sent, at each try. Nothing damaged was left there, and it is sent again when the job resumes; if this happens again, something between this computer and the store (a proxy, a network device) is changing the data".into();
    }
    let text = source.to_string();
    let lower = text.to_ascii_lowercase();
    // Without credentials, the clients ask the cloud's metadata service
    // (169.254.169.254) for them, which is not there off the cloud.
    // An Azure container named with no storage account anywhere is the
    // same want of credentials.
    if lower.contains("169.254.169.254")
        || lower.contains("metadata.google.internal")
        || lower.contains("credential")
        || lower.contains("account must be specified")
    {
        return format!(
            "no credentials were found for it: {}",
            credentials_hint(href)
        );
    }
    // A bucket that is not there is answered 404 to a listing, which the
    // clients report as a plain error.
    let missing = ["nosuchbucket", "containernotfound", "status code: 404"]
        .iter()
        .any(|sign| lower.contains(sign));
    // So is a refusal: a wrong key or secret, or no leave.
    let refused = [
        "status code: 401",
        "status code: 403",
        "authenticationfailed",
        "accessdenied",
        "signaturedoesnotmatch",
        "invalidaccesskeyid",
    ]
    .iter()
    .any(|sign| lower.contains(sign))
        || matches!(
            source,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        );
    match source {
        _ if refused && !crate::destination::credentials_in_environment(href) => format!(
            "refused access: it is not public, and no credentials were found for it: {}",
            credentials_hint(href)
        ),
        _ if refused => {
            "refused access with these credentials: check them, and that they may read there (and, for a mirror's destination, list and write)".into()
        }
        _ if missing => {
            "is not there (the bucket, container or file does not exist, or these credentials cannot see it)".into()
        }
        object_store::Error::NotFound { .. } => {
            "is not there (the bucket, container or file does not exist, or these credentials cannot see it)".into()
        }
        _ => storage_answer(&text),
    }
}

/// What a storage service said, from an object store's message: its HTTP
/// status, or that it could not be reached, else the message's first line
/// without the client's own prefix ("Generic S3 error: ...").
fn storage_answer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find("status code: ") {
        let status: String = lower[at + 13..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !status.is_empty() {
            return format!("the storage service answered with an error (HTTP {status})");
        }
    }
    if ["timed out", "connect", "dns", "error sending request"]
        .iter()
        .any(|sign| lower.contains(sign))
    {
        return "the storage service could not be reached: check the address and your connection"
            .into();
    }
    let first = text.lines().next().unwrap_or_default();
    let first = match first.find(" error: ") {
        Some(at) if first[..at].starts_with("Generic") => &first[at + 8..],
        _ => first,
    };
    let first: String = first.chars().take(300).collect();
    format!("the storage service answered with an error ({first})")
}

/// Where credentials for the store of `href` come from, in words.
pub fn credentials_hint(href: &str) -> &'static str {
    match href.split("://").next().unwrap_or_default() {
        "s3" => {
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION) where Cairn starts, or AWS_SKIP_SIGNATURE=true for a public bucket"
        }
        "az" => {
            "set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or a SAS in AZURE_STORAGE_SAS_KEY) where Cairn starts"
        }
        "gs" => {
            "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file where Cairn starts"
        }
        _ => "set the storage service's credentials where Cairn starts",
    }
}

/// An example of every kind of error, as the engine makes them for a
/// person (the app shows `to_string()`; `cairn` prints it too): for the
/// tests, here and in the app, that every message is in plain words.
#[doc(hidden)]
pub fn examples() -> Vec<Error> {
    let object_store = |message: &str| Error::ObjectStore {
        href: "s3://archive/mirror".into(),
        source: object_store::Error::Generic {
            store: "S3",
            source: message.to_string().into(),
        },
    };
    let io = |kind: std::io::ErrorKind| Error::Io {
        path: "/home/me/mirror/a.tif".into(),
        source: std::io::Error::from(kind),
    };
    vec![
        Error::invalid_input("the area must be four numbers: west, south, east, north"),
        Error::NotFound {
            href: "https://example.org/catalog.json".into(),
        },
        Error::AccessDenied {
            href: "https://example.org/catalog.json".into(),
            status: 403,
        },
        Error::Unavailable {
            href: "https://example.org/catalog.json".into(),
            reason: "the server did not answer in time".into(),
            retry_after: None,
            reach: Reach::Unknown,
        },
        Error::TooLarge {
            href: "https://example.org/big.json".into(),
            reason: "is larger than 512 MB".into(),
        },
        Error::Redirect {
            href: "https://example.org/a".into(),
            reason: "it leads to http://example.org/a, which is not secure".into(),
        },
        Error::Http {
            href: "https://example.org/catalog.json".into(),
            status: 500,
            detail: Some("Internal Server Error".into()),
        },
        Error::InvalidJson {
            href: "https://example.org/page".into(),
            source: serde_json::from_str::<serde_json::Value>("<html>").unwrap_err(),
        },
        Error::not_stac(
            "https://example.org/page",
            "it is a web page, not a STAC document",
        ),
        Error::Verification {
            href: "https://example.org/a.tif".into(),
            reason: "its size is 10 bytes, not 12".into(),
        },
        Error::WrongContent {
            href: "https://example.org/a.tif".into(),
            reason: "a web page came instead of the file".into(),
        },
        object_store(
            "Error performing PUT http://169.254.169.254/latest/api/token in 1ms - Server returned non-2xx status code: 403 Forbidden",
        ),
        object_store(
            "Error performing GET http://127.0.0.1:9000/archive/x in 2s - Server returned non-2xx status code: 500 Internal Server Error: <Error><Code>InternalError</Code></Error>",
        ),
        object_store(
            "Error performing GET https://archive.s3.amazonaws.com/x in 30s - HTTP error: error sending request",
        ),
        object_store(
            "Error performing GET https://metadata.google.internal/computeMetadata/v1 - error",
        ),
        Error::ObjectStore {
            href: "az://archive/x".into(),
            source: object_store::Error::Generic {
                store: "MicrosoftAzure",
                source: Box::new(crate::transit::Mismatch::example()),
            },
        },
        Error::ObjectStore {
            href: "az://archive/x".into(),
            source: object_store::Error::Generic {
                store: "MicrosoftAzure",
                source: "Account must be specified".into(),
            },
        },
        Error::ObjectStore {
            href: "s3://archive/x".into(),
            source: object_store::Error::NotFound {
                path: "x".into(),
                source: "NoSuchBucket".into(),
            },
        },
        Error::ObjectStore {
            href: "s3://archive/x".into(),
            source: object_store::Error::PermissionDenied {
                path: "x".into(),
                source: "AccessDenied".into(),
            },
        },
        io(std::io::ErrorKind::NotFound),
        io(std::io::ErrorKind::PermissionDenied),
        io(std::io::ErrorKind::ReadOnlyFilesystem),
        io(std::io::ErrorKind::IsADirectory),
        io(std::io::ErrorKind::NotADirectory),
        io(std::io::ErrorKind::DirectoryNotEmpty),
        Error::Io {
            path: "/home/me/mirror".into(),
            source: std::io::Error::from_raw_os_error(5),
        },
        Error::io(
            std::path::Path::new("/media/disk/mirror/a.tif"),
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        ),
        Error::Database(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        )),
        Error::DatabaseVersion(
            "the state file was written by a newer Cairn; update Cairn to use it".into(),
        ),
        Error::StateFile {
            path: "/home/me/.cairn/cairn.db".into(),
            reason: "is a folder, not a file".into(),
        },
        Error::Cancelled,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_in_plain_words() {
        let errors = examples();
        // Every code the app maps to words has an example here.
        let codes: std::collections::BTreeSet<_> = errors.iter().map(Error::code).collect();
        assert_eq!(codes.len(), 18, "a kind of error has no example: {codes:?}");
        for error in &errors {
            let text = error.to_string();
            assert_eq!(
                crate::words::not_plain(&text),
                None,
                "{:?} is not in plain words: {text}",
                error.code()
            );
        }
    }

    #[test]
    fn storage_errors_say_what_happened() {
        let said: Vec<String> = examples()
            .iter()
            .filter(|e| e.code() == "object_store")
            .map(ToString::to_string)
            .collect();
        assert!(
            said[0].contains("no credentials were found for it: set AWS_ACCESS_KEY_ID"),
            "{}",
            said[0]
        );
        assert!(
            said[1].ends_with("answered with an error (HTTP 500)"),
            "{}",
            said[1]
        );
        assert!(said[2].contains("could not be reached"), "{}", said[2]);
        assert!(said[3].contains("no credentials were found"), "{}", said[3]);
        assert!(
            said[4].contains("was damaged on its way into the store"),
            "{}",
            said[4]
        );
        assert!(
            said[5].contains("no credentials were found for it: set AZURE_"),
            "{}",
            said[5]
        );
        assert!(said[6].contains("is not there"), "{}", said[6]);
        assert!(said[7].contains("refused access"), "{}", said[7]);
    }
}
