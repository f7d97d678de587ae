//! The API's errors: one typed body (`{"error": code, "message": text}`) and the HTTP status each
//! code answers with. Handlers map the lab layer's errors here; nothing else builds a response for
//! a failure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong, as a client can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (a bad lab or node name, a body that is not the schema).
    BadRequest,
    /// No valid token was given.
    Unauthorized,
    /// The request names a host path outside the server's allowed directory, or asks for
    /// something the API never does (host-side commands).
    Forbidden,
    /// No such lab or node.
    NotFound,
    /// Another labwire process works on the lab (its lock is taken), or it is already deployed.
    Conflict,
    /// The topology does not validate (the message holds every diagnostic).
    InvalidTopology,
    /// The deploy failed; what it had made was removed.
    DeployFailed,
    /// The node is not running.
    NotRunning,
    /// The host or the node cannot do what was asked (a kernel without the queueing discipline
    /// an impairment needs, a command that failed inside the node).
    Refused,
    /// The operation exists in the API but this build of labwire cannot do it yet.
    NotAvailable,
    /// Something failed on the host.
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::InvalidTopology
            | ErrorCode::DeployFailed
            | ErrorCode::NotRunning
            | ErrorCode::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotAvailable => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    pub error: ErrorCode,
    /// What happened, for a person.
    pub message: String,
}

impl ApiError {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            error,
            message: message.into(),
        }
    }

    pub fn not_available(what: &str) -> ApiError {
        ApiError::new(
            ErrorCode::NotAvailable,
            format!("{what} is not available yet in this build of labwire"),
        )
    }
}

impl From<lab::Error> for ApiError {
    fn from(e: lab::Error) -> ApiError {
        let code = match &e {
            lab::Error::Busy { .. } | lab::Error::AlreadyDeployed { .. } => ErrorCode::Conflict,
            lab::Error::NotDeployed { .. } | lab::Error::NoSuchNode { .. } => ErrorCode::NotFound,
            lab::Error::NoMatchingNode { .. } | lab::Error::NoSuchLinkEnd { .. } => {
                ErrorCode::NotFound
            }
            lab::Error::BadEndpoint(_) => ErrorCode::BadRequest,
            lab::Error::NotRunning { .. } => ErrorCode::NotRunning,
            lab::Error::BadLabName { .. } => ErrorCode::BadRequest,
            lab::Error::Path(_) => ErrorCode::Refused,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, lab::error::chain(&e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.error.status(), Json(self)).into_response()
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
