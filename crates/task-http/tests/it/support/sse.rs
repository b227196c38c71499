//! An event-stream reader for tests: the answer's status and headers, and its items decoded by
//! the WHATWG-conformant parser in `sse_parser.rs`, with timeouts that fail the test.

use std::collections::VecDeque;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::sse_parser::{self, Parser};

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
    parser: Parser,
    pending: VecDeque<Item>,
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
            parser: Parser::default(),
            pending: VecDeque::new(),
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
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let items = self.parser.feed(&data);
                        self.pending.extend(items.into_iter().map(Item::from));
                    }
                }
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }
}

impl From<sse_parser::Item> for Item {
    fn from(item: sse_parser::Item) -> Self {
        match item {
            sse_parser::Item::Event(event) => Item::Event {
                id: event.had_id.then_some(event.last_event_id),
                data: event.data,
            },
            sse_parser::Item::Comment(_) => Item::Comment,
            sse_parser::Item::Retry(millis) => Item::Retry(millis),
        }
    }
}
