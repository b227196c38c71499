//! Reading request input: JSON bodies (size-limited while streaming, never buffered past the
//! limit), typed access to their fields with errors that name the field, and query strings.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

use crate::{ApiError, HttpConfig};

/// Reads a JSON body of at most `limit` bytes.
///
/// # Errors
/// 415 when `Content-Type` is not JSON, 413 when the body is (or announces itself as) larger
/// than the body limit, 408 when it does not arrive within the body read timeout, 400 when it is not valid JSON or an object in it names a key twice.
pub async fn read_json<B>(parts: &Parts, body: B, config: &HttpConfig) -> Result<Value, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limit = config.body_limit;
    if !is_json(parts) {
        return Err(ApiError::unsupported_media_type());
    }
    let announced = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    // One deadline for the whole body: a client trickling a byte at a time would otherwise
    // hold its connection (and a slot under the connection cap) for as long as it likes.
    let collected = tokio::time::timeout(
        config.body_read_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| ApiError::body_timeout(config.body_read_timeout))?;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(ApiError::payload_too_large(limit))
        }
        Err(error) => {
            tracing::debug!(%error, "request body could not be read");
            return Err(ApiError::bad_request("request body could not be read"));
        }
    };
    crate::strict_json::parse(&bytes)
}

/// Whether the request says its body is JSON (`application/json`, any parameters, or a
/// `+json` media type).
fn is_json(parts: &Parts) -> bool {
    let Some(value) = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The fields of a JSON object body, taken one by one with errors that name the field.
/// A `null` field counts as absent.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// The body's fields.
    ///
    /// # Errors
    /// 400 when the body is not a JSON object.
    pub fn new(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self { map }),
            _ => Err(ApiError::bad_request("request body must be a JSON object")),
        }
    }

    /// Fails on the first field not in `known`.
    ///
    /// # Errors
    /// 400 naming the unknown field.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.map.keys().find(|key| !known.contains(&key.as_str())) {
            Some(unknown) => Err(ApiError::invalid_field(
                unknown.clone(),
                format!(
                    "is not a known field (expected one of {})",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A field's raw value, if present and not `null`.
    pub fn value(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// An optional string field.
    ///
    /// # Errors
    /// 400 when present but not a string.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_field(name, "must be a string")),
        }
    }

    /// A required string field that is not blank.
    ///
    /// # Errors
    /// 400 when missing, blank or not a string.
    pub fn required_string(&mut self, name: &str) -> Result<String, ApiError> {
        match self.string(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(ApiError::invalid_field(name, "must not be empty")),
            None => Err(ApiError::invalid_field(name, "is required")),
        }
    }

    /// An optional integer field.
    ///
    /// # Errors
    /// 400 when present but not an integer.
    pub fn integer(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => whole_number(&v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_field(name, "must be an integer")),
        }
    }

    /// A required array of strings.
    ///
    /// # Errors
    /// 400 when missing, not an array, or holding a non-string.
    pub fn string_array(&mut self, name: &str) -> Result<Vec<String>, ApiError> {
        let not_strings = || ApiError::invalid_field(name, "must be an array of strings");
        match self.value(name) {
            None => Err(ApiError::invalid_field(name, "is required")),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(not_strings()),
                })
                .collect(),
            Some(_) => Err(not_strings()),
        }
    }
}

/// `v` as an `i64` when it is a whole number. JSON (and JSON Schema's `integer`) does not tell
/// `5` from `5.0`, so neither does this.
fn whole_number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        let f = v.as_f64()?;
        // The range check is strict at the top: `i64::MAX as f64` rounds up to 2^63.
        (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
    })
}

/// A parsed query string: percent-decoded `key=value` pairs in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the query part of a URI (`None` means no query).
    ///
    /// # Errors
    /// 400 naming the key when a key or value does not decode to UTF-8 text.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            pairs: decode_pairs(query.unwrap_or_default())?,
        })
    }

    /// The query itself, unless a parameter is given more than once: which of two values would
    /// count is a guess a client should not have to make (and a proxy may not make the same one).
    ///
    /// # Errors
    /// 400 naming the repeated parameter.
    pub fn once_each(self) -> Result<Self, ApiError> {
        let repeated = self
            .pairs
            .iter()
            .enumerate()
            .find(|(i, (key, _))| self.pairs[..*i].iter().any(|(k, _)| k == key));
        match repeated {
            Some((_, (key, _))) => Err(ApiError::invalid_field(
                key.clone(),
                "is given more than once",
            )),
            None => Ok(self),
        }
    }

    /// The first value of `key`; an empty value counts as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A parsed value of `key`.
    ///
    /// # Errors
    /// 400 naming `key` when the value does not parse.
    pub fn parse_value<T: std::str::FromStr>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid_field(key, format!("must be {what}")))
            })
            .transpose()
    }
}

