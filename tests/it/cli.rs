//! The CLI contract: output, `--json` lines with a final summary, exit codes.

use serde_json::{Value, json};

use crate::support::{cairn, fixtures};

#[test]
fn browse_prints_a_tree_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let source = fixtures().join("static/pystac-test-case-1");
    let output = cairn(&state, &["browse", source.to_str().unwrap()]);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let stdout = output.stdout;
    assert!(stdout.contains("catalog test  (8 items)"), "{stdout}");
    assert!(
        stdout.contains("├── catalog country-1  (4 items)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("│   ├── collection area-1-1  (2 items)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 catalogs, 4 collections, 8 items"),
        "{stdout}"
    );
    // The source is remembered in the state file.
    let store = cairn::store::Store::open(&state).unwrap();
    let sources = store.sources().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].kind.as_deref(), Some("catalog"));
}

#[test]
fn browse_json_ends_with_a_summary_and_problems_give_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let source = fixtures().join("broken/v1.1.0-missing-item-link/collection.json");
    let output = cairn(&state, &["browse", source.to_str().unwrap(), "--json"]);
    assert_eq!(output.code, Some(1));
    let lines = output.lines();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["items"], 2);
    assert_eq!(summary["problems"], 1);
    assert!(lines.iter().any(
        |l| l["type"] == "problem" && l["reason"].as_str().unwrap().contains("does not exist")
    ));
}

#[test]
fn bad_input_exits_2_with_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let catalog = fixtures().join("static/pystac-test-case-1/catalog.json");
    let catalog = catalog.to_str().unwrap();
    for (args, words) in [
        (vec!["browse", "/no/such/catalog.json"], "does not exist"),
        (vec!["browse", "ftp://example.com/catalog.json"], "ftp://"),
        (vec!["search", catalog, "--bbox", "1,2,3"], "has 3 numbers"),
        (
            vec!["search", catalog, "--datetime", "yesterday"],
            "\"yesterday\" is not a date",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ] {
        let output = cairn(&state, &args);
        assert_eq!(output.code, Some(2), "{args:?}");
        let stderr = output.stderr;
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn search_of_a_static_catalog_filters_locally() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let catalog = fixtures().join("static/pystac-example-catalog-landsat/catalog.json");
    let output = cairn(
        &state,
        &[
            "search",
            catalog.to_str().unwrap(),
            "--datetime",
            "2018-06-01T00:00:00Z/2018-06-30T23:59:59Z",
            "--json",
        ],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let lines = output.lines();
    let mut ids: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "Feature")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["LC80140332018166LGN00", "LC80300332018166LGN00"]);
    assert_eq!(lines.last().unwrap()["items"], 2);
}

#[test]
fn jobs_lists_nothing_on_a_new_state_file_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let output = cairn(&state, &["jobs", "--json"]);
    assert_eq!(output.code, Some(0));
    let summary = output.summary();
    assert_eq!(summary["jobs"], 0);

    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.pragma_update(None, "user_version", 1000).unwrap();
    drop(conn);
    let output = cairn(&state, &["jobs"]);
    assert_eq!(output.code, Some(2));
    assert!(
        output.stderr.contains("newer version of Cairn"),
        "{}",
        output.stderr
    );
}

#[test]
fn the_demo_catalog_walks_without_problems() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let output = cairn(
        &dir.path().join("cairn.db"),
        &["browse", demo.to_str().unwrap(), "--json"],
    );
    assert_eq!(output.code, Some(0), "{}", output.stdout);
    let summary = output.summary();
    assert_eq!(
        (
            summary["catalogs"].as_u64(),
            summary["collections"].as_u64(),
            summary["items"].as_u64()
        ),
        (Some(1), Some(2), Some(6))
    );
    assert_eq!(summary["problems"], 0);
}

