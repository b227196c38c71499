//! Parsing request bodies as JSON that names each key once. `serde_json::Value` keeps the last
//! of two equal keys, so `{"task_type":"noop","task_type":"sleep"}` would mean whatever the
//! last writer (or a proxy that keeps the first) decides; a body with a repeated key at any
//! depth is refused instead, naming the key.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::ApiError;

/// Parses `bytes` as one JSON value.
///
/// # Errors
/// 400 naming the key when an object repeats one, 400 when the bytes are not JSON.
pub fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(key)) => Err(ApiError::invalid_field(
            key,
            "appears more than once in the request body",
        )),
        (Err(error), None) => Err(ApiError::bad_request(format!(
            "request body is not valid JSON: {error}"
        ))),
    }
}

/// Builds a `Value` like `serde_json` does, except that a repeated key is an error (and is
/// recorded in `duplicate`, so the answer can name it without parsing the error's text).
#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let message = format!("duplicate key `{key}`");
                *self.duplicate.borrow_mut() = Some(key);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: &str, expected: Result<Value, &str>) {
        let parsed = parse(input.as_bytes()).map_err(|e| e.message().to_owned());
        match expected {
            Ok(value) => assert_eq!(parsed, Ok(value), "{input}"),
            Err(start) => {
                let message = parsed.unwrap_err();
                assert!(message.starts_with(start), "{input}: {message}");
            }
        }
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        check(
            r#"{"a":1,"b":[true,null,"x",-2,1.5,{"c":{}}]}"#,
            Ok(json!({"a":1,"b":[true,null,"x",-2,1.5,{"c":{}}]})),
        );
        check(
            r#"{"task_type":"noop","task_type":"sleep"}"#,
            Err("invalid task_type: appears more than once"),
        );
        check(
            r#"{"params":{"ms":1,"ms":2}}"#,
            Err("invalid ms: appears more than once"),
        );
        check(
            r#"[{"x":1},{"y":1,"y":1}]"#,
            Err("invalid y: appears more than once"),
        );
        check(r#"{"a":1} x"#, Err("request body is not valid JSON"));
        check(r#"{"a":"#, Err("request body is not valid JSON"));
        check("18446744073709551615", Ok(json!(u64::MAX)));
    }
}
