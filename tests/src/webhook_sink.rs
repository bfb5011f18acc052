//! A webhook receiver on loopback for tests and the fan-out bench: it
//! checks every delivery's Standard Webhooks signature against the secrets
//! it was given, records what came (`webhook-id`, which secrets signed,
//! what it answered), and answers 500 to the first `fail_first` requests
//! (or to all while `always_fail`), then 200.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    /// Indexes (into the secrets given) of the secrets whose signature is
    /// in the header.
    pub signed_by: Vec<usize>,
    /// Entries in `webhook-signature`.
    pub signatures: usize,
    pub answered: u16,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct State {
    secrets: Mutex<Vec<String>>,
    fail_first: AtomicUsize,
    always_fail: AtomicBool,
    delay_ms: AtomicUsize,
    seen: AtomicUsize,
    log: Mutex<Vec<Received>>,
}

pub struct WebhookSink {
    pub port: u16,
    state: Arc<State>,
    server: actix_web::dev::ServerHandle,
}

/// `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`, computed here
/// independently of the service's code.
pub fn expected_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = B64
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let given: Vec<&str> = sig.split(' ').filter(|s| !s.is_empty()).collect();
    let signed_by: Vec<usize> = state
        .secrets
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, s)| given.contains(&expected_signature(s, &id, &ts, &body).as_str()))
        .map(|(i, _)| i)
        .collect();
    let delay = state.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let n = state.seen.fetch_add(1, Ordering::SeqCst);
    let fail =
        state.always_fail.load(Ordering::SeqCst) || n < state.fail_first.load(Ordering::SeqCst);
    let answered = if fail { 500 } else { 200 };
    state.log.lock().unwrap().push(Received {
        id,
        timestamp: ts.parse().unwrap_or_default(),
        signed_by,
        signatures: given.len(),
        answered,
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    if fail {
        HttpResponse::InternalServerError().body("not now")
    } else {
        HttpResponse::Ok().finish()
    }
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let state = Arc::new(State::default());
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(receive))
        })
        .workers(2)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        WebhookSink {
            port,
            state,
            server: handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The secrets signatures are checked against (index = position).
    pub fn trust(&self, secret: &str) {
        self.state.secrets.lock().unwrap().push(secret.to_owned());
    }

    pub fn fail_first(&self, n: usize) {
        self.state.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn always_fail(&self, on: bool) {
        self.state.always_fail.store(on, Ordering::SeqCst);
    }

    pub fn delay(&self, ms: usize) {
        self.state.delay_ms.store(ms, Ordering::Relaxed);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests answered 200, per `webhook-id`.
    pub fn accepted_by_id(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.received().iter().filter(|r| r.answered == 200) {
            *out.entry(r.id.clone()).or_default() += 1;
        }
        out
    }

    /// Waits until `n` distinct ids were answered 200 (fails after `secs`).
    pub async fn wait_accepted(&self, n: usize, secs: u64) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.accepted_by_id();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} webhooks accepted in {secs} s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        let h = self.server.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}
