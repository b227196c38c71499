//! Finds the complete items of the questions array in a model's answer while it is still being
//! written, so each question can be checked and shown the moment its closing brace arrives.
//!
//! This is not a JSON parser: it only tracks nesting and strings to find where each item of the
//! first array directly inside the root object begins and ends, and hands that slice to
//! `serde_json`, which does the parsing. A streaming JSON crate would have to be fed the same
//! pieces and would re-implement this boundary search on top of its token events; the scanner is
//! a few dozen lines and touches each byte once.

use serde_json::Value;

/// One item cut out of the growing answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The item's JSON.
    Parsed(Value),
    /// The item's text is not JSON; the message says why.
    Unparsable(String),
}

/// Fed the answer's text piece by piece; returns each array item once it is complete.
#[derive(Debug, Default)]
pub struct ItemSplitter {
    text: String,
    /// Where scanning continues in `text`.
    pos: usize,
    /// Nesting depth at `pos`: 1 inside the root object, 2 inside the items array.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Whether the items array has been opened (and not yet closed).
    in_array: bool,
    /// Whether the items array has been closed.
    finished: bool,
    /// Byte offset where the current item starts, if one has.
    item_start: Option<usize>,
    /// Items found so far.
    found: usize,
}

impl ItemSplitter {
    /// A splitter that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the items array has begun, so the answer is being read item by item.
    pub fn found_array(&self) -> bool {
        self.in_array || self.finished
    }

    /// How many items have been returned so far.
    pub fn items(&self) -> usize {
        self.found
    }

    /// Adds `piece` and returns the items it completed, in order.
    pub fn push(&mut self, piece: &str) -> Vec<Item> {
        self.text.push_str(piece);
        let mut complete = Vec::new();
        while self.pos < self.text.len() && !self.finished {
            let at = self.pos;
            let byte = self.text.as_bytes()[at];
            self.pos += 1;
            if self.in_string {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => {
                        self.in_string = false;
                        if self.in_array && self.depth == 2 {
                            // A string item ends with its closing quote.
                            complete.extend(self.end_item(at + 1));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let starts_item = self.in_array
                && self.depth == 2
                && self.item_start.is_none()
                && !matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b',' | b']');
            if starts_item {
                self.item_start = Some(at);
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if byte == b'[' && self.depth == 1 && !self.in_array {
                        self.in_array = true;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    if self.in_array && self.depth == 2 {
                        // The array closes; a scalar item ends here too.
                        complete.extend(self.end_item(at));
                        self.in_array = false;
                        self.finished = true;
                    }
                    self.depth = self.depth.saturating_sub(1);
                    if self.in_array && self.depth == 2 && self.item_start.is_some() {
                        complete.extend(self.end_item(at + 1));
                    }
                }
                b',' if self.in_array && self.depth == 2 => complete.extend(self.end_item(at)),
                _ => {}
            }
        }
        complete
    }

    /// Ends the current item at byte `end` (exclusive), if one is open.
    fn end_item(&mut self, end: usize) -> Option<Item> {
        let start = self.item_start.take()?;
        let slice = self.text[start..end].trim();
        if slice.is_empty() {
            return None;
        }
        self.found += 1;
        Some(match serde_json::from_str(slice) {
            Ok(value) => Item::Parsed(value),
            Err(e) => Item::Unparsable(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Feeds `text` in pieces of `size` bytes (on char boundaries) and collects the items with
    /// the number of pieces fed when each appeared.
    fn check(text: &str, size: usize, expected: &[Value]) {
        let mut splitter = ItemSplitter::new();
        let mut got = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = size.min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            got.extend(splitter.push(&rest[..cut]));
            rest = &rest[cut..];
        }
        let expected: Vec<Item> = expected.iter().cloned().map(Item::Parsed).collect();
        assert_eq!(got, expected, "{text:?} in pieces of {size}");
    }

    #[test]
    fn items_are_found_whatever_the_piece_size() {
        let answer = json!({"questions": [
            {"text": "Brace } and bracket ] in \"quotes\" 🧮", "options": ["a", "b"]},
            {"text": "Second", "nested": {"deep": [1, [2, 3]]}},
            "a string item, with a comma",
            42
        ]});
        let items = answer["questions"].as_array().unwrap().clone();
        for size in [1, 2, 3, 7, 64, 10_000] {
            check(&answer.to_string(), size, &items);
            check(
                &serde_json::to_string_pretty(&answer).unwrap(),
                size,
                &items,
            );
        }
    }

    #[test]
    fn an_item_is_returned_only_once_it_is_complete() {
        let mut splitter = ItemSplitter::new();
        assert_eq!(
            splitter.push(r#"{"questions": [{"text": "a"}, {"te"#),
            vec![Item::Parsed(json!({"text": "a"}))]
        );
        assert!(splitter.found_array());
        assert_eq!(splitter.push(r#"xt": "b"#), vec![]);
        assert_eq!(
            splitter.push(r#""}]}"#),
            vec![Item::Parsed(json!({"text": "b"}))]
        );
        assert_eq!(splitter.items(), 2);
        assert_eq!(splitter.push(r#" {"more": [1]}"#), vec![]);
    }

    #[test]
    fn an_empty_array_and_no_array_give_nothing() {
        check(r#"{"questions": []}"#, 3, &[]);
        let mut splitter = ItemSplitter::new();
        assert!(splitter
            .push(r#"{"answer": "no array", "n": 1}"#)
            .is_empty());
        assert!(!splitter.found_array());
    }

    #[test]
    fn a_scalar_that_is_not_json_is_unparsable() {
        let mut splitter = ItemSplitter::new();
        let items = splitter.push(r#"{"questions": [nonsense, {"a": 1}]}"#);
        assert!(matches!(items[0], Item::Unparsable(_)));
        assert_eq!(items[1], Item::Parsed(json!({"a": 1})));
    }
}
