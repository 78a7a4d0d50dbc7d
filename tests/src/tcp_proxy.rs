//! A TCP proxy that can cut every connection passing through it at once, to put a broker
//! blip between a process under test and the real RabbitMQ (or Redis): the process sees
//! its connection reset, and connections it opens afterwards go through again.
//!
//! Real: the broker behind it and every byte exchanged. Shaped: the loss of the
//! connection, which the proxy causes by closing both sockets.
//!
//! [`TcpProxy::cut_when_sent`] cuts at a chosen step of the client's conversation instead of
//! at a chosen time: at the first write of the client that holds a given byte string (an
//! AMQP frame carries its queue names, routing keys and argument names in plain bytes),
//! which is then never delivered.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy on `127.0.0.1:<free port>`; dropping it stops it.
pub struct TcpProxy {
    port: u16,
    cuts: Arc<watch::Sender<u64>>,
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
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
        let trigger: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let t = trigger.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = c.subscribe();
                let upstream = upstream.clone();
                let (cuts, trigger) = (c.clone(), t.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upward = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let hit = {
                                let mut armed = trigger.lock().unwrap();
                                let hit = armed
                                    .as_deref()
                                    .is_some_and(|needle| contains(&buf[..n], needle));
                                if hit {
                                    *armed = None;
                                }
                                hit
                            };
                            if hit {
                                cuts.send_modify(|n| *n += 1);
                                return;
                            }
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let downward = tokio::io::copy(&mut server_read, &mut client_write);
                    tokio::select! {
                        _ = upward => {}
                        _ = downward => {}
                        _ = cut.changed() => {}
                    }
                    // Dropping both sockets closes them: the peer sees its connection gone.
                });
            }
        });
        Ok(TcpProxy {
            port,
            cuts,
            trigger,
            accept,
        })
    }

    /// The port to connect to instead of the upstream's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every connection open now; later ones are forwarded as before.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Once: the first client write holding `needle` is dropped and every connection open
    /// then is closed (the client's step never reaches the server); later ones pass.
    pub fn cut_when_sent(&self, needle: &[u8]) {
        *self.trigger.lock().unwrap() = Some(needle.to_vec());
    }

    /// Whether a [`TcpProxy::cut_when_sent`] is still waiting for its bytes.
    pub fn armed(&self) -> bool {
        self.trigger.lock().unwrap().is_some()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
