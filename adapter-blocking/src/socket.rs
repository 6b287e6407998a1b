//! One thread per notification socket: connects, reads frames into the client's channel, and
//! between reads sends what the session asked for.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use genesys_notify_adapter_common::socket;
use genesys_notify_adapter_common::Origin;
use genesys_notify_core::{ConnId, Input, RequestError, Secret};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::Msg;

/// How often a reader looks for something to send while no frame arrives.
const POLL: Duration = Duration::from_millis(50);

pub(crate) struct Settings {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) max_frame_size: usize,
    pub(crate) connect_timeout: Duration,
}

enum Cmd {
    Text(String),
    Close(u16),
}

pub(crate) struct Handle {
    cmds: Sender<Cmd>,
    thread: JoinHandle<()>,
}

impl Handle {
    pub(crate) fn send(&self, text: String) {
        let _ = self.cmds.send(Cmd::Text(text));
    }

    /// Asks the thread to send a close frame and stop; returns the thread to join.
    pub(crate) fn close(self, code: u16) -> JoinHandle<()> {
        let _ = self.cmds.send(Cmd::Close(code));
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
    let thread = std::thread::Builder::new()
        .name(format!("genesys-socket-{}", conn.as_u64()))
        .spawn(move || run(conn, &url, tls, max, timeout, &tx, &rx))?;
    Ok(Handle { cmds, thread })
}

fn run(
    conn: ConnId,
    url: &Secret,
    tls: Arc<rustls::ClientConfig>,
    max_frame_size: usize,
    timeout: Duration,
    tx: &SyncSender<Msg>,
    cmds: &Receiver<Cmd>,
) {
    let mut ws = match open(url, tls, max_frame_size, timeout) {
        Ok(ws) => ws,
        Err(error) => {
            let _ = tx.send(Msg::Input(Input::ConnectFailed { conn, error }));
            return;
        }
    };
    if tx.send(Msg::Input(Input::Opened { conn })).is_err() {
        return;
    }
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
        match ws.read() {
            Ok(Message::Text(t)) => {
                let text = t.as_str().to_owned();
                if tx.send(Msg::Input(Input::Frame { conn, text })).is_err() {
                    return;
                }
            }
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
fn finish_closing(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>) {
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
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, RequestError> {
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
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| RequestError::network(format!("connect to {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(timeout));
    let config = WebSocketConfig::default()
        .read_buffer_size(64 << 10)
        .max_message_size(Some(max_frame_size))
        .max_frame_size(Some(max_frame_size));
    let connector = if secure {
        Connector::Rustls(tls)
    } else {
        Connector::Plain
    };
    let (ws, _) =
        tungstenite::client_tls_with_config(url.expose(), tcp, Some(config), Some(connector))
            .map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => socket::upgrade_error(&e),
                tungstenite::HandshakeError::Interrupted(_) => {
                    RequestError::network("the upgrade timed out")
                }
            })?;
    let stream = match ws.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    };
    if let Some(s) = stream {
        let _ = s.set_read_timeout(Some(POLL));
    }
    Ok(ws)
}
