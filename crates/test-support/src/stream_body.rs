//! The fake's streamed answers in each provider's wire format, written by a task into a channel
//! that is the response body, so pauses, stalls and cut connections happen on the wire.
//!
//! The shapes follow the official streaming specs in `<repo>/../shared/provider-specs` (see its
//! README, section "Streaming"): OpenAI `chat.completion.chunk` objects
//! (`openai-chat-stream-chunk.schema.json`, from openai/openai-openapi) ending in `data: [DONE]`,
//! with a usage chunk with empty `choices` when `stream_options.include_usage` is set; Anthropic
//! named events (`anthropic-messages-stream-event.schema.json`, from anthropic-sdk-python's
//! `RawMessageStreamEvent`) with the tool input as `input_json_delta` pieces, the first one
//! empty, and `ping` events; Gemini `GenerateContentResponse` objects
//! (`gemini-generate-response.schema.json`, from googleapis' `generative_service.proto`)
//! separated by CRLF CRLF, with cumulative `usageMetadata`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::stream_plan::{pieces, Piece, StreamFault, StreamPlan};
use crate::ProviderKind;

/// Token counts in fake usage reports.
pub(crate) const FAKE_INPUT_TOKENS: u64 = 42;
pub(crate) const FAKE_OUTPUT_TOKENS: u64 = 17;
const FAKE_CREATED_UNIX: u64 = 1_767_225_600;
/// Bytes per network write when a plan asks for garbage: small enough to split every emoji.
const GARBAGE_WRITE_BYTES: usize = 5;
/// The pause before a cut, long enough for hyper to flush the events already written.
const FLUSH_PAUSE: Duration = Duration::from_millis(50);
/// What a garbage plan puts between events: all of it is to be skipped by an SSE client.
const GARBAGE: &str = ": fake keep-alive comment\n\nx-unknown-field: ignored\n\nretry: 3000\n\n\n";

/// A response body fed by a channel; an `Err` aborts the connection mid-body.
#[derive(Debug)]
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|next| next.map(|item| item.map(Frame::data)))
    }
}

/// What the model writes: structured output, or plain text instead of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// The answer as the message content (OpenAI, Gemini) or the forced tool's input (Anthropic).
    Answer,
    /// Plain text (for Anthropic a text block, no tool call).
    Text,
}

/// What the request asked for that shapes the stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamRequest {
    pub(crate) kind: ProviderKind,
    pub(crate) model: String,
    pub(crate) tool_name: String,
    /// OpenAI's `stream_options.include_usage`.
    pub(crate) include_usage: bool,
}

/// When each streamed item's last piece was handed to the connection (see
/// `FakeProvider::items_written`).
pub(crate) type ItemMarks = Arc<Mutex<Vec<Instant>>>;

#[derive(Debug)]
enum Step {
    Write(String),
    /// The item just written is complete: note the time.
    ItemDone,
    Wait(Duration),
    Cut,
    Stall,
}

/// Starts writing `plan` and returns the body it is written into.
pub(crate) fn start(
    request: &StreamRequest,
    content: Content,
    plan: &StreamPlan,
    marks: &ItemMarks,
) -> ChannelBody {
    let texts = match content {
        Content::Answer => pieces(&plan.answer),
        Content::Text => {
            let text = plan.answer.as_str().unwrap_or_default().to_owned();
            vec![Piece {
                text,
                item: None,
                second_half: false,
            }]
        }
    };
    let steps = steps(request, content, plan, &texts);
    spawn_writer(steps, plan.garbage, Some(Arc::clone(marks)))
}

/// A body that is one event whose data is not JSON, then the end.
pub(crate) fn malformed() -> ChannelBody {
    spawn_writer(
        vec![Step::Write(
            "data: {\"id\": \"fake\", \"choices\": [{\"ans\n\n".to_owned(),
        )],
        false,
        None,
    )
}

fn spawn_writer(steps: Vec<Step>, garbage: bool, marks: Option<ItemMarks>) -> ChannelBody {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for step in steps {
            match step {
                Step::Write(text) => {
                    let bytes = Bytes::from(if garbage {
                        format!("{GARBAGE}{text}")
                    } else {
                        text
                    });
                    let size = if garbage {
                        GARBAGE_WRITE_BYTES
                    } else {
                        bytes.len().max(1)
                    };
                    for start in (0..bytes.len()).step_by(size) {
                        let frame = bytes.slice(start..(start + size).min(bytes.len()));
                        // The client went away: nothing more to write.
                        if tx.send(Ok(frame)).await.is_err() {
                            return;
                        }
                    }
                }
                Step::ItemDone => {
                    if let Some(marks) = &marks {
                        marks
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Instant::now());
                    }
                }
                Step::Wait(pause) => tokio::time::sleep(pause).await,
                Step::Cut => {
                    // hyper drops bytes it has not flushed when a body fails; while this task
                    // pauses the body is pending, and hyper flushes what it holds.
                    tokio::time::sleep(FLUSH_PAUSE).await;
                    let cut = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "fake provider: stream cut",
                    );
                    let _ = tx.send(Err(cut)).await;
                    return;
                }
                Step::Stall => {
                    tx.closed().await;
                    return;
                }
            }
        }
    });
    ChannelBody { rx }
}

