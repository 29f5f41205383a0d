//! The commands of the `cairn` binary. Each is a thin layer over the engine:
//! parse arguments, call the engine, print.

/// `println!` that never panics: a closed pipe (`cairn jobs | head`) is the
/// reader's choice, not an error of Cairn's, and what is left is not said.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see `say!`).
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod browse;
pub mod export;
pub mod jobs;
pub mod mirror;
pub mod search;
pub mod sign_in;
pub mod verify;

use std::io::Write;
use std::path::PathBuf;

use cairn::fetch::Fetcher;
use cairn::fetch::access::{Header, Secrets, Settings, default_netrc, parse_signing};
use cairn::store::Store;
use cairn::{Error, Result};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Which items: the options `search` and `mirror` share.
#[derive(Debug, Clone, clap::Args)]
pub struct ItemFilter {
    /// Only these collections (ids, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub collections: Vec<String>,
    /// Only items touching this box: west,south,east,north in degrees.
    #[arg(long, value_name = "W,S,E,N", allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Only items in this time: a date, a date-time, or a range with `/` (`..` for an open end).
    #[arg(long, value_name = "RANGE")]
    pub datetime: Option<String>,
    /// Stop after this many items.
    #[arg(long, value_name = "N")]
    pub max_items: Option<u64>,
    /// Only items whose properties pass this CQL2 text filter, e.g.
    /// "eo:cloud_cover < 20" (sent to an API that offers the filter
    /// extension, and checked on every item).
    #[arg(long, value_name = "CQL2")]
    pub filter: Option<String>,
}

/// How to sign in to a source: the options `browse`, `search`, `mirror`
/// and `resume` share.
#[derive(Clone, Default, clap::Args)]
pub struct SignIn {
    /// An HTTP header for the source's server, as 'Name: value' (repeat for
    /// more). It is sent only to the source's host, and its value is never
    /// written to disk (give it again to `cairn resume`).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Log in with the logins of a .netrc file (PATH, else $NETRC or
    /// ~/.netrc), as NASA Earthdata asks: each goes only to the host its
    /// `machine` line names, and only over https. Without a PATH, give it
    /// after SOURCE and DEST (or write --netrc=PATH).
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "")]
    pub netrc: Option<PathBuf>,
    /// Sign blob addresses: planetary-computer, or
    /// planetary-computer=TOKEN_URL for another token service.
    #[arg(long, value_name = "planetary-computer[=TOKEN_URL]")]
    pub sign: Option<String>,
    /// Read S3 buckets as requester-pays buckets: their owners bill your
    /// AWS account (the credentials in the environment) for the requests
    /// and the bytes read. Kept with the job.
    #[arg(long)]
    pub requester_pays: bool,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers' values are secrets.
        f.debug_struct("SignIn")
            .field("headers", &self.headers.len())
            .field("netrc", &self.netrc)
            .field("sign", &self.sign)
            .field("requester_pays", &self.requester_pays)
            .finish()
    }
}

