//! The opening handshake of RFC 6455 on hyper's request: which headers an upgrade must carry,
//! and the `101 Switching Protocols` answer.

use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::{self, Body};
use crate::ApiError;

/// Checks that `headers` ask for a version-13 WebSocket and returns the client's key.
///
/// # Errors
/// 400 naming what is missing, for a plain `GET` or a malformed upgrade.
pub(crate) fn validate(headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
        return Err(ApiError::bad_request(
            "this endpoint only answers a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::invalid_field(
            "Sec-WebSocket-Version",
            "must be 13",
        ));
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        // A key is 16 random bytes in base64: 24 characters.
        Some(key) if key.len() == 24 => Ok(key.clone()),
        _ => Err(ApiError::invalid_field(
            "Sec-WebSocket-Key",
            "must be 16 bytes in base64",
        )),
    }
}

/// `101 Switching Protocols` for the client's `key`.
pub(crate) fn accept(key: &HeaderValue) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn check(pairs: &[(&'static str, &'static str)], error: Option<&str>) {
        match (validate(&headers(pairs)), error) {
            (Ok(_), None) => {}
            (Err(got), Some(expected)) => {
                assert_eq!(got.status(), 400);
                assert!(got.message().contains(expected), "{}", got.message());
            }
            (got, expected) => panic!("{pairs:?}: {:?}, expected {expected:?}", got.is_ok()),
        }
    }

    #[test]
    fn upgrades_must_be_complete() {
        check(&GOOD, None);
        check(&GOOD[1..], Some("Connection: Upgrade"));
        check(&[GOOD[0], GOOD[2], GOOD[3]], Some("Upgrade: websocket"));
        check(&[GOOD[0], GOOD[1], GOOD[3]], Some("Sec-WebSocket-Version"));
        check(
            &[GOOD[0], GOOD[1], ("sec-websocket-version", "8"), GOOD[3]],
            Some("Sec-WebSocket-Version"),
        );
        check(&GOOD[..3], Some("Sec-WebSocket-Key"));
        check(
            &[GOOD[0], GOOD[1], GOOD[2], ("sec-websocket-key", "short")],
            Some("Sec-WebSocket-Key"),
        );
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        let response = accept(&HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(response.status(), 101);
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