#[test]
fn a_second_job_into_the_same_folder_skips_what_is_already_verified() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let dest = dir.path().join("mirror");
    let run = |args: &[&str]| {
        let output = cairn(&state, args);
        assert_eq!(output.code, Some(0), "{}", output.stderr);
        output.lines().pop().unwrap()
    };
    let demo = demo.to_str().unwrap();
    let first = run(&[
        "mirror",
        demo,
        dest.to_str().unwrap(),
        "--collections",
        "coastlines",
        "--json",
    ]);
    assert_eq!(
        (first["done"].as_u64(), first["skipped"].as_u64()),
        (Some(6), Some(0))
    );
    // A wider selection is a new job: the coastlines files are verified in
    // place (the demo gives file:checksum) and only the glaciers are copied.
    let second = run(&["mirror", demo, dest.to_str().unwrap(), "--json"]);
    assert_eq!(
        (second["done"].as_u64(), second["skipped"].as_u64()),
        (Some(6), Some(6))
    );
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(dest.join("catalog.json")).unwrap()).unwrap();
    let children = catalog["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "child")
        .count();
    assert_eq!(children, 2);
    let dry = cairn(
        &state,
        &[
            "mirror",
            demo,
            dest.to_str().unwrap(),
            "--dry-run",
            "--json",
            "--concurrency",
            "3",
        ],
    );
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let plan = dry
        .lines()
        .into_iter()
        .find(|l| l["type"] == "plan")
        .unwrap();
    assert_eq!(plan["already_done"], 12, "{plan}");
    // The last line sums up, as for a run; the job stays as its run left it.
    let summary = dry.summary();
    assert_eq!(
        (&summary["type"], &summary["dry_run"], &summary["state"]),
        (&json!("summary"), &json!(true), &json!("finished")),
        "{summary}"
    );
    let jobs = cairn(&state, &["jobs", "--json"]).lines();
    for job in jobs.iter().filter(|l| l["type"] != "summary") {
        assert_eq!(job["state"], "finished", "{job}");
        assert!(job["finished_at"].is_string(), "{job}");
        // Its settings too: a dry run only plans.
        assert_ne!(job["concurrency"], 3, "{job}");
    }
}

#[test]
fn a_first_mirror_finds_nothing_already_there_though_copies_start_during_the_plan() {
    // Files are copied while the plan still reads the item files: by the
    // time it is told, some are done, and they were not there before.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("files")).unwrap();
    std::fs::create_dir_all(source.join("items")).unwrap();
    let mut links = vec![serde_json::json!({"rel": "root", "href": "./collection.json"})];
    for n in 0..2000 {
        std::fs::write(source.join(format!("files/f{n}.bin")), format!("file {n}")).unwrap();
        let item = serde_json::json!({
            "type": "Feature", "stac_version": "1.1.0", "id": format!("item-{n}"),
            "collection": "c",
            "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
            "bbox": [0.0, 0.0, 0.0, 0.0],
            "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "links": [{"rel": "collection", "href": "../collection.json"}],
            "assets": {"data": {"href": format!("../files/f{n}.bin")}}
        });
        std::fs::write(
            source.join(format!("items/item-{n}.json")),
            item.to_string(),
        )
        .unwrap();
        links.push(serde_json::json!({"rel": "item", "href": format!("./items/item-{n}.json")}));
    }
    let items = source.join("collection.json");
    let collection = serde_json::json!({
        "type": "Collection", "stac_version": "1.1.0", "id": "c", "description": "d",
        "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[0.0, 0.0, 0.0, 0.0]]},
                   "temporal": {"interval": [[null, null]]}},
        "links": links
    });
    std::fs::write(&items, collection.to_string()).unwrap();
    let dest = dir.path().join("mirror");
    let run = || {
        let output = cairn(
            &state,
            &[
                "mirror",
                items.to_str().unwrap(),
                dest.to_str().unwrap(),
                "--json",
            ],
        );
        assert_eq!(output.code, Some(0), "{}", output.stderr);
        let lines = output.lines();
        let plan = lines.iter().find(|l| l["type"] == "plan").unwrap().clone();
        (plan, lines.last().unwrap().clone())
    };
    let (plan, summary) = run();
    assert_eq!(plan["already_done"], 0, "{plan}");
    assert_eq!(summary["done"], 2000, "{summary}");
    // Run again, every file is there from before.
    let (plan, _) = run();
    assert_eq!(plan["already_done"], 2000, "{plan}");
}

#[test]
fn a_destination_that_cannot_be_made_is_said_plainly_and_the_job_waits() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    // A file stands where the destination's parent folder should be.
    std::fs::write(dir.path().join("taken"), b"a file").unwrap();
    let dest = dir.path().join("taken/mirror");
    let run = cairn(
        &state,
        &["mirror", demo.to_str().unwrap(), dest.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("taken/mirror could not be made: a file stands where"),
        "{}",
        run.stderr
    );
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines()[0]["state"], "paused");
}

