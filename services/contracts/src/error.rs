//! One error type for the whole API, and its one mapping to HTTP status codes.

use std::fmt;

/// What went wrong, in EdgeX's terms. Each kind has exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request body or a parameter does not satisfy the contract (400).
    ContractInvalid,
    /// The named entity does not exist (404).
    EntityDoesNotExist,
    /// The HTTP method is not allowed on this path (405).
    MethodNotAllowed,
    /// An entity with the same name or id exists already (409).
    DuplicateName,
    /// The entity is still referenced by another one (409).
    StatusConflict,
    /// The request body is larger than the service accepts (413).
    PayloadTooLarge,
    /// The content type is not one the endpoint accepts (415).
    UnsupportedMediaType,
    /// `offset`/`limit` point past the data (416).
    RangeNotSatisfiable,
    /// The target is administratively locked (423).
    ServiceLocked,
    /// Anything the service did wrong (500).
    ServerError,
    /// A dependency is unreachable (503).
    ServiceUnavailable,
    /// A dependency did not answer in time (504).
    Timeout,
}

impl ErrorKind {
    /// The HTTP status code EdgeX answers for this kind.
    pub const fn status_code(self) -> u16 {
        match self {
            ErrorKind::ContractInvalid => 400,
            ErrorKind::EntityDoesNotExist => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::DuplicateName | ErrorKind::StatusConflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::RangeNotSatisfiable => 416,
            ErrorKind::ServiceLocked => 423,
            ErrorKind::ServerError => 500,
            ErrorKind::ServiceUnavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

/// An error with a kind (its status code) and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeXError {
    /// Decides the HTTP status.
    pub kind: ErrorKind,
    /// Says what is wrong, naming the field or entity.
    pub message: String,
}

impl EdgeXError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    /// 400: the input breaks the contract.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ContractInvalid, message)
    }
    /// 404: `what` named `name` does not exist.
    pub fn not_found(what: &str, name: &str) -> Self {
        Self::new(ErrorKind::EntityDoesNotExist, format!("{what} '{name}' does not exist"))
    }
    /// 409: `what` named `name` exists already.
    pub fn duplicate(what: &str, name: &str) -> Self {
        Self::new(ErrorKind::DuplicateName, format!("{what} '{name}' already exists"))
    }
    /// 409: the entity is still in use.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::StatusConflict, message)
    }
    /// 500: the service failed.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ServerError, message)
    }
    /// The HTTP status code of this error.
    pub fn status_code(&self) -> u16 {
        self.kind.status_code()
    }
}

impl fmt::Display for EdgeXError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EdgeXError {}

/// The result type used across the contracts and services.
pub type Result<T, E = EdgeXError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_the_status_edgex_uses() {
        assert_eq!(EdgeXError::invalid("x").status_code(), 400);
        assert_eq!(EdgeXError::not_found("device", "d").status_code(), 404);
        assert_eq!(EdgeXError::duplicate("device", "d").status_code(), 409);
        assert_eq!(EdgeXError::conflict("in use").status_code(), 409);
        assert_eq!(ErrorKind::RangeNotSatisfiable.status_code(), 416);
        assert_eq!(ErrorKind::ServiceLocked.status_code(), 423);
        assert_eq!(EdgeXError::server("x").status_code(), 500);
        assert_eq!(ErrorKind::ServiceUnavailable.status_code(), 503);
        assert_eq!(ErrorKind::Timeout.status_code(), 504);
    }
}
