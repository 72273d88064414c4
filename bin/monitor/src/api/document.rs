//! What the OpenAPI document says for every operation, beyond what each handler declares, so
//! that an endpoint added later gets it too: the error answers any operation can give (400 for
//! a query parameter it does not declare, 401 and 403 where it needs the bearer token, 413, 415
//! and 422 where it reads a JSON body), the patterns of the parameters the handlers validate,
//! and the links a stateful client follows from one answer to the next request. [`DeclaredQueries`] makes the first rule true: a query
//! parameter the document does not declare for the operation is answered with 400.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use super::ApiError;

/// A dispatch number as `DispatchNumber::parse` accepts it: at least one character that is not
/// white space (`char::is_whitespace`, listed one by one so every regex dialect reads it alike).
pub const DISPATCH_NUMBER_PATTERN: &str =
    r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// Path and query parameters whose handlers refuse some strings (400), with the pattern of
/// exactly those they accept: every parameter of that name gets it.
const PARAMETER_PATTERNS: &[(&str, &str)] = &[
    ("dispatch_number", DISPATCH_NUMBER_PATTERN),
    ("phone", domain::PHONE_INPUT_PATTERN),
    ("at", crate::at::AT_PATTERN),
];

/// After operation `from` answers one of `statuses`, operation `to` may be called with
/// `parameters`,
/// each given by an OpenAPI runtime expression on that exchange.
struct DocumentLink {
    from: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

/// The links between operations (by `operationId`, the handler's name).
const LINKS: &[DocumentLink] = &[
    DocumentLink {
        statuses: &["200"],
        from: "list_vendors",
        name: "StartCycle",
        to: "trigger_cycle",
        parameters: &[("vendor", "$response.body#/0/name")],
    },
    DocumentLink {
        statuses: &["200"],
        from: "list_vendors",
        name: "VendorCycles",
        to: "list_cycles",
        parameters: &[("vendor", "$response.body#/0/name")],
    },
    DocumentLink {
        statuses: &["200"],
        from: "list_vendors",
        name: "VendorPlan",
        to: "get_plan",
        parameters: &[("vendor", "$response.body#/0/name")],
    },
    DocumentLink {
        statuses: &["200"],
        from: "list_cycles",
        name: "CycleDispatches",
        to: "list_dispatches",
        parameters: &[("vendor", "$response.body#/0/vendor")],
    },
    DocumentLink {
        statuses: &["200"],
        from: "list_dispatches",
        name: "Dispatch",
        to: "get_dispatch",
        parameters: &[
            ("vendor", "$response.body#/0/vendor"),
            ("dispatch_number", "$response.body#/0/dispatch_number"),
        ],
    },
    DocumentLink {
        statuses: &["200"],
        from: "list_dispatches",
        name: "PauseDispatch",
        to: "pause_dispatch",
        parameters: &[
            ("vendor", "$response.body#/0/vendor"),
            ("dispatch_number", "$response.body#/0/dispatch_number"),
        ],
    },
    // What was listed or paused can be taken off the list or resumed (201: newly; 200: it
    // was already). The answer's phone is masked: the path's is followed.
    DocumentLink {
        statuses: &["201", "200"],
        from: "put_opt_out",
        name: "RemoveOptOut",
        to: "delete_opt_out",
        parameters: &[("phone", "$request.path.phone")],
    },
    DocumentLink {
        statuses: &["201", "200"],
        from: "pause_dispatch",
        name: "Resume",
        to: "resume_dispatch",
        parameters: &[
            ("vendor", "$request.path.vendor"),
            ("dispatch_number", "$request.path.dispatch_number"),
        ],
    },
];

/// Adds to `document` what every operation says (see the module's text).
pub fn finish(document: &mut OpenApi) {
    for (_, _, operation) in operations_mut(document) {
        declare_common_errors(operation);
        constrain_parameters(operation);
    }
    add_links(document);
}

/// Every operation with its path and method.
fn operations_mut(document: &mut OpenApi) -> Vec<(&str, Method, &mut Operation)> {
    let mut found = Vec::new();
    for (path, item) in document.paths.paths.iter_mut() {
        let PathItem {
            get,
            put,
            post,
            delete,
            patch,
            ..
        } = item;
        let methods = [
            (Method::GET, get),
            (Method::PUT, put),
            (Method::POST, post),
            (Method::DELETE, delete),
            (Method::PATCH, patch),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation.as_mut() {
                found.push((path.as_str(), method, operation));
            }
        }
    }
    found
}

/// 400 on every operation; 401 and 403 on those that need a token; 413, 415 and 422 on those
/// that read a JSON body (the statuses of axum's `Json` rejections, which the handlers answer
/// as an [`ApiError`]). A handler's own description of the same status is kept.
fn declare_common_errors(operation: &mut Operation) {
    let mut common = vec![(
        "400",
        "A query parameter the operation does not declare or an invalid one, or a path that cannot be decoded",
    )];
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        common.push(("401", "No or wrong bearer token"));
        common.push(("403", "No token is configured: acting through HTTP is off"));
    }
    if operation.request_body.is_some() {
        common.push(("413", "The body is larger than 2 MB"));
        common.push((
            "415",
            "The body is not declared as JSON (`Content-Type: application/json`)",
        ));
        common.push((
            "422",
            "The body is JSON but not of the documented shape (a field missing or of another type)",
        ));
    }
    for (status, description) in common {
        let error = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ApiError")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert(RefOr::T(error));
    }
}

