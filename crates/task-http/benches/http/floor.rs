//! The least a fan-out can cost on this machine, for scenario 2: one thread writes a frame to
//! each of `subscribers` plain loopback sockets in turn (blocking writes, no HTTP, no async
//! runtime), and one thread reads them all with epoll (`mio`), recording when each frame
//! arrived. Nothing else runs on its sockets: no HTTP library, no task per connection, no
//! parsing. Any SSE server whose clients share the machine's cores pays at least this.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::latency::Percentiles;

/// How long the reader waits for a frame before deciding the floor run is broken.
const STALL: Duration = Duration::from_secs(10);

/// Runs `rounds` fan-outs of a `frame_len`-byte frame to `subscribers` connections, one every
/// `interval`, and returns the latency percentiles from the start of each write pass to each
/// frame's arrival. Blocking: run it on a thread of its own.
pub fn measure(
    subscribers: usize,
    frame_len: usize,
    rounds: usize,
    interval: Duration,
) -> Percentiles {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let mut senders = Vec::with_capacity(subscribers);
    let mut receivers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        // As the servers under test set it: each frame leaves at once.
        server.set_nodelay(true).expect("TCP_NODELAY");
        client.set_nonblocking(true).expect("non-blocking");
        senders.push(server);
        receivers.push(mio::net::TcpStream::from_std(client));
    }
    let base = Instant::now();
    // When the current pass started, in nanoseconds since `base`.
    let pass_started = Arc::new(AtomicU64::new(0));
    let reader = {
        let pass_started = Arc::clone(&pass_started);
        std::thread::spawn(move || read_all(receivers, frame_len, rounds, base, &pass_started))
    };
    let frame = vec![b'x'; frame_len];
    for _ in 0..rounds {
        std::thread::sleep(interval);
        pass_started.store(base.elapsed().as_nanos() as u64, Ordering::Release);
        for sender in &mut senders {
            sender.write_all(&frame).expect("send the frame");
        }
    }
    let latencies = reader.join().expect("the floor's reader thread");
    Percentiles::of(latencies, subscribers * rounds)
}

/// Reads every frame of every round from `receivers`; returns each frame's latency.
fn read_all(
    mut receivers: Vec<mio::net::TcpStream>,
    frame_len: usize,
    rounds: usize,
    base: Instant,
    pass_started: &AtomicU64,
) -> Vec<Duration> {
    let mut poll = Poll::new().expect("epoll");
    for (index, receiver) in receivers.iter_mut().enumerate() {
        poll.registry()
            .register(receiver, Token(index), Interest::READABLE)
            .expect("register a socket");
    }
    let expected = receivers.len() * rounds;
    let mut latencies = Vec::with_capacity(expected);
    let mut pending = vec![0usize; receivers.len()];
    let mut events = Events::with_capacity(1024);
    let mut buffer = vec![0u8; 16 * 1024];
    while latencies.len() < expected {
        poll.poll(&mut events, Some(STALL)).expect("poll");
        assert!(!events.is_empty(), "the floor's frames stopped arriving");
        for event in &events {
            let index = event.token().0;
            // Edge-triggered: read until the socket is empty.
            loop {
                match receivers[index].read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => {
                        pending[index] += read;
                        while pending[index] >= frame_len {
                            pending[index] -= frame_len;
                            let now = base.elapsed().as_nanos() as u64;
                            let started = pass_started.load(Ordering::Acquire);
                            latencies.push(Duration::from_nanos(now.saturating_sub(started)));
                        }
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) => panic!("the floor's reader failed: {error}"),
                }
            }
        }
    }
    latencies
}
