//! Numbers in a person's words, for messages and logs.

/// Counts: "1 item", "3 items", "2 entries".
pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun.strip_suffix('y') {
        format!("{count} {stem}ies")
    } else {
        format!("{count} {noun}s")
    }
}

/// Bytes in a person's units, powers of 1000 as disks are sold and as the
/// desktop app shows them: "980 B", "15.7 MB", "1.2 GB", "512 GB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_the_app_shows_them() {
        assert_eq!(human_bytes(980), "980 B");
        assert_eq!(human_bytes(15_700_000), "15.7 MB");
        assert_eq!(human_bytes(15 * 1024 * 1024), "15.7 MB");
        assert_eq!(human_bytes(1_234_000_000), "1.2 GB");
        assert_eq!(human_bytes(512_000_000_000), "512 GB");
        assert_eq!(plural(1, "entry"), "1 entry");
        assert_eq!(plural(3, "entry"), "3 entries");
    }
}
