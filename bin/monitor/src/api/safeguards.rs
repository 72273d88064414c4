//! The customer-text safeguards through HTTP (SPEC §17.1, §17.3): the opt-out list, and
//! pausing one dispatch's texts. Reads are open and masked like the rest of the API; writes
//! need the bearer token exactly as the cycle trigger does.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::journal::DispatchSnapshot;
use domain::safeguards::{OptOut, SafeguardMark};
use domain::{DispatchNumber, PhoneE164, VendorName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{ApiError, ApiResult, ApiState, Params, authorize, mask_phones};

/// The longest `reason` accepted, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Who an API write is recorded as (the journal entry names the replica that made it).
pub const API_ACTOR: &str = "api";

/// A number on the opt-out list, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptOutView {
    /// The number, E.164, masked to its last 4 digits unless `MONITOR_API_SHOW_PHONES`.
    pub phone: String,
    /// When it was listed.
    pub at: DateTime<Utc>,
    /// Who listed it: `api` or `cli:{user}`.
    pub by: String,
    /// Why, as the operator wrote it (may be empty).
    pub reason: String,
}

/// A dispatch's pause, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PauseView {
    /// The vendor, e.g. `LIT`.
    pub vendor: String,
    /// The vendor's dispatch id.
    pub dispatch_number: String,
    /// When its texts were paused.
    pub at: DateTime<Utc>,
    /// Who paused them: `api` or `cli:{user}`.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// Why a number is listed; the body may be `{}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OptOutRequest {
    /// Why (at most 200 characters, no control characters); empty when absent.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub reason: Option<String>,
}

/// Why a dispatch's texts are paused.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PauseRequest {
    /// Why (1 to 200 characters, no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub reason: String,
}

/// `reason` when it is within the documented bounds.
fn checked_reason(reason: String, min_chars: usize) -> Result<String, ApiError> {
    let chars = reason.chars().count();
    if chars < min_chars || chars > MAX_REASON_CHARS {
        return Err(ApiError::bad_parameter(
            "reason",
            format!("expected {min_chars} to {MAX_REASON_CHARS} characters, got {chars}"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::bad_parameter(
            "reason",
            "control characters (line breaks, tabs) are not allowed",
        ));
    }
    Ok(reason)
}

/// axum's own status for a body it cannot read (400 not JSON, 413 too large, 415 not declared
/// as JSON, 422 not of the documented shape: the document declares them all), as an
/// [`ApiError`].
fn bad_body(rejection: JsonRejection) -> ApiError {
    ApiError::new(
        rejection.status(),
        format!(
            "invalid body: expected JSON {{\"reason\": \"...\"}}: {}",
            rejection.body_text()
        ),
    )
}

/// A JSON body read as `T`, from an object only: serde also reads a struct from an array of
/// its fields (`[null]`, `["why"]`), which the document does not allow. An array or another
/// JSON value is a 422 like any body not of the documented shape.
fn body_of<T: DeserializeOwned>(
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(object) = body.map_err(bad_body)?;
    serde_json::from_value(Value::Object(object)).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid body: expected JSON {{\"reason\": \"...\"}}: {error}"),
        )
    })
}

fn store_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the safeguards store cannot be read: {error}"),
    )
}

/// A phone in a usual US form (exactly `PHONE_INPUT_PATTERN`, the path's documented
/// pattern), or a 400 naming it.
fn phone_param(text: &str) -> Result<PhoneE164, ApiError> {
    PhoneE164::parse_input(text).map_err(|error| ApiError::bad_parameter("phone", error))
}

impl ApiState {
    fn masked(&self, text: &str) -> String {
        if self.masker.show_phones {
            text.to_owned()
        } else {
            mask_phones(text)
        }
    }

    fn opt_out_view(&self, opt_out: &OptOut) -> OptOutView {
        OptOutView {
            phone: self.masked(opt_out.phone.as_str()),
            at: opt_out.mark.at,
            by: opt_out.mark.by.clone(),
            reason: self.masked(&opt_out.mark.reason),
        }
    }

