//! The operator API (SPEC §14) under `/api/v1`, its OpenAPI 3.1 document at `/openapi.json`
//! (generated from the handlers and the response types, so it cannot drift), Swagger UI at
//! `/docs` (its assets are in the binary), and the dashboard at `/`.
//!
//! Reads come from the journal every replica writes, so any replica answers for all. The
//! endpoints that act (the cycle trigger, opt-outs and pauses) need
//! `Authorization: Bearer <MONITOR_API_TOKEN>`, compared in constant time and never logged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::journal::{CycleRecord, DispatchHistory, DispatchSnapshot, Journal, JournalEntry};
use domain::ports::VendorLease;
use domain::{DispatchNumber, Engine, Status};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::plan::PlanRow;
use crate::service::{Triggered, VendorControl};
use crate::settings::values::ApiToken;

mod dispatch_lists;
mod document;
mod mask;
mod plans;
mod safeguards;

pub use dispatch_lists::{DispatchLists, LIST_REUSE};
pub use document::DISPATCH_NUMBER_PATTERN;

pub use mask::{Masker, mask_phones};
pub use plans::{PLAN_REUSE, PlanCache};
pub use safeguards::{MAX_REASON_CHARS, OptOutView, PauseView};

/// Every API route: method, path and meaning (the API table of docs/operator-api.md is made from it, and a
/// test checks the OpenAPI document lists exactly these).
pub const ROUTES: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/api/v1/vendors",
        "per vendor: enabled, interval, last cycle, next cycle on this replica, lease holder",
    ),
    (
        "GET",
        "/api/v1/cycles",
        "recent cycles, newest first (`vendor`, `limit` ≤ 100, default 20)",
    ),
    (
        "GET",
        "/api/v1/dispatches",
        "the dispatches of each vendor's last cycle (`vendor`, `status`, `q` = dispatch number or ticket, `limit` ≤ 5000, default 500); each vendor's list is read once and served again until this replica records a cycle, at most 1 s",
    ),
    (
        "GET",
        "/api/v1/dispatches/{vendor}/{dispatch_number}",
        "one dispatch's last snapshot, its journal (oldest first) and its pause (`paused`: who, when, why); 404 when never seen",
    ),
    (
        "GET",
        "/api/v1/plan",
        "the rows `plan --format json` prints, read-only (`vendor`; `at` = RFC 3339, any real instant from year 0000 to 9999, or `+6h`/`+90m` up to 168 h ahead: the plan at that instant); one plan per vendor (and `at`) at a time, reused for 10 s",
    ),
    (
        "POST",
        "/api/v1/vendors/{vendor}/cycle",
        "starts a cycle now: 202 started, 409 running or leased elsewhere, 401 wrong token, 403 no token configured",
    ),
    (
        "GET",
        "/api/v1/opt-outs",
        "the numbers no SMS goes to, with when, by whom and why (masked)",
    ),
    (
        "PUT",
        "/api/v1/opt-outs/{phone}",
        "lists a US number in a usual form (`{\"reason\"}` ≤ 200 characters): 201 added, 200 listed already, 400 invalid phone; token as above",
    ),
    (
        "DELETE",
        "/api/v1/opt-outs/{phone}",
        "takes a number off the list: 204, 404 not listed; token as above",
    ),
    (
        "PUT",
        "/api/v1/dispatches/{vendor}/{dispatch_number}/pause",
        "pauses the dispatch's texts for 30 days (`{\"reason\"}`, 1 to 200 characters): 201 paused, 200 paused already; token as above",
    ),
    (
        "DELETE",
        "/api/v1/dispatches/{vendor}/{dispatch_number}/pause",
        "resumes the dispatch's texts: 204, 404 not paused; token as above",
    ),
];

/// The fewest items a `limit` asks for (the document's `minimum`).
const MIN_LIMIT: usize = 1;
/// The most cycles one request returns.
const MAX_CYCLES_LIMIT: usize = 100;
/// The most dispatches one request returns.
const MAX_DISPATCHES_LIMIT: usize = 5000;