impl SignIn {
    /// What is recorded of these options, and their secrets.
    pub fn read(&self) -> Result<(Settings, Secrets)> {
        let headers = self
            .headers
            .iter()
            .map(|h| Header::parse(h))
            .collect::<Result<Vec<_>>>()?;
        let netrc = match &self.netrc {
            None => None,
            Some(path) if path.as_os_str().is_empty() => Some(default_netrc().ok_or_else(|| {
                Error::invalid_input(
                    "--netrc was given without a file, and there is no .netrc in your home folder (nor a NETRC variable naming one)",
                )
            })?),
            Some(path) => Some(std::path::absolute(path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?),
        };
        let sign = self.sign.as_deref().map(parse_signing).transpose()?;
        let settings = Settings {
            headers: headers.iter().map(|h| h.name().to_string()).collect(),
            netrc,
            sign,
            requester_pays: self.requester_pays,
        };
        Ok((settings, Secrets { headers }))
    }

    /// Whether any option was given.
    pub fn given(&self) -> bool {
        !self.headers.is_empty()
            || self.netrc.is_some()
            || self.sign.is_some()
            || self.requester_pays
    }

    /// A fetcher signed in as these options say, for `source`.
    pub fn fetcher(&self, source: &str) -> Result<Fetcher> {
        let fetcher = Fetcher::new()?.with_cancellation(interrupt_token());
        if !self.given() {
            return Ok(fetcher);
        }
        let (settings, secrets) = self.read()?;
        let url = cairn::fetch::parse_location(source)?;
        fetcher.signed_in(&settings, &secrets, &url)
    }
}

/// Everything selected was done.
pub const EXIT_OK: u8 = 0;
/// Finished, with failures or problems (listed).
pub const EXIT_FAILED: u8 = 1;
/// Bad input: nothing was done.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Interrupted; can be continued.
pub const EXIT_INTERRUPTED: u8 = 3;

/// The exit code for an error that stopped a command.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Cancelled => EXIT_INTERRUPTED,
        error if error.is_disk_full() => EXIT_INTERRUPTED,
        Error::InvalidInput { .. }
        | Error::NotFound { .. }
        | Error::NotStac { .. }
        | Error::InvalidJson { .. }
        | Error::AccessDenied { .. }
        | Error::Http { .. }
        | Error::DatabaseVersion(_)
        | Error::StateFile { .. }
        | Error::TooLarge { .. } => EXIT_BAD_INPUT,
        error if error.is_damaged_state() => EXIT_BAD_INPUT,
        _ => EXIT_FAILED,
    }
}

pub use cairn::init_logging;

/// A token cancelled by Ctrl-C, and on Unix by SIGTERM (a service manager or
/// `kill`) and SIGHUP (the terminal closed), so that a job stops cleanly and
/// stays resumable whichever way it is asked to stop.
pub fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        stop_signal().await;
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn stop_signal() {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = received(signal(SignalKind::terminate()).ok()) => {}
        _ = received(signal(SignalKind::hangup()).ok()) => {}
    }
}

#[cfg(not(unix))]
async fn stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The `--state` this command was given, for the commands it suggests.
static STATE_GIVEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes the `--state` given (if any): a command suggested to the person
/// (`cairn resume 3`) names the same state file, or it would look in
/// another one.
pub fn remember_state(state: Option<&std::path::Path>) {
    if let Some(path) = state {
        let _ = STATE_GIVEN.set(quoted(&path.display().to_string()));
    }
}

/// The command line `cairn <rest>`, with the `--state` this command was
/// given.
pub fn command(rest: &str) -> String {
    match STATE_GIVEN.get() {
        Some(state) => format!("cairn --state {state} {rest}"),
        None => format!("cairn {rest}"),
    }
}

/// The command that repairs the mirror at `destination`.
pub fn repair_command(destination: &str) -> String {
    command(&format!("verify {} --repair", quoted(destination)))
}

/// `text` as one word for a shell: quoted when it holds anything but
/// letters, digits and `-_./:,=+@%`.
fn quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@%".contains(c));
    match plain {
        true => text.to_string(),
        false => format!("'{}'", text.replace('\'', "'\\''")),
    }
}

/// Opens the state file the user chose (or the default one).
pub fn open_store(state: Option<PathBuf>) -> Result<Store> {
    Store::open(&Store::default_path(state.as_deref())?)
}

/// Opens the state file for a command that only reads it (read-only if it
/// cannot be written).
pub fn open_store_for_reading(state: Option<PathBuf>) -> Result<Store> {
    Store::open_for_reading(&Store::default_path(state.as_deref())?)
}

/// Writes one JSON line to stdout. A closed pipe (`| head`) is not an error.
pub fn json_line(out: &mut impl Write, value: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(value) {
        let _ = writeln!(out, "{line}");
    }
}

pub use cairn::words::plural;
