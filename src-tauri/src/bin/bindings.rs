//! Writes the window's TypeScript bindings (ui/src/lib/bindings.ts) from the
//! Rust types of the commands and events. Run after changing either:
//! `cargo run -p cairn-app --bin bindings`.

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(cairn_app::BINDINGS);
    if let Err(error) = cairn_app::export_bindings(&path) {
        eprintln!("error: the bindings could not be written: {error}");
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}