/// What the API reads and drives.
#[derive(Clone)]
pub struct ApiState {
    /// The journal every replica writes.
    pub journal: Arc<dyn Journal>,
    /// The vendor leases, for their holders.
    pub lease: Arc<dyn VendorLease>,
    /// This replica's schedules, in wiring order.
    pub controls: Arc<Vec<Arc<VendorControl>>>,
    /// An engine over read-only ports, for `/plan`.
    pub planner: Arc<Engine>,
    /// The plans computed lately, one at a time per vendor.
    pub plans: Arc<PlanCache>,
    /// The dispatch lists read lately, one at a time per vendor.
    pub dispatch_lists: Arc<DispatchLists>,
    /// `MONITOR_API_TOKEN`.
    pub token: Option<ApiToken>,
    /// `MONITOR_API_SHOW_PHONES`.
    pub masker: Masker,
    /// Opt-outs, pauses and the daily cap (SPEC §17).
    pub safeguards: Arc<dyn domain::safeguards::Safeguards>,
    /// This replica's name, in the journal entries its API writes make.
    pub replica: String,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// The OpenAPI document's frame; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dispatch monitor operator API",
        description = "What the dispatch monitor did to each dispatch, its vendor cycles, what it would do now, and a way to start a cycle (SPEC §14)."
    ),
    tags((name = "operator", description = "The operator API")),
    // Types used only as parameters are not collected from the handlers.
    components(schemas(Status)),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the cycle trigger uses.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every API route with its OpenAPI path: one list, so the two cannot differ.
fn api_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_vendors))
        .routes(routes!(list_cycles))
        .routes(routes!(list_dispatches))
        .routes(routes!(get_dispatch))
        .routes(routes!(get_plan))
        .routes(routes!(trigger_cycle))
        .routes(routes!(safeguards::list_opt_outs))
        .routes(routes!(safeguards::put_opt_out, safeguards::delete_opt_out))
        .routes(routes!(
            safeguards::pause_dispatch,
            safeguards::resume_dispatch
        ))
}

/// The API's routes and its finished document (see [`document`]), every route guarded
/// against query parameters its operation does not declare.
fn api() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (api, mut document) = api_routes().split_for_parts();
    document::finish(&mut document);
    let guard = axum::middleware::from_fn_with_state(
        document::DeclaredQueries::of(&document),
        document::reject_undeclared_query,
    );
    (api.route_layer(guard), document)
}

/// The API, `/openapi.json`, `/docs` and the dashboard. An unknown route or a wrong method is
/// answered with a JSON error like every other (SPEC §18.5).
pub fn router(state: ApiState) -> Router {
    let (api, document) = api();
    api.with_state(state)
        .merge(docs(document))
        .route("/", axum::routing::get(dashboard))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

/// Swagger UI at `/docs` for `document`. No request leaves the binary: the online validator
/// (`validator.swagger.io`, which would be sent the document's URL) is off.
fn docs(document: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs")
        .url("/openapi.json", document)
        .config(Config::default().validator_url("none"))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such route: {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The dashboard: one page, its styles and script inline.
async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../assets/dashboard.html"))
}

/// An error answer: `{"error": "<text>"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
    #[serde(skip)]
    status: StatusCode,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            status,
        }
    }

    fn bad_parameter(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("invalid parameter {name}: {why}"),
        )
    }

    /// A path that cannot be decoded (e.g. `%FF`, not UTF-8).
    fn bad_path(rejection: PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("invalid path: {}", rejection.body_text()),
        )
    }

    fn unavailable(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the journal cannot be read: {error}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A vendor's schedule on this replica and its last cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorView {
    /// The vendor, e.g. `LIT`.
    pub name: String,
    /// Whether its cycles run on this replica.
    pub enabled: bool,
    /// Seconds between cycle starts.
    pub interval_secs: u64,
    /// Its last cycle, on any replica.
    pub last_cycle: Option<CycleRecord>,
    /// When this replica starts its next cycle.
    pub next_cycle: Option<DateTime<Utc>>,
    /// The replica holding its lease now (a cycle is running there).
    pub lease_holder: Option<String>,
}

/// A dispatch's last snapshot and its journal.
#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchView {
    /// The dispatch as the last cycle saw it.
    pub snapshot: Option<DispatchSnapshot>,
    /// What was done, oldest first (at most 200 entries, 30 days).
    pub journal: Vec<JournalEntry>,
    /// Its texts are paused now (SPEC §17.3): who paused them, when and why.
    pub paused: Option<domain::safeguards::SafeguardMark>,
}

/// A cycle started on request.
#[derive(Debug, Serialize, ToSchema)]
pub struct CycleStarted {
    /// The vendor.
    pub vendor: String,
    /// Always `started`.
    pub status: String,
}

