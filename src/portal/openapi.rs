//! The OpenAPI 3.1 document of the portal's API, served at
//! `{prefix}/openapi.json`. Written by hand next to the routes
//! (`openapi.json`); `tests/portal_openapi.rs` checks it parses and lists
//! every route, and the schemathesis run checks the handler answers as it
//! says.

/// The document, as served.
pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

/// The document with its server set to the portal's prefix, so tools
/// resolve the paths (`/api/v1/…`) below it.
pub(crate) fn document(prefix: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(DOCUMENT).expect("the embedded OpenAPI document is JSON (tested)");
    doc["servers"] = serde_json::json!([{ "url": if prefix.is_empty() { "/" } else { prefix } }]);
    serde_json::to_string_pretty(&doc).expect("a JSON value always serializes")
}
