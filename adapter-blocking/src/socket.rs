//! One thread per notification socket: connects, reads frames into the client's channel, and
//! between reads sends what the session asked for.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use genesys_notify_adapter_common::socket;
use genesys_notify_adapter_common::Origin;
use genesys_notify_core::{ConnId, Input, RequestError, Secret};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::{InboxBytes, Msg};

/// How often a reader looks for something to send while no frame arrives.
const POLL: Duration = Duration::from_millis(50);

/// How long a reader waits before it looks again for room in a full inbox.
const INBOX_WAIT: Duration = Duration::from_millis(2);

pub(crate) struct Settings {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) max_frame_size: usize,
    /// The whole opening — TCP connect, TLS and the HTTP upgrade — must finish within this,
    /// however the peer paces its bytes.
    pub(crate) connect_timeout: Duration,
    /// The inbox's byte budget, shared by every socket of the client.
    pub(crate) inbox: InboxBytes,
}

/// Where a socket's opening stands, shared with its [`Handle`]: a close shuts the TCP stream
/// of a handshake in progress down, so the thread blocked in it wakes up at once instead of
/// at its deadline.
enum Phase {
    /// Resolving and connecting.
    Connecting,
    /// In the TLS and HTTP handshake, over this stream.
    Handshake(TcpStream),
    /// Closed by the session before it opened.
    Closed,
    /// Opened or failed: the thread goes on by itself.
    Settled,
}

type Opening = Arc<Mutex<Phase>>;

fn phase(o: &Opening) -> std::sync::MutexGuard<'_, Phase> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// A TCP stream whose reads and writes fail once `deadline` has passed: the opening's total
/// deadline, which per-read timeouts alone cannot give (a peer that sends one byte a second
/// never lets a read time out). `None` once the socket is open.
struct Stream {
    tcp: TcpStream,
    deadline: Option<Instant>,
}

impl Stream {
    /// The time left before the deadline, as an I/O error once there is none.
    fn left(&self) -> std::io::Result<Option<Duration>> {
        let Some(d) = self.deadline else {
            return Ok(None);
        };
        let left = d.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the socket did not open in time",
            ));
        }
        Ok(Some(left))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(left) = self.left()? {
            self.tcp.set_read_timeout(Some(left))?;
        }
        self.tcp.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(left) = self.left()? {
            self.tcp.set_write_timeout(Some(left))?;
        }
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

enum Cmd {
    Text(String),
    Close(u16),
}

pub(crate) struct Handle {
    cmds: Sender<Cmd>,
    thread: JoinHandle<()>,
    opening: Opening,
}

impl Handle {
    pub(crate) fn send(&self, text: String) {
        let _ = self.cmds.send(Cmd::Text(text));
    }

    /// Asks the thread to send a close frame and stop; returns the thread to join. A socket
    /// still opening is shut down, so its thread ends at once.
    pub(crate) fn close(self, code: u16) -> JoinHandle<()> {
        let _ = self.cmds.send(Cmd::Close(code));
        let mut p = phase(&self.opening);
        match std::mem::replace(&mut *p, Phase::Closed) {
            Phase::Handshake(tcp) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            Phase::Connecting | Phase::Closed => {}
            Phase::Settled => *p = Phase::Settled,
        }
        drop(p);
        self.thread
    }

    /// The thread, which has reported its socket's end and is finishing.
    pub(crate) fn into_thread(self) -> JoinHandle<()> {
        self.thread
    }
}

/// Starts the socket's thread; fails only if the OS refuses a thread.
pub(crate) fn spawn(
    conn: ConnId,
    url: Secret,
    settings: &Settings,
    tx: SyncSender<Msg>,
) -> std::io::Result<Handle> {
    let (cmds, rx) = mpsc::channel();
    let tls = Arc::clone(&settings.tls);
    let max = settings.max_frame_size;
    let timeout = settings.connect_timeout;
    let opening: Opening = Arc::new(Mutex::new(Phase::Connecting));
    let theirs = Arc::clone(&opening);
    let inbox = settings.inbox.clone();
    let thread = std::thread::Builder::new()
        .name(format!("genesys-socket-{}", conn.as_u64()))
        .spawn(move || {
            let link = Link {
                conn,
                tx: &tx,
                inbox: &inbox,
            };
            run(&link, &url, tls, max, timeout, &theirs, &rx);
        })?;
    Ok(Handle {
        cmds,
        thread,
        opening,
    })
}