fn constrain_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if !matches!(
            parameter.parameter_in,
            ParameterIn::Path | ParameterIn::Query
        ) {
            continue;
        }
        let pattern = PARAMETER_PATTERNS
            .iter()
            .find(|(name, _)| *name == parameter.name);
        if let (Some((_, pattern)), Some(RefOr::T(Schema::Object(schema)))) =
            (pattern, parameter.schema.as_mut())
        {
            schema.pattern = Some((*pattern).to_owned());
        }
    }
}

fn add_links(document: &mut OpenApi) {
    for (_, _, operation) in operations_mut(document) {
        let id = operation.operation_id.clone().unwrap_or_default();
        for link in LINKS.iter().filter(|link| link.from == id) {
            for status in link.statuses {
                let Some(RefOr::T(answer)) = operation.responses.responses.get_mut(*status) else {
                    continue;
                };
                // utoipa 5.5 writes `Link::operation_id` as `operation_id`; OpenAPI reads
                // `operationId`, so it is written through the link's extensions.
                let mut extensions = Extensions::default();
                extensions.insert("operationId".to_owned(), link.to.into());
                let mut built = LinkBuilder::new().extensions(Some(extensions));
                for (name, expression) in link.parameters {
                    built = built.parameter(*name, *expression);
                }
                answer
                    .links
                    .insert(link.name.to_owned(), RefOr::T(built.build()));
            }
        }
    }
}

/// The query parameters each operation declares, by method and path (as routed).
#[derive(Debug, Clone, Default)]
pub struct DeclaredQueries(Arc<HashMap<(Method, String), HashSet<String>>>);

impl DeclaredQueries {
    /// The declarations of `document`'s operations.
    pub fn of(document: &OpenApi) -> Self {
        let mut document = document.clone();
        let declared = operations_mut(&mut document)
            .into_iter()
            .map(|(path, method, operation)| {
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter(|p| p.parameter_in == ParameterIn::Query)
                    .map(|p| p.name.clone())
                    .collect();
                ((method, path.to_owned()), names)
            })
            .collect();
        Self(Arc::new(declared))
    }

    /// An error when the request has a query parameter its operation does not declare.
    fn check(&self, request: &Request) -> Result<(), ApiError> {
        let Some(path) = request.extensions().get::<MatchedPath>() else {
            return Ok(());
        };
        let method = match request.method() {
            &Method::HEAD => Method::GET,
            other => other.clone(),
        };
        let Some(known) = self.0.get(&(method, path.as_str().to_owned())) else {
            return Ok(());
        };
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(request.uri()).map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid query string: {rejection}"),
                )
            })?;
        let Some((name, _)) = pairs.iter().find(|(name, _)| !known.contains(name)) else {
            return Ok(());
        };
        let mut expected: Vec<&str> = known.iter().map(String::as_str).collect();
        expected.sort_unstable();
        let expected = if expected.is_empty() {
            "this operation takes none".to_owned()
        } else {
            format!("expected {}", expected.join(", "))
        };
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown parameter {name}; {expected}"),
        ))
    }
}

