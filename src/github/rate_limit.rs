//! The rate-limit budget, checked before a large listing so that a short budget is said up
//! front ("this needs 2,000 calls, 300 are left until 14:05 UTC") instead of failing half-way.
//!
//! `GET /rate_limit` is free. When the budget is short but resets within the longest wait the
//! user allows, discovery goes on and the HTTP layer pauses at the limit until the reset;
//! otherwise it stops before spending anything. The judgement is pure, so it is tested without a
//! server or a clock.

use std::time::Duration;

use serde::Deserialize;

use super::{GitHubClient, GitHubError};

/// The core REST budget, as `GET /rate_limit` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Budget {
    /// Requests per window.
    pub limit: u64,
    /// Requests left in this window.
    pub remaining: u64,
    /// When the window resets, in seconds since the Unix epoch.
    pub reset: u64,
}

#[derive(Deserialize)]
struct RateLimitAnswer {
    resources: Resources,
}

#[derive(Deserialize)]
struct Resources {
    core: Budget,
}

/// What to do about a listing that needs `needed` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The budget covers it.
    Enough,
    /// It does not, but the budget resets within the allowed wait: go on and pause at the
    /// limit.
    Pace {
        /// How long until the reset.
        wait: Duration,
    },
    /// It does not, and the reset is further away than the allowed wait: stop now.
    Short {
        /// How long until the reset.
        wait: Duration,
    },
}

/// Judges a budget against the calls a listing needs, `now` being seconds since the epoch.
pub fn judge(budget: &Budget, needed: u64, now: u64, max_wait: Duration) -> Verdict {
    if budget.remaining >= needed {
        return Verdict::Enough;
    }
    let wait = Duration::from_secs(budget.reset.saturating_sub(now) + 1);
    // More than one window short: the listing waits for several resets.
    let windows = (needed - budget.remaining).div_ceil(budget.limit.max(1));
    let wait = wait + Duration::from_secs(3600 * windows.saturating_sub(1));
    if wait <= max_wait {
        Verdict::Pace { wait }
    } else {
        Verdict::Short { wait }
    }
}

/// A clock time in UTC (`14:05 UTC`) for an epoch second, for messages.
pub fn clock_time(epoch: u64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(epoch.min(i64::MAX as u64) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02} UTC", time.hour(), time.minute())
}

/// A duration in words a user reads at a glance: `45s`, `12 min`, `2 h 5 min`.
pub fn in_words(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

impl GitHubClient {
    /// The core REST budget (`GET /rate_limit`, which costs nothing).
    pub async fn rate_limit(&self) -> Result<Budget, GitHubError> {
        let what = "reading the rate limit";
        let url = self.url("rate_limit")?;
        self.check_origin(&url, what)?;
        let response = self
            .http
            .send(what, || self.request(reqwest::Method::GET, url.clone()))
            .await?;
        let answer: RateLimitAnswer = super::read_json(what, response).await?;
        Ok(answer.resources.core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn budget(remaining: u64, reset: u64) -> Budget {
        Budget {
            limit: 5000,
            remaining,
            reset,
        }
    }

    #[test]
    fn enough_budget_goes_on() {
        assert_eq!(judge(&budget(100, 0), 100, 0, HOUR), Verdict::Enough);
    }

    #[test]
    fn a_short_budget_paces_when_the_reset_is_near_and_stops_when_it_is_not() {
        let near = judge(&budget(10, 1_000 + 600), 2_000, 1_000, HOUR);
        assert_eq!(
            near,
            Verdict::Pace {
                wait: Duration::from_secs(601)
            }
        );
        let far = judge(
            &budget(10, 1_000 + 600),
            2_000,
            1_000,
            Duration::from_secs(60),
        );
        assert_eq!(
            far,
            Verdict::Short {
                wait: Duration::from_secs(601)
            }
        );
    }

    #[test]
    fn needing_more_than_a_window_counts_the_extra_hours() {
        let verdict = judge(&budget(0, 1_060), 12_000, 1_000, 4 * HOUR);
        assert_eq!(
            verdict,
            Verdict::Pace {
                wait: Duration::from_secs(61 + 2 * 3600)
            }
        );
    }

    #[test]
    fn times_read_well() {
        assert_eq!(clock_time(14 * 3600 + 5 * 60 + 30), "14:05 UTC");
        assert_eq!(in_words(Duration::from_secs(45)), "45s");
        assert_eq!(in_words(Duration::from_secs(601)), "11 min");
        assert_eq!(in_words(Duration::from_secs(7_500)), "2 h 5 min");
    }
}
