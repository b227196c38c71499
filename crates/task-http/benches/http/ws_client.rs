//! The load generator's WebSocket client: one `/api/ws` connection per simulated client, with a
//! bearer token, subscribed to one task (tokio-tungstenite, the crate the server uses too).

use std::net::SocketAddr;

use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// An open `/api/ws` connection.
pub type Socket = WebSocketStream<TcpStream>;

/// Opens `/api/ws` as the holder of `token` and subscribes to `task_id` (id `t`).
pub async fn subscribe_task(addr: SocketAddr, token: &str, task_id: &str) -> Socket {
    let mut request = format!("ws://{addr}/api/ws")
        .into_client_request()
        .expect("a WebSocket request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"),
    );
    let tcp = TcpStream::connect(addr)
        .await
        .expect("connect to the bench server");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    // A small read buffer: thousands of these live in the bench process.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .expect("the WebSocket handshake");
    let subscribe =
        format!(r#"{{"type":"subscribe","id":"t","topic":"task","taskId":"{task_id}"}}"#);
    socket
        .send(Message::text(subscribe))
        .await
        .expect("send the subscription");
    socket
}

/// The `version` of an `event` message, read without parsing the whole message (the server
/// writes it right after the subscription id), so the client's cost stays close to the SSE
/// clients' `id:` line.
pub fn version_of(message: &str) -> Option<i64> {
    let start = message.find(",\"version\":")? + ",\"version\":".len();
    let digits = message[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    message[start..start + digits].parse().ok()
}
