//! Fixed log-scale latency histogram shared by the projections (which store
//! bucket counts) and the query API (which merges them and reads percentiles).
//!
//! Bucket 0 holds latencies below 1 ms; bucket `i` (1..=BUCKETS-2) holds
//! `[2^((i-1)/4), 2^(i/4))` ms, about 19% wide; the last bucket is overflow
//! (≥ 2^((BUCKETS-2)/4) ms, about 14.6 minutes). Percentiles are reported as
//! the geometric middle of their bucket, so the relative error is below 10%.

pub const BUCKETS: usize = 80;
const STEPS_PER_DOUBLING: f64 = 4.0;

/// The bucket a latency falls into.
pub fn bucket_of(latency_ms: i64) -> usize {
    if latency_ms < 1 {
        return 0;
    }
    let i = 1 + ((latency_ms as f64).log2() * STEPS_PER_DOUBLING).floor() as usize;
    i.min(BUCKETS - 1)
}

/// Lower and upper bound (ms) of a bucket.
pub fn bounds(bucket: usize) -> (f64, f64) {
    if bucket == 0 {
        return (0.0, 1.0);
    }
    let lo = 2f64.powf((bucket - 1) as f64 / STEPS_PER_DOUBLING);
    let hi = 2f64.powf(bucket as f64 / STEPS_PER_DOUBLING);
    (lo, hi)
}

/// Representative value of a bucket (geometric middle; 0.5 for bucket 0).
pub fn representative(bucket: usize) -> f64 {
    if bucket == 0 {
        return 0.5;
    }
    let (lo, hi) = bounds(bucket);
    (lo * hi).sqrt()
}

/// Add `other` into `into` bucket by bucket (both resized to BUCKETS).
pub fn merge(into: &mut Vec<i64>, other: &[i64]) {
    into.resize(BUCKETS, 0);
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

/// The `q` quantile (0..=1) of a histogram, or None when it is empty.
pub fn quantile(hist: &[i64], q: f64) -> Option<f64> {
    let total: i64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    // Rank of the q-quantile, 1-based, nearest-rank definition.
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (i, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(representative(i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(i64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in 0..100_000 {
            let b = bucket_of(v);
            assert!(b >= last);
            last = b;
        }
    }

    proptest! {
        #[test]
        fn value_lies_within_its_bucket(v in 1i64..800_000) {
            let b = bucket_of(v);
            let (lo, hi) = bounds(b);
            prop_assert!(lo <= v as f64 && (v as f64) < hi, "{v} not in [{lo},{hi}) bucket {b}");
        }

        #[test]
        fn quantile_of_merged_equals_quantile_of_all(a in proptest::collection::vec(1i64..100_000, 1..200),
                                                     b in proptest::collection::vec(1i64..100_000, 1..200),
                                                     q in 0.01f64..0.99) {
            let mut ha = vec![0i64; BUCKETS];
            let mut hb = vec![0i64; BUCKETS];
            let mut hall = vec![0i64; BUCKETS];
            for v in &a { ha[bucket_of(*v)] += 1; hall[bucket_of(*v)] += 1; }
            for v in &b { hb[bucket_of(*v)] += 1; hall[bucket_of(*v)] += 1; }
            merge(&mut ha, &hb);
            prop_assert_eq!(quantile(&ha, q), quantile(&hall, q));
            // And the estimate is within one bucket (< 19%) of the exact nearest-rank value.
            let mut all: Vec<i64> = a.iter().chain(b.iter()).copied().collect();
            all.sort_unstable();
            let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
            let exact = all[rank - 1] as f64;
            let est = quantile(&hall, q).unwrap();
            prop_assert!((est / exact - 1.0).abs() < 0.2, "est {est} exact {exact}");
        }
    }
}
