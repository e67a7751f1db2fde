//! A real webhook receiver for the event tests: hyper on a loopback port of
//! its own runtime, checking each request's HMAC-SHA256 signature and
//! timestamp as a careful receiver would (401 when they do not hold), keeping
//! events by id (duplicates counted), and able to fail with a status for a
//! number of requests, or stop and start again on the same port.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::Value;
use sha2::Sha256;

use super::httpd::{Answer, Httpd};

#[derive(Default)]
struct State {
    /// Events by id, in first-arrival order of their ids.
    events: BTreeMap<String, Value>,
    order: Vec<String>,
    duplicates: usize,
    bad_signatures: usize,
    /// Answer this status to the next `n` requests.
    fail: Option<(u16, usize)>,
    requests: usize,
}

pub struct Receiver {
    pub port: u16,
    secret: String,
    state: Arc<Mutex<State>>,
    server: Option<Httpd>,
}

impl Receiver {
    pub fn start(secret: &str) -> Receiver {
        let port = super::clients::free_port();
        let mut receiver = Receiver {
            port,
            secret: secret.to_string(),
            state: Arc::new(Mutex::new(State::default())),
            server: None,
        };
        receiver.resume();
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.port)
    }

    /// Serves (again) on the same port.
    pub fn resume(&mut self) {
        if self.server.is_none() {
            let (state, secret) = (self.state.clone(), self.secret.clone());
            self.server = Some(Httpd::serve(self.port, move |req| {
                answer(state.clone(), secret.clone(), req)
            }));
        }
    }

    /// Stops serving: its port then refuses connections.
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Answers `status` to the next `n` requests (none: 0).
    pub fn fail_next(&self, status: u16, n: usize) {
        self.lock().fail = (n > 0).then_some((status, n));
    }

    /// Every distinct event, in order of first arrival.
    pub fn events(&self) -> Vec<Value> {
        let state = self.lock();
        state
            .order
            .iter()
            .map(|id| state.events[id].clone())
            .collect()
    }

    pub fn duplicates(&self) -> usize {
        self.lock().duplicates
    }

    pub fn bad_signatures(&self) -> usize {
        self.lock().bad_signatures
    }

    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Waits (bounded) until `n` distinct events arrived; all of them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} events arrived in {limit:?}: {events:#?}",
                events.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("receiver state")
    }
}

/// The signature check a receiver does: `t=<unix>,v1=<hex>` must be
/// HMAC-SHA256(secret, "<t>.<body>") and `t` within five minutes.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut time = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => time = v.parse::<u64>().ok(),
            Some(("v1", v)) => sig = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(time), Some(sig)) = (time, sig) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if now.abs_diff(time) > 300 {
        return false;
    }
    let Ok(expected) = (0..sig.len() / 2)
        .map(|i| u8::from_str_radix(sig.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{time}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn answer(
    state: Arc<Mutex<State>>,
    secret: String,
    req: Request<hyper::body::Incoming>,
) -> Answer {
    let signature = req
        .headers()
        .get("x-s3ftp-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let header_id = req
        .headers()
        .get("x-s3ftp-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let respond = |status: u16| {
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("response"))
    };
    let mut state = state.lock().expect("receiver state");
    state.requests += 1;
    if let Some((status, n)) = state.fail {
        state.fail = (n > 1).then_some((status, n - 1));
        return respond(status);
    }
    if !verify(&secret, &signature, &body) {
        state.bad_signatures += 1;
        return respond(401);
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return respond(400);
    };
    let id = event["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(id, header_id, "the id header names the event");
    if state.events.insert(id.clone(), event).is_some() {
        state.duplicates += 1;
    } else {
        state.order.push(id);
    }
    respond(200)
}