/// The query parameters, by name (those an operation does not declare were refused before
/// its handler runs: see [`document::DeclaredQueries`]).
struct Params(HashMap<String, String>);

impl Params {
    fn read(
        query: Result<Query<HashMap<String, String>>, QueryRejection>,
    ) -> Result<Self, ApiError> {
        let Query(params) = query.map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid query string: {rejection}"),
            )
        })?;
        Ok(Self(params))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// `limit`, exactly as documented: decimal digits only (no sign, no space, not empty).
    fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(text) = self.0.get("limit") else {
            return Ok(default);
        };
        let digits = text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<usize>() {
            Ok(limit) if digits && (MIN_LIMIT..=max).contains(&limit) => Ok(limit),
            _ => Err(ApiError::bad_parameter(
                "limit",
                format!("expected a whole number from {MIN_LIMIT} to {max}, got {text:?}"),
            )),
        }
    }
}

impl ApiState {
    /// The controls of `vendor` (404 when no such vendor), or of every vendor when `None`.
    fn vendors(&self, vendor: Option<&str>) -> Result<Vec<&Arc<VendorControl>>, ApiError> {
        match vendor {
            None => Ok(self.controls.iter().collect()),
            Some(name) => self
                .controls
                .iter()
                .find(|c| c.name.as_str().eq_ignore_ascii_case(name))
                .map(|c| vec![c])
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("unknown vendor {name}"))
                }),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/vendors",
    tag = "operator",
    responses(
        (status = 200, description = "Every wired vendor", body = Vec<VendorView>),
        (status = 503, description = "The journal cannot be read", body = ApiError),
    )
)]
async fn list_vendors(State(state): State<ApiState>) -> ApiResult<Vec<VendorView>> {
    let mut views = Vec::new();
    for control in state.controls.iter() {
        let mut last_cycle = state
            .journal
            .cycles(&control.name, 1)
            .await
            .map_err(ApiError::unavailable)?
            .into_iter()
            .next();
        if let Some(cycle) = &mut last_cycle {
            state.masker.cycle(cycle);
        }
        let lease_holder = state.lease.holder(&control.name).await.unwrap_or(None);
        views.push(VendorView {
            name: control.name.to_string(),
            enabled: control.enabled,
            interval_secs: control.interval.as_secs(),
            last_cycle,
            next_cycle: control.next_cycle(),
            lease_holder,
        });
    }
    Ok(Json(views))
}

