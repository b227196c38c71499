//! [`LogHistogram`]: durations counted in fixed log-scale buckets, so rollup rows merge by
//! adding counts and any percentile of any merge is answered within a known relative error.
//!
//! Bucket `0` holds exact zeros; bucket `i ≥ 1` holds `[γ^(i-1), γ^i)` milliseconds with
//! `γ = (1 + α) / (1 − α)`. A percentile is reported as the bucket's value `2·lo·hi / (lo + hi)`,
//! which is within `α` ([`RELATIVE_ERROR`]) of every value in the bucket, so within `α` of the
//! true (nearest-rank) percentile. This is DDSketch's mapping without its collapsing: durations
//! are at most days, so a few thousand buckets cover them and none is ever dropped.

use std::collections::BTreeMap;

/// The bound on a reported percentile's relative error: `|reported − true| ≤ 1% · true`.
pub const RELATIVE_ERROR: f64 = 0.01;

/// The highest bucket index; it also holds every longer duration (beyond ~10^17 ms).
const MAX_INDEX: u16 = 2_000;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// The bucket a duration of `millis` falls in (negative durations, from clock steps, count as 0).
pub fn bucket_of(millis: i64) -> u16 {
    if millis <= 0 {
        return 0;
    }
    let index = ((millis as f64).ln() / gamma().ln()).floor() + 1.0;
    if index >= f64::from(MAX_INDEX) {
        MAX_INDEX
    } else {
        index as u16
    }
}

/// The value reported for bucket `index`: within [`RELATIVE_ERROR`] of anything in it.
pub fn bucket_value(index: u16) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let gamma = gamma();
    let low = gamma.powi(i32::from(index) - 1);
    low * 2.0 * gamma / (1.0 + gamma)
}

/// Counts per bucket. Sparse, since one rollup row sees few distinct durations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHistogram {
    counts: BTreeMap<u16, u64>,
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one duration.
    pub fn record(&mut self, millis: i64) {
        *self.counts.entry(bucket_of(millis)).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LogHistogram) {
        for (index, count) in &other.counts {
            *self.counts.entry(*index).or_default() += count;
        }
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The non-empty buckets, lowest first.
    pub fn buckets(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.counts.iter().map(|(i, c)| (*i, *c))
    }

    /// The nearest-rank `quantile` (0 < q ≤ 1): the reported value of the bucket holding the
    /// `⌈q·n⌉`-th smallest duration. `None` when empty.
    pub fn quantile(&self, quantile: f64) -> Option<f64> {
        quantile_of(self.buckets(), self.count(), quantile)
    }

    /// The stored form: per non-empty bucket, the index's distance from the previous one and
    /// the count, each as an unsigned LEB128 varint.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 3);
        let mut previous = 0u64;
        for (index, count) in &self.counts {
            put_varint(&mut out, u64::from(*index) - previous);
            put_varint(&mut out, *count);
            previous = u64::from(*index);
        }
        out
    }

    /// Reads [`LogHistogram::encode`]'s form.
    ///
    /// # Errors
    /// A message when the bytes are truncated or name a bucket out of range.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut histogram = Self::new();
        for_each_encoded(bytes, |index, count| {
            *histogram.counts.entry(index).or_default() += count;
        })?;
        Ok(histogram)
    }
}

/// Calls `add(index, count)` for each bucket of an encoded histogram, without building one: the
/// query path adds thousands of rows into dense arrays this way.
///
/// # Errors
/// A message when the bytes are truncated or name a bucket out of range.
pub fn for_each_encoded(bytes: &[u8], mut add: impl FnMut(u16, u64)) -> Result<(), String> {
    let mut at = 0;
    let mut index = 0u64;
    while at < bytes.len() {
        index += take_varint(bytes, &mut at)?;
        let count = take_varint(bytes, &mut at)?;
        let bucket = u16::try_from(index)
            .ok()
            .filter(|i| *i <= MAX_INDEX)
            .ok_or_else(|| format!("histogram bucket {index} is out of range"))?;
        add(bucket, count);
    }
    Ok(())
}