    /// The pause as shown, its reason masked.
    pub(super) fn pause_mark(&self, mark: SafeguardMark) -> SafeguardMark {
        SafeguardMark {
            reason: self.masked(&mark.reason),
            ..mark
        }
    }

    /// A snapshot as shown: phones masked, its pause's reason included.
    pub(super) fn mask_snapshot(&self, snapshot: &mut DispatchSnapshot) {
        self.masker.shown_snapshot(snapshot);
    }

    /// The vendor as wired (404 otherwise) and the dispatch number (400 naming it).
    fn dispatch_params(
        &self,
        vendor: &str,
        number: &str,
    ) -> Result<(VendorName, DispatchNumber), ApiError> {
        let vendor = self.vendors(Some(vendor))?[0].name.clone();
        let number = DispatchNumber::parse(number)
            .map_err(|error| ApiError::bad_parameter("dispatch_number", error))?;
        Ok((vendor, number))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/opt-outs",
    tag = "operator",
    responses(
        (status = 200, description = "Every number on the opt-out list, ordered by number; phones masked unless MONITOR_API_SHOW_PHONES", body = Vec<OptOutView>),
        (status = 400, description = "A query parameter was given (there are none)", body = ApiError),
        (status = 503, description = "The opt-out list cannot be read", body = ApiError),
    )
)]
pub(super) async fn list_opt_outs(
    State(state): State<ApiState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Vec<OptOutView>> {
    Params::read(query)?;
    let listed = state.safeguards.opt_outs().await.map_err(store_error)?;
    Ok(Json(listed.iter().map(|o| state.opt_out_view(o)).collect()))
}

#[utoipa::path(
    put,
    path = "/api/v1/opt-outs/{phone}",
    tag = "operator",
    params(("phone" = String, Path, description = "A US number in a usual form, URL-encoded: `%2B12123595129`, `2123595129`, `(212)%20359-5129`, `212.359.5129`, `1-212-359-5129`; stored as E.164. Exactly the texts of the pattern: an optional `1` or `+1`, the area code (2-9 then 2 digits, in parentheses or not), 3 and 4 digits, each part followed by at most one of space `.` `/` `-`")),
    request_body(content = OptOutRequest, description = "Why the number is listed", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Listed: no SMS goes to the number from now on", body = OptOutView),
        (status = 200, description = "Listed already; the first listing is kept and shown", body = OptOutView),
        (status = 400, description = "The phone or the reason is invalid, or the body is not JSON (the error names which)", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "No token is configured: acting through HTTP is off", body = ApiError),
        (status = 503, description = "The opt-out list cannot be written", body = ApiError),
    )
)]
pub(super) async fn put_opt_out(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<(StatusCode, Json<OptOutView>), ApiError> {
    authorize(state.token.as_ref(), &headers)?;
    let Path(phone) = path.map_err(ApiError::bad_path)?;
    let phone = phone_param(&phone)?;
    let request: OptOutRequest = body_of(body)?;
    let reason = checked_reason(request.reason.unwrap_or_default(), 0)?;
    let mark = SafeguardMark {
        at: Utc::now(),
        by: API_ACTOR.to_owned(),
        reason,
    };
    let added = state.safeguards.add_opt_out(&phone, &mark).await;
    if added.map_err(store_error)? {
        tracing::info!(phone = %state.masked(phone.as_str()), "opt-out added through the API");
        let view = state.opt_out_view(&OptOut { phone, mark });
        return Ok((StatusCode::CREATED, Json(view)));
    }
    let listed = state.safeguards.opt_outs().await.map_err(store_error)?;
    let kept = listed
        .into_iter()
        .find(|o| o.phone == phone)
        .unwrap_or(OptOut { phone, mark });
    Ok((StatusCode::OK, Json(state.opt_out_view(&kept))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/opt-outs/{phone}",
    tag = "operator",
    params(("phone" = String, Path, description = "A US number in a usual form, URL-encoded, as for PUT")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Taken off the list: texts due from now on go out"),
        (status = 400, description = "The phone is invalid", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "No token is configured: acting through HTTP is off", body = ApiError),
        (status = 404, description = "The number is not on the list", body = ApiError),
        (status = 503, description = "The opt-out list cannot be written", body = ApiError),
    )
)]
pub(super) async fn delete_opt_out(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(state.token.as_ref(), &headers)?;
    let Path(phone) = path.map_err(ApiError::bad_path)?;
    let phone = phone_param(&phone)?;
    let shown = state.masked(phone.as_str());
    if state
        .safeguards
        .remove_opt_out(&phone)
        .await
        .map_err(store_error)?
    {
        tracing::info!(phone = %shown, "opt-out removed through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{shown} is not on the opt-out list"),
        ))
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/dispatches/{vendor}/{dispatch_number}/pause",
    tag = "operator",
    params(
        ("vendor" = String, Path, description = "The vendor, e.g. `LIT`"),
        ("dispatch_number" = String, Path, description = "The vendor's dispatch id, e.g. `DIS37405`"),
    ),
    request_body(content = PauseRequest, description = "Why the dispatch's texts are paused", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Paused for 30 days unless resumed: none of its SMS go out; notes that record no SMS are still written", body = PauseView),
        (status = 200, description = "Paused already; this pause replaces the previous one", body = PauseView),
        (status = 400, description = "The dispatch number or the reason is invalid, or the body is not JSON (the error names which)", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "No token is configured: acting through HTTP is off", body = ApiError),
        (status = 404, description = "Unknown vendor", body = ApiError),
        (status = 503, description = "The pause cannot be written", body = ApiError),
    )
)]
pub(super) async fn pause_dispatch(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<(StatusCode, Json<PauseView>), ApiError> {
    authorize(state.token.as_ref(), &headers)?;
    let Path((vendor, number)) = path.map_err(ApiError::bad_path)?;
    let (vendor, number) = state.dispatch_params(&vendor, &number)?;
    let request: PauseRequest = body_of(body)?;
    let mark = SafeguardMark {
        at: Utc::now(),
        by: API_ACTOR.to_owned(),
        reason: checked_reason(request.reason, 1)?,
    };
    let newly = journal::pause(&state, &vendor, &number, &mark)
        .await
        .map_err(store_error)?;
    tracing::info!(%vendor, dispatch_number = %number, "dispatch paused through the API");
    let mark = state.pause_mark(mark);
    let view = PauseView {
        vendor: vendor.to_string(),
        dispatch_number: number.to_string(),
        at: mark.at,
        by: mark.by,
        reason: mark.reason,
    };
    let status = if newly {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/dispatches/{vendor}/{dispatch_number}/pause",
    tag = "operator",
    params(
        ("vendor" = String, Path, description = "The vendor, e.g. `LIT`"),
        ("dispatch_number" = String, Path, description = "The vendor's dispatch id, e.g. `DIS37405`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Resumed: its texts still due go out from the next cycle"),
        (status = 400, description = "The dispatch number is invalid", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "No token is configured: acting through HTTP is off", body = ApiError),
        (status = 404, description = "Unknown vendor, or the dispatch is not paused", body = ApiError),
        (status = 503, description = "The pause cannot be written", body = ApiError),
    )
)]
pub(super) async fn resume_dispatch(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(state.token.as_ref(), &headers)?;
    let Path((vendor, number)) = path.map_err(ApiError::bad_path)?;
    let (vendor, number) = state.dispatch_params(&vendor, &number)?;
    let lifted = journal::resume(&state, &vendor, &number)
        .await
        .map_err(store_error)?;
    if lifted.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{vendor} dispatch {number} is not paused"),
        ));
    }
    tracing::info!(%vendor, dispatch_number = %number, "dispatch resumed through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// Pausing and resuming, journaled with who did it (`api`), why, and this replica.
mod journal {
    use chrono::Utc;
    use domain::pausing;
    use domain::ports::PortError;
    use domain::safeguards::SafeguardMark;
    use domain::{DispatchNumber, VendorName};

    use super::{API_ACTOR, ApiState};

    /// Pauses the dispatch; `false` when it was paused already.
    pub(super) async fn pause(
        state: &ApiState,
        vendor: &VendorName,
        number: &DispatchNumber,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError> {
        let (store, journal) = (state.safeguards.as_ref(), state.journal.as_ref());
        pausing::pause_dispatch(store, journal, vendor, number, mark, &state.replica).await
    }

    /// Resumes the dispatch; the pause it lifted.
    pub(super) async fn resume(
        state: &ApiState,
        vendor: &VendorName,
        number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        let (store, journal) = (state.safeguards.as_ref(), state.journal.as_ref());
        let (at, replica) = (Utc::now(), state.replica.as_str());
        pausing::resume_dispatch(store, journal, vendor, number, API_ACTOR, at, replica).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn schema(document: &Value, name: &str) -> Value {
        document["components"]["schemas"][name]["properties"]["reason"].clone()
    }

    #[test]
    fn the_documented_reason_bounds_are_the_enforced_ones() {
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        for (name, min) in [("OptOutRequest", 0), ("PauseRequest", 1)] {
            let reason = schema(&document, name);
            assert_eq!(
                reason["maxLength"].as_u64(),
                Some(MAX_REASON_CHARS as u64),
                "{name}"
            );
            assert_eq!(reason["minLength"].as_u64().unwrap_or(0), min, "{name}");
            let pattern = regex::Regex::new(reason["pattern"].as_str().unwrap()).unwrap();
            let accepted = |text: &str| checked_reason(text.to_owned(), min as usize).is_ok();
            for text in [
                "x",
                "customer asked: no more texts",
                "é".repeat(200).as_str(),
            ] {
                assert!(accepted(text) && pattern.is_match(text), "{name}: {text:?}");
            }
            for text in ["a\nb", "tab\there", "\u{7f}", "\u{85}"] {
                assert!(
                    !accepted(text) && !pattern.is_match(text),
                    "{name}: {text:?}"
                );
            }
            assert!(!accepted(&"x".repeat(MAX_REASON_CHARS + 1)), "{name}");
            assert_eq!(accepted(""), min == 0, "{name}");
        }
        let required = document["components"]["schemas"]["PauseRequest"]["required"].clone();
        assert_eq!(required, serde_json::json!(["reason"]));
    }

    #[test]
    fn a_body_is_read_from_an_object_only() {
        let object = |json: Value| Ok(Json(json.as_object().unwrap().clone()));
        let read: OptOutRequest = body_of(object(serde_json::json!({"reason": "x"}))).unwrap();
        assert_eq!(read.reason.as_deref(), Some("x"));
        let read: OptOutRequest = body_of(object(serde_json::json!({}))).unwrap();
        assert_eq!(read.reason, None);
        let error = body_of::<PauseRequest>(object(serde_json::json!({}))).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.error.contains("reason"), "{}", error.error);
        // What serde alone would read as a struct, from the array of its fields.
        assert!(serde_json::from_str::<OptOutRequest>("[null]").is_ok());
        assert!(serde_json::from_str::<Map<String, Value>>("[null]").is_err());
    }

    #[test]
    fn a_bad_reason_or_phone_is_named() {
        let error = checked_reason("a\nb".to_owned(), 1).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.error.contains("reason"), "{}", error.error);
        let error = phone_param("+44 20 7946 0000").unwrap_err();
        assert!(
            error.error.contains("invalid parameter phone"),
            "{}",
            error.error
        );
        assert_eq!(
            phone_param("(212) 359-5129").unwrap().as_str(),
            "+12123595129"
        );
    }
}
