//! A real HTTP server for the tests (the auth hook, the event receiver):
//! hyper on a loopback port, on a runtime and thread of its own, so it
//! serves while a test blocks on a client program. Stops when dropped.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub type Answer = Result<Response<Full<Bytes>>, Infallible>;

pub struct Httpd {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Httpd {
    /// Serves `handle` on 127.0.0.1:`port` (0: any free port).
    pub fn serve<F, Fut>(port: u16, handle: F) -> Httpd
    where
        F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("HTTP server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("HTTP server binds");
                ready
                    .send(listener.local_addr().expect("HTTP server address"))
                    .expect("ready");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let handle = handle.clone();
                        tokio::spawn(async move {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service_fn(handle))
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        let addr = bound
            .recv_timeout(Duration::from_secs(10))
            .expect("HTTP server listening");
        Httpd {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops serving: its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        self.stop();
    }
}
