//! The JSON messages of `/api/ws`: what a client may send ([`ClientMessage`]) and how every
//! server message is written. `docs/api.md` ("Live updates (WebSocket)") and
//! `docs/asyncapi.yaml` describe the same messages for client authors.

use serde::Deserialize;
use serde_json::Value;

use super::MAX_SUBSCRIPTION_ID;
use crate::live::LiveEvent;

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub(crate) enum ClientMessage {
    /// Start a subscription named `id`.
    #[serde(rename_all = "camelCase")]
    Subscribe {
        /// The client's name for the subscription, echoed in every message about it.
        id: String,
        /// What to watch.
        topic: Topic,
        /// The task, for `topic: "task"`.
        task_id: Option<String>,
        /// Whose list, for `topic: "tasks"` (as `userId` of `GET /api/subscribeToTasks`).
        user_id: Option<String>,
        /// The last task version the client saw, to resume a task subscription.
        last_version: Option<i64>,
        /// The last partial output the client saw (`seq` of the last event that had one),
        /// with `last_version`: SSE's `Last-Event-ID: <version>.<seq>`.
        last_seq: Option<i64>,
    },
    /// End the subscription named `id`.
    Unsubscribe {
        /// The subscription's id.
        id: String,
    },
    /// Asks for a `pong`, so a client can check the connection is alive.
    Ping,
}

/// What a subscription watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Topic {
    /// One task, as `GET /api/subscribeToTask`.
    Task,
    /// A task list, as `GET /api/subscribeToTasks`.
    Tasks,
}

/// A client message that cannot be acted on: the error text, and the subscription id when the
/// message named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) id: Option<String>,
    pub(crate) error: String,
}

impl Refusal {
    pub(crate) fn new(id: Option<&str>, error: impl Into<String>) -> Self {
        Self {
            id: id.map(str::to_owned),
            error: error.into(),
        }
    }

    /// `{"type":"error","id":...,"error":"..."}`, `id` only when known.
    pub(crate) fn to_json(&self) -> String {
        let mut message = serde_json::Map::new();
        message.insert("type".into(), "error".into());
        if let Some(id) = &self.id {
            message.insert("id".into(), id.clone().into());
        }
        message.insert("error".into(), self.error.clone().into());
        Value::Object(message).to_string()
    }
}

/// Parses one text message.
///
/// # Errors
/// A [`Refusal`] (carrying the message's `id` when it has one) for anything that is not a valid
/// client message: not JSON, an unknown `type`, a missing or unknown field, a bad id.
pub(crate) fn parse(text: &str) -> Result<ClientMessage, Refusal> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| Refusal::new(None, format!("message is not JSON: {error}")))?;
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let message: ClientMessage = serde_json::from_value(value)
        .map_err(|error| Refusal::new(id.as_deref(), format!("invalid message: {error}")))?;
    match &message {
        ClientMessage::Subscribe { id, .. } | ClientMessage::Unsubscribe { id }
            if id.is_empty() || id.len() > MAX_SUBSCRIPTION_ID =>
        {
            Err(Refusal::new(
                None,
                format!("invalid id: must be 1 to {MAX_SUBSCRIPTION_ID} bytes"),
            ))
        }
        _ => Ok(message),
    }
}

/// `{"type":"<kind>","id":"<id>"}`: `subscribed`, `unsubscribed`, `ended`.
pub(crate) fn about(kind: &str, id: &str) -> String {
    serde_json::json!({"type": kind, "id": id}).to_string()
}

/// `{"type":"pong"}`.
pub(crate) fn pong() -> String {
    r#"{"type":"pong"}"#.to_owned()
}

