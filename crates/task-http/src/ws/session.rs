//! One WebSocket connection: its subscriptions, the commands that change them, and the loop that
//! writes their events.
//!
//! The loop writes one batch at a time and only then asks the subscriptions for more, so a
//! client that reads slowly holds back nothing but its own socket: meanwhile each task
//! subscription's watch keeps only the newest state, and a list subscription that falls behind
//! its bounded channel is sent `resync`.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{SelectAll, Stream, StreamExt};
use futures_util::SinkExt;
use task_core::TaskId;
use task_store::StoreError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::protocol::{self, ClientMessage, Refusal, Topic};
use crate::auth::Identity;
use crate::handlers::listing_owner;
use crate::live::idle_timer::IdleTimer;
use crate::live::{self, Delivery, StreamScope};
use crate::state::AppState;
use crate::stream_slots::StreamSlot;

/// A peer that sent nothing (not even a pong) for this many keep-alive intervals is gone.
const SILENT_INTERVALS: u32 = 3;
/// How long the closing handshake may take before the socket is simply dropped.
const CLOSE_BOUND: Duration = Duration::from_secs(1);

type Deliveries = Pin<Box<dyn Stream<Item = (u64, Delivery)> + Send>>;

/// One open subscription.
struct Active {
    /// The client's id for it.
    id: String,
    /// `{"type":"event","id":"<id>"`, the start of each of its event messages.
    prefix: String,
    /// Ends its stream when the client unsubscribes.
    cancel: CancellationToken,
    /// Its place under the per-user subscription cap.
    _slot: StreamSlot,
}

/// The state of one connection.
pub(crate) struct Session {
    state: AppState,
    identity: Identity,
    /// Subscriptions by internal key (client ids may be reused after unsubscribing; keys never).
    active: HashMap<u64, Active>,
    /// Client id → key.
    keys: HashMap<String, u64>,
    deliveries: SelectAll<Deliveries>,
    next_key: u64,
    /// The connection's place under the per-user live-connection cap.
    _slot: StreamSlot,
}

impl Session {
    /// A session of `identity`, holding `slot` until it ends.
    pub(crate) fn new(state: AppState, identity: Identity, slot: StreamSlot) -> Self {
        Self {
            state,
            identity,
            active: HashMap::new(),
            keys: HashMap::new(),
            deliveries: SelectAll::new(),
            next_key: 0,
            _slot: slot,
        }
    }

    /// The answers to one text message from the client.
    async fn command(&mut self, text: &str) -> Vec<String> {
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(refusal) => return vec![refusal.to_json()],
        };
        let answer = match message {
            ClientMessage::Ping => Ok(protocol::pong()),
            ClientMessage::Unsubscribe { id } => self.unsubscribe(&id),
            ClientMessage::Subscribe {
                id,
                topic,
                task_id,
                user_id,
                last_version,
                last_seq,
            } => {
                let resume = Resume {
                    version: last_version,
                    seq: last_seq,
                };
                self.subscribe(id, topic, task_id, user_id, resume).await
            }
        };
        vec![answer.unwrap_or_else(|refusal| refusal.to_json())]
    }

    async fn subscribe(
        &mut self,
        id: String,
        topic: Topic,
        task_id: Option<String>,
        user_id: Option<String>,
        resume: Resume,
    ) -> Result<String, Refusal> {
        let refuse = |error: &str| Refusal::new(Some(&id), error);
        if self.keys.contains_key(&id) {
            return Err(refuse("a subscription with this id is already open"));
        }
        let Some(slot) = self
            .state
            .ws_subscription_slots()
            .try_acquire(&self.identity.email)
        else {
            return Err(refuse(&format!(
                "too many subscriptions: at most {} per user",
                self.state.config().max_ws_subscriptions_per_user
            )));
        };
        let deliveries: Deliveries = match topic {
            Topic::Task => {
                if user_id.is_some() {
                    return Err(refuse("userId applies to topic \"tasks\" only"));
                }
                let resume = resume.point().map_err(&refuse)?;
                let raw = task_id.ok_or_else(|| refuse("taskId is required for topic \"task\""))?;
                let task = visible_task(&self.state, &self.identity, &raw)
                    .await
                    .map_err(|error| refuse(&error))?;
                Box::pin(
                    live::task_subscription(
                        self.state.hub(),
                        &task,
                        resume,
                        self.state.events().cloned(),
                        self.state.sse(),
                    )
                    .map(|delivery| (0, delivery)),
                )
            }
            Topic::Tasks => {
                if task_id.is_some() {
                    return Err(refuse("taskId applies to topic \"task\" only"));
                }
                if resume.version.is_some() || resume.seq.is_some() {
                    return Err(refuse(
                        "lastVersion and lastSeq resume task subscriptions only; refetch the list instead",
                    ));
                }
                let scope = match listing_owner(&self.identity, user_id.as_deref(), "tasks") {
                    Ok(Some(owner)) => StreamScope::User(owner),
                    Ok(None) => StreamScope::All,
                    Err(error) => return Err(refuse(error.message())),
                };
                Box::pin(
                    live::list_subscription(self.state.hub(), &scope).map(|delivery| (0, delivery)),
                )
            }
        };
        let key = self.next_key;
        self.next_key += 1;
        let cancel = CancellationToken::new();
        self.deliveries.push(Box::pin(
            deliveries
                .take_until(cancel.clone().cancelled_owned())
                .map(move |(_, delivery)| (key, delivery)),
        ));
        self.keys.insert(id.clone(), key);
        let answer = protocol::about("subscribed", &id);
        self.active.insert(
            key,
            Active {
                prefix: protocol::event_prefix(&id),
                id,
                cancel,
                _slot: slot,
            },
        );
        Ok(answer)
    }

    fn unsubscribe(&mut self, id: &str) -> Result<String, Refusal> {
        let key = self
            .keys
            .remove(id)
            .ok_or_else(|| Refusal::new(Some(id), "no open subscription has this id"))?;
        if let Some(active) = self.active.remove(&key) {
            active.cancel.cancel();
        }
        Ok(protocol::about("unsubscribed", id))
    }

    /// The messages for one delivery of subscription `key`.
    fn deliver(&mut self, key: u64, delivery: Delivery) -> Vec<String> {
        match delivery {
            Delivery::Events(events) => match self.active.get(&key) {
                Some(active) => events
                    .iter()
                    .map(|event| protocol::event(&active.prefix, event))
                    .collect(),
                // Unsubscribed meanwhile.
                None => Vec::new(),
            },
            Delivery::Ended => match self.active.remove(&key) {
                Some(active) => {
                    self.keys.remove(&active.id);
                    vec![protocol::about("ended", &active.id)]
                }
                None => Vec::new(),
            },
        }
    }
}