/// Why a query parameter whose escapes decode to bytes that are not UTF-8 is refused.
const NOT_UTF8: &str = "is not valid UTF-8 once percent-decoded";

/// The one place query strings are decoded, by the WHATWG `application/x-www-form-urlencoded`
/// rules: pairs split on `&` and the first `=`, `+` a space, `%XX` escapes decoded by
/// `percent_encoding` (the crate `form_urlencoded` is built on), invalid escapes kept as written,
/// empty pairs skipped. `form_urlencoded::parse` itself is not used because it replaces bytes that
/// are not UTF-8 by U+FFFD, and a guess would make `?q=%ff` search for U+FFFD: those are refused.
///
/// # Errors
/// 400 naming the parameter whose name or value is not UTF-8.
fn decode_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (decode_part(key), decode_part(value)) {
                (Some(key), Some(value)) => Ok((key, value)),
                (Some(key), None) => Err(ApiError::invalid_field(key, NOT_UTF8)),
                (None, _) => Err(ApiError::bad_request(format!(
                    "query string: a parameter name {NOT_UTF8}"
                ))),
            }
        })
        .collect()
}

/// One name or value: `+` is a space, then `%XX` escapes; `None` when the bytes are not UTF-8.
fn decode_part(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_decoding() {
        let query = Query::parse(Some(
            "userId=a%40b.se&q=two+words&empty=&bad=%zz&end=%4&s=%C3%A5",
        ))
        .unwrap();
        assert_eq!(query.get("userId"), Some("a@b.se"));
        assert_eq!(query.get("q"), Some("two words"));
        assert_eq!(query.get("empty"), None);
        assert_eq!(query.get("bad"), Some("%zz"));
        assert_eq!(query.get("end"), Some("%4"));
        assert_eq!(query.get("missing"), None);
        assert_eq!(query.get("s"), Some("\u{e5}"));
        assert_eq!(Query::parse(None).unwrap().get("x"), None);
        let error = Query::parse(Some("ok=1&q=%ff%fe")).unwrap_err();
        assert_eq!(
            error.message(),
            "invalid q: is not valid UTF-8 once percent-decoded"
        );
        assert!(Query::parse(Some("%C3=1")).is_err());
        let repeated = Query::parse(Some("limit=&q=a&limit=5"))
            .unwrap()
            .once_each()
            .unwrap_err();
        assert_eq!(repeated.message(), "invalid limit: is given more than once");
        assert!(Query::parse(Some("limit=5&q=a"))
            .unwrap()
            .once_each()
            .is_ok());
        let limit: Result<Option<usize>, _> = Query::parse(Some("limit=ten"))
            .unwrap()
            .parse_value("limit", "a number");
        assert_eq!(
            limit.unwrap_err().message(),
            "invalid limit: must be a number"
        );
    }

    #[test]
    fn fields_name_what_is_wrong() {
        let mut fields =
            Fields::new(json!({"a": "x", "n": "5", "blank": " ", "ids": [1]})).unwrap();
        assert_eq!(fields.string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(
            fields.integer("n").unwrap_err().message(),
            "invalid n: must be an integer"
        );
        assert_eq!(
            fields.required_string("blank").unwrap_err().message(),
            "invalid blank: must not be empty"
        );
        assert_eq!(
            fields.required_string("gone").unwrap_err().message(),
            "invalid gone: is required"
        );
        assert!(fields.string_array("ids").is_err());
        assert!(Fields::new(json!([1])).is_err());
        let mut fields = Fields::new(json!({"w": 5.0, "f": 5.5, "big": 1e300, "neg": -3})).unwrap();
        assert_eq!(fields.integer("w").unwrap(), Some(5));
        assert!(fields.integer("f").is_err());
        assert!(fields.integer("big").is_err());
        assert_eq!(fields.integer("neg").unwrap(), Some(-3));
        let fields = Fields::new(json!({"task_type": "x", "surprise": 1})).unwrap();
        let error = fields.deny_unknown(&["task_type"]).unwrap_err();
        assert!(error.message().starts_with("invalid surprise"), "{error:?}");
    }
}
