//! A client-side `text/event-stream` parser following the WHATWG HTML rules ("Interpreting an
//! event stream"): lines end in CRLF, LF or CR (also when split across chunks), `:` starts a
//! comment, `field: value` loses one leading space, `data` lines are joined with LF, `id`
//! persists across events (and is ignored when it contains NUL), `retry` takes only digits, and
//! a blank line dispatches the event unless its data is empty. An unfinished event at the end
//! of the stream is discarded.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` type, `message` when none was given.
    pub event: String,
    /// The data lines joined with `\n`.
    pub data: String,
    /// The last event id in force when the event was dispatched (empty when none was ever
    /// set), as `EventSource.lastEventId` reports it.
    pub last_event_id: String,
    /// Whether this very event carried an `id:` field.
    pub had_id: bool,
}

/// What the parser produced from a chunk, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An event was dispatched.
    Event(Event),
    /// A comment line (its text after the `:`), such as a keep-alive.
    Comment(String),
    /// A valid `retry:` field set the reconnection time (milliseconds).
    Retry(u64),
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in CR, so a leading LF of the next chunk belongs to it.
    after_cr: bool,
    /// Whether the first line was completed (the only place a byte-order mark is dropped).
    started: bool,
    data: String,
    has_data: bool,
    event: String,
    id_in_event: bool,
    last_event_id: String,
}

impl Parser {
    /// Feeds the next chunk of the body; returns what it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut items);
                }
                b'\n' => self.end_line(&mut items),
                other => self.line.push(other),
            }
        }
        items
    }

    fn end_line(&mut self, items: &mut Vec<Item>) {
        let mut bytes = std::mem::take(&mut self.line);
        if !std::mem::replace(&mut self.started, true) && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        let line = String::from_utf8_lossy(&bytes).into_owned();
        if line.is_empty() {
            self.dispatch(items);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            items.push(Item::Comment(comment.to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_event_id = value.to_owned();
                self.id_in_event = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    items.push(Item::Retry(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, items: &mut Vec<Item>) {
        let had_id = std::mem::take(&mut self.id_in_event);
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        items.push(Item::Event(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            last_event_id: self.last_event_id.clone(),
            had_id,
        }));
    }
}
