//! Bandwidth limits: one for each job and one over all jobs, changeable while
//! transfers run.
//!
//! The token bucket is `async-speed-limit`'s (the one TiKV uses for its own
//! throttling); its limiters are shared handles whose rate can be changed at any
//! moment, which is what a live slider needs. A transfer asks its job's limiter
//! and the global one for every chunk before writing it.

use async_speed_limit::Limiter;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Reads a rate like `10M`, `512K`, `1.5G` or `250000` as bytes per second.
///
/// Suffixes are binary, as in curl's `--limit-rate` and rclone's `--bwlimit`:
/// K is 1024, M is 1024², G is 1024³. A trailing `B`, `/s` or `iB` is accepted.
/// `0`, `off` and `none` mean no limit (`None`).
pub fn parse_rate(text: &str) -> Result<Option<u64>> {
    // The largest limit taken: a terabyte per second.
    const MAX_RATE: u64 = 1 << 40;
    let invalid = || {
        Error::invalid_input(format!(
            "the rate {text:?} is not a number of bytes per second like 500K, 10M or 1G"
        ))
    };
    let lower = text.trim().to_ascii_lowercase();
    if matches!(lower.as_str(), "0" | "off" | "none" | "unlimited") {
        return Ok(None);
    }
    let stripped = lower
        .trim_end_matches("/s")
        .trim_end_matches("ib")
        .trim_end_matches('b');
    let (number, multiplier) = match stripped.chars().last() {
        Some('k') => (&stripped[..stripped.len() - 1], 1024f64),
        Some('m') => (&stripped[..stripped.len() - 1], 1024f64 * 1024.0),
        Some('g') => (&stripped[..stripped.len() - 1], 1024f64 * 1024.0 * 1024.0),
        Some(c) if c.is_ascii_digit() || c == '.' => (stripped, 1f64),
        _ => return Err(invalid()),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid())?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid());
    }
    let bytes = (value * multiplier).round();
    if bytes < 1.0 {
        return Err(Error::invalid_input(format!(
            "the rate {text:?} is less than one byte per second; use 0 or off for no limit"
        )));
    }
    if bytes > MAX_RATE as f64 {
        return Err(Error::invalid_input(format!(
            "the rate {text:?} is more than any network carries (the most is 1024G, a terabyte per second); use 0 or off for no limit"
        )));
    }
    Ok(Some(bytes as u64))
}

/// A bandwidth limit shared by many transfers; `None` means unlimited.
#[derive(Clone)]
pub struct Bandwidth {
    limiter: Limiter,
}

impl std::fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandwidth")
            .field("bytes_per_second", &self.get())
            .finish()
    }
}

impl Bandwidth {
    /// A limit of `bytes_per_second`, or none.
    pub fn new(bytes_per_second: Option<u64>) -> Bandwidth {
        Bandwidth {
            limiter: Limiter::new(to_speed(bytes_per_second)),
        }
    }

    /// Changes the limit; transfers under way follow it from their next chunk.
    pub fn set(&self, bytes_per_second: Option<u64>) {
        self.limiter.set_speed_limit(to_speed(bytes_per_second));
    }

    /// The limit now.
    pub fn get(&self) -> Option<u64> {
        let speed = self.limiter.speed_limit();
        speed.is_finite().then_some(speed as u64)
    }

    /// Waits until `bytes` may pass.
    pub async fn consume(&self, bytes: usize) {
        if self.get().is_some() {
            self.limiter.consume(bytes).await;
        }
    }
}

fn to_speed(bytes_per_second: Option<u64>) -> f64 {
    match bytes_per_second {
        Some(rate) if rate > 0 => rate as f64,
        _ => f64::INFINITY,
    }
}

/// The limits one transfer obeys: its job's and the global one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The job's limit.
    pub job: Bandwidth,
    /// The limit over all jobs.
    pub global: Bandwidth,
}

impl Limits {
    /// No limits at all.
    pub fn unlimited() -> Limits {
        Limits {
            job: Bandwidth::new(None),
            global: Bandwidth::new(None),
        }
    }

    /// Waits until `bytes` may pass both limits.
    pub async fn consume(&self, bytes: usize) {
        self.job.consume(bytes).await;
        self.global.consume(bytes).await;
    }
}

