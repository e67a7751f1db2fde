//! A real HTTP auth hook for the tests: hyper on a loopback port, on a
//! runtime of its own (so it serves while a test blocks on a client
//! program). It knows users and their passwords and answers as a real hook
//! would, or as a broken one would when told to (a status, a slow answer, a
//! malformed body); it records every request it was sent.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use serde_json::Value;

use super::httpd::{Answer, Httpd};

/// How the hook answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with the user's answer for the right password, 403 otherwise.
    Normal,
    /// This status and an empty body, whatever is asked.
    Status(u16),
    /// As `Normal`, after this long.
    Slow(Duration),
    /// 200 with this body, whatever is asked.
    Body(String),
}

/// One request the hook received: its JSON body and Authorization header.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// name -> (password, the JSON user answered)
    users: HashMap<String, (String, Value)>,
    mode: Option<Mode>,
    received: Vec<Received>,
}

pub struct Hook {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Httpd,
}

impl Hook {
    pub fn start() -> Hook {
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        let server = Httpd::serve(0, move |req| answer(served.clone(), req));
        Hook {
            addr: server.addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/login", self.addr)
    }

    /// Adds a user the hook accepts with `password`, answering `user`.
    pub fn add(&self, name: &str, password: &str, user: Value) {
        self.state
            .lock()
            .expect("hook state")
            .users
            .insert(name.to_string(), (password.to_string(), user));
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().expect("hook state").mode = Some(mode);
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("hook state").received.clone()
    }

    /// How many requests named `user`.
    pub fn asked_for(&self, user: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.body["user"] == user)
            .count()
    }

    /// Stops serving: its port then refuses connections.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

async fn answer(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Answer {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (mode, known) = {
        let mut state = state.lock().expect("hook state");
        state.received.push(Received {
            body: body.clone(),
            authorization,
        });
        let name = body["user"].as_str().unwrap_or_default();
        (
            state.mode.clone().unwrap_or(Mode::Normal),
            state.users.get(name).cloned(),
        )
    };
    let respond = |status: u16, text: String| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(text)))
            .expect("response"))
    };
    match mode {
        Mode::Status(status) => return respond(status, String::new()),
        Mode::Body(text) => return respond(200, text),
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Normal => {}
    }
    let name = body["user"].as_str().unwrap_or_default();
    let proven = match (&known, body["password"].as_str()) {
        (Some((password, _)), Some(given)) => password == given,
        (Some(_), None) => body["certificate_names"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == name)),
        (None, _) => false,
    };
    match known {
        Some((_, user)) if proven => respond(200, user.to_string()),
        _ => respond(403, r#"{"error":"no"}"#.into()),
    }
}
