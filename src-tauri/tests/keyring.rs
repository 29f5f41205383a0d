//! A catalog sign-in kept with "Remember on this computer" is there after a
//! restart (a new `SignIns`, as the app makes at its start), and gone once
//! forgotten: GNOME Keyring on a private session bus.

// The engine's test keyring, shared (its `env` is for child processes).
#[allow(dead_code)]
#[path = "../../tests/it/support/keyring.rs"]
mod keyring;

use cairn_app::sign_in::{SignInForm, SignInKind, SignIns};

#[test]
fn a_sign_in_kept_on_this_computer_is_used_after_a_restart() {
    let keyring = keyring::Keyring::start();
    // SAFETY: the only test of this binary, set before any thread asks the
    // keyring (which reads the variable once).
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &keyring.address) };
    let source = "https://data.example:8443/stac/collection.json";
    let form = SignInForm {
        kind: SignInKind::Token,
        token: "t0ken-kept-7d1e".into(),
        netrc: String::new(),
    };
    let before = SignIns::default();
    before.set(source, &form).unwrap();
    before.remember(source, &form).unwrap();

    // After a restart nothing is typed: the kept token signs in, for every
    // address on the same host and port.
    let after = SignIns::default();
    assert_eq!(after.kept(source).as_deref(), Some("a token"));
    let (settings, secrets) = after.get("https://data.example:8443/other/catalog.json");
    assert_eq!(settings.headers, vec!["authorization".to_string()]);
    assert_eq!(secrets.headers.len(), 1);
    assert_eq!(secrets.headers[0].name(), "authorization");
    // Another host gets nothing.
    let (settings, _) = after.get("https://data.example/stac/collection.json");
    assert!(settings.headers.is_empty());

    after.forget(source).unwrap();
    let again = SignIns::default();
    assert_eq!(again.kept(source), None);
    assert!(again.get(source).1.headers.is_empty());
}
