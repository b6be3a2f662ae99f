//! The fault schedule: which request gets which fault, decided from a seed.
//!
//! A decision depends only on the seed, the request's key (method and target) and how many
//! times that key was asked before — never on arrival order — so concurrent clients meet the
//! same faults on every run with the same seed.

use std::time::Duration;

/// One kind of misbehaviour the proxy can put in place of the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Answer this server error (500, 502 or 503) without asking the upstream.
    ServerError(u16),
    /// Answer this throttling status (429, or 403 as GitHub's secondary limit) with
    /// `retry-after`, without asking the upstream.
    RateLimited(u16),
    /// Read the request, then close the connection with a TCP reset and no answer.
    Reset,
    /// Read the request, then hold the connection silent for [`FaultPlan::stall`] and close it.
    Stall,
    /// Forward the request, then send the answer's head and only half its body (or half the
    /// head when there is no body) and close: the `Content-Length` promises more than arrives.
    Truncate,
}

impl FaultKind {
    /// Every kind the issue asks for: 500/502/503, 429 and 403 with `retry-after`, resets,
    /// stalls and truncated bodies.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::ServerError(500),
        FaultKind::ServerError(502),
        FaultKind::ServerError(503),
        FaultKind::RateLimited(429),
        FaultKind::RateLimited(403),
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::Truncate,
    ];

    /// A short name for counts and logs: `503`, `429`, `reset`, `stall`, `truncate`.
    pub fn label(self) -> String {
        match self {
            FaultKind::ServerError(status) | FaultKind::RateLimited(status) => status.to_string(),
            FaultKind::Reset => "reset".into(),
            FaultKind::Stall => "stall".into(),
            FaultKind::Truncate => "truncate".into(),
        }
    }
}

/// How often and how the proxy misbehaves.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The seed every decision derives from.
    pub seed: u64,
    /// The share of requests that get a fault, from 0.0 to 1.0.
    pub rate: f64,
    /// The kinds to choose from, uniformly.
    pub kinds: Vec<FaultKind>,
    /// The `retry-after` sent with [`FaultKind::RateLimited`], in seconds.
    pub retry_after_secs: u64,
    /// How long a [`FaultKind::Stall`] holds the connection.
    pub stall: Duration,
    /// At most this many faults in a row for one key; the next try of it passes. `None` lets
    /// the dice decide alone.
    pub max_in_a_row: Option<u32>,
}

impl FaultPlan {
    /// Every fault kind at `rate`, a 1 s `retry-after`, 5 s stalls, no cap on faults in a row.
    pub fn new(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan {
            seed,
            rate: rate.clamp(0.0, 1.0),
            kinds: FaultKind::ALL.to_vec(),
            retry_after_secs: 1,
            stall: Duration::from_secs(5),
            max_in_a_row: None,
        }
    }

    /// The same plan choosing only among `kinds`.
    pub fn kinds(mut self, kinds: &[FaultKind]) -> FaultPlan {
        self.kinds = kinds.to_vec();
        self
    }

    /// The same plan with stalls of `stall`.
    pub fn stall(mut self, stall: Duration) -> FaultPlan {
        self.stall = stall;
        self
    }

    /// The same plan letting at most `count` faults in a row hit one key.
    pub fn max_in_a_row(mut self, count: u32) -> FaultPlan {
        self.max_in_a_row = Some(count);
        self
    }

    /// The fault for the `nth` request (from 0) with this `key`, if any.
    pub fn decide(&self, key: &str, nth: u32) -> Option<FaultKind> {
        let Some(cap) = self.max_in_a_row else {
            return self.roll(key, nth);
        };
        // Replay the key's history: a run of `cap` faults forces the next try through.
        let mut in_a_row = 0u32;
        let mut decision = None;
        for n in 0..=nth {
            decision = if in_a_row >= cap {
                None
            } else {
                self.roll(key, n)
            };
            in_a_row = if decision.is_some() { in_a_row + 1 } else { 0 };
        }
        decision
    }

    /// The dice alone for (`key`, `nth`).
    fn roll(&self, key: &str, nth: u32) -> Option<FaultKind> {
        if self.kinds.is_empty() || self.rate <= 0.0 {
            return None;
        }
        let mut state = self.seed ^ fnv1a(key.as_bytes()) ^ u64::from(nth).wrapping_mul(GOLDEN);
        let dice = splitmix64(&mut state);
        let unit = (dice >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= self.rate {
            return None;
        }
        let pick = splitmix64(&mut state) % self.kinds.len() as u64;
        Some(self.kinds[pick as usize])
    }
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a, to turn a key into a number (stable across runs, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One step of SplitMix64: a good-enough mixer for dice.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults_and_the_rate_holds() {
        let plan = FaultPlan::new(7, 0.25);
        let decisions = |plan: &FaultPlan| -> Vec<Option<FaultKind>> {
            (0..4000)
                .map(|i| plan.decide(&format!("GET /v2/x/manifests/{i}"), 0))
                .collect()
        };
        assert_eq!(decisions(&plan), decisions(&FaultPlan::new(7, 0.25)));
        assert_ne!(decisions(&plan), decisions(&FaultPlan::new(8, 0.25)));

        let faulted = decisions(&plan).iter().filter(|d| d.is_some()).count();
        assert!((800..1200).contains(&faulted), "{faulted} of 4000");
        for kind in FaultKind::ALL {
            assert!(
                decisions(&plan).contains(&Some(kind)),
                "{kind:?} never chosen"
            );
        }
    }

    #[test]
    fn a_cap_lets_the_next_try_through() {
        let plan = FaultPlan::new(1, 1.0).max_in_a_row(2);
        let tries: Vec<bool> = (0..6).map(|n| plan.decide("GET /", n).is_some()).collect();
        assert_eq!(tries, [true, true, false, true, true, false]);
        assert_eq!(FaultPlan::new(1, 0.0).decide("GET /", 0), None);
    }
}
