//! A fault-injecting TCP proxy on loopback, to put between the daemon and PostgreSQL or
//! nginx and break the network on demand.
//!
//! The proxy runs on its own thread with its own tokio runtime, so it works the same from
//! sync and async tests. The listening port never changes for the proxy's life.
//!
//! Modes ([`Proxy::set_mode`]) apply to new connections *and* to live ones:
//! - [`Mode::Pass`]: forward bytes both ways (stalled connections resume).
//! - [`Mode::Refuse`]: the port refuses connections (ECONNREFUSED: the listener is closed,
//!   the port stays reserved by a bound, non-listening socket); live connections are reset.
//! - [`Mode::Stall`]: a black hole. New connections are accepted but nothing is forwarded
//!   (not even connecting upstream); live connections stop forwarding. Nothing is closed.
//!   Going back to `Pass` resumes everything, with the bytes buffered meanwhile.
//! - [`Mode::Drop`]: accept and forward, but reset each connection after a random number
//!   of bytes (0..4096, both directions together) or a random 20..300 ms, whichever first.
//! - [`Mode::DropAfter(n)`]: like `Drop`, deterministically after `n` bytes, no timer.
//!
//! - [`Mode::Shaped`]: forward like `Pass` through an emulated link (see [`Shape`]): a
//!   bandwidth per direction and a round-trip time. Applies to connections accepted while
//!   it is set, for their whole life (a later mode change only cuts or shuts them down).
//!
//! [`Proxy::cut_all`] resets every live connection now (the mode stays). Dropping the
//! `Proxy` stops the thread, closes everything and frees the port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hash::{BuildHasher as _, Hasher as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Stall,
    Drop,
    DropAfter(usize),
    Shaped(Shape),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ctl {
    mode: Mode,
    /// Bumped by every `set_mode`; the accept loop acknowledges it in `Counters::applied`.
    seq: u64,
    cut_gen: u64,
    shutdown: bool,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    live: AtomicUsize,
    cut: AtomicU64,
    bytes: AtomicU64,
    applied: AtomicU64,
}

pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    ctl: watch::Sender<Ctl>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(1024)
}

/// A bound but non-listening socket: keeps the port reserved; connects get RST (refused).
fn bind_placeholder(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    Ok(s)
}

