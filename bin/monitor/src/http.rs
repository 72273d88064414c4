//! HTTP: `GET /_health` (200 only when NATS and Redis are reachable) and `GET /metrics`
//! (Prometheus text, with `dispatch_monitor_dependency_up` set as each scrape is served), and
//! the runtime the HTTP server runs on ([`HttpRuntime`]).

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

/// The niceness of the HTTP server's threads: a busy API gets about a tenth of the CPU a
/// cycle's threads get when both want it, and all of it otherwise.
pub const HTTP_NICENESS: i32 = 10;

/// The HTTP server's own runtime: one worker thread at niceness [`HTTP_NICENESS`], so that
/// requests, however many, neither queue ahead of a cycle's tasks nor take its CPU. Dropping
/// it stops what runs on it.
pub struct HttpRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for HttpRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRuntime").finish_non_exhaustive()
    }
}

impl HttpRuntime {
    /// Starts the runtime's thread.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("http")
            .enable_all()
            .on_thread_start(lower_priority)
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Where to spawn the server and the clients it uses.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime is only taken when dropped")
            .handle()
    }
}

impl Drop for HttpRuntime {
    fn drop(&mut self) {
        // Allowed inside another runtime, unlike dropping it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Sets the calling thread's niceness to [`HTTP_NICENESS`] (no privilege is needed to lower a
/// priority); a failure is logged and the thread keeps its priority.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    // The crate maps 0..=99 linearly onto niceness 19..=-20 on Linux: 22 is niceness 10.
    let set = ThreadPriorityValue::try_from(22u8).and_then(|value| {
        thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(value))
            .map_err(|error| error.to_string())
    });
    if let Err(error) = set {
        tracing::warn!(
            %error,
            "cannot lower the HTTP thread's priority; it competes with the cycles"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The niceness of the calling thread (field 19 of `/proc/thread-self/stat`).
    fn niceness() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name, in parentheses, may hold spaces: count from after it.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        fields[16].parse().unwrap()
    }

    #[tokio::test]
    async fn the_http_runtime_runs_at_a_lower_priority() {
        let runtime = HttpRuntime::start().unwrap();
        let on_it = runtime.handle().spawn(async { niceness() }).await.unwrap();
        assert_eq!(on_it, HTTP_NICENESS);
        drop(runtime);
    }
}
