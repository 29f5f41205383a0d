//! A job against a server that misbehaves in every common way: what can be
//! fetched is done and verified, what cannot is failed with the right reason,
//! and the command ends with exit code 1 and a list a person can read.

use std::collections::HashMap;
use std::time::Duration;

use cairn::checksum::{Algorithm, Checksum};

use crate::support::cairn;
use crate::support::farm::{CatalogChecksum, Farm, Fault, FileSpec};

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
    assert!(text.contains("`cairn resume 1`"), "{text}");
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