/// The start every event message of a subscription shares: `{"type":"event","id":"<id>"`,
/// computed once per subscription.
pub(crate) fn event_prefix(id: &str) -> String {
    format!(r#"{{"type":"event","id":{}"#, Value::String(id.to_owned()))
}

/// `{"type":"event","id":...,"version":N,"seq":S,"event":{...}}`: the event's JSON as SSE sends
/// it, spliced in without parsing it again; `version` only where SSE sends an `id:`, `seq` only
/// where that id is `<version>.<seq>`.
pub(crate) fn event(prefix: &str, event: &LiveEvent) -> String {
    let json = String::from_utf8_lossy(&event.json);
    let mut out = String::with_capacity(prefix.len() + json.len() + 40);
    out.push_str(prefix);
    if let Some(version) = event.version {
        out.push_str(",\"version\":");
        out.push_str(&version.to_string());
    }
    if let Some(seq) = event.seq {
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
    }
    out.push_str(",\"event\":");
    out.push_str(&json);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn check(text: &str, expected: Result<ClientMessage, Value>) {
        let got = parse(text)
            .map_err(|refusal| serde_json::from_str::<Value>(&refusal.to_json()).unwrap());
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{text}"),
            (Err(got), Err(expected)) => {
                assert_eq!(got["type"], "error");
                assert_eq!(got.get("id"), expected.get("id"), "{text}: {got}");
                let error = got["error"].as_str().unwrap();
                let wanted = expected["error"].as_str().unwrap();
                assert!(error.contains(wanted), "{text}: {error}");
            }
            (got, expected) => panic!("{text}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn client_messages() {
        check(
            r#"{"type":"subscribe","id":"a","topic":"task","taskId":"task_1","lastVersion":3}"#,
            Ok(ClientMessage::Subscribe {
                id: "a".into(),
                topic: Topic::Task,
                task_id: Some("task_1".into()),
                user_id: None,
                last_version: Some(3),
                last_seq: None,
            }),
        );
        check(
            r#"{"type":"subscribe","id":"a","topic":"task","taskId":"task_1","lastVersion":3,"lastSeq":2}"#,
            Ok(ClientMessage::Subscribe {
                id: "a".into(),
                topic: Topic::Task,
                task_id: Some("task_1".into()),
                user_id: None,
                last_version: Some(3),
                last_seq: Some(2),
            }),
        );
        check(
            r#"{"type":"subscribe","id":"b","topic":"tasks"}"#,
            Ok(ClientMessage::Subscribe {
                id: "b".into(),
                topic: Topic::Tasks,
                task_id: None,
                user_id: None,
                last_version: None,
                last_seq: None,
            }),
        );
        check(
            r#"{"type":"unsubscribe","id":"b"}"#,
            Ok(ClientMessage::Unsubscribe { id: "b".into() }),
        );
        check(r#"{"type":"ping"}"#, Ok(ClientMessage::Ping));
        check("nope", Err(json!({"error": "message is not JSON"})));
        check(
            r#"{"type":"shout","id":"x"}"#,
            Err(json!({"id": "x", "error": "unknown variant `shout`"})),
        );
        check(
            r#"{"type":"subscribe","id":"x","topic":"moon"}"#,
            Err(json!({"id": "x", "error": "unknown variant `moon`"})),
        );
        check(
            r#"{"type":"subscribe","id":"x","topic":"task","colour":1}"#,
            Err(json!({"id": "x", "error": "unknown field `colour`"})),
        );
        check(
            r#"{"type":"unsubscribe"}"#,
            Err(json!({"error": "missing field `id`"})),
        );
        check(
            r#"{"type":"unsubscribe","id":""}"#,
            Err(json!({"error": "invalid id"})),
        );
        let long = "x".repeat(MAX_SUBSCRIPTION_ID + 1);
        check(
            &format!(r#"{{"type":"unsubscribe","id":"{long}"}}"#),
            Err(json!({"error": "invalid id"})),
        );
    }

    #[test]
    fn server_messages_are_json() {
        let prefix = event_prefix("a\"b");
        let with_version = event(
            &prefix,
            &LiveEvent {
                version: Some(7),
                seq: None,
                json: Bytes::from_static(br#"{"type":"update","task":{"id":"t"}}"#),
            },
        );
        let parsed: Value = serde_json::from_str(&with_version).unwrap();
        assert_eq!(
            parsed,
            json!({"type":"event","id":"a\"b","version":7,"event":{"type":"update","task":{"id":"t"}}})
        );
        let without = event(
            &prefix,
            &LiveEvent {
                version: None,
                seq: None,
                json: Bytes::from_static(br#"{"type":"resync"}"#),
            },
        );
        let parsed: Value = serde_json::from_str(&without).unwrap();
        assert_eq!(
            parsed,
            json!({"type":"event","id":"a\"b","event":{"type":"resync"}})
        );
        let partial = event(
            &prefix,
            &LiveEvent {
                version: Some(7),
                seq: Some(2),
                json: Bytes::from_static(br#"{"type":"partial","index":1}"#),
            },
        );
        assert_eq!(
            serde_json::from_str::<Value>(&partial).unwrap(),
            json!({"type":"event","id":"a\"b","version":7,"seq":2,"event":{"type":"partial","index":1}})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&about("ended", "s")).unwrap(),
            json!({"type":"ended","id":"s"})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&Refusal::new(None, "no").to_json()).unwrap(),
            json!({"type":"error","error":"no"})
        );
    }
}
