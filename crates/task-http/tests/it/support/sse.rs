//! A reader for `text/event-stream` answers, following the WHATWG parsing rules closely enough
//! for tests: lines end in `\n`, `\r\n` or `\r`; `:` starts a comment; a blank line dispatches
//! the event; `data:` lines are joined with `\n`.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

/// One thing read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A dispatched message.
    Event {
        /// Its `id:` if it had one.
        id: Option<String>,
        /// Its data lines joined with `\n`.
        data: String,
    },
    /// A `retry:` field (milliseconds).
    Retry(u64),
    /// A comment line (keep-alive).
    Comment,
}

impl Item {
    /// The data as JSON, for events.
    pub fn json(&self) -> Value {
        match self {
            Item::Event { data, .. } => serde_json::from_str(data).unwrap(),
            other => panic!("not an event: {other:?}"),
        }
    }
}

/// An open event stream.
pub struct SseStream {
    /// The answer's status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    body: Incoming,
    buffer: BytesMut,
    id: Option<String>,
    data: Vec<String>,
    ended: bool,
}

impl SseStream {
    /// Wraps an answer.
    pub fn new(response: http::Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
            buffer: BytesMut::new(),
            id: None,
            data: Vec::new(),
            ended: false,
        }
    }

    /// The next item, or `None` when the server closed the stream. Fails the test if nothing
    /// arrives within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Item> {
        tokio::time::timeout(timeout, self.next())
            .await
            .expect("no event arrived in time")
    }

    /// The next event (skipping `retry:` and comments) within `timeout`, or `None` at the end.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Item> {
        loop {
            match self.next_within(timeout).await? {
                event @ Item::Event { .. } => return Some(event),
                _ => continue,
            }
        }
    }

    /// Reads events until the stream ends, failing the test if it takes longer than `timeout`.
    pub async fn collect_events(&mut self, timeout: Duration) -> Vec<Item> {
        let mut events = Vec::new();
        tokio::time::timeout(timeout, async {
            while let Some(item) = self.next().await {
                if matches!(item, Item::Event { .. }) {
                    events.push(item);
                }
            }
        })
        .await
        .expect("the stream did not end in time");
        events
    }

    async fn next(&mut self) -> Option<Item> {
        loop {
            while let Some(line) = self.take_line() {
                if let Some(item) = self.field(&line) {
                    return Some(item);
                }
            }
            if self.ended {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let end = self
            .buffer
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')?;
        // A `\r` at the very end may be the first half of `\r\n`; wait for more unless ended.
        if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() && !self.ended {
            return None;
        }
        let line = String::from_utf8(self.buffer[..end].to_vec()).unwrap();
        let skip = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        self.buffer.advance(end + skip);
        Some(line)
    }

    fn field(&mut self, line: &str) -> Option<Item> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.id = None;
                return None;
            }
            let data = std::mem::take(&mut self.data).join("\n");
            return Some(Item::Event {
                id: self.id.take(),
                data,
            });
        }
        if line.starts_with(':') {
            return Some(Item::Comment);
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "data" => self.data.push(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "retry" => return value.parse().ok().map(Item::Retry),
            _ => {}
        }
        None
    }
}
