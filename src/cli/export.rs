//! `cairn export DEST --bagit OUT_DIR`: a mirror folder as a BagIt bag for
//! archives (RFC 8493), checked by the Library of Congress's `bagit.py`.

use std::io::Write;
use std::path::PathBuf;

use cairn::destination::Destination;
use cairn::export::BagOptions;
use cairn::store::Store;
use cairn::{Error, Result};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, json_line, plural};

/// Arguments of `cairn export`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["bagit", "geoparquet"])))]
pub struct Args {
    /// The mirror: a folder (for a bag), or a folder or bucket address (for
    /// an index).
    destination: String,
    /// Write a BagIt bag (RFC 8493) of the whole mirror into this new folder,
    /// or under this bucket address (s3://, az://, gs://) that holds nothing yet.
    #[arg(long, value_name = "OUT_DIR")]
    bagit: Option<String>,
    /// Write the stac-geoparquet index of every item of the mirror (what
    /// its items.parquet holds) into this file.
    #[arg(long, value_name = "FILE")]
    geoparquet: Option<PathBuf>,
    /// Add a sha512 manifest beside the sha256 one (every file is hashed).
    #[arg(long)]
    sha512: bool,
    /// Hash every file again, even one whose size and time show it unchanged
    /// since Cairn verified it (to catch decay that keeps both).
    #[arg(long)]
    rehash: bool,
    /// Print a JSON summary line.
    #[arg(long)]
    json: bool,
}

/// Writes the bag or the index; exit code 1 when something of the mirror
/// could not go in.
pub async fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    let code = match &args.geoparquet {
        Some(file) => index(&args, file).await?,
        None => EXIT_OK,
    };
    match &args.bagit {
        Some(bag) => Ok(bag_of(&args, bag, state).await?.max(code)),
        None => Ok(code),
    }
}

/// `--geoparquet FILE`.
async fn index(args: &Args, file: &std::path::Path) -> Result<u8> {
    let normalized = cairn::destination::normalize(&args.destination)?;
    let staging = tempfile_dir()?;
    let destination = Destination::open(&normalized, &staging)?;
    let local = destination.local_folder()?;
    let started = std::time::Instant::now();
    let stop = super::interrupt_token();
    let written = cairn::index::write_file(&destination, &local, file, &stop).await;
    let _ = std::fs::remove_dir_all(&staging);
    if written.is_err() && stop.is_cancelled() {
        say_err!(
            "stopped: the index was not finished, and nothing of it is left at {}; run the export again to make it",
            file.display()
        );
        return Ok(EXIT_INTERRUPTED);
    }
    let Some(indexed) = written? else {
        return Err(Error::invalid_input(format!(
            "{} holds no item to index; give the folder or bucket address of a mirror",
            args.destination
        )));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    left_out(&mut out, args.json, &indexed.left_out);
    if args.json {
        json_line(
            &mut out,
            &json!({"type": "summary", "index": file, "items": indexed.items,
                "left_out": indexed.left_out_count, "seconds": seconds}),
        );
    } else {
        let _ = writeln!(
            out,
            "The index is at {}: {} in {seconds:.1} s.",
            file.display(),
            plural(indexed.items, "item"),
        );
    }
    Ok(if indexed.left_out_count == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// A folder of its own for a bucket's staged files, removed afterwards.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cairn-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(dir)
}

/// `--bagit OUT_DIR`.
async fn bag_of(args: &Args, bag: &str, state: Option<PathBuf>) -> Result<u8> {
    let mirror = cairn::destination::normalize(&args.destination)?;
    if !cairn::destination::is_bucket_address(&mirror) && !std::path::Path::new(&mirror).is_dir() {
        return Err(Error::invalid_input(format!(
            "{mirror} is not a folder; give the folder or bucket address of a mirror"
        )));
    }
    // The checksums recorded when the files were verified, if this
    // computer's state file has them.
    let path = Store::default_path(state.as_deref())?;
    let store = if path.try_exists().unwrap_or(true) {
        Some(Store::open_for_reading(&path)?)
    } else {
        None
    };
    let options = BagOptions {
        sha512: args.sha512,
        rehash: args.rehash,
        stop: super::interrupt_token(),
    };
    // The bag stops between two pieces of a file; a step that cannot stop
    // (the last flush to disk) is waited for, unless asked again.
    let asked = options.stop.clone();
    let out = bag.to_string();
    tokio::spawn(async move {
        asked.cancelled().await;
        super::stop_signal().await;
        say_err!(
            "stopped at once: what was built of the bag beside {out} is removed by the next export"
        );
        std::process::exit(130);
    });
    let bagged = match cairn::export::bag(&mirror, bag, store.as_ref(), &options).await {
        Err(Error::Cancelled) if options.stop.is_cancelled() => {
            say_err!(
                "stopped: the bag was not finished, and nothing of it is left at {bag}; run the export again to make it"
            );
            return Ok(EXIT_INTERRUPTED);
        }
        // An upload stopped on its way: the objects it left are said, and
        // what to do with them (the export cannot go on from there).
        Err(error) if options.stop.is_cancelled() => {
            say_err!("stopped: {error}");
            return Ok(EXIT_FAILED);
        }
        bagged => bagged?,
    };
    let mut out = std::io::stdout().lock();
    left_out(&mut out, args.json, &bagged.left_out);
    if args.json {
        json_line(
            &mut out,
            &json!({"type": "summary", "bag": bagged.path, "files": bagged.files, "bytes": bagged.bytes,
                "reused": bagged.reused, "hashed": bagged.hashed, "left_out": bagged.left_out.len(),
                "to_repair": bagged.to_repair}),
        );
    } else {
        let _ = writeln!(
            out,
            "The bag is at {}: {} ({}); {} hashed, {} by the checksum recorded when verified.",
            bagged.path.display(),
            plural(bagged.files, "file"),
            cairn::words::human_bytes(bagged.bytes),
            bagged.hashed,
            bagged.reused,
        );
        if bagged.to_repair > 0 {
            let _ = writeln!(
                out,
                "`{}` puts the {} back as Cairn verified or wrote them (while the source has them); a new bag then holds them.",
                super::repair_command(&args.destination),
                plural(bagged.to_repair, "file")
            );
        }
    }
    Ok(if bagged.left_out.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Says what was left out, with why: one JSON line each, or two lines of
/// words.
fn left_out(out: &mut impl Write, json: bool, left_out: &[(String, String)]) {
    for (path, reason) in left_out {
        if json {
            json_line(
                out,
                &json!({"type": "left_out", "path": path, "reason": reason}),
            );
        } else {
            let _ = writeln!(
                out,
                "left out: {}\n  {}",
                cairn::words::printable(path),
                cairn::words::printable(reason)
            );
        }
    }
}
