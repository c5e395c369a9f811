//! Go's `net/http/pprof` query parameters, decoded and checked: a
//! profile's (`debug`, `seconds`, `gc`, and allocscope's `symbolize`) and
//! the sampling switch's (`bytes`).

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a profile request asked for (Go's `net/http/pprof` parameters).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProfileQuery {
    /// `debug=1` (or 2): text instead of gzipped protobuf.
    pub(super) text: bool,
    /// `seconds=N`: the difference between a profile now and one N
    /// seconds later.
    pub(super) seconds: Option<u64>,
    /// `symbolize=0`: addresses and mappings only, nothing resolved (for a
    /// tool that holds the binary); `symbolize=1`, the default: resolved.
    pub(super) addresses_only: bool,
}

/// A query's parameters, percent-decoded (`%31` is `1`, `+` a space), as
/// browsers and `go tool pprof` encode them.
pub(super) fn decoded(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Whether `s` is a whole number written in ASCII digits only (no sign, no
/// space), and its value when it fits in a `u64`.
pub(super) fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Parses a profile request's query; `Err` is the one-line answer of a
/// 400 naming the parameter. Other parameters (Go's `gc`) are ignored.
pub(super) fn parse_query(query: Option<&str>) -> Result<ProfileQuery, String> {
    let mut q = ProfileQuery { text: false, seconds: None, addresses_only: false };
    for (name, value) in decoded(query) {
        match name.as_str() {
            "debug" => {
                q.text = match value.as_str() {
                    "0" => false,
                    "1" | "2" => true,
                    _ => return Err(format!("invalid value for \"debug\": {value:?}: must be 0, 1 or 2")),
                }
            }
            "seconds" => match digits(&value) {
                Some(s) if (1..=MAX_SECONDS).contains(&s) => q.seconds = Some(s),
                _ => {
                    return Err(format!(
                        "invalid value for \"seconds\": {value:?}: must be a whole number from 1 to {MAX_SECONDS}"
                    ))
                }
            },
            "symbolize" => {
                q.addresses_only = match value.as_str() {
                    "0" => true,
                    "1" => false,
                    _ => return Err(format!("invalid value for \"symbolize\": {value:?}: must be 0 or 1")),
                }
            }
            _ => {}
        }
    }
    if q.text && q.seconds.is_some() {
        return Err("\"seconds\" and \"debug\" cannot be used together (as in Go's net/http/pprof)".to_owned());
    }
    if q.text && q.addresses_only {
        return Err("\"symbolize=0\" is for the protobuf profile: the text one names its frames".to_owned());
    }
    Ok(q)
}

/// Parses the switch's query: exactly one `bytes=N`, digits only, 0 (off)
/// or from [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`].
pub(super) fn parse_rate(query: Option<&str>) -> Result<u64, String> {
    let mut rate = None;
    for (name, value) in decoded(query) {
        if name != "bytes" {
            return Err(format!("unknown parameter {name:?}: the only one is \"bytes\""));
        }
        if rate.is_some() {
            return Err("\"bytes\" given twice".to_owned());
        }
        rate = Some(match digits(&value) {
            Some(n) if n == 0 || (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&n) => n,
            _ => {
                return Err(format!(
                    "invalid value for \"bytes\": {value:?}: must be 0 (off) or a whole number from \
                     {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} (lower rates only through the Rust API)"
                ))
            }
        });
    }
    rate.ok_or_else(|| "missing parameter \"bytes\" (bytes per sample, 0: off)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_queries_follow_gos_parameters_and_name_a_bad_one() {
        let q = |s: &str| parse_query(Some(s));
        assert_eq!(parse_query(None), Ok(ProfileQuery { text: false, seconds: None, addresses_only: false }));
        assert_eq!(q("debug=1"), Ok(ProfileQuery { text: true, seconds: None, addresses_only: false }));
        assert_eq!(q("seconds=3&gc=1"), Ok(ProfileQuery { text: false, seconds: Some(3), addresses_only: false }));
        assert_eq!(q("seconds=300"), Ok(ProfileQuery { text: false, seconds: Some(300), addresses_only: false }));
        assert_eq!(
            q("seconds=%31"),
            Ok(ProfileQuery { text: false, seconds: Some(1), addresses_only: false }),
            "percent-decoded"
        );
        assert_eq!(
            q("symbolize=0&seconds=2"),
            Ok(ProfileQuery { text: false, seconds: Some(2), addresses_only: true })
        );
        assert_eq!(q("symbolize=1"), Ok(ProfileQuery { text: false, seconds: None, addresses_only: false }));
        assert_eq!(q("symbolize=no"), Err("invalid value for \"symbolize\": \"no\": must be 0 or 1".to_owned()));
        assert!(q("symbolize=0&debug=1").unwrap_err().starts_with("\"symbolize=0\" is for the protobuf profile"));
        for bad in ["seconds=abc", "seconds=0", "seconds=-5", "seconds=301", "seconds=", "seconds=+5", "seconds=%2B5"] {
            let e = q(bad).unwrap_err();
            assert!(e.starts_with("invalid value for \"seconds\""), "{bad}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(q("debug=x").unwrap_err().contains("\"debug\""));
        assert!(q("debug=1&seconds=2").unwrap_err().contains("cannot be used together"));
    }
}
