//! Cross-site request forgery defence for cookie-authenticated requests: a state-changing
//! request must carry an `Origin` naming this very host. Browsers always send `Origin` on
//! cross-site and same-site POSTs, and a foreign page cannot forge it.

use http::header::{HOST, ORIGIN};
use http::HeaderMap;

use crate::ApiError;

/// Passes when `Origin` is present and its host (and port) equal the `Host` header.
///
/// # Errors
/// 403 when `Origin` is missing, `null`, or names another host.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = || {
        ApiError::forbidden("cross-origin request refused: Origin must match this server's host")
    };
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(forbidden)?;
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(forbidden)?;
    if origin_matches_host(origin, host) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Passes when `Origin` is absent or matches `Host`. For `POST /api/login`, which takes a token
/// in its body: clients without a browser send no `Origin`, but a foreign page must not be able
/// to log a visitor into someone else's account.
///
/// # Errors
/// 403 when `Origin` is present and names another host.
pub fn check_origin_if_present(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(ORIGIN) {
        check_same_origin(headers)
    } else {
        Ok(())
    }
}

/// Compares `scheme://host[:port]` with a `Host` header, treating a scheme's default port as
/// the same as no port.
fn origin_matches_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |s: &str| -> String {
        let lower = s.trim().to_ascii_lowercase();
        lower
            .strip_suffix(default_port)
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(authority) == strip(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check(origin: Option<&'static str>, host: &'static str, ok: bool) {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_static(origin));
        }
        assert_eq!(
            check_same_origin(&headers).is_ok(),
            ok,
            "{origin:?} vs {host}"
        );
    }

    #[test]
    fn origin_must_name_this_host() {
        check(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", true);
        check(Some("http://Example.com"), "example.com:80", true);
        check(Some("https://example.com"), "example.com", true);
        check(Some("http://127.0.0.1:8081"), "127.0.0.1:8080", false);
        check(Some("http://evil.example"), "127.0.0.1:8080", false);
        check(Some("null"), "127.0.0.1:8080", false);
        check(Some("ftp://127.0.0.1:8080"), "127.0.0.1:8080", false);
        check(None, "127.0.0.1:8080", false);
    }

    #[test]
    fn login_allows_clients_without_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("a:1"));
        assert!(check_origin_if_present(&headers).is_ok());
        headers.insert(ORIGIN, HeaderValue::from_static("http://b:1"));
        assert!(check_origin_if_present(&headers).is_err());
    }
}
