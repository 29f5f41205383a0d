//! The TypeScript bindings in ui/ are written from the Rust types: this test
//! fails when they are stale, and says how to write them again.

#[test]
fn the_committed_bindings_match_the_rust_types() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("bindings.ts");
    cairn_app::export_bindings(&fresh).unwrap();
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(cairn_app::BINDINGS);
    let committed = std::fs::read_to_string(&committed).unwrap_or_default();
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        committed == fresh,
        "ui/src/lib/bindings.ts is stale: run `cargo run -p cairn-app --bin bindings` and commit it"
    );
}
