//! The browser session cookie: how it is written (HttpOnly, SameSite=Strict, Path=/) and read.

use std::time::Duration;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

/// The cookie's name.
pub const COOKIE_NAME: &str = "tasklane_session";

/// The `Set-Cookie` value that stores `secret` for `ttl`. HttpOnly keeps it from scripts,
/// SameSite=Strict keeps browsers from sending it on cross-site requests.
pub fn set_cookie(secret: &str, ttl: Duration, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        ttl.as_secs()
    ))
    .ok()
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "tasklane_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("tasklane_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }
}

/// The session secret from the request's `Cookie` headers, if any.
pub fn read_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip() {
        let set = set_cookie("tlsess_abc", Duration::from_secs(60), false).unwrap();
        assert_eq!(
            set,
            "tasklane_session=tlsess_abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=b; tasklane_session=tlsess_abc"),
        );
        assert_eq!(read_cookie(&headers), Some("tlsess_abc"));
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("tasklane_session="));
        assert_eq!(read_cookie(&empty), None);
        assert!(set_cookie("x", Duration::from_secs(1), true)
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }
}