/// Where a socket's thread sends what it reads.
struct Link<'a> {
    conn: ConnId,
    tx: &'a SyncSender<Msg>,
    inbox: &'a InboxBytes,
}

fn run(
    link: &Link<'_>,
    url: &Secret,
    tls: Arc<rustls::ClientConfig>,
    max_frame_size: usize,
    timeout: Duration,
    opening: &Opening,
    cmds: &Receiver<Cmd>,
) {
    let (conn, tx) = (link.conn, link.tx);
    let opened = open(url, tls, max_frame_size, timeout, opening);
    {
        let mut p = phase(opening);
        if matches!(*p, Phase::Closed) {
            // The session gave up on this socket: it waits for no answer.
            return;
        }
        *p = Phase::Settled;
    }
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(error) => {
            let _ = tx.send(Msg::Input(Input::ConnectFailed { conn, error }));
            return;
        }
    };
    if tx.send(Msg::Input(Input::Opened { conn })).is_err() {
        return;
    }
    // A frame read but not handed on yet: the inbox is full of frames the driver has not
    // handled, and this thread stops reading (TCP pushes back) until it has room.
    let mut held: Option<String> = None;
    loop {
        loop {
            match cmds.try_recv() {
                Ok(Cmd::Text(t)) => {
                    if ws.send(Message::text(t)).is_err() {
                        break;
                    }
                }
                Ok(Cmd::Close(code)) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: "".into(),
                    };
                    let _ = ws.close(Some(frame));
                    let _ = ws.flush();
                    finish_closing(&mut ws);
                    return;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    return;
                }
            }
        }
        if let Some(text) = held.take() {
            match link.inbox.try_take(text.len()) {
                Some(place) => {
                    if tx
                        .send(Msg::Read(Input::Frame { conn, text }, place))
                        .is_err()
                    {
                        return;
                    }
                }
                None => {
                    held = Some(text);
                    std::thread::sleep(INBOX_WAIT);
                }
            }
            continue;
        }
        match ws.read() {
            Ok(Message::Text(t)) => held = Some(t.as_str().to_owned()),
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((None, String::new()), |f| {
                    (Some(u16::from(f.code)), f.reason.as_str().to_owned())
                });
                let _ = tx.send(Msg::Input(Input::Closed { conn, code, reason }));
                return;
            }
            Ok(_) => {}
            Err(e) if poll_timed_out(&e) => {}
            Err(e) => {
                let reason = socket::describe(&e);
                let _ = tx.send(Msg::Input(Input::Closed {
                    conn,
                    code: None,
                    reason,
                }));
                return;
            }
        }
    }
}