fn steps(
    request: &StreamRequest,
    content: Content,
    plan: &StreamPlan,
    texts: &[Piece],
) -> Vec<Step> {
    let mut steps: Vec<Step> = head(request, content)
        .into_iter()
        .map(Step::Write)
        .collect();
    let mut current_item = None;
    let mut faulted = false;
    for (at, piece) in texts.iter().enumerate() {
        if piece.item.is_some() && piece.item != current_item {
            current_item = piece.item;
            if !plan.pace.is_zero() {
                steps.push(Step::Wait(plan.pace));
            }
        }
        let fault = match plan.fault {
            Some(StreamFault::CutInItem(at)) if piece.item == Some(at) && piece.second_half => {
                Some(Step::Cut)
            }
            Some(StreamFault::StallInItem(at)) if piece.item == Some(at) && piece.second_half => {
                Some(Step::Stall)
            }
            _ => None,
        };
        if let Some(fault) = fault {
            steps.push(fault);
            faulted = true;
            break;
        }
        steps.push(Step::Write(delta(request, content, &piece.text)));
        let item_ends =
            piece.item.is_some() && texts.get(at + 1).is_none_or(|next| next.item != piece.item);
        if item_ends {
            steps.push(Step::ItemDone);
        }
    }
    if !faulted {
        steps.extend(tail(request, content).into_iter().map(Step::Write));
    }
    steps
}

fn sse(data: &Value) -> String {
    format!("data: {data}\n\n")
}

fn named(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn gemini(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

/// The events before the first piece of text.
fn head(request: &StreamRequest, content: Content) -> Vec<String> {
    match request.kind {
        ProviderKind::OpenAi => vec![sse(&openai_chunk(
            request,
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ))],
        ProviderKind::Anthropic => {
            let block = match content {
                Content::Answer => json!({
                    "type": "tool_use",
                    "id": "toolu_fake_0001",
                    "name": request.tool_name,
                    "input": {},
                }),
                Content::Text => json!({"type": "text", "text": ""}),
            };
            let mut events = vec![
                named(
                    "message_start",
                    &json!({
                        "type": "message_start",
                        "message": {
                            "id": "msg_fake0001",
                            "type": "message",
                            "role": "assistant",
                            "model": request.model,
                            "content": [],
                            "stop_reason": null,
                            "stop_sequence": null,
                            "usage": {"input_tokens": FAKE_INPUT_TOKENS, "output_tokens": 1},
                        },
                    }),
                ),
                named(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": block}),
                ),
                named("ping", &json!({"type": "ping"})),
            ];
            if content == Content::Answer {
                events.push(delta(request, content, ""));
            }
            events
        }
        ProviderKind::Gemini => Vec::new(),
    }
}

/// The event carrying one piece of text.
fn delta(request: &StreamRequest, content: Content, text: &str) -> String {
    match request.kind {
        ProviderKind::OpenAi => sse(&openai_chunk(
            request,
            json!({"content": text}),
            Value::Null,
        )),
        ProviderKind::Anthropic => {
            let delta = match content {
                Content::Answer => json!({"type": "input_json_delta", "partial_json": text}),
                Content::Text => json!({"type": "text_delta", "text": text}),
            };
            named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            )
        }
        ProviderKind::Gemini => gemini(&json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": text}]},
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": FAKE_INPUT_TOKENS, "totalTokenCount": FAKE_INPUT_TOKENS},
            "modelVersion": request.model,
            "responseId": "fake-response-0001",
        })),
    }
}

/// The events after the last piece of text.
fn tail(request: &StreamRequest, content: Content) -> Vec<String> {
    match request.kind {
        ProviderKind::OpenAi => {
            let mut events = vec![sse(&openai_chunk(request, json!({}), json!("stop")))];
            if request.include_usage {
                let mut last = openai_chunk(request, json!({}), Value::Null);
                last["choices"] = json!([]);
                last["usage"] = json!({
                    "prompt_tokens": FAKE_INPUT_TOKENS,
                    "completion_tokens": FAKE_OUTPUT_TOKENS,
                    "total_tokens": FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS,
                });
                events.push(sse(&last));
            }
            events.push("data: [DONE]\n\n".to_owned());
            events
        }
        ProviderKind::Anthropic => {
            let stop_reason = match content {
                Content::Answer => "tool_use",
                Content::Text => "end_turn",
            };
            vec![
                named(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                named(
                    "message_delta",
                    &json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                        "usage": {"output_tokens": FAKE_OUTPUT_TOKENS},
                    }),
                ),
                named("message_stop", &json!({"type": "message_stop"})),
            ]
        }
        ProviderKind::Gemini => vec![gemini(&json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": ""}]},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {
                "promptTokenCount": FAKE_INPUT_TOKENS,
                "candidatesTokenCount": FAKE_OUTPUT_TOKENS,
                "totalTokenCount": FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS,
            },
            "modelVersion": request.model,
            "responseId": "fake-response-0001",
        }))],
    }
}

fn openai_chunk(request: &StreamRequest, delta: Value, finish_reason: Value) -> Value {
    let mut chunk = json!({
        "id": "chatcmpl-fake0001",
        "object": "chat.completion.chunk",
        "created": FAKE_CREATED_UNIX,
        "model": request.model,
        "service_tier": "default",
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
    });
    if request.include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// Every event `plan` would send for `request`, as JSON data, for checking the fake's own
/// output against the official stream schemas.
pub fn event_data(kind: ProviderKind, model: &str, plan: &StreamPlan) -> Vec<Value> {
    let request = StreamRequest {
        kind,
        model: model.to_owned(),
        tool_name: "quiz_questions".to_owned(),
        include_usage: true,
    };
    steps(&request, Content::Answer, plan, &pieces(&plan.answer))
        .into_iter()
        .filter_map(|step| match step {
            Step::Write(text) => Some(text),
            _ => None,
        })
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .filter(|data| *data != "[DONE]")
                .map(|data| serde_json::from_str(data.trim_end()).expect("the fake writes JSON"))
                .collect::<Vec<Value>>()
        })
        .collect()
}
