//! The physical ceiling: a bare WebSocket server (tokio-tungstenite, small buffers) on
//! `127.0.0.1:0`, in this process, that only counts the frames it reads. The `frames`
//! client code drives it exactly as it drives Pulse, so Pulse's frames/s divided by
//! this one's says how much of the socket layer's capacity Pulse keeps.

use crate::client::SocketSize;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A running bare server; stops when dropped or [`BareServer::stop`]ped.
pub struct BareServer {
    pub addr: SocketAddr,
    frames: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl BareServer {
    /// Binds `127.0.0.1:0` and serves until stopped.
    pub async fn start() -> anyhow::Result<BareServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let frames = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (f, st) = (frames.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = st.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((tcp, _)) = accepted else { continue };
                tcp.set_nodelay(true).ok();
                let (f, st) = (f.clone(), st.clone());
                tokio::spawn(async move {
                    let size = SocketSize {
                        read_buffer: 4096,
                        write_buffer: 4096,
                    };
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(tcp, Some(size.config())).await
                    else {
                        return;
                    };
                    loop {
                        let msg = tokio::select! {
                            () = st.cancelled() => break,
                            m = ws.next() => m,
                        };
                        match msg {
                            Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                                f.fetch_add(1, Relaxed);
                            }
                            // A Close is answered by tungstenite; the stream then ends.
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
            }
        });
        Ok(BareServer { addr, frames, stop })
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Relaxed)
    }

    /// `ws://ADDR/v1/beacons` (the path is ignored).
    pub fn url(&self) -> String {
        format!("ws://{}/v1/beacons", self.addr)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
