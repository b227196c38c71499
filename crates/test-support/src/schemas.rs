//! The official provider schemas in `<repo>/../shared/provider-specs`, compiled once per process.
//!
//! The folder sits beside the repository, not inside it, so it is found relative to this crate's
//! manifest. A missing folder is an error: a fake that silently skipped validation would let every
//! malformed request pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::Value;

use crate::{lock, FakeError, ProviderKind};

/// At most this many violations are reported per document; the first few say what is wrong.
const MAX_VIOLATIONS_PER_DOCUMENT: usize = 8;
/// A violation message is cut here: `anyOf` failures can quote a whole request.
const MAX_VIOLATION_LEN: usize = 400;

/// The compiled request, response and error-body schemas of one provider.
pub struct ProviderSchemas {
    request: Validator,
    response: Validator,
    error: Validator,
    stream_event: Validator,
}

impl std::fmt::Debug for ProviderSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSchemas").finish_non_exhaustive()
    }
}

impl ProviderSchemas {
    /// Loads and compiles the schemas of `kind`, or returns the cached set.
    pub fn get(kind: ProviderKind) -> Result<Arc<ProviderSchemas>, FakeError> {
        static CACHE: OnceLock<Mutex<HashMap<ProviderKind, Arc<ProviderSchemas>>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(found) = lock(cache).get(&kind) {
            return Ok(Arc::clone(found));
        }
        // Compiled outside the lock: two tests racing here compile twice, which is harmless.
        let compiled = Arc::new(Self::compile(kind)?);
        lock(cache).insert(kind, Arc::clone(&compiled));
        Ok(compiled)
    }

    fn compile(kind: ProviderKind) -> Result<ProviderSchemas, FakeError> {
        let dir = specs_dir()?;
        let request_path = dir.join(kind.request_schema_file());
        let response_path = dir.join(kind.response_schema_file());
        let request = compile(&request_path, load(&request_path)?)?;
        let response_schema = load(&response_path)?;
        let error = compile(&response_path, error_root(&response_schema))?;
        let response = compile(&response_path, response_schema)?;
        let stream_path = dir.join(kind.stream_schema_file());
        let stream_event = compile(&stream_path, load(&stream_path)?)?;
        Ok(ProviderSchemas {
            request,
            response,
            error,
            stream_event,
        })
    }

    /// Violations of the official request schema (empty when the body is valid).
    pub fn check_request(&self, body: &Value) -> Vec<String> {
        violations(&self.request, body)
    }

    /// Violations of the official success-response schema.
    pub fn check_response(&self, body: &Value) -> Vec<String> {
        violations(&self.response, body)
    }

    /// Violations of the official schema of one streamed event's data (a chunk, an event, or a
    /// `GenerateContentResponse` for Gemini).
    pub fn check_stream_event(&self, data: &Value) -> Vec<String> {
        violations(&self.stream_event, data)
    }

    /// Violations of the official error-body schema (`$defs/ErrorResponse` of the response file).
    pub fn check_error(&self, body: &Value) -> Vec<String> {
        violations(&self.error, body)
    }
}

/// `<repo>/../shared/provider-specs`, which must exist.
pub fn specs_dir() -> Result<PathBuf, FakeError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/provider-specs");
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(FakeError::SpecsMissing {
            path,
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(source) => Err(FakeError::SpecsMissing { path, source }),
    }
}

fn load(path: &Path) -> Result<Value, FakeError> {
    let text = std::fs::read_to_string(path).map_err(|e| FakeError::SchemaUnreadable {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| FakeError::SchemaUnreadable {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn compile(path: &Path, schema: Value) -> Result<Validator, FakeError> {
    jsonschema::draft202012::new(&schema).map_err(|e| FakeError::SchemaInvalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The response file's root describes a success; its error envelope lives in `$defs`. Pointing a
/// copy's root at that definition keeps every internal `$ref` resolvable.
fn error_root(response_schema: &Value) -> Value {
    let mut root = serde_json::Map::new();
    for key in ["$schema", "$id", "$defs"] {
        if let Some(value) = response_schema.get(key) {
            root.insert(key.to_owned(), value.clone());
        }
    }
    root.insert("$ref".to_owned(), Value::from("#/$defs/ErrorResponse"));
    Value::Object(root)
}

fn violations(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .take(MAX_VIOLATIONS_PER_DOCUMENT)
        .map(|error| {
            let mut message = format!("at '{}': {error}", error.instance_path);
            if message.len() > MAX_VIOLATION_LEN {
                let mut end = MAX_VIOLATION_LEN;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                message.push('…');
            }
            message
        })
        .collect()
}
