//! When the computer last started: a partial download last written before
//! then may have lost what was not yet on disk to a power cut, and is not
//! continued (see [`crate::transfer::copy::AssetCopy`]).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// When this boot of the computer began (Linux: `btime` in /proc/stat);
/// `None` where it cannot be told, and every partial is then continued.
pub fn started() -> Option<SystemTime> {
    static STARTED: OnceLock<Option<SystemTime>> = OnceLock::new();
    *STARTED.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let seconds = stat
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
    })
}