#[utoipa::path(
    get,
    path = "/api/v1/cycles",
    tag = "operator",
    params(
        ("vendor" = Option<String>, Query, description = "One vendor, e.g. `LIT`; all when absent"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "At most this many, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "Recent cycles, newest first", body = Vec<CycleRecord>),
        (status = 400, description = "A parameter is invalid", body = ApiError),
        (status = 404, description = "Unknown vendor", body = ApiError),
        (status = 503, description = "The journal cannot be read", body = ApiError),
    )
)]
async fn list_cycles(
    State(state): State<ApiState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Vec<CycleRecord>> {
    let params = Params::read(query)?;
    let limit = params.limit(20, MAX_CYCLES_LIMIT)?;
    let mut cycles = Vec::new();
    for control in state.vendors(params.text("vendor"))? {
        let recorded = state.journal.cycles(&control.name, limit).await;
        cycles.extend(recorded.map_err(ApiError::unavailable)?);
    }
    cycles.sort_by_key(|c| std::cmp::Reverse(c.started));
    cycles.truncate(limit);
    cycles.iter_mut().for_each(|c| state.masker.cycle(c));
    Ok(Json(cycles))
}

#[utoipa::path(
    get,
    path = "/api/v1/dispatches",
    tag = "operator",
    params(
        ("vendor" = Option<String>, Query, description = "One vendor; all when absent"),
        ("status" = Option<Status>, Query, description = "Only dispatches in this status"),
        ("q" = Option<String>, Query, description = "Part of a dispatch number or ticket id (case-insensitive)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 5000, description = "At most this many, 1 to 5000 (default 500)"),
    ),
    responses(
        (status = 200, description = "The dispatches of each vendor's last cycle. One read of a vendor's list is made at a time, and it is served again until this replica records a cycle, at most 1 s", body = Vec<DispatchSnapshot>),
        (status = 400, description = "A parameter is invalid", body = ApiError),
        (status = 404, description = "Unknown vendor", body = ApiError),
        (status = 503, description = "The journal cannot be read", body = ApiError),
    )
)]
async fn list_dispatches(
    State(state): State<ApiState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = Params::read(query)?;
    let limit = params.limit(500, MAX_DISPATCHES_LIMIT)?;
    let status = params
        .0
        .get("status")
        .map(|s| parse_status(s))
        .transpose()?;
    let needle = params.text("q").map(str::to_lowercase);
    let mut lists = Vec::new();
    for control in state.vendors(params.text("vendor"))? {
        let list = state.dispatch_lists.list(&control.name).await;
        lists.push(list.map_err(ApiError::unavailable)?);
    }
    let shown = lists.iter().flat_map(|list| list.iter()).filter(|d| {
        status.is_none_or(|s| d.status == s.label())
            && needle
                .as_deref()
                .is_none_or(|q| d.number_lower.contains(q) || d.ticket_id.contains(q))
    });
    let body = dispatch_lists::json_array(shown.take(limit));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A status label, exactly as documented (the document's enum is [`Status`]'s serde names).
fn parse_status(text: &str) -> Result<Status, ApiError> {
    Status::ALL
        .into_iter()
        .find(|s| s.label() == text)
        .ok_or_else(|| {
            let labels: Vec<&str> = Status::ALL.iter().map(|s| s.label()).collect();
            ApiError::bad_parameter(
                "status",
                format!("expected one of {}, got {text:?}", labels.join(", ")),
            )
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/dispatches/{vendor}/{dispatch_number}",
    tag = "operator",
    params(
        ("vendor" = String, Path, example = "LIT", description = "The vendor, e.g. `LIT`"),
        ("dispatch_number" = String, Path, example = "DIS37405", description = "The vendor's dispatch id, e.g. `DIS37405`; surrounding white space is ignored"),
    ),
    responses(
        (status = 200, description = "The dispatch's snapshot and journal", body = DispatchView),
        (status = 400, description = "The dispatch number is invalid, or the path cannot be decoded", body = ApiError),
        (status = 404, description = "Unknown vendor, or a dispatch the monitor never saw", body = ApiError),
        (status = 503, description = "The journal or the pause store cannot be read", body = ApiError),
    )
)]
async fn get_dispatch(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<DispatchView> {
    let Path((vendor, number)) = path.map_err(ApiError::bad_path)?;
    let control = state.vendors(Some(&vendor))?[0].clone();
    let number = DispatchNumber::parse(&number)
        .map_err(|error| ApiError::bad_parameter("dispatch_number", error))?;
    let found = state
        .journal
        .dispatch(&control.name, number.as_str())
        .await
        .map_err(ApiError::unavailable)?;
    let Some(DispatchHistory {
        mut snapshot,
        entries: mut journal,
    }) = found
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the monitor has never seen {} dispatch {number}",
                control.name
            ),
        ));
    };
    if let Some(snapshot) = &mut snapshot {
        state.mask_snapshot(snapshot);
    }
    journal.iter_mut().for_each(|e| state.masker.entry(e));
    let paused = state.safeguards.paused(&control.name, &number).await;
    let paused = paused.map_err(|error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the pause store cannot be read: {error}"),
        )
    })?;
    let paused = paused.map(|mark| state.pause_mark(mark));
    Ok(Json(DispatchView {
        snapshot,
        journal,
        paused,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/plan",
    tag = "operator",
    params(
        ("vendor" = Option<String>, Query, description = "One vendor; every enabled vendor when absent"),
        ("at" = Option<String>, Query, description = "Plan as at this instant, on today's vendor data and notes (SPEC §17.4): an RFC 3339 time (e.g. `2026-12-04T21:00:00-05:00`: a real date of the years 0000 to 9999, hours 00 to 23, no leap second, at most 9 decimals of a second, an offset within ±23:59), or `+6h` (0 to 168 h) or `+90m` (0 to 10080 min) from now, without leading zeros; a `+` may be a space (an unescaped `+` reads as one) and the `+` of `+6h` may be left out. Exactly the texts of the pattern; empty is refused. Now when absent"),
    ),
    responses(
        (status = 200, description = "What a cycle would do now, or at `at`; nothing is sent or written. At most one plan per vendor (and `at`) is computed at a time, and one up to 10 s old is served again", body = Vec<PlanRow>),
        (status = 400, description = "A parameter is invalid; the error names it (e.g. `at`)", body = ApiError),
        (status = 404, description = "Unknown vendor", body = ApiError),
        (status = 502, description = "A vendor's list could not be fetched", body = ApiError),
    )
)]
async fn get_plan(
    State(state): State<ApiState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Vec<PlanRow>> {
    let params = Params::read(query)?;
    let asked = params.text("vendor");
    // `at` exactly as given: the pattern has no surrounding spaces, nor an empty text.
    let at_text = params.0.get("at").map(String::as_str);
    let at = at_text
        .map(|text| crate::at::parse_at(text, Utc::now()))
        .transpose()
        .map_err(|error| ApiError::bad_parameter("at", error))?;
    let planner = match at {
        Some(at) => Arc::new(crate::plan::engine_at(&state.planner, at)),
        None => state.planner.clone(),
    };
    let mut rows = Vec::new();
    for control in state.vendors(asked)? {
        if asked.is_none() && !control.enabled {
            continue;
        }
        let computed = state.plans.rows_at(&planner, &control.name, at_text).await;
        let computed = computed.map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error))?;
        rows.extend(computed.iter().cloned());
    }
    rows.iter_mut().for_each(|r| state.masker.plan_row(r));
    Ok(Json(rows))
}

