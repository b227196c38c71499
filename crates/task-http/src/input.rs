//! Reading request input: JSON bodies (size-limited while streaming, never buffered past the
//! limit), typed access to their fields with errors that name the field, and query strings.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

use crate::ApiError;

/// Reads a JSON body of at most `limit` bytes.
///
/// # Errors
/// 415 when `Content-Type` is not JSON, 413 when the body is (or announces itself as) larger
/// than `limit`, 400 when it is not valid JSON.
pub async fn read_json<B>(parts: &Parts, body: B, limit: usize) -> Result<Value, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
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
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(ApiError::payload_too_large(limit))
        }
        Err(error) => {
            tracing::debug!(%error, "request body could not be read");
            return Err(ApiError::bad_request("request body could not be read"));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("request body is not valid JSON: {error}")))
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
            Some(v) => v
                .as_i64()
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

/// A parsed query string: percent-decoded `key=value` pairs in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the query part of a URI (`None` means no query).
    pub fn parse(query: Option<&str>) -> Self {
        Self {
            pairs: decode_pairs(query.unwrap_or_default()),
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

/// The one place query strings are decoded (`form_urlencoded`, the WHATWG rules): `%XX`
/// escapes and `+` (a space) decoded, invalid escapes kept as written, invalid UTF-8 replaced by
/// U+FFFD, empty pairs skipped.
fn decode_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_decoding() {
        let query = Query::parse(Some("userId=a%40b.se&q=two+words&empty=&bad=%zz&end=%4"));
        assert_eq!(query.get("userId"), Some("a@b.se"));
        assert_eq!(query.get("q"), Some("two words"));
        assert_eq!(query.get("empty"), None);
        assert_eq!(query.get("bad"), Some("%zz"));
        assert_eq!(query.get("end"), Some("%4"));
        assert_eq!(query.get("missing"), None);
        assert_eq!(Query::parse(None).get("x"), None);
        let limit: Result<Option<usize>, _> =
            Query::parse(Some("limit=ten")).parse_value("limit", "a number");
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
        let fields = Fields::new(json!({"task_type": "x", "surprise": 1})).unwrap();
        let error = fields.deny_unknown(&["task_type"]).unwrap_err();
        assert!(error.message().starts_with("invalid surprise"), "{error:?}");
    }
}