impl Proxy {
    /// Start a proxy on `127.0.0.1:{free port}` forwarding to `target` (must be loopback).
    /// Starts in [`Mode::Pass`].
    pub fn start(target: SocketAddr) -> Proxy {
        assert!(
            target.ip().is_loopback(),
            "the test proxy only forwards to loopback addresses, not {target}"
        );
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind proxy listener");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local_addr");
        let (tx, rx) = watch::channel(Ctl {
            mode: Mode::Pass,
            seq: 0,
            cut_gen: 0,
            shutdown: false,
        });
        let counters = Arc::new(Counters::default());
        let c2 = counters.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let thread = std::thread::Builder::new()
            .name(format!("test-proxy-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    accept_loop(listener, addr, target, rx, c2).await;
                });
                // Connection tasks watch `shutdown`; anything stuck is dropped here.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn proxy thread");
        Proxy {
            addr,
            target,
            ctl: tx,
            counters,
            thread: Some(thread),
        }
    }

    /// Start a proxy in front of `127.0.0.1:{port}`.
    pub fn to_port(port: u16) -> Proxy {
        Self::start(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Switch mode. Returns once the listener state matches (e.g. after `Refuse` the port
    /// refuses, after leaving it the port accepts again).
    pub fn set_mode(&self, mode: Mode) {
        let mut seq = 0;
        self.ctl.send_modify(|c| {
            c.mode = mode;
            c.seq += 1;
            seq = c.seq;
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.counters.applied.load(Ordering::SeqCst) < seq {
            assert!(
                std::time::Instant::now() < deadline,
                "test proxy on {} did not apply mode {mode:?} within 5 s",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn mode(&self) -> Mode {
        self.ctl.borrow().mode
    }

    /// Reset every live connection now (the mode is unchanged).
    pub fn cut_all(&self) {
        self.ctl.send_modify(|c| c.cut_gen += 1);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Connections accepted so far (any mode but Refuse).
    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open through the proxy.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::SeqCst)
    }

    /// Connections the proxy has reset (cut_all, Drop modes, Refuse on live connections).
    pub fn cuts(&self) -> u64 {
        self.counters.cut.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes_forwarded(&self) -> u64 {
        self.counters.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.ctl.send_modify(|c| c.shutdown = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut rx: watch::Receiver<Ctl>,
    counters: Arc<Counters>,
) {
    let mut listener = Some(listener);
    let mut placeholder: Option<TcpSocket> = None;
    loop {
        let ctl = *rx.borrow_and_update();
        if ctl.shutdown {
            return;
        }
        // Reconcile the listening state with the mode.
        if ctl.mode == Mode::Refuse {
            if listener.take().is_some() {
                placeholder = bind_placeholder(addr).ok();
            }
        } else if listener.is_none() {
            drop(placeholder.take());
            let mut tries = 0;
            loop {
                match bind_listener(addr) {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(e) if tries >= 50 => {
                        eprintln!("test proxy: cannot listen on {addr} again: {e}");
                        return;
                    }
                    Err(_) => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        counters.applied.store(ctl.seq, Ordering::SeqCst);
        match &listener {
            None => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            Some(l) => {
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    acc = l.accept() => {
                        if let Ok((stream, _)) = acc {
                            counters.accepted.fetch_add(1, Ordering::SeqCst);
                            let _ = stream.set_nodelay(true);
                            let rx = rx.clone();
                            let counters = counters.clone();
                            tokio::spawn(async move {
                                counters.live.fetch_add(1, Ordering::SeqCst);
                                handle(stream, target, rx, &counters).await;
                                counters.live.fetch_sub(1, Ordering::SeqCst);
                            });
                        }
                    }
                }
            }
        }
    }
}

enum End {
    /// Normal end (both sides closed, or upstream unreachable).
    Closed,
    /// Reset both sides.
    Cut,
}

fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn handle(
    mut client: TcpStream,
    target: SocketAddr,
    mut rx: watch::Receiver<Ctl>,
    counters: &Counters,
) {
    let start_gen = rx.borrow().cut_gen;
    // Wait (black hole) while stalled, before even connecting upstream.
    loop {
        let ctl = *rx.borrow_and_update();
        if ctl.shutdown || ctl.cut_gen != start_gen || ctl.mode == Mode::Refuse {
            counters.cut.fetch_add(1, Ordering::SeqCst);
            reset(&client);
            return;
        }
        if ctl.mode != Mode::Stall {
            break;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
    let mut upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target)).await {
            Ok(Ok(s)) => s,
            _ => {
                // Upstream down: behave like it (reset).
                reset(&client);
                return;
            }
        };
    let _ = upstream.set_nodelay(true);

    let mode = rx.borrow().mode;
    let end = match mode {
        Mode::Shaped(shape) => {
            shaped::forward(&mut client, &mut upstream, shape, rx, start_gen, counters).await
        }
        _ => forward(&mut client, &mut upstream, rx, start_gen, counters).await,
    };
    if let End::Cut = end {
        counters.cut.fetch_add(1, Ordering::SeqCst);
        reset(&client);
        reset(&upstream);
    }
}

/// Byte budget for the Drop modes (`None`: unlimited), shared by both directions.
struct Budget(Mutex<Option<usize>>);

impl Budget {
    fn new() -> Budget {
        Budget(Mutex::new(None))
    }

    /// Follow the mode: unlimited in Pass, a budget once Drop/DropAfter is seen.
    fn follow(&self, mode: Mode) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match mode {
            Mode::Drop if b.is_none() => *b = Some((random_u64() % 4096) as usize),
            Mode::DropAfter(n) if b.is_none() => *b = Some(n),
            Mode::Pass => *b = None,
            _ => {}
        }
    }

    /// How many of `n` bytes may pass; `None` when the budget is exhausted (cut now).
    fn take(&self, n: usize) -> Option<usize> {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match b.as_mut() {
            None => Some(n),
            Some(0) => None,
            Some(left) => {
                let k = n.min(*left);
                *left -= k;
                Some(k)
            }
        }
    }
}

async fn forward(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    rx: watch::Receiver<Ctl>,
    start_gen: u64,
    counters: &Counters,
) -> End {
    let budget = Budget::new();
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let a = pump(cr, uw, rx.clone(), start_gen, &budget, counters);
    let b = pump(ur, cw, rx.clone(), start_gen, &budget, counters);
    tokio::pin!(a, b);

    // A random timer for Mode::Drop, armed when the mode is (or becomes) Drop.
    let mut rx_timer = rx;
    let timer = async {
        loop {
            let ctl = *rx_timer.borrow_and_update();
            if ctl.mode == Mode::Drop {
                let ms = 20 + random_u64() % 280;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => return,
                    r = rx_timer.changed() => if r.is_err() { std::future::pending::<()>().await },
                }
            } else if rx_timer.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::pin!(timer);

    let mut a_done = false;
    let mut b_done = false;
    loop {
        tokio::select! {
            r = &mut a, if !a_done => match r { End::Cut => return End::Cut, End::Closed => a_done = true },
            r = &mut b, if !b_done => match r { End::Cut => return End::Cut, End::Closed => b_done = true },
            _ = &mut timer => return End::Cut,
        }
        if a_done && b_done {
            return End::Closed;
        }
    }
}

/// Copy one direction, obeying the mode. Returns `Closed` on EOF (after shutting down the
/// write side), `Cut` when the connection must be reset.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut rx: watch::Receiver<Ctl>,
    start_gen: u64,
    budget: &Budget,
    counters: &Counters,
) -> End
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let ctl = *rx.borrow_and_update();
        if ctl.shutdown || ctl.cut_gen != start_gen || ctl.mode == Mode::Refuse {
            return End::Cut;
        }
        if ctl.mode == Mode::Stall {
            if rx.changed().await.is_err() {
                return End::Cut;
            }
            continue;
        }
        budget.follow(ctl.mode);
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) => {
                    let _ = to.shutdown().await;
                    return End::Closed;
                }
                Ok(n) => n,
                Err(_) => return End::Cut,
            },
            r = rx.changed() => {
                if r.is_err() { return End::Cut; }
                continue;
            }
        };
        let Some(k) = budget.take(n) else {
            return End::Cut;
        };
        let write = async {
            to.write_all(&buf[..k]).await?;
            to.flush().await
        };
        // Finish the write even if the mode changes; only cut/shutdown interrupt it.
        let mut rx_w = rx.clone();
        let cut = async {
            loop {
                if rx_w.changed().await.is_err() {
                    return;
                }
                let c = *rx_w.borrow();
                if c.shutdown || c.cut_gen != start_gen || c.mode == Mode::Refuse {
                    return;
                }
            }
        };
        tokio::select! {
            r = write => if r.is_err() { return End::Cut },
            _ = cut => return End::Cut,
        }
        counters.bytes.fetch_add(k as u64, Ordering::SeqCst);
        if k < n {
            return End::Cut;
        }
    }
}

/// An emulated link for [`Mode::Shaped`]: what a kiosk on a mobile or venue network sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Client → upstream (the kiosk's upload), bits per second; 0: unlimited.
    pub up_bps: u64,
    /// Upstream → client, bits per second; 0: unlimited.
    pub down_bps: u64,
    /// Round trip: each direction is delayed by half of it, and a new connection waits one
    /// whole round trip before its first byte moves (the TCP handshake on the real link).
    pub rtt: Duration,
}

impl Shape {
    /// `up_mbit` Mbit/s up, `down_mbit` down (0: unlimited), `rtt_ms` round trip.
    pub fn new(up_mbit: f64, down_mbit: f64, rtt_ms: u64) -> Shape {
        Shape {
            up_bps: (up_mbit * 1e6) as u64,
            down_bps: (down_mbit * 1e6) as u64,
            rtt: Duration::from_millis(rtt_ms),
        }
    }
}

/// [`Mode::Shaped`]: each direction is a reader that stamps every chunk with the time the
/// link would deliver it (serialized at the direction's rate, then half the round trip)
/// and a writer that waits for that time. The queue between them is bounded (a link's
/// buffer): a sender faster than the link is slowed by TCP flow control, as on the real one.
mod shaped {
    use super::*;
    use tokio::time::Instant;

    /// Chunks waiting in one direction's link buffer (16 KiB each).
    const LINK_BUFFER_CHUNKS: usize = 16;

    pub(super) async fn forward(
        client: &mut TcpStream,
        upstream: &mut TcpStream,
        shape: Shape,
        rx: watch::Receiver<Ctl>,
        start_gen: u64,
        counters: &Counters,
    ) -> End {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        // The handshake's round trip on the emulated link.
        tokio::time::sleep(shape.rtt).await;
        let half = shape.rtt / 2;
        let up = direction(cr, uw, shape.up_bps, half, counters);
        let down = direction(ur, cw, shape.down_bps, half, counters);
        tokio::pin!(up, down);
        let mut rx = rx;
        let cut = async {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                let c = *rx.borrow();
                if c.shutdown || c.cut_gen != start_gen || c.mode == Mode::Refuse {
                    return;
                }
            }
        };
        tokio::pin!(cut);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut up, if !up_done => match r { End::Cut => return End::Cut, End::Closed => up_done = true },
                r = &mut down, if !down_done => match r { End::Cut => return End::Cut, End::Closed => down_done = true },
                _ = &mut cut => return End::Cut,
            }
            if up_done && down_done {
                return End::Closed;
            }
        }
    }

    /// One direction through the link: `None` in the queue is the sender's EOF.
    async fn direction<R, W>(
        mut from: R,
        mut to: W,
        bps: u64,
        delay: Duration,
        counters: &Counters,
    ) -> End
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let (tx, mut queue) =
            tokio::sync::mpsc::channel::<(Instant, Option<Vec<u8>>)>(LINK_BUFFER_CHUNKS);
        let read = async move {
            let mut link_free = Instant::now();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) => {
                        let at = link_free.max(Instant::now()) + delay;
                        let _ = tx.send((at, None)).await;
                        return End::Closed;
                    }
                    Ok(n) => n,
                    Err(_) => return End::Cut,
                };
                let start = link_free.max(Instant::now());
                // Unlimited (0): no serialization time.
                let on_wire = (n as u64 * 8 * 1_000_000_000).checked_div(bps);
                link_free = start + Duration::from_nanos(on_wire.unwrap_or(0));
                if tx
                    .send((link_free + delay, Some(buf[..n].to_vec())))
                    .await
                    .is_err()
                {
                    return End::Cut;
                }
            }
        };
        let write = async move {
            while let Some((at, chunk)) = queue.recv().await {
                tokio::time::sleep_until(at).await;
                let Some(chunk) = chunk else {
                    let _ = to.shutdown().await;
                    return End::Closed;
                };
                if to.write_all(&chunk).await.is_err() || to.flush().await.is_err() {
                    return End::Cut;
                }
                counters
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            End::Cut
        };
        let (r, w) = tokio::join!(read, write);
        match (r, w) {
            (End::Closed, End::Closed) => End::Closed,
            _ => End::Cut,
        }
    }
}