#[utoipa::path(
    post,
    path = "/api/v1/vendors/{vendor}/cycle",
    tag = "operator",
    params(("vendor" = String, Path, example = "LIT", description = "The vendor, e.g. `LIT`")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The cycle starts now", body = CycleStarted),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "No token is configured: acting through HTTP is off", body = ApiError),
        (status = 404, description = "Unknown vendor", body = ApiError),
        (status = 409, description = "A cycle is running, or another replica holds the lease", body = ApiError),
        (status = 503, description = "The lease store cannot be read", body = ApiError),
    )
)]
async fn trigger_cycle(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<CycleStarted>), ApiError> {
    authorize(state.token.as_ref(), &headers)?;
    let Path(vendor) = path.map_err(ApiError::bad_path)?;
    let control = state.vendors(Some(&vendor))?[0].clone();
    let conflict = |why: String| ApiError::new(StatusCode::CONFLICT, why);
    if control.is_running() {
        return Err(conflict(format!("a {} cycle is running", control.name)));
    }
    let holder = state
        .lease
        .holder(&control.name)
        .await
        .map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))?;
    if let Some(holder) = holder {
        return Err(conflict(format!(
            "replica {holder} holds the {} lease: a cycle is running there",
            control.name
        )));
    }
    match control.trigger() {
        Triggered::Started => {
            tracing::info!(vendor = %control.name, "cycle requested through the API");
            Ok((
                StatusCode::ACCEPTED,
                Json(CycleStarted {
                    vendor: control.name.to_string(),
                    status: "started".to_owned(),
                }),
            ))
        }
        Triggered::AlreadyRunning => Err(conflict(format!("a {} cycle is running", control.name))),
        Triggered::Disabled => Err(conflict(format!(
            "{} is disabled on this replica (MONITOR_{}_ENABLED)",
            control.name,
            control.name.as_str().replace('-', "_")
        ))),
    }
}

