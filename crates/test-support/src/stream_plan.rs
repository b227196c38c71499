//! How the fake streams an answer when tasklane asks for a stream, and the faults it can play.

use std::time::Duration;

use serde_json::Value;

/// A streamed answer: the model "writes" `answer` in the provider's streaming wire format.
///
/// An answer of the form `{"<name>": [items]}` (a quiz answer) is written item by item, each item
/// in a few pieces, waiting `pace` before each item; any other answer is written in pieces of a
/// few characters.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    /// The JSON the model writes.
    pub answer: Value,
    /// The wait before each item of the answer's array. Defaults to zero.
    pub pace: Duration,
    /// What goes wrong, if anything. Defaults to nothing.
    pub fault: Option<StreamFault>,
    /// Whether to put what the SSE format says a client must skip between the events (comments,
    /// unknown fields, `retry:` lines, stray blank lines) and to cut the bytes into five-byte
    /// network writes, splitting multi-byte UTF-8 characters. Defaults to `false`.
    pub garbage: bool,
}

/// A fault in the middle of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// The connection is closed (no end marker, no final chunk) halfway through the item at this
    /// zero-based position: the items before it are complete.
    CutInItem(usize),
    /// The stream stops sending halfway through the item at this position and keeps the
    /// connection open until the client gives up.
    StallInItem(usize),
}

impl StreamPlan {
    /// `answer`, streamed without pauses or faults.
    pub fn new(answer: Value) -> Self {
        StreamPlan {
            answer,
            pace: Duration::ZERO,
            fault: None,
            garbage: false,
        }
    }

    /// Waits `pace` before each item.
    pub fn pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    /// Closes the connection halfway through item `index`.
    pub fn cut_in_item(mut self, index: usize) -> Self {
        self.fault = Some(StreamFault::CutInItem(index));
        self
    }

    /// Stalls halfway through item `index`.
    pub fn stall_in_item(mut self, index: usize) -> Self {
        self.fault = Some(StreamFault::StallInItem(index));
        self
    }

    /// Adds skippable garbage between events and splits writes into five-byte pieces.
    pub fn with_garbage(mut self) -> Self {
        self.garbage = true;
        self
    }
}

/// One piece of the answer's text and whether it completes an item of the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) text: String,
    /// The zero-based item this piece belongs to, `None` for the text around the array.
    pub(crate) item: Option<usize>,
    /// Whether this is the item's second half (where a cut or stall happens before).
    pub(crate) second_half: bool,
}

/// How many pieces one item is written in.
const PIECES_PER_ITEM: usize = 4;
/// Characters per piece of an answer that is not a single array.
const PLAIN_PIECE_CHARS: usize = 16;

/// The answer's text cut into pieces; concatenated they are `answer.to_string()` for an
/// array answer (the same serialisation, assembled around the items).
pub(crate) fn pieces(answer: &Value) -> Vec<Piece> {
    let single_array = answer
        .as_object()
        .filter(|object| object.len() == 1)
        .and_then(|object| object.iter().next())
        .and_then(|(key, value)| value.as_array().map(|items| (key, items)));
    let Some((key, items)) = single_array else {
        return split(&answer.to_string(), PLAIN_PIECE_CHARS)
            .into_iter()
            .map(|text| Piece {
                text,
                item: None,
                second_half: false,
            })
            .collect();
    };
    let mut out = vec![Piece {
        text: format!("{{{}:[", Value::from(key.as_str())),
        item: None,
        second_half: false,
    }];
    for (index, item) in items.iter().enumerate() {
        let mut text = item.to_string();
        if index > 0 {
            text.insert(0, ',');
        }
        let chars = text.chars().count().div_ceil(PIECES_PER_ITEM).max(1);
        let parts = split(&text, chars);
        let half = parts.len() / 2;
        out.extend(parts.into_iter().enumerate().map(|(i, text)| Piece {
            text,
            item: Some(index),
            second_half: i >= half,
        }));
    }
    out.push(Piece {
        text: "]}".to_owned(),
        item: None,
        second_half: false,
    });
    out
}

fn split(text: &str, chars: usize) -> Vec<String> {
    let all: Vec<char> = text.chars().collect();
    all.chunks(chars.max(1))
        .map(|chunk| chunk.iter().collect())
        .collect()
}
