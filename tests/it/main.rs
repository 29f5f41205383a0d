//! Integration tests of the Cairn engine and CLI, against real servers on loopback.

mod api_search;
mod archive;
mod bandwidth;
mod broken;
mod bucket_assets;
mod buckets;
mod cli;
mod copy;
mod crash;
mod disk_full;
mod estimate;
mod faults;
mod filter;
mod large;
mod mirror;
mod object_store;
mod random_catalogs;
mod replay;
mod retry;
mod runner;
mod sign_in;
mod static_walk;
mod support;
mod sync;
mod trust;
mod watch;