/// 403 when no token is configured, 401 unless the bearer token matches. The token is never
/// logged.
fn authorize(token: Option<&ApiToken>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "acting through the API is off: set MONITOR_API_TOKEN to enable it",
        ));
    };
    // The scheme is case-insensitive (RFC 6750, RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token);
    if token.matches(given.trim()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid Authorization: Bearer token is required",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_api_route() {
        let readme = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/operator-api.md"
        ))
        .expect("docs/operator-api.md in the workspace");
        let mut table = String::from("| Method | Path | Answers |\n|---|---|---|\n");
        for (method, path, meaning) in ROUTES {
            table.push_str(&format!("| `{method}` | `{path}` | {meaning} |\n"));
        }
        assert!(
            readme.contains(&table),
            "docs/operator-api.md's API table should read:\n{table}"
        );
    }

    #[test]
    fn the_document_has_exactly_the_routes() {
        let document = serde_json::to_value(openapi()).unwrap();
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                let methods: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
                methods
                    .into_iter()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
        assert_eq!(document["openapi"], "3.1.0");
        for schema in [
            "JournalEntry",
            "CycleRecord",
            "DispatchSnapshot",
            "PlanRow",
            "ApiError",
            "SafeguardMark",
            "OptOutView",
            "PauseView",
            "OptOutRequest",
            "PauseRequest",
        ] {
            assert!(
                document["components"]["schemas"][schema].is_object(),
                "{schema} is described"
            );
        }
    }

    #[tokio::test]
    async fn swagger_ui_never_calls_the_online_validator() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().merge(docs(openapi()));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let (status, script) =
            test_support::wire::http_get(port, "/docs/swagger-initializer.js").await;
        server.abort();
        assert_eq!(status, 200, "{script}");
        assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
        assert!(script.contains("/openapi.json"), "{script}");
    }

    #[test]
    fn the_documented_limits_are_the_accepted_ones() {
        let document = serde_json::to_value(openapi()).unwrap();
        for (path, max) in [
            ("/api/v1/cycles", MAX_CYCLES_LIMIT),
            ("/api/v1/dispatches", MAX_DISPATCHES_LIMIT),
        ] {
            let limit = document["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "limit")
                .unwrap()
                .clone();
            let (min, documented_max) = (
                limit["schema"]["minimum"].as_u64().unwrap(),
                limit["schema"]["maximum"].as_u64().unwrap(),
            );
            assert_eq!(
                (min, documented_max),
                (MIN_LIMIT as u64, max as u64),
                "{path}"
            );
            let accepted = |value: String| {
                let params = Params(HashMap::from([("limit".to_owned(), value)]));
                params.limit(20, max).is_ok()
            };
            assert!(!accepted((min - 1).to_string()), "{path}");
            assert!(accepted(min.to_string()), "{path}");
            assert!(accepted(documented_max.to_string()), "{path}");
            assert!(!accepted((documented_max + 1).to_string()), "{path}");
            // An integer is written in decimal digits, nothing else.
            for refused in ["", " ", "+5", " 5", "5 ", "-0", "5.0", "1e2", "٥"] {
                assert!(!accepted(refused.to_owned()), "{path}?limit={refused:?}");
            }
            assert!(accepted("007".to_owned()), "{path}");
        }
    }

    #[test]
    fn the_status_filter_is_the_documented_enum_exactly() {
        let document = serde_json::to_value(openapi()).unwrap();
        let parameters = document["paths"]["/api/v1/dispatches"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let status = parameters.iter().find(|p| p["name"] == "status").unwrap();
        let reference = status["schema"]["$ref"].as_str().unwrap();
        let name = reference.rsplit('/').next().unwrap();
        let documented = &document["components"]["schemas"][name]["enum"];
        let labels: Vec<&str> = Status::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(documented, &serde_json::json!(labels));
        for label in labels {
            assert_eq!(parse_status(label).unwrap().label(), label);
        }
        for refused in [
            "",
            "REQUESTED",
            "Requested",
            " requested",
            "requested ",
            "happy",
        ] {
            let error = parse_status(refused).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{refused:?}");
        }
    }

    #[test]
    fn the_documented_at_pattern_is_the_parsers() {
        let document = serde_json::to_value(openapi()).unwrap();
        let at = document["paths"]["/api/v1/plan"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "at")
            .unwrap()
            .clone();
        assert_eq!(at["schema"]["pattern"], crate::at::AT_PATTERN);
    }

    #[test]
    fn the_token_is_required_and_compared_whole() {
        let token = <ApiToken as crate::settings::values::SettingValue>::parse(
            "a-long-enough-operator-token",
        )
        .unwrap();
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        let status = |result: Result<(), ApiError>| result.map_err(|e| e.status).err();
        assert_eq!(
            status(authorize(None, &headers("Bearer x"))),
            Some(StatusCode::FORBIDDEN)
        );
        for wrong in [
            "Bearer a-long-enough-operator-toke",
            "Bearer a-long-enough-operator-token-",
            "a-long-enough-operator-token",
            "Basic a-long-enough-operator-token",
            "Bearera-long-enough-operator-token",
        ] {
            assert_eq!(
                status(authorize(Some(&token), &headers(wrong))),
                Some(StatusCode::UNAUTHORIZED),
                "{wrong}"
            );
        }
        for right in [
            "Bearer a-long-enough-operator-token",
            "bearer a-long-enough-operator-token",
            "BEARER  a-long-enough-operator-token",
        ] {
            assert_eq!(
                status(authorize(Some(&token), &headers(right))),
                None,
                "{right}"
            );
        }
        assert_eq!(format!("{token:?}"), "ApiToken(***)");
    }
}
