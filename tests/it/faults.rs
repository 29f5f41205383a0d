//! A job against a server that misbehaves in every common way: what can be
//! fetched is done and verified, what cannot is failed with the right reason,
//! and the command ends with exit code 1 and a list a person can read.

use std::collections::HashMap;
use std::time::Duration;

use cairn::checksum::{Algorithm, Checksum};

use crate::support::farm::{CatalogChecksum, Farm, Fault, FileSpec};
use crate::support::{Server, cairn, cairn_within, files_under, free_port};

fn specs() -> Vec<FileSpec> {
    let kb: u64 = 1024;
    vec![
        FileSpec::new("ok-a.bin", 300 * kb),
        FileSpec::new("ok-b.bin", 1200 * kb).checksum(CatalogChecksum::None),
        FileSpec::new("ok-c.bin", 40 * kb).without_size(),
        FileSpec::new("busy.bin", 500 * kb).fault(Fault::Status {
            code: 503,
            times: 2,
        }),
        FileSpec::new("hiccup.bin", 500 * kb).fault(Fault::Status {
            code: 500,
            times: 1,
        }),
        FileSpec::new("slow-down.bin", 200 * kb).fault(Fault::SlowDown {
            seconds: 2,
            times: 1,
        }),
        FileSpec::new("reset.bin", 2048 * kb).fault(Fault::Reset {
            bytes: 700 * kb,
            times: 2,
        }),
        FileSpec::new("trickle.bin", 300 * kb).fault(Fault::Trickle {
            bytes_per_second: 200 * kb,
        }),
        FileSpec::new("gone.bin", 100 * kb).fault(Fault::Status {
            code: 404,
            times: u32::MAX,
        }),
        FileSpec::new("down.bin", 100 * kb).fault(Fault::Status {
            code: 503,
            times: u32::MAX,
        }),
        FileSpec::new("truncated.bin", 800 * kb).fault(Fault::Truncated),
        FileSpec::new("short-body.bin", 800 * kb)
            .fault(Fault::ShortBody)
            .checksum(CatalogChecksum::None),
        FileSpec::new("wrong-bytes.bin", 600 * kb).fault(Fault::WrongBytes),
        FileSpec::new("wrong-checksum.bin", 600 * kb).checksum(CatalogChecksum::Wrong),
    ]
}

