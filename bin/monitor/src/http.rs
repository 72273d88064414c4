//! HTTP: `GET /_health` (200 only when NATS and Redis are reachable) and `GET /metrics`
//! (Prometheus text, with `dispatch_monitor_dependency_up` set as each scrape is served).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::telemetry;
use metrics_exporter_prometheus::PrometheusHandle;

/// Reports whether each backing service is reachable.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// NATS is connected.
    async fn nats_up(&self) -> bool;
    /// Redis answers a PING.
    async fn redis_up(&self) -> bool;
    /// Whether each dependency's client is connected right now (no round trip), by the name
    /// `/metrics` gives it.
    fn connected(&self) -> [(&'static str, bool); 2];
}

/// The probe over the live connections.
#[derive(Debug, Clone)]
pub struct LiveProbe {
    /// The NATS client.
    pub nats: infra_nats::NatsClient,
    /// The Redis connection.
    pub redis: infra_redis::RedisConnection,
}

#[async_trait]
impl HealthProbe for LiveProbe {
    async fn nats_up(&self) -> bool {
        self.nats.is_connected()
    }

    async fn redis_up(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.redis.ping()).await,
            Ok(Ok(()))
        )
    }

    fn connected(&self) -> [(&'static str, bool); 2] {
        [
            ("nats", self.nats.is_connected()),
            ("redis", self.redis.is_connected()),
        ]
    }
}

#[derive(Clone)]
struct AppState {
    probe: Arc<dyn HealthProbe>,
    metrics: PrometheusHandle,
}

/// The router.
pub fn router(probe: Arc<dyn HealthProbe>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/_health", get(health))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { probe, metrics })
}

async fn health(State(state): State<AppState>) -> Response {
    let (nats, redis) = tokio::join!(state.probe.nats_up(), state.probe.redis_up());
    let word = |up: bool| if up { "up" } else { "down" };
    let body = serde_json::json!({ "nats": word(nats), "redis": word(redis) }).to_string();
    let status = if nats && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [("content-type", "application/json")], body).into_response()
}

/// `/metrics`, with each dependency's connection state as of this scrape.
async fn render_metrics(State(state): State<AppState>) -> Response {
    for (dependency, up) in state.probe.connected() {
        metrics::gauge!(telemetry::DEPENDENCY_UP, "dependency" => dependency).set(if up {
            1.0
        } else {
            0.0
        });
    }
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Serves the router on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