/// Where a task subscription resumes, as the client sent it.
struct Resume {
    version: Option<i64>,
    seq: Option<i64>,
}

impl Resume {
    /// The position to resume from; the error text for one this server never sent.
    fn point(&self) -> Result<live::ResumePoint, &'static str> {
        match (self.version, self.seq) {
            (Some(version), _) if version < 0 => {
                Err("lastVersion must be a version this server sent")
            }
            (_, Some(seq)) if seq < 0 => Err("lastSeq must be a seq this server sent"),
            (None, Some(_)) => Err("lastSeq needs the lastVersion sent with it"),
            (version, seq) => Ok(live::ResumePoint {
                version: version.unwrap_or(0),
                seq: seq.unwrap_or(0),
            }),
        }
    }
}

/// The task `raw` names, if `identity` may see it; the error text otherwise. Someone else's
/// task reads as not found, as over HTTP.
async fn visible_task(
    state: &AppState,
    identity: &Identity,
    raw: &str,
) -> Result<task_core::Task, String> {
    let not_found = || "task not found".to_owned();
    let id: TaskId = raw.parse().map_err(|_| not_found())?;
    match state.tasks().get(&id).await {
        Ok(task) if identity.can_see(&task) => Ok(task),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
        Err(error) => {
            tracing::warn!(%error, "could not read a task for a WebSocket subscription");
            Err("the task store is unavailable; try again".to_owned())
        }
    }
}

/// What woke the loop.
enum Wake {
    Shutdown,
    Gone,
    /// The client sent a message over [`super::MAX_CLIENT_MESSAGE`].
    TooBig,
    Incoming(Message),
    Delivery(u64, Delivery),
    KeepAlive,
}

/// Runs `session` on `socket` until the client leaves, the server shuts down or the peer stops
/// answering keep-alive pings.
pub(crate) async fn run<S>(mut socket: WebSocketStream<S>, mut session: Session)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let interval = session.state.sse().keep_alive();
    let mut timer = IdleTimer::new(interval, None);
    let mut last_heard = Instant::now();
    // A token of its own, so waiting on it never contends with the other connections.
    let shutdown = session.state.shutdown_token().child_token();
    loop {
        let wake = tokio::select! {
            biased;
            () = shutdown.cancelled() => Wake::Shutdown,
            incoming = socket.next() => match incoming {
                Some(Ok(message)) => Wake::Incoming(message),
                Some(Err(WsError::Capacity(_))) => Wake::TooBig,
                None | Some(Err(_)) => Wake::Gone,
            },
            Some((key, delivery)) = session.deliveries.next(), if !session.deliveries.is_empty() => {
                Wake::Delivery(key, delivery)
            }
            _ = timer.wait() => Wake::KeepAlive,
        };
        let out = match wake {
            Wake::Shutdown => {
                close(&mut socket, CloseCode::Away, "server shutting down").await;
                return;
            }
            Wake::Gone => return,
            Wake::TooBig => {
                close(&mut socket, CloseCode::Size, "message too big").await;
                return;
            }
            Wake::Incoming(message) => {
                last_heard = Instant::now();
                match message {
                    Message::Text(text) => session.command(text.as_str()).await,
                    Message::Binary(_) => {
                        vec![
                            Refusal::new(None, "binary messages are not accepted: send JSON text")
                                .to_json(),
                        ]
                    }
                    // Tungstenite answers pings and the closing handshake itself; the next
                    // read after a close ends the loop.
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                        Vec::new()
                    }
                }
            }
            Wake::Delivery(key, delivery) => session.deliver(key, delivery),
            Wake::KeepAlive => {
                if last_heard.elapsed() >= interval * SILENT_INTERVALS {
                    close(
                        &mut socket,
                        CloseCode::Away,
                        "no answer to keep-alive pings",
                    )
                    .await;
                    return;
                }
                let sent = tokio::select! {
                    sent = socket.send(Message::Ping(Default::default())) => sent.is_ok(),
                    () = shutdown.cancelled() => false,
                };
                if !sent {
                    return;
                }
                continue;
            }
        };
        if out.is_empty() {
            continue;
        }
        let sending = async {
            for message in out {
                socket.feed(Message::text(message)).await?;
            }
            socket.flush().await
        };
        let sent = tokio::select! {
            sent = sending => sent.is_ok(),
            // A client that stopped reading must not hold up shutdown.
            () = shutdown.cancelled() => false,
        };
        if !sent {
            return;
        }
        timer.frame_sent();
    }
}

/// Starts the closing handshake and gives the client a moment to complete it.
async fn close<S>(socket: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_BOUND, socket.close(Some(frame))).await;
}
