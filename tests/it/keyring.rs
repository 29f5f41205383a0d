//! Logins kept in the system's keyring (GNOME Keyring on a private session
//! bus): `cairn sign-in` keeps a bucket's login there, later jobs of any
//! process use it with no credentials in their environment, the secret is
//! written nowhere else, `--forget` removes it, and a computer with no
//! keyring is told so in words.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::farm::{Farm, FileSpec};
use crate::support::keyring::Keyring;
use crate::support::moto::MotoServer;
use crate::support::{Run, files_under, object_sha256};

const SECRET: &str = "kept-secret-5f0c2a9e";

/// `cairn ARGS` with only `env` (no credentials from the test's own
/// environment), `stdin` written to its input.
fn cairn(env: &[(&'static str, String)], args: &[&str], stdin: &str) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().to_string();
        if name.starts_with("AWS_") || name.starts_with("DBUS_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .envs(env.iter().cloned())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_login_kept_in_the_keyring_serves_later_jobs() {
    let keyring = Keyring::start();
    let moto = MotoServer::start();
    let store = moto.bucket("kept-login").await;
    let specs: Vec<FileSpec> = (0..3)
        .map(|i| FileSpec::new(&format!("tile-{i}.bin"), 30_000 + i * 100))
        .collect();
    let farm = Farm::start(specs.clone(), 3);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cairn.db");
    let state = state.to_str().unwrap();
    let source = farm.catalog_url();
    let env = keyring.env();

    // No credentials anywhere: refused in words.
    let mirror = |prefix: &str| {
        let url = format!("s3://kept-login/{prefix}");
        cairn(
            &env,
            &["--state", state, "mirror", &source, &url, "--json"],
            "",
        )
    };
    let run = mirror("before");
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no credentials were found"),
        "{}",
        run.stderr
    );

    // Kept in the keyring, read from standard input.
    let run = cairn(
        &env,
        &[
            "sign-in",
            "s3://kept-login",
            "--key-id",
            "cairn-test",
            "--secret-stdin",
            "--region",
            "us-east-1",
            "--endpoint",
            &moto.endpoint,
        ],
        &format!("{SECRET}\n"),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("kept in this computer's keyring"),
        "{}",
        run.stdout
    );

    // A later process uses it.
    let run = mirror("after");
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["done"], specs.len(), "{}", run.stdout);
    let said = format!("{}{}", run.stdout, run.stderr);
    for spec in &specs {
        let key = format!("after/farm/item-0000/{}", spec.name);
        let sha256 = object_sha256(store.as_ref(), &key).await;
        assert_eq!(sha256, Some(spec.sha256()), "{key}");
    }
    // The secret is in the keyring only: not in the state file, its
    // journal, the staging folder or anything Cairn said.
    assert!(!said.contains(SECRET));
    for file in files_under(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }

    // Forgotten: refused again.
    let run = cairn(&env, &["sign-in", "s3://kept-login", "--forget"], "");
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let run = mirror("forgotten");
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no credentials were found"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_computer_without_a_keyring_is_told_so_in_words() {
    let nowhere = tempfile::tempdir().unwrap();
    let env = [(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", nowhere.path().join("bus").display()),
    )];
    let run = cairn(
        &env,
        &[
            "sign-in",
            "s3://kept-login",
            "--key-id",
            "a",
            "--secret-stdin",
        ],
        "b\n",
    );
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("this computer has no keyring Cairn can reach"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("environment"), "{}", run.stderr);
    // Nothing to keep: said so.
    let run = cairn(&env, &["sign-in", "s3://kept-login"], "");
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("give the login to keep"),
        "{}",
        run.stderr
    );
}
