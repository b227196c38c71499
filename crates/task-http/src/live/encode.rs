//! The `text/event-stream` wire format: how events, the reconnection delay and keep-alive
//! comments are written, following the WHATWG HTML "server-sent events" rules.
//!
//! Why hand-written: the format is a few lines of rules, and the encoder has to produce each
//! frame as one `Bytes` chunk that the direct live-stream path (`connection/direct.rs`) writes
//! straight to the socket and the hub can share between subscribers; the SSE helpers of web
//! frameworks (axum's `Sse`) come with their framework's body and stream types, which the direct
//! path avoids for its memory budget (`docs/benchmarks.md`, "HTTP and SSE").

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

/// A keep-alive: one comment line (`:`) and the blank line that closes the block. Clients ignore
/// it; proxies and browsers see traffic and keep the connection open.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// Appends the `retry:` field that tells the client how long to wait before reconnecting. A
/// block holding only `retry` dispatches no event.
pub fn write_retry(out: &mut Vec<u8>, retry: Duration) {
    out.extend_from_slice(b"retry: ");
    out.extend_from_slice(retry.as_millis().to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends one unnamed message (no `event:` line, so browsers deliver it to `onmessage`): an
/// optional `id:` line, then `data` split into one `data:` line per line of text, then the
/// blank line that dispatches it. Splitting on every line break (`\r\n`, `\n`, `\r`) is what
/// makes the client's reassembly (join with `\n`) give back the exact text.
pub fn write_event(out: &mut Vec<u8>, id: Option<i64>, data: &str) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.to_string().as_bytes());
        out.push(b'\n');
    }
    for line in lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Serialises `event` as JSON and appends it with [`write_event`].
///
/// # Errors
/// Only if `event` cannot be represented as JSON (a map with non-string keys), which none of
/// the live events can; callers log it and skip the event.
pub fn write_json_event<T: Serialize>(
    out: &mut Vec<u8>,
    id: Option<i64>,
    event: &T,
) -> Result<(), serde_json::Error> {
    let data = serde_json::to_string(event)?;
    write_event(out, id, &data);
    Ok(())
}

/// A finished buffer as a frame payload.
pub fn freeze(out: Vec<u8>) -> Bytes {
    Bytes::from(out)
}

/// The events of an encoded frame, as `(id, data)` pairs sharing the frame's memory: what the
/// WebSocket transport sends, so a change is encoded once for both transports. Every live
/// event is one line of compact JSON, so each `data` is one `data:` line; comments and the
/// `retry:` field dispatch nothing and are skipped.
pub fn events_of(frame: &Bytes) -> Vec<(Option<i64>, Bytes)> {
    let mut events = Vec::with_capacity(2);
    let mut id = None;
    let mut at = 0;
    for line in frame.split(|byte| *byte == b'\n') {
        let start = at;
        at += line.len() + 1;
        if let Some(value) = line.strip_prefix(b"id: ") {
            id = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if line.starts_with(b"data: ") {
            events.push((id.take(), frame.slice(start + 6..start + line.len())));
        }
    }
    events
}

/// The lines of `text` as an event stream parser would see them: split on `\r\n`, `\n` or a
/// lone `\r`, keeping empty lines (including a trailing one after a final line break).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(current)
            }
            Some(at) => {
                let after = if current[at..].starts_with("\r\n") {
                    at + 2
                } else {
                    at + 1
                };
                rest = Some(&current[after..]);
                Some(&current[..at])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: Option<i64>, data: &str, expected: &str) {
        let mut out = Vec::new();
        write_event(&mut out, id, data);
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{data:?}");
    }

    #[test]
    fn events_are_unnamed_with_one_data_line_per_line() {
        check(
            Some(3),
            r#"{"type":"update"}"#,
            "id: 3\ndata: {\"type\":\"update\"}\n\n",
        );
        check(None, "plain", "data: plain\n\n");
        check(None, "", "data: \n\n");
        check(None, "a\nb", "data: a\ndata: b\n\n");
        check(None, "a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n");
        check(None, "a\n", "data: a\ndata: \n\n");
        check(None, "\n\n", "data: \ndata: \ndata: \n\n");
        check(Some(-1), "x", "id: -1\ndata: x\n\n");
    }

    #[test]
    fn events_of_gives_back_each_data_line_with_its_id() {
        let mut out = Vec::new();
        write_retry(&mut out, Duration::from_secs(1));
        write_event(&mut out, Some(4), r#"{"type":"update"}"#);
        write_event(&mut out, Some(4), r#"{"type":"error","error":"a\nb"}"#);
        out.extend_from_slice(KEEP_ALIVE);
        write_event(&mut out, None, r#"{"type":"resync"}"#);
        let events = events_of(&freeze(out));
        let as_text: Vec<(Option<i64>, &str)> = events
            .iter()
            .map(|(id, data)| (*id, std::str::from_utf8(data).unwrap()))
            .collect();
        assert_eq!(
            as_text,
            [
                (Some(4), r#"{"type":"update"}"#),
                (Some(4), r#"{"type":"error","error":"a\nb"}"#),
                (None, r#"{"type":"resync"}"#),
            ]
        );
    }

    #[test]
    fn retry_is_in_milliseconds_and_dispatches_nothing() {
        let mut out = Vec::new();
        write_retry(&mut out, Duration::from_secs(3));
        assert_eq!(out, b"retry: 3000\n\n");
    }

    #[test]
    fn json_events_serialise_compactly() {
        let mut out = Vec::new();
        write_json_event(&mut out, Some(7), &serde_json::json!({"type":"resync"})).unwrap();
        assert_eq!(
            freeze(out),
            Bytes::from_static(b"id: 7\ndata: {\"type\":\"resync\"}\n\n")
        );
    }
}