/// True when a read ended only because the poll interval passed.
fn poll_timed_out(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

/// How long a closing socket waits for the server's close reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_millis(500);

/// After our close frame: read (and drop) what the server still sends until its close reply,
/// at most [`CLOSE_REPLY_WAIT`]. Leaving with unread data would make the kernel reset the
/// connection, and a reset can discard our close frame before a busy server has read it.
fn finish_closing(ws: &mut WebSocket<MaybeTlsStream<Stream>>) {
    let until = std::time::Instant::now() + CLOSE_REPLY_WAIT;
    while std::time::Instant::now() < until {
        match ws.read() {
            Ok(_) => {}
            Err(e) if poll_timed_out(&e) => {}
            Err(_) => return,
        }
    }
}

fn open(
    url: &Secret,
    tls: Arc<rustls::ClientConfig>,
    max_frame_size: usize,
    timeout: Duration,
    opening: &Opening,
) -> Result<WebSocket<MaybeTlsStream<Stream>>, RequestError> {
    let deadline = Instant::now() + timeout;
    let origin =
        Origin::parse(url.expose()).map_err(|_| RequestError::network("unusable connectUri"))?;
    let secure = origin.scheme == "wss";
    let port = origin.port.unwrap_or(if secure { 443 } else { 80 });
    let host = origin
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| RequestError::network(format!("cannot resolve the streaming host: {e}")))?
        .next()
        .ok_or_else(|| RequestError::network("the streaming host has no address"))?;
    let left = deadline.saturating_duration_since(Instant::now());
    let tcp = TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1)))
        .map_err(|e| RequestError::network(format!("connect to {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    {
        let mut p = phase(opening);
        if matches!(*p, Phase::Closed) {
            return Err(RequestError::network("closed while opening"));
        }
        let clone = tcp
            .try_clone()
            .map_err(|e| RequestError::network(format!("socket: {e}")))?;
        *p = Phase::Handshake(clone);
    }
    let tcp = Stream {
        tcp,
        deadline: Some(deadline),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(64 << 10)
        .max_message_size(Some(max_frame_size))
        .max_frame_size(Some(max_frame_size));
    let connector = if secure {
        Connector::Rustls(tls)
    } else {
        Connector::Plain
    };
    let (mut ws, _) =
        tungstenite::client_tls_with_config(url.expose(), tcp, Some(config), Some(connector))
            .map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => socket::upgrade_error(&e),
                tungstenite::HandshakeError::Interrupted(_) => {
                    RequestError::network("the upgrade timed out")
                }
            })?;
    let stream = match ws.get_mut() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_mut()),
        _ => None,
    };
    if let Some(s) = stream {
        s.deadline = None;
        let _ = s.tcp.set_read_timeout(Some(POLL));
        let _ = s.tcp.set_write_timeout(None);
    }
    Ok(ws)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server that answers every connection with one byte of an HTTP answer every 500 ms
    /// (for half a minute): no read of a second times out, and no handshake finishes. Counts
    /// the connections it holds.
    fn dripper() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/channels/x", listener.local_addr().unwrap());
        let held = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&held);
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let count = Arc::clone(&count);
                std::thread::spawn(move || {
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ".iter();
                    for b in answer.chain(std::iter::repeat(&b'a')).take(60) {
                        if conn.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (url, held)
    }

    fn settings(timeout: Duration) -> Settings {
        Settings {
            tls: genesys_notify_adapter_common::socket::tls_config(None).unwrap(),
            max_frame_size: 1 << 20,
            connect_timeout: timeout,
            inbox: InboxBytes::default(),
        }
    }

    #[test]
    fn an_opening_that_drips_fails_at_its_deadline() {
        let (url, _) = dripper();
        let (tx, rx) = mpsc::sync_channel(8);
        let conn = ConnId::from_u64(1);
        let h = spawn(
            conn,
            Secret::new(url),
            &settings(Duration::from_secs(2)),
            tx,
        )
        .unwrap();
        // The drip would last half a minute; the deadline is two seconds.
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Msg::Input(Input::ConnectFailed { conn: c, .. })) => assert_eq!(c, conn),
            Ok(_) => panic!("something other than a failed connect"),
            Err(e) => panic!("the opening did not end at its deadline: {e}"),
        }
        h.into_thread().join().unwrap();
    }

    #[test]
    fn a_close_interrupts_an_opening_and_releases_its_connection() {
        let (url, held) = dripper();
        let (tx, _rx) = mpsc::sync_channel(8);
        let h = spawn(
            ConnId::from_u64(2),
            Secret::new(url),
            &settings(Duration::from_secs(60)),
            tx,
        )
        .unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while held.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < until, "never connected");
            std::thread::sleep(Duration::from_millis(10));
        }
        let thread = h.close(1000);
        let until = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() {
            assert!(
                Instant::now() < until,
                "the socket thread is still in its handshake after a close"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        thread.join().unwrap();
        while held.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < until, "the connection was not released");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
