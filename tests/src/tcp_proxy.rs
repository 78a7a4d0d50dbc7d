//! A TCP proxy that can cut every connection passing through it at once, to put a broker
//! blip between a process under test and the real RabbitMQ (or Redis): the process sees
//! its connection reset, and connections it opens afterwards go through again.
//!
//! Real: the broker behind it and every byte exchanged. Shaped: the loss of the
//! connection, which the proxy causes by closing both sockets.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy on `127.0.0.1:<free port>`; dropping it stops it.
pub struct TcpProxy {
    port: u16,
    cuts: Arc<watch::Sender<u64>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the TCP proxy's port")?;
        let port = listener.local_addr()?.port();
        let (cuts, _) = watch::channel(0u64);
        let cuts = Arc::new(cuts);
        let upstream = upstream.to_string();
        let c = cuts.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = c.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                    // Dropping both sockets closes them: the peer sees its connection gone.
                });
            }
        });
        Ok(TcpProxy { port, cuts, accept })
    }

    /// The port to connect to instead of the upstream's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every connection open now; later ones are forwarded as before.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
