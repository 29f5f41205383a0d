// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// jemalloc for Rust's allocations (the web view keeps the system's): the
/// jobs the app runs allocate from many threads at once, as the command
/// line's do (see its src/main.rs).
#[cfg(not(windows))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    cairn_app::run();
}
