//! Client WebSockets with small buffers (tungstenite's default 128 KiB per socket would
//! make 10 000 viewers cost over a gigabyte), the trusted-token header, and clear
//! errors for the file-descriptor limit.

use anyhow::{Context, bail};
use std::io;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A client WebSocket over plain TCP.
pub type Socket = WebSocketStream<TcpStream>;

/// Buffer sizes of one client socket.
#[derive(Clone, Copy, Debug)]
pub struct SocketSize {
    pub read_buffer: usize,
    pub write_buffer: usize,
}

impl SocketSize {
    /// Players: they send an event every few seconds and read almost nothing.
    pub const VIEWER: SocketSize = SocketSize {
        read_buffer: 1024,
        write_buffer: 0,
    };
    /// Senders that stream frames as fast as the server takes them.
    pub const SENDER: SocketSize = SocketSize {
        read_buffer: 4096,
        write_buffer: 16 * 1024,
    };

    /// The tungstenite configuration; `max_frame` bounds what the server may send us.
    pub fn config(self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer)
            .write_buffer_size(self.write_buffer)
            .max_write_buffer_size(self.write_buffer + 1024 * 1024)
            .max_message_size(Some(256 * 1024))
            .max_frame_size(Some(256 * 1024))
    }
}

/// A connect failure that should stop the run rather than be counted.
#[derive(Debug)]
pub struct FatalConnectError(pub String);

impl std::fmt::Display for FatalConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FatalConnectError {}

fn is_fd_exhausted(e: &io::Error) -> bool {
    // EMFILE (24): per-process limit; ENFILE (23): system-wide.
    matches!(e.raw_os_error(), Some(23 | 24))
}

fn fd_error() -> anyhow::Error {
    anyhow::Error::new(FatalConnectError(format!(
        "out of file descriptors (EMFILE): the open-files limit is {}; raise it before the run, e.g. `ulimit -n 65536`",
        nofile_limit().map_or("unknown".to_string(), |n| n.to_string())
    )))
}

/// Opens `url` (a `ws://` URL on loopback), with `Authorization: Bearer <token>` on the
/// upgrade request when a token is given. EMFILE/ENFILE become a [`FatalConnectError`].
pub async fn connect(url: &str, token: Option<&str>, size: SocketSize) -> anyhow::Result<Socket> {
    let mut request = url
        .into_client_request()
        .context("building the upgrade request")?;
    if let Some(t) = token {
        let v = HeaderValue::from_str(&format!("Bearer {t}"))
            .context("--token is not a valid header value")?;
        request.headers_mut().insert("authorization", v);
    }
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .context("URL without host")?;
    let tcp = match TcpStream::connect(&host).await {
        Ok(s) => s,
        Err(e) if is_fd_exhausted(&e) => return Err(fd_error()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("connecting to {host}"))),
    };
    tcp.set_nodelay(true).ok();
    match tokio_tungstenite::client_async_with_config(request, tcp, Some(size.config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Io(e)) if is_fd_exhausted(&e) => Err(fd_error()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("WebSocket upgrade at {url}"))),
    }
}

/// The soft open-files limit of this process (from `/proc/self/limits`), if readable.
pub fn nofile_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// Fails early, with the fix in the message, when `sockets` connections (plus some
/// headroom) cannot fit under the open-files limit.
pub fn check_fd_budget(sockets: usize) -> anyhow::Result<()> {
    let need = sockets as u64 + 64;
    if let Some(limit) = nofile_limit()
        && limit < need
    {
        bail!(
            "{sockets} connections need about {need} file descriptors but the open-files limit is {limit}: run `ulimit -n {}` first (the server needs as many)",
            need.next_power_of_two().max(65536)
        );
    }
    Ok(())
}
