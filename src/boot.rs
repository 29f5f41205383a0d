//! Which boot of the computer this is: a partial download written during
//! another boot may have lost its unflushed tail to a power cut, and only
//! what was flushed of it is trusted (see [`crate::store::AssetRow`]).

use std::sync::OnceLock;

/// This boot's id (Linux: the kernel's random boot id); `None` where it
/// cannot be told, and every partial is then trusted as it stands.
pub fn id() -> Option<String> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
    })
    .clone()
}
