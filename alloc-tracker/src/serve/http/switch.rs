//! The sampling switch (`GET` and `PUT /debug/pprof/sample_rate`) and
//! the header rules that keep it from a web page (see the threat model in
//! the module docs of [`serve`](crate::serve)).

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn sample_rate() -> String {
    format!("{}\n", crate::profile::process_sample_rate())
}

/// The host part of an authority (`host`, `host:port`, `[v6]:port`).
pub(super) fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether the switch may be used through `authority` (a `Host` header):
/// an IP address, `localhost`, or a name the service allowed. A name that
/// only a web page chose (DNS rebinding) is refused.
pub(super) fn allowed_host(authority: &str, allowed: &[String]) -> bool {
    let host = host_of(authority);
    host.parse::<IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| host_of(a).eq_ignore_ascii_case(host))
}

/// Why a request may not use the switch, or `None`.
pub(super) fn refuse_switch(headers: &HeaderMap, allowed: &[String]) -> Option<String> {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Some("the switch needs a Host header".to_owned());
    };
    if !allowed_host(host, allowed) {
        return Some(format!(
            "Host {host:?} is not this server's: the switch answers an IP address, localhost or a name the \
             service allows (serve::Options::allowed_hosts)"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = ["http://", "https://"].iter().any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !own {
            return Some(format!("Origin {origin:?} is not this server's ({host}): cross-site requests are refused"));
        }
    }
    if headers.get("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none") {
        return Some("a cross-site request (Sec-Fetch-Site) is refused".to_owned());
    }
    None
}

/// `PUT /debug/pprof/sample_rate?bytes=N`: process-wide sampling at one
/// sample per N bytes, or off for 0. PUT, because a web page cannot send
/// it to another site without the CORS preflight this server never grants;
/// and only from this host's own names and origin.
pub(super) async fn set_sample_rate(
    allowed: Arc<[String]>,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    if let Some(why) = refuse_switch(&headers, &allowed) {
        return plain(StatusCode::FORBIDDEN, why + "\n");
    }
    if !body.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "the switch takes no body: the rate is ?bytes=N\n".to_owned());
    }
    let bytes = match parse_rate(query.as_deref()) {
        Ok(bytes) => bytes,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message + "\n"),
    };
    if !crate::is_installed() {
        return plain(StatusCode::CONFLICT, "allocscope's CountingAlloc is not the global allocator\n".to_owned());
    }
    if bytes == 0 {
        crate::profile::stop_process_sampling();
    } else {
        crate::profile::start_process_sampling(bytes);
    }
    plain(StatusCode::OK, format!("{}\n", crate::profile::process_sample_rate()))
}

/// A POST to the switch: refused, because a web page can send one to any
/// site (a "simple" request, no preflight).
pub(super) async fn post_sample_rate() -> Response {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "use PUT /debug/pprof/sample_rate?bytes=N: a POST is a request any web page can send\n".to_owned(),
    );
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD, PUT"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_takes_digits_only_between_its_floor_and_ceiling() {
        let r = |s: &str| parse_rate(Some(s));
        assert_eq!(r("bytes=0"), Ok(0));
        assert_eq!(r("bytes=65536"), Ok(MIN_SAMPLE_RATE));
        assert_eq!(r("bytes=524288"), Ok(512 * 1024));
        assert_eq!(r("bytes=1073741824"), Ok(MAX_SAMPLE_RATE));
        assert_eq!(r("bytes=%36%35%35%33%36"), Ok(MIN_SAMPLE_RATE), "percent-decoded");
        for bad in [
            "bytes=1",
            "bytes=65535",
            "bytes=1073741825",
            "bytes=18446744073709551615",
            "bytes=+65536",
            "bytes=%2B65536",
            "bytes= 65536",
            "bytes=65536x",
            "bytes=",
            "bytes=-0",
        ] {
            let e = r(bad).unwrap_err();
            assert!(e.starts_with("invalid value for \"bytes\""), "{bad}: {e}");
        }
        assert!(parse_rate(None).unwrap_err().contains("missing parameter \"bytes\""));
        assert!(r("bytes=0&bytes=0").unwrap_err().contains("twice"));
        assert!(r("bytes=0&x=1").unwrap_err().contains("unknown parameter \"x\""));
    }

    #[test]
    fn the_switch_answers_only_this_hosts_names_and_origin() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let allowed = ["profiling.internal".to_owned()];
        let refuse = |pairs: &[(&'static str, &str)]| refuse_switch(&headers(pairs), &allowed);
        assert_eq!(refuse(&[("host", "127.0.0.1:6060")]), None);
        assert_eq!(refuse(&[("host", "[::1]:6060"), ("origin", "http://[::1]:6060")]), None);
        assert_eq!(refuse(&[("host", "localhost:6060"), ("origin", "http://localhost:6060")]), None);
        assert_eq!(refuse(&[("host", "profiling.internal:6060")]), None);
        assert!(refuse(&[]).unwrap().contains("needs a Host"));
        assert!(refuse(&[("host", "attacker.example:6060")]).unwrap().contains("is not this server's"));
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("origin", "http://attacker.example")])
            .unwrap()
            .contains("Origin \"http://attacker.example\""));
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("origin", "null")]).is_some());
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("sec-fetch-site", "cross-site")]).is_some());
        assert_eq!(refuse(&[("host", "127.0.0.1:6060"), ("sec-fetch-site", "same-origin")]), None);
    }
}
