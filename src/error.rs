//! The one error type of the engine.
//!
//! Variants are named for what the caller can do about them, and every message is
//! written for a person who does not program: what happened, and what to try.

use std::time::Duration;

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
    #[error("{path}: {source}")]
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
    #[error("the state database failed: {0}")]
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

impl Error {
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

/// An object store's error in words: missing credentials, a missing
/// bucket, refused access, and only then the store's own message (its
/// first line, without the service's internals).
fn object_store_words(href: &str, source: &object_store::Error) -> String {
    let text = source.to_string();
    let lower = text.to_ascii_lowercase();
    // Without credentials, the clients ask the cloud's metadata service
    // (169.254.169.254) for them, which is not there off the cloud.
    if lower.contains("169.254.169.254")
        || lower.contains("metadata.google.internal")
        || lower.contains("credential")
    {
        return format!(
            "no credentials were found for it: {}",
            credentials_hint(href)
        );
    }
    match source {
        object_store::Error::NotFound { .. } => {
            "is not there (the bucket, container or file does not exist, or these credentials cannot see it)".into()
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "refused access with these credentials: check them, and that they may list, read and write under this address".into()
        }
        _ => {
            let first = text.lines().next().unwrap_or_default();
            let first: String = first.chars().take(300).collect();
            format!("the storage service answered with an error ({first})")
        }
    }
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
