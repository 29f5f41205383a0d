//! Bandwidth limits: one for each job and one over all jobs, changeable while
//! transfers run.
//!
//! The token bucket is `async-speed-limit`'s (the one TiKV uses for its own
//! throttling); its limiters are shared handles whose rate can be changed at any
//! moment, which is what a live slider needs. A transfer asks its job's limiter
//! and the global one for every chunk before writing it.

use async_speed_limit::Limiter;

use crate::{Error, Result};

/// Reads a rate like `10M`, `512K`, `1.5G` or `250000` as bytes per second.
///
/// Suffixes are binary, as in curl's `--limit-rate` and rclone's `--bwlimit`:
/// K is 1024, M is 1024², G is 1024³. A trailing `B`, `/s` or `iB` is accepted.
/// `0`, `off` and `none` mean no limit (`None`).
pub fn parse_rate(text: &str) -> Result<Option<u64>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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
        for bad in ["fast", "-5M", "10X", "", "M", "0.0001"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
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
