//! Cairn mirrors STAC catalogs: it finds what a catalog holds, copies the chosen
//! items and assets, verifies every byte, and leaves a self-contained STAC catalog
//! behind.
//!
//! This crate is the engine. It knows nothing of windows or terminals: the `cairn`
//! CLI and the desktop app are thin shells over it.
//!
//! # How it works
//!
//! 1. [`catalog::open`] reads a SOURCE (a URL or path) and detects what it is: a
//!    catalog, collection, item, item collection or STAC API.
//! 2. Static catalogs are walked with [`catalog::walk::walk`], many documents at
//!    once, loops followed once, and every broken document reported as a
//!    [`Problem`](catalog::walk::Problem) while the walk goes on.
//! 3. STAC APIs are searched through [`catalog::api::Api`]; pagination is a
//!    [`Cursor`](catalog::api::Cursor) that can be saved and continued.
//! 4. State (sources, jobs, items, assets, cursors) lives in one SQLite file,
//!    the [`Store`](store::Store).
//!
//! # Example
//!
//! Count the items of a static catalog on disk:
//!
//! ```no_run
//! # async fn run() -> cairn::Result<()> {
//! use cairn::catalog::walk::{walk, WalkEvent, WalkOptions};
//! use cairn::fetch::{Fetcher, parse_location};
//!
//! let fetcher = Fetcher::new()?;
//! let root = parse_location("path/to/catalog.json")?;
//! let summary = walk(&fetcher, &root, &WalkOptions::default(), |event| {
//!     if let WalkEvent::Problem(problem) = event {
//!         eprintln!("{}: {}", problem.href, problem.reason);
//!     }
//!     std::ops::ControlFlow::Continue(())
//! })
//! .await?;
//! println!("{} items in {} collections", summary.items, summary.collections);
//! # Ok(())
//! # }
//! ```

pub mod boot;
pub mod catalog;
pub mod checksum;
pub mod destination;
mod error;
pub mod events;
pub mod export;
pub mod fetch;
pub mod folder;
pub mod index;
pub mod layout;
pub mod limit;
pub mod outage;
pub mod plan;
pub mod provenance;
pub mod retry;
pub mod rewrite;
pub mod runner;
pub mod seen;
pub mod store;
pub mod transfer;
pub mod transit;
pub mod vault;
pub mod verify;
pub mod watch;
pub mod words;
pub mod writer;

pub use error::{Error, Reach, Result, examples as error_examples};

/// Logs go to stderr; `CAIRN_LOG` sets the filter (e.g. `CAIRN_LOG=debug`).
/// The command line and the desktop app both start with this.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,stac=error"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
