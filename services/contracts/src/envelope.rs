//! The response envelope every EdgeX v3 answer carries, and the request base.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::EdgeXError;

/// The API version every request and response carries.
pub const API_VERSION: &str = "v3";

fn api_version() -> String {
    API_VERSION.to_owned()
}

/// Fields every request DTO may carry (`BaseRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaseRequest {
    /// The API version; EdgeX requires `v3`.
    #[serde(default)]
    pub api_version: String,
    /// The caller's id for this request item, echoed in its response.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

/// Fields every response carries (`BaseResponse`, and `ErrorResponse` when `message` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaseResponse {
    /// Always `v3`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// The request item's id, when the request carried one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The HTTP status code of this answer (or of this item, in a batch).
    pub status_code: u16,
    /// What went wrong, on errors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl BaseResponse {
    /// A success answer with `status_code`.
    pub fn new(request_id: impl Into<String>, status_code: u16) -> Self {
        Self { api_version: api_version(), request_id: request_id.into(), status_code, message: String::new() }
    }
    /// An error answer built from `err`.
    pub fn from_error(request_id: impl Into<String>, err: &EdgeXError) -> Self {
        Self {
            api_version: api_version(),
            request_id: request_id.into(),
            status_code: err.status_code(),
            message: err.message.clone(),
        }
    }
}

/// A response that also names the id of what was created (`BaseWithIdResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaseWithIdResponse {
    /// The common fields.
    #[serde(flatten)]
    pub base: BaseResponse,
    /// The id of the created entity, on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl BaseWithIdResponse {
    /// A 201 answer for the entity `id`.
    pub fn created(request_id: impl Into<String>, id: impl Into<String>) -> Self {
        Self { base: BaseResponse::new(request_id, 201), id: id.into() }
    }
    /// An error answer for one item.
    pub fn from_error(request_id: impl Into<String>, err: &EdgeXError) -> Self {
        Self { base: BaseResponse::from_error(request_id, err), id: String::new() }
    }
}

/// A response carrying a list and the count of all matches (`BaseWithTotalCountResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiResponse<T> {
    /// The common fields.
    #[serde(flatten)]
    pub base: BaseResponse,
    /// How many entities match the query, whatever the page.
    pub total_count: u64,
    /// The page of entities, under the name EdgeX gives the list.
    #[serde(flatten)]
    pub items: T,
}

/// `GET /count`-style answer (`CountResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountResponse {
    /// The common fields.
    #[serde(flatten)]
    pub base: BaseResponse,
    /// The count.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_response_has_edgex_fields_and_omits_empty_ones() {
        let r = BaseResponse::from_error("", &EdgeXError::not_found("device", "d1"));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"apiVersion": "v3", "statusCode": 404, "message": "device 'd1' does not exist"})
        );
    }

    #[test]
    fn created_item_carries_request_id_and_id() {
        let r = BaseWithIdResponse::created("r1", "id1");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"apiVersion": "v3", "requestId": "r1", "statusCode": 201, "id": "id1"})
        );
    }
}
