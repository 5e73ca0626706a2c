//! Round-trip time estimation and retransmission timeout, per RFC 6298.

/// RFC 6298 estimator in integer microseconds: SRTT and RTTVAR with α = 1/8, β = 1/4,
/// RTO = SRTT + max(G, 4·RTTVAR) clamped to `[min, max]`, doubled on each timeout
/// (exponential backoff, capped at `max`) until the next sample.
///
/// Callers apply Karn's rule: only frames transmitted once give samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    srtt: u64,
    rttvar: u64,
    rto: u64,
    has_sample: bool,
    initial: u64,
    min: u64,
    max: u64,
}

/// Clock granularity G of RFC 6298, µs (our clocks tick in microseconds).
pub const GRANULARITY_US: u64 = 1;

impl RttEstimator {
    /// A fresh estimator: RTO = `initial_us` until the first sample.
    pub fn new(initial_us: u64, min_us: u64, max_us: u64) -> Self {
        let max = max_us.max(min_us).max(1);
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            rto: initial_us.clamp(min_us, max),
            has_sample: false,
            initial: initial_us,
            min: min_us,
            max,
        }
    }

    /// Forgets every sample (a new incarnation of the peer).
    pub fn reset(&mut self) {
        *self = RttEstimator::new(self.initial, self.min, self.max);
    }

    /// Feeds one round-trip measurement `r_us` (RFC 6298 §2.2 and §2.3); recomputes the
    /// RTO, which also ends any backoff.
    pub fn on_sample(&mut self, r_us: u64) {
        if self.has_sample {
            let diff = self.srtt.abs_diff(r_us);
            self.rttvar = (3 * self.rttvar + diff) / 4;
            self.srtt = (7 * self.srtt + r_us) / 8;
        } else {
            self.srtt = r_us;
            self.rttvar = r_us / 2;
            self.has_sample = true;
        }
        let rto = self
            .srtt
            .saturating_add(GRANULARITY_US.max(self.rttvar.saturating_mul(4)));
        self.rto = rto.clamp(self.min, self.max);
    }

    /// The retransmission timer expired: double the RTO, up to the maximum (§5.5).
    pub fn backoff(&mut self) {
        self.rto = self.rto.saturating_mul(2).clamp(self.min, self.max);
    }

    /// Current retransmission timeout, µs.
    pub fn rto(&self) -> u64 {
        self.rto
    }

    /// Smoothed RTT, µs; `None` before the first sample.
    pub fn srtt(&self) -> Option<u64> {
        self.has_sample.then_some(self.srtt)
    }

    /// RTT variation, µs (0 before the first sample).
    pub fn rttvar(&self) -> u64 {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_first_and_later_samples() {
        let mut e = RttEstimator::new(1_000_000, 1, 60_000_000);
        assert_eq!(e.rto(), 1_000_000);
        assert_eq!(e.srtt(), None);
        // First sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR.
        e.on_sample(100_000);
        assert_eq!(e.srtt(), Some(100_000));
        assert_eq!(e.rttvar(), 50_000);
        assert_eq!(e.rto(), 300_000);
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
        e.on_sample(200_000);
        assert_eq!(e.rttvar(), 62_500);
        assert_eq!(e.srtt(), Some(112_500));
        assert_eq!(e.rto(), 112_500 + 250_000);
    }

    #[test]
    fn granularity_and_bounds() {
        let mut e = RttEstimator::new(1_000, 1, 10_000);
        for _ in 0..100 {
            e.on_sample(500);
        }
        // RTTVAR decays to 0: RTO = SRTT + G.
        assert_eq!(e.rttvar(), 0);
        assert_eq!(e.rto(), 500 + GRANULARITY_US);
        let mut e = RttEstimator::new(1_000, 2_000, 10_000);
        assert_eq!(e.rto(), 2_000, "initial clamped to min");
        e.on_sample(10);
        assert_eq!(e.rto(), 2_000, "min RTO");
        e.on_sample(1_000_000);
        assert_eq!(e.rto(), 10_000, "max RTO");
    }

    #[test]
    fn backoff_doubles_up_to_max_and_sample_ends_it() {
        let mut e = RttEstimator::new(200, 100, 1_000);
        e.backoff();
        assert_eq!(e.rto(), 400);
        e.backoff();
        e.backoff();
        assert_eq!(e.rto(), 1_000);
        e.on_sample(100);
        assert_eq!(e.rto(), 300);
        e.reset();
        assert_eq!(e.rto(), 200);
        assert_eq!(e.srtt(), None);
    }
}
