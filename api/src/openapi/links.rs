//! OpenAPI links (issue 13): from each operation that creates a resource to
//! the operations that take the new resource's id, so that a client (and
//! Schemathesis' stateful phase) knows which response supplies which path
//! parameter.
//!
//! A creating operation is a POST answering 201 with an object that has an
//! `id`. Its resource's collection is the POST path's last segment
//! (`/clients/{id}/segments` creates `segments`); the operations that use
//! the new id are those under `/api/v1/<collection>/{param}` (resources are
//! addressed flat: `/segments/{id}`) or under the POST path itself plus
//! `/{param}` (nested: `/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}`).
//! The new id fills the parameter after the collection; a parameter the POST
//! path also has is taken from the request. A target with any other path
//! parameter gets no link (nothing would supply it).
use serde_json::{Map, Value, json};

const PREFIX: &str = "/api/v1";

/// POSTs whose last segment is an action, not the collection they create
/// in: the collection they create in.
const ACTIONS: [(&str, &str); 2] = [
    (
        "/api/v1/touchpoint-libraries/{id}/clone",
        "touchpoint-libraries",
    ),
    (
        "/api/v1/clients/{id}/questionnaires/import",
        "questionnaires",
    ),
];

/// POSTs that answer 201 with their parent resource, not the one they
/// add: the `id` in the answer is not the new item's.
const ANSWER_WITH_PARENT: [&str; 1] = ["/api/v1/touchpoint-libraries/{id}/stages"];

pub fn add_links(doc: &mut Value) {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    // (creating path, its links)
    let mut found: Vec<(String, Map<String, Value>)> = Vec::new();
    for (path, item) in paths {
        let Some(post) = item.get("post") else {
            continue;
        };
        if ANSWER_WITH_PARENT.contains(&path.as_str()) || !answers_with_id(post, &schemas) {
            continue;
        }
        let links = links_from(path, paths);
        if !links.is_empty() {
            found.push((path.clone(), links));
        }
    }
    for (path, links) in found {
        if let Some(r) = doc
            .pointer_mut(&format!("/paths/{}/post/responses/201", escape(&path)))
            .and_then(Value::as_object_mut)
        {
            r.insert("links".into(), Value::Object(links));
        }
    }
}

/// JSON Pointer escaping of one token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn answers_with_id(post: &Value, schemas: &Value) -> bool {
    let Some(schema) = post.pointer("/responses/201/content/application~1json/schema") else {
        return false;
    };
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .and_then(|n| schemas.get(n))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    schema.pointer("/properties/id").is_some()
}

/// The links of the creating POST at `path`.
fn links_from(path: &str, paths: &Map<String, Value>) -> Map<String, Value> {
    let collection = ACTIONS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, c)| *c)
        .or_else(|| path.rsplit('/').next())
        .unwrap_or_default();
    let flat = format!("{PREFIX}/{collection}/");
    let nested = format!("{path}/");
    let own_params = params(path);
    let mut links = Map::new();
    for (target, item) in paths {
        let rest = if let Some(r) = target.strip_prefix(&nested) {
            r
        } else if let Some(r) = target.strip_prefix(&flat) {
            r
        } else {
            continue;
        };
        // The segment right after the collection is the new id's.
        let Some(new_param) = rest
            .split('/')
            .next()
            .and_then(|s| s.strip_prefix('{'))
            .and_then(|s| s.strip_suffix('}'))
        else {
            continue;
        };
        let mut parameters = Map::new();
        let mut complete = true;
        for p in params(target) {
            if p == new_param {
                parameters.insert(p.to_owned(), "$response.body#/id".into());
            } else if own_params.contains(&p) && !target.starts_with(&flat) {
                parameters.insert(p.to_owned(), format!("$request.path.{p}").into());
            } else {
                complete = false;
            }
        }
        if !complete {
            continue;
        }
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            if method == "parameters" {
                continue;
            }
            links.insert(
                id.to_owned(),
                json!({
                    "operationId": id,
                    "parameters": parameters,
                    "description": format!(
                        "`{new_param}` of {} {target} is the `id` in this answer",
                        method.to_uppercase()
                    ),
                }),
            );
        }
    }
    links
}

/// The `{names}` of a path template, in order.
fn params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}