/// One line of a bandwidth schedule: from this time of day on, this rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Slot {
    /// The time of day it starts, `HH:MM` (24-hour clock, local time).
    pub from: String,
    /// A rate as [`parse_rate`] reads it; empty or `off` for no limit.
    pub rate: String,
}

impl Slot {
    /// From `from` (`HH:MM`) on, at most `rate`.
    pub fn new(from: &str, rate: &str) -> Slot {
        Slot {
            from: from.into(),
            rate: rate.into(),
        }
    }
}

/// Limits by time of day, as people on shared or metered connections use:
/// each slot holds from its time until the next one's, and the last one of
/// the day holds over midnight until the first. It is rclone's `--bwlimit`
/// timetable, in lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Minute of the day and rate, in order of time, no time twice.
    slots: Vec<(u16, Option<u64>)>,
}

/// The limit a schedule sets now, and when that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InForce {
    /// Bytes per second (`None`: no limit).
    pub rate: Option<u64>,
    /// The minute of the day the next slot starts, when there is another.
    pub until: Option<u16>,
}

impl Schedule {
    /// Reads the slots, refusing in words a time or rate that cannot be read
    /// and a time given twice. No slots: no limit at any time.
    pub fn new(slots: &[Slot]) -> Result<Schedule> {
        let mut read = Vec::with_capacity(slots.len());
        for slot in slots {
            let minute = parse_time(&slot.from)?;
            let rate = match slot.rate.trim() {
                "" => None,
                text => parse_rate(text)?,
            };
            if read.iter().any(|&(m, _)| m == minute) {
                return Err(Error::invalid_input(format!(
                    "the schedule gives {} twice; keep one limit for each time",
                    clock(minute)
                )));
            }
            read.push((minute, rate));
        }
        read.sort_by_key(|&(minute, _)| minute);
        Ok(Schedule { slots: read })
    }

    /// Whether it never limits anything.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|(_, rate)| rate.is_none())
    }

    /// The limit at `minute` of the day (0 to 1439), and when it changes.
    pub fn at(&self, minute: u16) -> InForce {
        let Some(&(_, last)) = self.slots.last() else {
            return InForce {
                rate: None,
                until: None,
            };
        };
        let current = self
            .slots
            .iter()
            .rev()
            .find(|&&(start, _)| start <= minute)
            .map_or(last, |&(_, rate)| rate);
        // The next slot whose rate differs, going round the clock once.
        let until = self
            .slots
            .iter()
            .filter(|&&(start, _)| start > minute)
            .chain(self.slots.iter().filter(|&&(start, _)| start <= minute))
            .find(|&&(_, rate)| rate != current)
            .map(|&(start, _)| start);
        InForce {
            rate: current,
            until,
        }
    }
}