#[test]
fn a_misbehaving_server_leaves_good_assets_verified_and_bad_ones_failed_with_reasons() {
    let specs = specs();
    let farm = Farm::start(specs.clone(), 4);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let source = farm.catalog_url();

    let run = cairn(&state, &["mirror", &source, dest.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    // The list says what failed and why, in words.
    let text = &run.stdout;
    assert!(text.contains("These assets could not be copied:"), "{text}");
    // The command to run names the state file this one was given.
    let resume = format!("`cairn --state {} resume 1`", state.display());
    assert!(text.contains(&resume), "{text}");
    println!("{text}");

    // The same job again (a sync, which tries the failed ones once more):
    // the failures come back as JSON lines.
    let run = cairn(
        &state,
        &["mirror", &source, dest.to_str().unwrap(), "--json"],
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let lines = run.lines();
    let reasons: HashMap<String, String> = lines
        .iter()
        .filter(|l| l["type"] == "failed")
        .map(|l| {
            let href = l["href"].as_str().unwrap();
            let name = href.rsplit('/').next().unwrap().to_string();
            (name, l["reason"].as_str().unwrap().to_string())
        })
        .collect();
    let expect = [
        ("gone.bin", "was not found"),
        ("down.bin", "temporarily unavailable (HTTP 503)"),
        ("truncated.bin", "bytes but received"),
        ("short-body.bin", "dropped"),
        ("wrong-bytes.bin", "checksum"),
        ("wrong-checksum.bin", "checksum"),
    ];
    for (name, words) in expect {
        let reason = reasons
            .get(name)
            .unwrap_or_else(|| panic!("{name} should have failed: {reasons:#?}"));
        assert!(reason.contains(words), "{name}: {reason}");
        assert!(
            text.contains(&format!("/{name}\n    from http://")),
            "{name} is not in the list:\n{text}"
        );
    }
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    let summary = run.summary();
    assert_eq!(summary["failed"], expect.len());
    assert_eq!(summary["done"], specs.len() - expect.len());

    // Every good asset is in place with the right bytes; no bad bytes are.
    for spec in &specs {
        let item = specs.iter().position(|s| s.name == spec.name).unwrap() / 4;
        let path = dest.join(format!("farm/item-{item:04}/{}", spec.name));
        if reasons.contains_key(&spec.name) {
            assert!(!path.exists(), "{} was written", spec.name);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            Checksum::of(Algorithm::Sha2_256, &bytes),
            spec.sha256(),
            "{}",
            spec.name
        );
    }

    // Retries behaved: Retry-After was waited for, a dropped transfer resumed
    // with Range, the server that never recovered was tried a bounded number
    // of times in each of the two runs, and what is not found was not
    // asked for again in a run.
    let log = farm.log();
    let times: Vec<_> = log
        .iter()
        .filter(|l| l.name == "slow-down.bin")
        .map(|l| l.at)
        .collect();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_secs(2),
        "{:?}",
        times[1] - times[0]
    );
    let reset: Vec<_> = log
        .iter()
        .filter(|l| l.name == "reset.bin")
        .map(|l| l.from)
        .collect();
    assert_eq!(reset.len(), 3, "{reset:?}");
    assert!(reset[1].is_some() && reset[2] > reset[1], "{reset:?}");
    assert!(farm.served("reset.bin") <= 2048 * 1024 + 64 * 1024);
    assert_eq!(log.iter().filter(|l| l.name == "down.bin").count(), 10);
    assert_eq!(log.iter().filter(|l| l.name == "gone.bin").count(), 2);

    // `cairn resume` tries the failed ones again (the server may be back);
    // what is done is not fetched again.
    let before = farm.log().len();
    let run = cairn(&state, &["resume", "1", "--json"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let again: Vec<String> = farm.log()[before..]
        .iter()
        .map(|l| l.name.clone())
        .collect();
    for (name, _) in expect {
        assert!(
            again.iter().any(|n| n == name),
            "{name} was not tried again"
        );
    }
    assert!(again.iter().all(|n| reasons.contains_key(n)), "{again:?}");
}

#[test]
fn no_more_transfers_than_allowed_talk_to_one_server() {
    // Slow bodies, so that transfers overlap.
    let specs: Vec<FileSpec> = (0..12)
        .map(|i| {
            FileSpec::new(&format!("slow-{i:02}.bin"), 64 * 1024).fault(Fault::Trickle {
                bytes_per_second: 256 * 1024,
            })
        })
        .collect();
    for (per_host, expected) in [("2", 2), ("6", 6)] {
        let farm = Farm::start(specs.clone(), 4);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("mirror");
        let run = cairn(
            &out.path().join("cairn.db"),
            &[
                "mirror",
                &farm.catalog_url(),
                dest.to_str().unwrap(),
                "--concurrency",
                "8",
                "--per-host",
                per_host,
            ],
        );
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        assert_eq!(farm.most_in_flight(), expected, "--per-host {per_host}");
    }
}

/// A server that does not answer at all for a while (it is down, or the
/// network is gone, as on a laptop offline for a moment) is waited for: its
/// files fail nothing and count no attempt, the job's log says what
/// happened, and they are copied once it answers again. (Tried and failed
/// as before, the five attempts of each file end in about 8 seconds.)
#[test]
fn a_server_down_for_a_while_is_waited_for_and_nothing_fails() {
    let out = tempfile::tempdir().unwrap();
    let files = out.path().join("files");
    std::fs::create_dir(&files).unwrap();
    // A free port, not listened on until the server starts.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    for n in 0..3u8 {
        std::fs::write(files.join(format!("a{n}.bin")), vec![n + 1; 50_000]).unwrap();
    }
    let catalog = out.path().join("items.json");
    write_three_items(&catalog, addr, Some(50_000));
    let down = Duration::from_secs(12);
    let serve = std::thread::spawn(move || {
        std::thread::sleep(down);
        Server::start_at(
            addr,
            axum::Router::new().fallback_service(tower_http::services::ServeDir::new(files)),
        )
    });
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let started = std::time::Instant::now();
    let run = cairn(
        &state,
        &[
            "mirror",
            catalog.to_str().unwrap(),
            dest.to_str().unwrap(),
            "--json",
        ],
    );
    let server = serve.join().unwrap();
    assert!(started.elapsed() >= down);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(
        (summary["done"].as_u64(), summary["failed"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        server.request_count(),
        3,
        "each file is fetched once it answers"
    );
    for n in 0..3u8 {
        let copied = files_under(&dest)
            .into_iter()
            .find(|p| p.ends_with(format!("a{n}.bin")))
            .expect("the file is in the mirror");
        assert_eq!(std::fs::read(copied).unwrap(), vec![n + 1; 50_000]);
    }
    // The job says it waited, and that the server came back, once each.
    let server_name = format!("http://{addr}");
    let waiting: Vec<_> = run
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "waiting")
        .collect();
    assert_eq!(waiting.len(), 2, "{}", run.stdout);
    assert_eq!(waiting[0]["server"], server_name.as_str());
    assert_eq!(waiting[0]["waiting"], true);
    let said = waiting[0]["reason"].as_str().unwrap();
    assert!(said.starts_with("cannot be reached"), "{said}");
    assert!(said.contains("none counts as failed"), "{said}");
    assert_eq!(waiting[1]["waiting"], false);
    assert_eq!(waiting[1]["reason"], "answers again; its files are copied");
    // No attempt was counted while it waited.
    let db = rusqlite::Connection::open(&state).unwrap();
    let attempts: i64 = db
        .query_row("SELECT max(attempts) FROM assets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 1);
}

/// Assets on a server that refuses connections while the catalog's server
/// answers: the computer is online, so the fault is that server's own, and
/// its files fail after their attempts (in seconds, not after an hour of
/// waiting), each with its reason.
#[test]
fn assets_on_a_dead_server_fail_when_the_catalogs_server_answers() {
    let out = tempfile::tempdir().unwrap();
    let served = out.path().join("served");
    std::fs::create_dir(&served).unwrap();
    // A port nothing listens on.
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    write_three_items(&served.join("items.json"), dead, None);
    let catalog = Server::files(&served);
    let dest = out.path().join("mirror");
    let state = out.path().join("cairn.db");
    let started = std::time::Instant::now();
    // Waiting the hour would be the defect: stopped long before.
    let run = cairn_within(
        &state,
        &[
            "mirror",
            catalog.url("items.json").as_str(),
            dest.to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    assert_eq!(summary["failed"], 3);
    let lines = run.lines();
    for failure in lines.iter().filter(|l| l["type"] == "failed") {
        let reason = failure["reason"].as_str().unwrap();
        assert!(reason.contains("could not connect"), "{reason}");
    }
    // The files' first tries came within a second of the catalog's answer;
    // later ones found nothing heard and waited, until the catalog's server
    // answered again.
    let waiting: Vec<_> = lines.iter().filter(|l| l["type"] == "waiting").collect();
    assert_eq!(waiting.len(), 2, "{}", run.stdout);
    assert_eq!(waiting[0]["waiting"], true);
    assert_eq!(waiting[1]["waiting"], false);
    let reason = waiting[1]["reason"].as_str().unwrap();
    assert!(reason.contains("the fault is its own"), "{reason}");
    println!("{:?}", started.elapsed());
}

/// Writes at `path` an item collection of three items whose assets are
/// `http://{at}/a{n}.bin`, with `size` as their `file:size` if given.
fn write_three_items(path: &std::path::Path, at: std::net::SocketAddr, size: Option<u64>) {
    use serde_json::json;
    let items: Vec<_> = (0..3)
        .map(|n| {
            let mut asset = json!({"href": format!("http://{at}/a{n}.bin")});
            if let Some(size) = size {
                asset["file:size"] = json!(size);
            }
            json!({
                "type": "Feature", "stac_version": "1.0.0", "id": format!("item-{n}"),
                "geometry": {"type": "Point", "coordinates": [n, 0]}, "bbox": [n, 0, n, 0],
                "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [],
                "assets": {"data": asset}
            })
        })
        .collect();
    let collection = json!({"type": "FeatureCollection", "features": items});
    std::fs::write(path, collection.to_string()).unwrap();
}
