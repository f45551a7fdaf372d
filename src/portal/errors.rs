//! The portal's errors as its API returns them: an HTTP status and
//! `{ "error": { "code", "message", "field" } }`, with a stable code a
//! client can match on. Storage details never reach a response: they are
//! logged, and the client reads `internal`.

use http::StatusCode;
use serde_json::json;

use crate::error::Error;

/// An API error: what the handler answers instead of the resource.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn on(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The body is not JSON, or a value has the wrong JSON type.
    pub(crate) fn invalid_json(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// A value of `field` has the wrong JSON type.
    pub(crate) fn wrong_type(field: &str, expected: &str) -> Self {
        ApiError::invalid_json(format!("{field} must be {expected}")).on(field)
    }

    pub(crate) fn unknown_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            format!("unknown field {field:?}"),
        )
        .on(field)
    }

    pub(crate) fn missing_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            format!("{field} is required"),
        )
        .on(field)
    }

    pub(crate) fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).on(field)
    }

    pub(crate) fn invalid_query(param: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).on(param)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn forbidden_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::forbidden(message).on(field)
    }

    pub(crate) fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )
    }

    pub(crate) fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub(crate) fn unsupported_media_type() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be application/json",
        )
    }

    /// Something on our side failed; the details go to the log only.
    pub(crate) fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request could not be completed; the server logged why",
        )
    }

    /// The bus's error for a change or a read through the API, with the
    /// field the request named it by where the bus names one.
    pub(crate) fn from_bus(e: Error) -> Self {
        match e {
            Error::InvalidUrl { reason, .. } => {
                ApiError::invalid_field("url", format!("invalid url: {reason}"))
            }
            Error::InvalidEndpoint { field, reason } => {
                let field = api_field(field);
                ApiError::invalid_field(field, format!("invalid {field}: {reason}"))
            }
            Error::InvalidEventPattern { pattern, reason } => {
                ApiError::invalid_field("events", format!("invalid pattern {pattern:?}: {reason}"))
            }
            Error::InvalidEventType { event_type, reason } => ApiError::invalid_field(
                "event_type",
                format!("invalid event type {event_type:?}: {reason}"),
            ),
            Error::InvalidPayload(e) => {
                ApiError::invalid_field("payload", format!("invalid payload: {e}"))
            }
            Error::PayloadTooLarge { size, limit } => ApiError::invalid_field(
                "payload",
                format!("payload of {size} bytes exceeds the limit of {limit} bytes"),
            ),
            e @ Error::PayloadMismatch(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "schema_mismatch",
                e.to_string(),
            )
            .on("payload"),
            Error::InvalidTenant { reason, .. } => {
                ApiError::invalid_field("tenant", format!("invalid tenant: {reason}"))
            }
            Error::InvalidConfig { setting, reason } => {
                ApiError::invalid_field(setting, format!("invalid {setting}: {reason}"))
            }
            Error::TenantNotFound(_) => ApiError::not_found("tenant"),
            Error::EventNotFound(_) => ApiError::not_found("event"),
            Error::EndpointNotFound(_) => ApiError::not_found("endpoint"),
            Error::DeliveryInProgress { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "delivery_in_progress",
                "the delivery is still queued or being attempted",
            ),
            Error::ShutDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shut_down",
                "the webhook service is shutting down",
            ),
            other => {
                tracing::error!(error = %other, "portal request failed");
                ApiError::internal()
            }
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "field": self.field,
            }
        })
    }
}

/// The API's name for a field the bus names by its Rust setter.
fn api_field(field: &'static str) -> &'static str {
    match field {
        "header" | "headers" => "headers",
        "attribute_filter" | "filter_attribute" | "filters" => "filters",
        "grace" => "grace_seconds",
        other => other,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::from_bus(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_say_nothing_of_their_cause() {
        let e = ApiError::from_bus(Error::Corrupt {
            what: "event",
            detail: "secret detail".into(),
        });
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.body().to_string().contains("secret detail"));
    }

    #[test]
    fn bus_fields_become_api_fields() {
        let e = ApiError::from_bus(Error::InvalidEndpoint {
            field: "header",
            reason: "bad".into(),
        });
        assert_eq!(e.field.as_deref(), Some("headers"));
        assert_eq!(e.body()["error"]["code"], "invalid_field");
    }
}
