//! The one rule for printing figures, in every table, report and
//! comparison: exact quantities (counts, bytes, calls) in full; measured or
//! derived ones (per-message ratios, times, rates, percentages) to three
//! significant figures, in plain decimals, trailing zeros dropped. Times
//! carry their unit (ns, µs, ms, s), rates an SI prefix (k, M), so that a
//! column never mixes `120.00`, `0.00` and `2.5e-4`, and a latency does not
//! print more digits than hdrhistogram's three-significant-digit buckets
//! hold.

/// Significant figures of every measured figure.
pub const SIG: i32 = 3;

/// `x` rounded to [`SIG`] significant figures.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(SIG - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// `x` to [`SIG`] significant figures: `120`, `4`, `67.6`, `0.00025`,
/// `1150000`. Non-finite values print as `-`.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let rounded = round_sig(x);
    let decimals = (SIG - 1 - rounded.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{rounded:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A time in nanoseconds with its unit: `67.6 ns`, `1.15 ms`. The unit is
/// chosen after rounding, so 999.7 ns reads `1 µs`, not `1000 ns`.
pub fn time(ns: f64) -> String {
    let rounded = round_sig(ns);
    let (scale, unit) = match rounded.abs() {
        n if n < 1e3 => (1.0, "ns"),
        n if n < 1e6 => (1e3, "µs"),
        n if n < 1e9 => (1e6, "ms"),
        _ => (1e9, "s"),
    };
    format!("{} {unit}", sig(rounded / scale))
}

/// A rate with an SI prefix: `14.8 M`, `950 k`.
pub fn rate(x: f64) -> String {
    match x.abs() {
        v if v >= 1e6 => format!("{} M", sig(x / 1e6)),
        v if v >= 1e3 => format!("{} k", sig(x / 1e3)),
        _ => sig(x),
    }
}

/// A relative change in percent: `+25%`, `-14.3%`, `+Inf%` from zero,
/// `0%` when equal.
pub fn change(old: f64, new: f64) -> String {
    if old == new {
        return "0%".into();
    }
    if old == 0.0 {
        return if new > 0.0 { "+Inf%".into() } else { "-Inf%".into() };
    }
    let pct = (new / old - 1.0) * 100.0;
    let sign = if pct > 0.0 { "+" } else { "-" };
    // Three significant figures, but no finer than a hundredth of a
    // percent: a change of 0.0000286 % is noise in the last digit of an
    // exact figure, and its digits would only widen the column.
    if pct.abs() < 0.01 {
        return format!("{sign}<0.01%");
    }
    let shown = if pct.abs() < 1.0 { format!("{:.2}", pct.abs()) } else { sig(pct.abs()) };
    let shown = if shown.contains('.') { shown.trim_end_matches('0').trim_end_matches('.').to_owned() } else { shown };
    format!("{sign}{shown}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_figures_in_plain_decimals() {
        let cases = [
            (120.0, "120"),
            (4.0, "4"),
            (67.63, "67.6"),
            (0.000_245, "0.000245"),
            (2.9e-4, "0.00029"),
            (3.4e-6, "0.0000034"),
            (1_146_879.0, "1150000"),
            (0.0, "0"),
            (-14.29, "-14.3"),
            (99.96, "100"),
            (f64::NAN, "-"),
        ];
        for (x, s) in cases {
            assert_eq!(sig(x), s, "{x}");
        }
    }

    #[test]
    fn times_carry_their_unit_and_rates_their_prefix() {
        assert_eq!(time(67.6), "67.6 ns");
        assert_eq!(time(1_146_879.0), "1.15 ms");
        assert_eq!(time(246_783.0), "247 µs");
        assert_eq!(time(999.7), "1 µs");
        assert_eq!(time(2.5e9), "2.5 s");
        assert_eq!(rate(14_780_000.0), "14.8 M");
        assert_eq!(rate(950_400.0), "950 k");
    }

    #[test]
    fn changes_from_zero_are_infinite_and_equal_figures_do_not_change() {
        assert_eq!(change(0.0, 4.0), "+Inf%");
        assert_eq!(change(0.0, 0.0), "0%");
        assert_eq!(change(2.9e-4, 2.5e-4), "-13.8%");
        assert_eq!(change(100.0, 125.0), "+25%");
        assert_eq!(change(4.0, 4.000_001_144), "+<0.01%");
        assert_eq!(change(4.0, 3.998), "-0.05%");
        assert_eq!(change(100.0, 100.5), "+0.5%");
        assert_eq!(change(1.0, 0.5), "-50%");
    }
}
