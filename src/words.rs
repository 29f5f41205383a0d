//! Numbers in a person's words, for messages and logs.

/// Counts: "1 item", "3 items", "2 entries".
/// `text` as it may be shown on a terminal or kept in a message: control
/// characters (an escape sequence that would retitle, clear or colour the
/// user's terminal, a line break) become U+FFFD.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect::<String>()
        .into()
}

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

/// What a run of a job found and did, in a sentence or two: the job's
/// history says it this way on the command line and in the app.
pub fn run_summary(run: &crate::store::Run) -> String {
    let mut parts = Vec::new();
    if run.new_items > 0 {
        parts.push(plural(run.new_items, "new item"));
    }
    if run.changed_items > 0 {
        parts.push(plural(run.changed_items, "changed item"));
    }
    if run.removed_items > 0 {
        // Kept (marked as removed upstream) or taken out, as the job chose
        // then: its choice now may differ, so neither is said.
        parts.push(format!(
            "{} gone from the source",
            plural(run.removed_items, "item")
        ));
    }
    if run.taken_out > 0 {
        parts.push(format!(
            "{} taken out of the mirror",
            plural(run.taken_out, "item")
        ));
    }
    if run.changed_assets > 0 {
        parts.push(format!(
            "{} with new bytes",
            plural(run.changed_assets, "file")
        ));
    }
    let what = match (run.kind.as_str(), parts.is_empty()) {
        ("sync", true) => "Sync: nothing new or changed in the source".to_string(),
        ("sync", false) => format!("Sync: {}", parts.join(", ")),
        (_, true) => "First copy".to_string(),
        (_, false) => format!("First copy: {}", parts.join(", ")),
    };
    let mut text = match (&run.finished_at, parts.is_empty()) {
        (Some(_), _) => format!("{what}; {} fetched", human_bytes(run.bytes)),
        // What a run found is counted as it ends: one that has not says
        // nothing of it (it may not have read its source yet).
        (None, true) => match run.kind.as_str() {
            "sync" => "Sync (not finished yet)".to_string(),
            _ => "First copy (not finished yet)".to_string(),
        },
        (None, false) => format!("{what} (not finished yet)"),
    };
    if run.failures > 0 {
        text.push_str(&format!(
            "; {} could not be copied",
            plural(run.failures, "file")
        ));
    }
    text.push('.');
    if let Some(why) = &run.removals_note {
        text.push_str(&format!(
            " Items gone from the source were not looked for: {why}."
        ));
    }
    text
}

/// A system's message without its error number: "Permission denied (os
/// error 13)" reads "Permission denied".
pub fn without_error_number(text: &str) -> String {
    match text.find(" (os error") {
        Some(start) => {
            let end = text[start..]
                .find(')')
                .map_or(text.len(), |at| start + at + 1);
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text.to_string(),
    }
}

/// What a person must never be shown: internals, Rust, the cloud's
/// metadata service, commands to type.
pub const NEVER_SHOWN: [&str; 20] = [
    "Error {",
    "Os {",
    "kind:",
    "os error",
    "Generic",
    "::",
    "Some(",
    "None",
    "Box<",
    "169.254.169.254",
    "metadata.google.internal",
    "reqwest",
    "hyper",
    "SqliteFailure",
    "ErrorCode",
    "<Error>",
    "panicked",
    "`",
    "cairn ",
    "--",
];

/// The first thing in `text` a person must never be shown, if any (an
/// empty text says nothing, which is as bad).
pub fn not_plain(text: &str) -> Option<&'static str> {
    if text.trim().is_empty() {
        return Some("(nothing)");
    }
    NEVER_SHOWN.into_iter().find(|bad| text.contains(bad))
}

#[cfg(test)]
mod tests {

    #[test]
    fn control_characters_are_never_shown() {
        assert_eq!(printable("plain, é"), "plain, é");
        assert_eq!(
            printable("a\u{1b}]0;owned\u{7}b\nc"),
            "a\u{fffd}]0;owned\u{fffd}b\u{fffd}c"
        );
    }

    use super::*;

    #[test]
    fn a_run_not_finished_says_nothing_of_what_it_found() {
        let mut run = crate::store::Run {
            id: 2,
            job: 1,
            kind: "sync".into(),
            started_at: "2026-12-07T00:00:00.000Z".into(),
            finished_at: None,
            new_items: 0,
            changed_items: 0,
            removed_items: 0,
            new_assets: 0,
            changed_assets: 0,
            bytes: 0,
            failures: 0,
            removals_checked: false,
            removals_note: None,
            taken_out: 0,
        };
        assert_eq!(run_summary(&run), "Sync (not finished yet).");
        run.finished_at = Some("2026-12-07T00:01:00.000Z".into());
        assert_eq!(
            run_summary(&run),
            "Sync: nothing new or changed in the source; 0 B fetched."
        );
    }

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
