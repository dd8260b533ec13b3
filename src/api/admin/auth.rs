//! The admin key check (shared with the fleet page's key), and the slow-down of addresses
//! that keep getting it wrong.
//!
//! The key is compared in constant time. Failed attempts are counted per client address
//! and each further failure from that address is delayed (up to a few seconds), so a
//! brute force over the localhost API crawls. Only wrong answers wait: the right key
//! passes at once even from an address that failed before (a staff member who mistyped
//! it is not punished, and the delay says nothing the 401 does not).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Stopwatch;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::api::error::{ApiError, ApiResult};
use crate::app::SharedApp;

/// What [`require_admin`] needs: the key to compare with, and the failures so far (the
/// router's own: one tracker per served router).
#[derive(Debug, Clone)]
pub struct AdminGuard {
    app: SharedApp,
    failures: Arc<AuthFailures>,
}

impl AdminGuard {
    pub fn new(app: SharedApp) -> AdminGuard {
        AdminGuard {
            app,
            failures: Arc::default(),
        }
    }
}

/// Failed admin attempts per address (bounded: old entries are forgotten).
#[derive(Debug, Default)]
pub struct AuthFailures(Mutex<HashMap<IpAddr, (u32, Stopwatch)>>);

impl AuthFailures {
    fn delay_for(&self, ip: IpAddr) -> Duration {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((n, at)) if at.elapsed() < Duration::from_secs(600) && *n >= 3 => {
                Duration::from_millis((250u64 << (n - 3).min(4)).min(4000))
            }
            _ => Duration::ZERO,
        }
    }
    fn fail(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
        }
        let e = map.entry(ip).or_insert((0, Stopwatch::start()));
        e.0 = e.0.saturating_add(1);
        e.1 = Stopwatch::start();
    }
    fn succeed(&self, ip: IpAddr) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }
}

fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Middleware: 401 unless the admin key is presented.
pub async fn require_admin(
    State(guard): State<AdminGuard>,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    let AdminGuard { app, failures } = &guard;
    let ip = peer_ip(&req);
    check_key(
        failures,
        ip,
        req.headers(),
        app.keys.admin_api_key.expose(),
        "admin key",
    )
    .await?;
    Ok(next.run(req).await)
}

/// The client's address as the server saw it (loopback when unknown).
pub fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Checks the key the request presents (`X-API-Key` or `Authorization: Bearer`) against
/// `expected` in constant time: 401 `unauthorized` when it is missing or wrong, after the
/// delay `ip`'s earlier failures earned (`name` says which key, in the messages). Shared by
/// the admin routes and the fleet page.
pub async fn check_key(
    failures: &AuthFailures,
    ip: IpAddr,
    headers: &HeaderMap,
    expected: &str,
    name: &str,
) -> ApiResult<()> {
    // The delay is decided before this attempt counts, and served only to a wrong one.
    let delay = failures.delay_for(ip);
    let slow_down = || async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    };
    let ok = match presented_key(headers) {
        Some(k) => bool::from(k.as_bytes().ct_eq(expected.as_bytes())),
        None => {
            failures.fail(ip);
            slow_down().await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("this route needs the {name} (X-API-Key or Authorization: Bearer)"),
            ));
        }
    };
    if !ok {
        failures.fail(ip);
        slow_down().await;
        tracing::warn!(%ip, "request with a wrong {name}");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("wrong {name}"),
        ));
    }
    failures.succeed(ip);
    Ok(())
}