/// Middleware: 400 for a query parameter the operation does not declare.
pub async fn reject_undeclared_query(
    State(declared): State<DeclaredQueries>,
    request: Request,
    next: Next,
) -> Response {
    match declared.check(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dispatch_number_pattern_is_what_the_parser_accepts() {
        let pattern = regex::Regex::new(DISPATCH_NUMBER_PATTERN).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                pattern.is_match(&text),
                domain::DispatchNumber::parse(&text).is_ok(),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(pattern.is_match(" \u{85}DIS1 "));
        assert!(domain::DispatchNumber::parse(" \u{85}DIS1 ").is_ok());
    }

    #[test]
    fn every_operation_declares_the_common_errors_and_patterns() {
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        let mut constrained = HashMap::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let secured = operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty());
                let with_body = operation["requestBody"].is_object();
                if with_body {
                    // The server refuses a request without one (415).
                    assert_eq!(
                        operation["requestBody"]["required"], true,
                        "{method} {path}"
                    );
                }
                for status in ["400", "401", "403", "413", "415", "422"] {
                    let expected = match status {
                        "400" => true,
                        "401" | "403" => secured,
                        _ => with_body,
                    };
                    assert_eq!(
                        responses[status].is_object(),
                        expected,
                        "{method} {path} {status}"
                    );
                }
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    if let Some((_, pattern)) = PARAMETER_PATTERNS.iter().find(|(n, _)| *n == name)
                    {
                        *constrained.entry(name).or_insert(0) += 1;
                        assert_eq!(parameter["schema"]["pattern"], *pattern, "{method} {path}");
                    }
                }
            }
        }
        for (name, _) in PARAMETER_PATTERNS {
            assert!(constrained.contains_key(name), "no parameter {name}");
        }
    }

    #[tokio::test]
    async fn a_query_parameter_the_operation_does_not_declare_is_refused() {
        let document = super::super::openapi();
        let declared = DeclaredQueries::of(&document);
        let mut app = axum::Router::new();
        for path in document.paths.paths.keys() {
            app = app.route(path, axum::routing::any(|| async { "handled" }));
        }
        let guard = axum::middleware::from_fn_with_state(declared.clone(), reject_undeclared_query);
        let app = app.route_layer(guard);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        assert!(declared.0.len() >= 6);
        for ((method, path), names) in declared.0.iter() {
            let concrete = path
                .replace("{vendor}", "LIT")
                .replace("{dispatch_number}", "DIS1");
            let mut query: Vec<String> = names.iter().map(|name| format!("{name}=x")).collect();
            let target = format!("{concrete}?{}", query.join("&"));
            let answer =
                test_support::wire::http_request(port, method.as_str(), &target, &[], "").await;
            assert_eq!(answer, (200, "handled".to_owned()), "{method} {target}");
            query.push("colour=red".to_owned());
            let target = format!("{concrete}?{}", query.join("&"));
            let (status, body) =
                test_support::wire::http_request(port, method.as_str(), &target, &[], "").await;
            assert_eq!(status, 400, "{method} {target}: {body}");
            assert!(body.contains("unknown parameter colour"), "{body}");
        }
        server.abort();
    }

    #[test]
    fn every_link_joins_two_operations_and_names_their_parameters() {
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        let mut operations = HashMap::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                operations.insert(id, operation.clone());
            }
        }
        for link in LINKS {
            let from = &operations[link.from];
            for status in link.statuses {
                let documented = &from["responses"][*status]["links"][link.name];
                assert_eq!(documented["operationId"], link.to, "{}", link.name);
                assert!(documented.get("operation_id").is_none(), "{documented}");
            }
            let to = &operations[link.to];
            for (name, expression) in link.parameters {
                if let Some(from_path) = expression.strip_prefix("$request.path.") {
                    let declared = from["parameters"].as_array().unwrap();
                    assert!(
                        declared
                            .iter()
                            .any(|p| p["name"] == from_path && p["in"] == "path"),
                        "{} has no path parameter {from_path}",
                        link.from
                    );
                }
                let declared = to["parameters"].as_array().unwrap();
                assert!(
                    declared.iter().any(|p| p["name"] == *name),
                    "{} has no parameter {name}",
                    link.to
                );
            }
        }
    }
}