/// `HH:MM` as a minute of the day.
fn parse_time(text: &str) -> Result<u16> {
    let invalid = || {
        Error::invalid_input(format!(
            "the time {text:?} is not a time of day like 08:00 or 18:30"
        ))
    };
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(invalid)?;
    let number = |part: &str, below: u16| {
        (!part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
            .filter(|&n| n < below)
    };
    match (number(hours, 24), number(minutes, 60)) {
        (Some(h), Some(m)) if minutes.len() == 2 => Ok(h * 60 + m),
        _ => Err(invalid()),
    }
}

/// The minute of the day on this computer's clock, in its time zone, as a
/// [`Schedule`] reads it.
pub fn minute_now() -> u16 {
    use chrono::Timelike;
    let now = chrono::Local::now();
    (now.hour() * 60 + now.minute()) as u16
}

/// A minute of the day as `HH:MM`.
pub fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn slot(from: &str, rate: &str) -> Slot {
        Slot::new(from, rate)
    }

    #[test]
    fn a_schedule_holds_each_rate_until_the_next_time_and_over_midnight() {
        let schedule = Schedule::new(&[
            slot("18:00", "off"),
            slot("08:00", "512K"),
            slot("12:00", "10M"),
            slot("13:00", "512k"),
        ])
        .unwrap();
        let at = |h: u16, m: u16| schedule.at(h * 60 + m);
        assert_eq!(at(8, 0).rate, Some(512 * 1024));
        assert_eq!(at(8, 0).until, Some(12 * 60));
        assert_eq!(at(12, 59).rate, Some(10 * 1024 * 1024));
        assert_eq!(at(13, 0).until, Some(18 * 60));
        assert_eq!(at(18, 0).rate, None);
        // Before the first time of the day, the last one still holds.
        assert_eq!(
            at(3, 15),
            InForce {
                rate: None,
                until: Some(8 * 60)
            }
        );
        assert_eq!(at(23, 59).until, Some(8 * 60));
        assert!(!schedule.is_empty());
    }

    #[test]
    fn a_schedule_with_one_rate_never_changes_and_none_never_limits() {
        let always = Schedule::new(&[slot("07:30", "1M")]).unwrap();
        assert_eq!(
            always.at(0),
            InForce {
                rate: Some(1 << 20),
                until: None
            }
        );
        assert_eq!(always.at(1439).rate, Some(1 << 20));
        let same = Schedule::new(&[slot("07:30", "1M"), slot("09:00", "1024K")]).unwrap();
        assert_eq!(same.at(600).until, None, "the same rate twice is no change");
        let none = Schedule::new(&[]).unwrap();
        assert!(none.is_empty());
        assert_eq!(
            none.at(720),
            InForce {
                rate: None,
                until: None
            }
        );
        assert!(
            Schedule::new(&[slot("00:00", ""), slot("12:00", "off")])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_schedule_that_cannot_be_read_is_refused_in_words() {
        for (from, rate, says) in [
            ("8", "1M", "is not a time of day"),
            ("24:00", "1M", "is not a time of day"),
            ("12:60", "1M", "is not a time of day"),
            ("12:5", "1M", "is not a time of day"),
            ("-1:00", "1M", "is not a time of day"),
            ("08:00", "fast", "is not a number of bytes per second"),
        ] {
            let error = Schedule::new(&[slot(from, rate)]).unwrap_err().to_string();
            assert!(error.contains(says), "{from} {rate}: {error}");
        }
        let twice = Schedule::new(&[slot("8:00", "1M"), slot("08:00", "2M")]).unwrap_err();
        assert!(twice.to_string().contains("gives 08:00 twice"), "{twice}");
        assert_eq!(parse_time(" 7:05 ").unwrap(), 425);
        assert_eq!(clock(425), "07:05");
    }

    #[test]
    fn rates_people_type_are_understood() {
        let rate = |s: &str| parse_rate(s).unwrap();
        assert_eq!(rate("20M"), Some(20 * 1024 * 1024));
        assert_eq!(rate("512k"), Some(512 * 1024));
        assert_eq!(rate("1.5G"), Some(1_610_612_736));
        assert_eq!(rate("250000"), Some(250_000));
        assert_eq!(rate("10MB/s"), Some(10 * 1024 * 1024));
        assert_eq!(rate("10MiB"), Some(10 * 1024 * 1024));
        assert_eq!(rate("off"), None);
        assert_eq!(rate("0"), None);
        assert_eq!(rate("1024G"), Some(1 << 40));
        for bad in [
            "fast", "-5M", "10X", "", "M", "0.0001", "1e400", "inf", "NaN",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        // Past any network: refused in words rather than stored wrapped.
        for huge in [
            "9223372036854775807",
            "99999999999G",
            "1025G",
            "18446744073709551616",
        ] {
            let said = parse_rate(huge).unwrap_err().to_string();
            assert!(
                said.contains("more than any network carries"),
                "{huge}: {said}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_limit_holds_the_rate_and_can_change_while_running() {
        let limit = Bandwidth::new(Some(1024 * 1024));
        let started = Instant::now();
        for _ in 0..32 {
            limit.consume(16 * 1024).await;
        }
        // 512 KiB at 1 MiB/s: about half a second.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");

        limit.set(Some(8 * 1024 * 1024));
        assert_eq!(limit.get(), Some(8 * 1024 * 1024));
        let started = Instant::now();
        for _ in 0..32 {
            limit.consume(16 * 1024).await;
        }
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );

        limit.set(None);
        assert_eq!(limit.get(), None);
        let started = Instant::now();
        limit.consume(1 << 30).await;
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
