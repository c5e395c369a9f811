//! Statistics on their own: the two-sided Mann-Whitney U test (exact
//! distribution for small samples, the normal approximation beyond, as
//! benchstat does) and Holm's step-down correction for several tests at
//! once. Used by the report's "vs baseline" cells and by `compare`'s gate.

/// Two-sided p-value of the Mann-Whitney U test for samples `a` and `b`.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    // U for `a`: pairs where a wins, ties counting one half (doubled to stay
    // in integers).
    let u2: usize = a
        .iter()
        .map(|x| {
            b.iter()
                .map(|y| {
                    if x > y {
                        2
                    } else if x == y {
                        1
                    } else {
                        0
                    }
                })
                .sum::<usize>()
        })
        .sum();
    let u = u2 as f64 / 2.0;
    let mean = (n1 * n2) as f64 / 2.0;
    if n1 * n2 <= 400 {
        // Exact distribution of U without ties: count rank arrangements by
        // the number of wins (dynamic programming over (i, j) -> counts).
        let max_u = n1 * n2;
        let mut dp = vec![vec![vec![0f64; max_u + 1]; n2 + 1]; n1 + 1];
        for row in &mut dp[0] {
            row[0] = 1.0;
        }
        for i in 1..=n1 {
            dp[i][0][0] = 1.0;
            for j in 1..=n2 {
                for k in 0..=i * j {
                    // The largest value is from `a` (it beats all j of `b`)
                    // or from `b`.
                    let from_a = if k >= j { dp[i - 1][j][k - j] } else { 0.0 };
                    dp[i][j][k] = from_a + dp[i][j - 1][k];
                }
            }
        }
        let total: f64 = dp[n1][n2].iter().sum();
        let extreme = (u - mean).abs();
        let p: f64 = dp[n1][n2]
            .iter()
            .enumerate()
            .filter(|(k, _)| (*k as f64 - mean).abs() >= extreme - 1e-9)
            .map(|(_, c)| c)
            .sum::<f64>()
            / total;
        return p.min(1.0);
    }
    let sd = ((n1 * n2 * (n1 + n2 + 1)) as f64 / 12.0).sqrt();
    let z = ((u - mean).abs() - 0.5).max(0.0) / sd;
    (2.0 * normal_tail(z)).min(1.0)
}

/// P(Z > z) for the standard normal (Abramowitz and Stegun 7.1.26).
fn normal_tail(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * z / std::f64::consts::SQRT_2);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-(z * z) / 2.0).exp()
}

/// Holm's step-down correction (Holm 1979) over `p` values at family
/// level `alpha`: the i-th smallest p-value is compared with
/// `alpha / (m - i)`, and the tests reject in order until the first that
/// fails. Returns, per test in the order given, whether it rejects and the
/// level it was compared with.
///
/// Without it, eight tests at level 0.05 would raise a false alarm about one
/// comparison in five.
pub fn holm(p: &[f64], alpha: f64) -> Vec<(bool, f64)> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&x, &y| p[x].total_cmp(&p[y]));
    let m = p.len();
    let mut out = vec![(false, alpha); m];
    let mut still_rejecting = true;
    for (rank, &i) in order.iter().enumerate() {
        let level = alpha / (m - rank) as f64;
        still_rejecting &= p[i] < level;
        out[i] = (still_rejecting, level);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_separated_samples_of_five_are_significant() {
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        // The exact two-sided p for complete separation of 5 vs 5: 2/252.
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn interleaved_samples_are_not_significant() {
        let p = mann_whitney_p(&[1.0, 3.0, 5.0, 7.0, 9.0], &[2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!(p > 0.5, "{p}");
    }

    #[test]
    fn large_samples_use_the_normal_approximation() {
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = (0..30).map(|x| f64::from(x) + 100.0).collect();
        assert!(mann_whitney_p(&a, &b) < 1e-6);
        assert!(mann_whitney_p(&a, &a) > 0.9);
    }

    /// Holm's step-down: the smallest p against alpha/3, the next against
    /// alpha/2, and nothing after the first that fails.
    #[test]
    fn holm_rejects_in_order_until_the_first_failure() {
        let r = holm(&[0.04, 0.001, 0.02], 0.05);
        assert_eq!(r[1], (true, 0.05 / 3.0));
        assert_eq!(r[2], (true, 0.05 / 2.0));
        assert_eq!(r[0], (true, 0.05));
        let r = holm(&[0.03, 0.001, 0.02], 0.05);
        assert_eq!((r[1].0, r[2].0, r[0].0), (true, true, true));
        let r = holm(&[0.001, 0.04, 0.03], 0.05);
        assert_eq!((r[0].0, r[2].0, r[1].0), (true, false, false), "0.03 > 0.05/2 stops the rest");
    }
}
