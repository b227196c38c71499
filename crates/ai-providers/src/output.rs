//! The last check on every answer: it must be a JSON object fitting the requested schema.

use serde_json::Value;

use crate::error::truncate;
use crate::{JsonRequest, ProviderError};

/// At most this many schema violations are named in an error.
const MAX_REPORTED_VIOLATIONS: usize = 3;

/// Parses model text as JSON and checks it against the request's schema.
pub(crate) fn parse_answer(
    provider: &str,
    request: &JsonRequest,
    text: &str,
) -> Result<Value, ProviderError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProviderError::invalid_output(
            provider,
            format!("the answer is not JSON ({e}): {}", truncate(text)),
        )
    })?;
    check_answer(provider, request, value)
}

/// Checks an already parsed answer against the request's schema.
pub(crate) fn check_answer(
    provider: &str,
    request: &JsonRequest,
    value: Value,
) -> Result<Value, ProviderError> {
    let validator = jsonschema::draft202012::new(&request.schema).map_err(|e| {
        ProviderError::permanent(
            provider,
            format!("invalid request: the schema does not compile: {e}"),
        )
    })?;
    let violations: Vec<String> = validator
        .iter_errors(&value)
        .take(MAX_REPORTED_VIOLATIONS)
        .map(|e| format!("at '{}': {e}", e.instance_path))
        .collect();
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(ProviderError::invalid_output(
            provider,
            truncate(&format!(
                "the answer does not fit schema {}: {}",
                request.schema_name,
                violations.join("; ")
            )),
        ))
    }
}
