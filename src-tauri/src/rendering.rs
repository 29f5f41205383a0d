//! How WebKitGTK draws the window on Linux.
//!
//! Since 2.42, WebKitGTK composites every frame with OpenGL through its
//! DMA-BUF renderer. On a machine without a GPU render node (a virtual
//! machine, a remote desktop, an old laptop without a driver) that OpenGL is
//! Mesa's llvmpipe on the CPU, and each frame costs the whole window: with
//! 100,000 items on the map the items table scrolled at 8 frames a second
//! (bench/app). Without that renderer WebKit paints on the CPU only what
//! changed, and the same table scrolls at 60. So where there is no render
//! node, and the person has not chosen themselves, Cairn turns it off. With a
//! GPU, WebKit's own choice stands.

use std::ffi::OsStr;
use std::path::Path;

/// WebKitGTK's switch for its DMA-BUF renderer; "1" turns it off.
pub const DMABUF_SWITCH: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";

/// Where Linux lists the GPUs' render nodes (`renderD128`...).
const DRI: &str = "/dev/dri";

/// What WebKitGTK should be told before it starts, on this machine: a
/// variable and its value, or nothing.
pub fn choice() -> Option<(&'static str, &'static str)> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    decide(
        std::env::var_os(DMABUF_SWITCH).as_deref(),
        has_render_node(Path::new(DRI)),
    )
}

/// `already`: the switch as the person set it, if they did.
fn decide(already: Option<&OsStr>, gpu: bool) -> Option<(&'static str, &'static str)> {
    match (already, gpu) {
        (None, false) => Some((DMABUF_SWITCH, "1")),
        _ => None,
    }
}

fn has_render_node(dri: &Path) -> bool {
    std::fs::read_dir(dri).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_the_renderer_off_only_without_a_gpu_and_without_a_choice() {
        assert_eq!(decide(None, false), Some((DMABUF_SWITCH, "1")));
        assert_eq!(decide(None, true), None);
        // The person's own setting wins, whichever way it goes.
        assert_eq!(decide(Some(OsStr::new("0")), false), None);
        assert_eq!(decide(Some(OsStr::new("1")), true), None);
    }

    #[test]
    fn finds_render_nodes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_render_node(&dir.path().join("missing")));
        assert!(!has_render_node(dir.path()));
        std::fs::write(dir.path().join("card0"), "").unwrap();
        assert!(
            !has_render_node(dir.path()),
            "a display card is not a render node"
        );
        std::fs::write(dir.path().join("renderD128"), "").unwrap();
        assert!(has_render_node(dir.path()));
    }
}