#[test]
fn a_long_list_of_failures_ends_in_a_count_in_words_and_whole_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let features: Vec<Value> = (0..130)
        .map(|n| {
            json!({
                "type": "Feature", "stac_version": "1.1.0", "id": format!("item-{n}"),
                "geometry": null, "properties": {"datetime": "2024-01-01T00:00:00Z"},
                "links": [], "assets": {"data": {"href": format!("./missing/f{n}.bin")}}
            })
        })
        .collect();
    let items = dir.path().join("items.json");
    std::fs::write(
        &items,
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .unwrap();
    let dest = dir.path().join("mirror");
    let args = ["mirror", items.to_str().unwrap(), dest.to_str().unwrap()];
    let run = cairn(&state, &args);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.matches("\n  - ").count(), 100, "{}", run.stdout);
    assert!(run.stdout.contains("...and 30 more"), "{}", run.stdout);
    let json = cairn(&state, &[&args[..], &["--json"]].concat());
    let failed = json
        .lines()
        .iter()
        .filter(|l| l["type"] == "failed")
        .count();
    assert_eq!(failed, 130);
}

#[cfg(unix)]
#[test]
fn a_mirror_folder_another_program_copies_into_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let (demo, dest) = (demo.to_str().unwrap(), dir.path().join("mirror"));
    std::fs::create_dir_all(&dest).unwrap();
    // Another Cairn, with a state file of its own, holds the folder.
    let other = cairn::writer::Writer::take(&dest).unwrap().expect("free");
    let state = dir.path().join("cairn.db");
    let run = cairn(&state, &["mirror", demo, dest.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("another program is copying into the mirror folder"),
        "{}",
        run.stderr
    );
    // Nothing was written into the mirror meanwhile.
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines()[0]["state"], "paused");
    // Once it has ended, the job goes on.
    drop(other);
    let resumed = cairn(&state, &["resume", "1"]);
    assert_eq!(
        resumed.code,
        Some(0),
        "{}\n{}",
        resumed.stdout,
        resumed.stderr
    );
    assert!(dest.join("catalog.json").exists());

    // A repair while another program holds the folder: not done, said, and
    // the job stays finished; done once the folder is free.
    let damaged = dest.join("coastlines/coastlines-lisbon/samples.csv");
    std::fs::write(&damaged, b"not the bytes").unwrap();
    let other = cairn::writer::Writer::take(&dest).unwrap().expect("free");
    let repair = cairn(&state, &["verify", dest.to_str().unwrap(), "--repair"]);
    assert_ne!(repair.code, Some(0), "{}\n{}", repair.stdout, repair.stderr);
    assert!(
        format!("{}{}", repair.stdout, repair.stderr).contains("another program is copying"),
        "{}\n{}",
        repair.stdout,
        repair.stderr
    );
    let jobs = cairn(&state, &["jobs", "--json"]);
    assert_eq!(jobs.lines()[0]["state"], "finished");
    assert_eq!(std::fs::read(&damaged).unwrap(), b"not the bytes");
    drop(other);
    let repair = cairn(&state, &["verify", dest.to_str().unwrap(), "--repair"]);
    assert_eq!(repair.code, Some(0), "{}\n{}", repair.stdout, repair.stderr);
    assert_ne!(std::fs::read(&damaged).unwrap(), b"not the bytes");
}

#[test]
fn every_verify_of_a_mirror_is_recorded_for_the_mirrors_list() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let dest = dir.path().join("mirror");
    let dest_arg = dest.to_str().unwrap();
    let mirrored = cairn(
        &state,
        &["mirror", demo.to_str().unwrap(), dest_arg, "--json"],
    );
    assert_eq!(mirrored.code, Some(0), "{}", mirrored.stderr);
    let last_check = || {
        let store = cairn::store::Store::open_for_reading(&state).unwrap();
        let mirrors = store.mirrors().unwrap();
        assert_eq!(mirrors.len(), 1);
        mirrors[0].last_check.clone()
    };
    assert_eq!(last_check(), None);
    // A plain check (no --repair) is recorded.
    let checked = cairn(&state, &["verify", dest_arg]);
    assert_eq!(checked.code, Some(0), "{}", checked.stderr);
    let check = last_check().expect("the check is recorded");
    assert_eq!((check.files, check.verified, check.problems), (12, 12, 0));

    // A file lost: the next check says so, and is the one the list shows.
    std::fs::remove_file(dest.join("coastlines/coastlines-lisbon/samples.csv")).unwrap();
    let checked = cairn(&state, &["verify", dest_arg]);
    assert_eq!(checked.code, Some(1), "{}", checked.stdout);
    let check = last_check().unwrap();
    assert_eq!((check.files, check.verified, check.problems), (12, 11, 1));
}

#[test]
fn a_reader_that_stops_reading_is_no_error() {
    // `cairn jobs | head -0`: the pipe is closed before Cairn writes.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    for args in [&["jobs"][..], &["jobs", "--json"]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--state")
            .arg(&state)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