/// A dense histogram for summing many rows: one slot per bucket up to the highest seen, so an
/// accumulator costs only the range its durations span (a report holds one per bucket and
/// group, thousands for a month by hour).
#[derive(Debug, Clone, Default)]
pub struct DenseHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl DenseHistogram {
    /// Adds `count` durations in bucket `index`.
    pub fn add(&mut self, index: u16, count: u64) {
        let slot = usize::from(index.min(MAX_INDEX));
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += count;
        self.total += count;
    }

    /// Adds an encoded histogram.
    ///
    /// # Errors
    /// As [`for_each_encoded`].
    pub fn add_encoded(&mut self, bytes: &[u8]) -> Result<(), String> {
        for_each_encoded(bytes, |index, count| self.add(index, count))
    }

    /// How many durations were added.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// As [`LogHistogram::quantile`].
    pub fn quantile(&self, quantile: f64) -> Option<f64> {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u16, *c));
        quantile_of(buckets, self.total, quantile)
    }
}

fn quantile_of(
    buckets: impl Iterator<Item = (u16, u64)>,
    total: u64,
    quantile: f64,
) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, count) in buckets {
        seen += count;
        if seen >= rank {
            return Some(bucket_value(index));
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| "histogram bytes end inside a number".to_owned())?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("histogram number is longer than 64 bits".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank percentile of `values`, computed the slow, obvious way.
    fn brute_force(values: &[i64], quantile: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].max(0) as f64
    }

    fn check_within_bound(values: &[i64]) {
        let mut histogram = LogHistogram::new();
        let mut dense = DenseHistogram::default();
        for value in values {
            histogram.record(*value);
        }
        dense.add_encoded(&histogram.encode()).unwrap();
        for quantile in [0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let truth = brute_force(values, quantile);
            for got in [
                histogram.quantile(quantile).unwrap(),
                dense.quantile(quantile).unwrap(),
            ] {
                assert!(
                    (got - truth).abs() <= RELATIVE_ERROR * truth + 1e-9,
                    "q{quantile}: got {got}, truth {truth}"
                );
            }
        }
    }

    #[test]
    fn percentiles_are_within_the_bound_of_brute_force() {
        // A deterministic generator keeps the test reproducible without a dependency.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..50 {
            let len = 1 + (next() % 5_000) as usize;
            let scale = 10i64.pow((round % 8) as u32);
            let values: Vec<i64> = (0..len)
                .map(|_| (next() % 1_000) as i64 * scale / 7 + (next() % 3) as i64)
                .collect();
            check_within_bound(&values);
        }
        check_within_bound(&[0]);
        check_within_bound(&[0, 0, 1, 1, 2, 3]);
        check_within_bound(&[1, 86_400_000, 30 * 86_400_000]);
    }

    #[test]
    fn every_bucket_value_is_within_the_bound_of_its_edges() {
        for index in 1..MAX_INDEX {
            let gamma = gamma();
            let low = gamma.powi(i32::from(index) - 1);
            let high = low * gamma;
            let value = bucket_value(index);
            assert!((value - low) / low <= RELATIVE_ERROR + 1e-12);
            assert!((high - value) / high <= RELATIVE_ERROR + 1e-12);
        }
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_everything() {
        let (mut left, mut right, mut all) = (
            LogHistogram::new(),
            LogHistogram::new(),
            LogHistogram::new(),
        );
        for value in 0..2_000 {
            let target = if value % 3 == 0 {
                &mut left
            } else {
                &mut right
            };
            target.record(value * 37);
            all.record(value * 37);
        }
        left.merge(&right);
        assert_eq!(left, all);
        assert_eq!(LogHistogram::decode(&all.encode()).unwrap(), all);
    }

    #[test]
    fn damaged_bytes_are_refused() {
        assert!(LogHistogram::decode(&[0x80]).is_err());
        assert!(LogHistogram::decode(&[0xff, 0x7f, 1]).is_err());
        assert_eq!(LogHistogram::new().quantile(0.5), None);
    }
}
