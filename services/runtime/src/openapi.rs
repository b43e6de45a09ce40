//! OpenAPI documents built from a table of routes: each service lists its routes (method,
//! path, summary, query parameters, body, answer) and its DTO schemas; this builds the
//! document served at `/api/v3/openapi.json`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, Schema, Type};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required, ResponseBuilder,
};

/// A request body shape.
pub enum Body {
    /// No body.
    None,
    /// A JSON array of the named request schema.
    Batch(&'static str),
    /// One JSON object of the named schema.
    One(&'static str),
    /// A multipart form with a `file` field (YAML), or a raw YAML body.
    Upload,
}

/// The success answer.
pub enum Answer {
    /// 207 with an array of `BaseWithIdResponse` items.
    Created,
    /// 207 with an array of `BaseResponse` items.
    Updated,
    /// This status with the named schema.
    Status(u16, &'static str),
}

/// One route: method, path, summary, query parameters, body, answer.
pub type Route = (HttpMethod, &'static str, &'static str, &'static [&'static str], Body, Answer);

use Answer::*;
use Body::*;

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn array_of(name: &str) -> Schema {
    ArrayBuilder::new().items(schema_ref(name)).build().into()
}

fn json_content(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// Error answers a route gives beyond the 400, 404, 409 and 500 every route documents:
/// method, path (under `/api/v3`), status codes.
pub type MoreErrors = (HttpMethod, &'static str, &'static [u16]);

/// Adds each of `more`'s error answers to `doc`: a `BaseResponse` described by `reason(code)`.
/// A route `doc` does not have is skipped (`problems` reports routes missing from it).
pub fn add_error_answers(doc: &mut OpenApi, more: &[MoreErrors], reason: fn(u16) -> &'static str) {
    for (method, path, codes) in more {
        let Some(item) = doc.paths.paths.get_mut(&format!("/api/v3{path}")) else { continue };
        let op = match method {
            HttpMethod::Get => item.get.as_mut(),
            HttpMethod::Put => item.put.as_mut(),
            HttpMethod::Post => item.post.as_mut(),
            HttpMethod::Delete => item.delete.as_mut(),
            HttpMethod::Patch => item.patch.as_mut(),
            _ => Option::None,
        };
        let Some(op) = op else { continue };
        for code in *codes {
            let answer = ResponseBuilder::new()
                .description(reason(*code))
                .content("application/json", json_content(schema_ref("BaseResponse")))
                .build();
            op.responses.responses.insert(code.to_string(), answer.into());
        }
    }
}

/// An OpenAPI document titled `title` for `routes` (served under `/api/v3`), with query
/// parameter types from `query_type` and the DTO schemas `components`.
pub fn document(
    title: &str,
    routes: &[Route],
    query_type: fn(&str) -> Type,
    components: utoipa::openapi::Components,
) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path, summary, query, body, answer) in routes {
        let mut op = OperationBuilder::new().summary(Some(*summary)).tag(title);
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)))),
            );
        }
        for q in *query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*q)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .schema(Some(ObjectBuilder::new().schema_type(query_type(q)))),
            );
        }
        let request = match body {
            None => Option::None,
            Batch(name) => Some(RequestBodyBuilder::new().content("application/json", json_content(array_of(name)))),
            One(name) => Some(RequestBodyBuilder::new().content("application/json", json_content(schema_ref(name)))),
            Upload => {
                let form = ObjectBuilder::new()
                    .property(
                        "file",
                        ObjectBuilder::new().schema_type(Type::String).format(Some(
                            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary),
                        )),
                    )
                    .required("file");
                Some(
                    RequestBodyBuilder::new()
                        .content("multipart/form-data", json_content(form))
                        .content("application/x-yaml", json_content(ObjectBuilder::new().schema_type(Type::String))),
                )
            }
        };
        if let Some(r) = request {
            op = op.request_body(Some(r.required(Some(Required::True)).build()));
        }
        let (status, schema): (u16, RefOr<Schema>) = match answer {
            Created => (207, array_of("BaseWithIdResponse").into()),
            Updated => (207, array_of("BaseResponse").into()),
            Status(s, name) => (*s, schema_ref(name)),
        };
        op = op.response(
            status.to_string(),
            ResponseBuilder::new().description("Success").content("application/json", json_content(schema)),
        );
        for (code, what) in
            [("400", "Invalid request"), ("404", "Not found"), ("409", "Conflict"), ("500", "Server error")]
        {
            op = op.response(
                code,
                ResponseBuilder::new()
                    .description(what)
                    .content("application/json", json_content(schema_ref("BaseResponse"))),
            );
        }
        // The routes are served under `/api/v3`, as the common endpoints are documented.
        paths = paths.path(format!("/api/v3{path}"), PathItem::new(method.clone(), op));
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title(format!("Oxedge {title}")).version(env!("CARGO_PKG_VERSION")))
        .paths(paths)
        .components(Some(components))
        .build()
}

/// What is wrong with `doc` for `routes`: routes missing from it, schemas referenced but
/// not defined. Services assert in a test that this is empty.
pub fn problems(doc: &OpenApi, routes: &[Route]) -> Vec<String> {
    let doc = serde_json::to_value(doc).unwrap_or_default();
    let schemas = doc["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (_, path, ..) in routes {
        if doc["paths"].get(format!("/api/v3{path}")).is_none() {
            out.push(format!("route {path} is not documented"));
        }
    }
    for r in doc.to_string().split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap_or(0)];
        if !schemas.contains_key(name) {
            out.push(format!("schema {name} is referenced but not defined"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::ComponentsBuilder;

    use super::*;

    #[test]
    fn error_answers_join_the_listed_operations_only() {
        let routes: &[Route] = &[
            (HttpMethod::Get, "/thing/{name}", "A thing", &[], None, Status(200, "BaseResponse")),
            (HttpMethod::Put, "/thing/{name}", "Writes a thing", &[], None, Status(200, "BaseResponse")),
        ];
        let mut doc = document("test", routes, |_| Type::String, ComponentsBuilder::new().build());
        let more: &[MoreErrors] =
            &[(HttpMethod::Get, "/thing/{name}", &[503, 504]), (HttpMethod::Post, "/unknown", &[503])];
        add_error_answers(&mut doc, more, |code| if code == 503 { "Down" } else { "Slow" });

        let item = &doc.paths.paths["/api/v3/thing/{name}"];
        let get = &item.get.as_ref().expect("GET").responses.responses;
        let put = &item.put.as_ref().expect("PUT").responses.responses;
        let json = serde_json::to_value(&get["504"]).expect("serializes");
        assert_eq!(json["description"], "Slow");
        assert_eq!(json["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/BaseResponse");
        assert!(get.contains_key("503"));
        assert!(!put.contains_key("503") && !put.contains_key("504"), "PUT was not listed");
        assert!(!doc.paths.paths.contains_key("/api/v3/unknown"));
    }
}
