//! The HTTP/JSON face of the simulated apiserver, for ConfigMaps in one namespace: what a
//! kube-rs client sends is read into the model's requests ([`ListOptions`], [`WatchOptions`],
//! a controller [`Write`]), and the model's answers are written out as kube-apiserver writes
//! them (a `ConfigMapList`, JSON-lines watch events, a `Status` with its HTTP code).
//!
//! This is translation only: every semantic (which RV a list is served at, when a watch is too
//! old, 429s while the cache initializes) stays the apiserver model's. The simulated objects
//! are shown as ConfigMaps: `metadata.resourceVersion` and `metadata.uid` are the etcd
//! revisions, the payload is `data.value` (and a pod's node `data.node`).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Response, StatusCode, Uri};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use crate::api::{
    ContinueToken, ListOptions, ListResponse, ResourceVersionMatch, ResourceVersionParam, Status,
    WatchEvent, WatchOptions,
};
use crate::controller::{Write, WriteError};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// The annotation that ends a watch-list stream's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A request the face understood.
#[derive(Clone, Debug, PartialEq)]
pub enum FaceRequest {
    /// `GET .../configmaps` without `watch`.
    List(ListOptions),
    /// `GET .../configmaps?watch=true`.
    Watch(WatchOptions),
    /// `POST`, `PUT` or `DELETE` of one ConfigMap.
    Write(Write),
}

/// Why the face cannot read a request: answered with 400 (or 405) and this line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaceError {
    /// Not a ConfigMap path of the face.
    #[error(
        "path {0} is not served (allowed: /api/v1/namespaces/NS/configmaps and .../configmaps/NAME)"
    )]
    Path(String),
    /// A method the path does not take.
    #[error(
        "{0} is not allowed here (allowed: GET and POST on the collection, PUT and DELETE on one ConfigMap)"
    )]
    Method(String),
    /// A query parameter the face does not model.
    #[error(
        "query parameter {0:?} is not supported (allowed: watch, limit, continue, resourceVersion, resourceVersionMatch, allowWatchBookmarks, timeoutSeconds, sendInitialEvents)"
    )]
    Parameter(String),
    /// A value that does not parse.
    #[error("{name}={value:?} is not valid ({allowed})")]
    Value {
        /// The parameter or field.
        name: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A body that is not a ConfigMap of the face's shape.
    #[error("the body is not a ConfigMap: {0}")]
    Body(String),
}

impl FaceError {
    /// The answer to a request the face could not read.
    pub fn response(&self) -> Response<Bytes> {
        let code = match self {
            FaceError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        };
        status_response(code.as_u16(), "BadRequest", &self.to_string(), None)
    }
}

/// Reads one request: its method, its URI (path and query) and its body.
pub fn parse(method: &Method, uri: &Uri, body: &[u8]) -> Result<FaceRequest, FaceError> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/api/v1/namespaces/")
        .ok_or_else(|| FaceError::Path(path.to_owned()))?;
    let (namespace, rest) = rest
        .split_once('/')
        .ok_or_else(|| FaceError::Path(path.to_owned()))?;
    let name = match rest {
        "configmaps" => None,
        _ => match rest.strip_prefix("configmaps/") {
            Some(name) if !name.is_empty() && !name.contains('/') => Some(name),
            _ => return Err(FaceError::Path(path.to_owned())),
        },
    };
    let query = Query::parse(uri.query().unwrap_or(""))?;
    match (method, name) {
        (&Method::GET, None) if query.watch => {
            Ok(FaceRequest::Watch(query.watch_options(namespace)))
        }
        (&Method::GET, None) => Ok(FaceRequest::List(query.list_options())),
        (&Method::POST, None) => {
            let object = object_of_body(body)?;
            Ok(FaceRequest::Write(Write::Create {
                key: ObjectKey::namespaced(namespace, object.key.name()),
                labels: (*object.labels).clone(),
                value: object.value,
            }))
        }
        (&Method::PUT, Some(name)) => {
            let object = object_of_body(body)?;
            if object.key.name() != name || object.key.namespace() != namespace {
                return Err(FaceError::Body(format!(
                    "metadata names {}, the path {namespace}/{name}",
                    object.key
                )));
            }
            Ok(FaceRequest::Write(Write::Update(object)))
        }
        (&Method::DELETE, Some(name)) => {
            let precondition = match body {
                [] => None,
                body => delete_precondition(body)?,
            };
            let precondition = precondition.ok_or(FaceError::Body(
                "a delete needs preconditions.resourceVersion".to_owned(),
            ))?;
            Ok(FaceRequest::Write(Write::Delete {
                key: ObjectKey::namespaced(namespace, name),
                precondition,
            }))
        }
        (method, _) => Err(FaceError::Method(method.to_string())),
    }
}

/// The query parameters of a list or watch.
#[derive(Default)]
struct Query {
    watch: bool,
    limit: u64,
    continue_token: Option<ContinueToken>,
    resource_version: Option<ResourceVersionParam>,
    resource_version_match: ResourceVersionMatch,
    allow_watch_bookmarks: bool,
    timeout_seconds: Option<u64>,
    send_initial_events: bool,
}

impl Query {
    fn parse(query: &str) -> Result<Query, FaceError> {
        let mut parsed = Query::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| FaceError::Value {
                name: "query",
                value: value.to_owned(),
                allowed: "percent-encoded UTF-8",
            })?;
            match name {
                "watch" => parsed.watch = flag("watch", &value)?,
                "limit" => parsed.limit = number("limit", &value)?,
                "continue" if !value.is_empty() => {
                    parsed.continue_token = Some(decode_continue(&value)?)
                }
                "continue" => {}
                "resourceVersion" => parsed.resource_version = Some(resource_version(&value)?),
                "resourceVersionMatch" => {
                    parsed.resource_version_match = match value.as_str() {
                        "NotOlderThan" => ResourceVersionMatch::NotOlderThan,
                        "Exact" => ResourceVersionMatch::Exact,
                        "" => ResourceVersionMatch::Unset,
                        _ => {
                            return Err(FaceError::Value {
                                name: "resourceVersionMatch",
                                value,
                                allowed: "NotOlderThan or Exact",
                            });
                        }
                    }
                }
                "allowWatchBookmarks" => {
                    parsed.allow_watch_bookmarks = flag("allowWatchBookmarks", &value)?
                }
                "timeoutSeconds" => {
                    parsed.timeout_seconds = Some(number("timeoutSeconds", &value)?)
                }
                "sendInitialEvents" => {
                    parsed.send_initial_events = flag("sendInitialEvents", &value)?
                }
                other => return Err(FaceError::Parameter(other.to_owned())),
            }
        }
        Ok(parsed)
    }

    fn list_options(self) -> ListOptions {
        ListOptions {
            resource_version_match: self.resource_version_match,
            limit: self.limit,
            continue_token: self.continue_token,
            ..ListOptions::at(self.resource_version.unwrap_or(ResourceVersionParam::Unset))
        }
    }

    /// `timeoutSeconds=0` is the server's own timeout, as an unset one.
    fn watch_options(self, namespace: &str) -> WatchOptions {
        WatchOptions {
            resource_version: self.resource_version.unwrap_or(ResourceVersionParam::Unset),
            resource_version_match: self.resource_version_match,
            send_initial_events: self.send_initial_events,
            allow_watch_bookmarks: self.allow_watch_bookmarks,
            timeout_ms: self
                .timeout_seconds
                .filter(|seconds| *seconds > 0)
                .map(|seconds| seconds * 1000),
            label_selector: None,
            field_selector: None,
            namespace: Some(namespace.to_owned()),
        }
    }
}

fn flag(name: &'static str, value: &str) -> Result<bool, FaceError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(FaceError::Value {
            name,
            value: value.to_owned(),
            allowed: "true or false",
        }),
    }
}

fn number(name: &'static str, value: &str) -> Result<u64, FaceError> {
    value.parse().map_err(|_| FaceError::Value {
        name,
        value: value.to_owned(),
        allowed: "a non-negative integer",
    })
}

fn resource_version(value: &str) -> Result<ResourceVersionParam, FaceError> {
    match value {
        "" => Ok(ResourceVersionParam::Unset),
        "0" => Ok(ResourceVersionParam::Zero),
        _ => number("resourceVersion", value).map(ResourceVersionParam::At),
    }
}

/// `%XX` escapes and `+` for a space, as `application/x-www-form-urlencoded` writes them.
fn percent_decode(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut input = value.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'%' => {
                let high = (input.next()? as char).to_digit(16)?;
                let low = (input.next()? as char).to_digit(16)?;
                bytes.push((high * 16 + low) as u8);
            }
            b'+' => bytes.push(b' '),
            byte => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).ok()
}

/// A continue token on the wire: `RV:last-key` (the model's token; upstream's is opaque).
fn encode_continue(token: &ContinueToken) -> String {
    format!("{}:{}", token.resource_version, token.last_key)
}

fn decode_continue(value: &str) -> Result<ContinueToken, FaceError> {
    let invalid = || FaceError::Value {
        name: "continue",
        value: value.to_owned(),
        allowed: "a token of an earlier page",
    };
    let (resource_version, last_key) = value.split_once(':').ok_or_else(invalid)?;
    Ok(ContinueToken {
        last_key: last_key.to_owned(),
        resource_version: resource_version.parse().map_err(|_| invalid())?,
    })
}

/// An object as the ConfigMap JSON kube-apiserver would write.
pub fn config_map_json(object: &Object) -> Value {
    let mut data = BTreeMap::from([("value".to_owned(), object.value.to_string())]);
    if !object.node_name.is_empty() {
        data.insert("node".to_owned(), object.node_name.to_string());
    }
    let mut metadata = json!({
        "name": object.key.name(),
        "namespace": object.key.namespace(),
        "resourceVersion": object.resource_version.to_string(),
        "uid": object.uid.to_string(),
    });
    if !object.labels.is_empty() {
        metadata["labels"] = json!(*object.labels);
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
}

/// A ConfigMap (as kube-rs decoded it) as the object it shows: the inverse of
/// [`config_map_json`].
pub fn object_of(config_map: &ConfigMap) -> Result<Object, FaceError> {
    let metadata = &config_map.metadata;
    let field = |name: &'static str, value: Option<&String>| {
        value.cloned().ok_or(FaceError::Body(format!("no {name}")))
    };
    let name = field("metadata.name", metadata.name.as_ref())?;
    let namespace = field("metadata.namespace", metadata.namespace.as_ref())?;
    let revision = |name: &'static str, value: Option<&String>| -> Result<u64, FaceError> {
        value.map_or(Ok(0), |value| number(name, value))
    };
    let data = config_map.data.clone().unwrap_or_default();
    Ok(Object {
        key: ObjectKey::namespaced(&namespace, &name),
        resource_version: revision(
            "metadata.resourceVersion",
            metadata.resource_version.as_ref(),
        )?,
        uid: revision("metadata.uid", metadata.uid.as_ref())?,
        labels: metadata.labels.clone().unwrap_or_default().into(),
        node_name: data.get("node").map_or("", String::as_str).into(),
        value: revision("data.value", data.get("value"))?,
    })
}

fn object_of_body(body: &[u8]) -> Result<Object, FaceError> {
    let config_map: ConfigMap =
        serde_json::from_slice(body).map_err(|error| FaceError::Body(error.to_string()))?;
    object_of(&config_map)
}

/// The `preconditions.resourceVersion` of a `DeleteOptions` body.
fn delete_precondition(body: &[u8]) -> Result<Option<ResourceVersion>, FaceError> {
    let options: Value =
        serde_json::from_slice(body).map_err(|error| FaceError::Body(error.to_string()))?;
    options["preconditions"]["resourceVersion"]
        .as_str()
        .map(|value| number("preconditions.resourceVersion", value))
        .transpose()
}

fn json_response(code: u16, body: &Value) -> Response<Bytes> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("a valid status and header")
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response<Bytes> {
    let mut response = json_response(code, &status_json(code, reason, message));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

/// An error status as its HTTP answer (410, 429 with `Retry-After`, 500, 504, 400).
pub fn error_response(status: &Status) -> Response<Bytes> {
    let reason = format!("{:?}", status.reason);
    status_response(
        status.code,
        &reason,
        &status.message,
        status.retry_after_seconds,
    )
}

/// A list page as a `ConfigMapList`.
pub fn list_response(page: &ListResponse) -> Response<Bytes> {
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(encode_continue(token));
    }
    let items: Vec<Value> = page.items.iter().map(config_map_json).collect();
    json_response(
        200,
        &json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": metadata, "items": items}),
    )
}

/// One watch event as its JSON line.
pub fn watch_line(event: &WatchEvent) -> Bytes {
    let (kind, object) = match event {
        WatchEvent::Added(object) => ("ADDED", config_map_json(object)),
        WatchEvent::Modified(object) => ("MODIFIED", config_map_json(object)),
        WatchEvent::Deleted(object) => ("DELETED", config_map_json(object)),
        WatchEvent::Bookmark {
            resource_version,
            initial_events_end,
        } => {
            let mut metadata = json!({"resourceVersion": resource_version.to_string()});
            if *initial_events_end {
                metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
            }
            let bookmark = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
            ("BOOKMARK", bookmark)
        }
        WatchEvent::Error(status) => (
            "ERROR",
            status_json(
                status.code,
                &format!("{:?}", status.reason),
                &status.message,
            ),
        ),
    };
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A write's answer: the object written (201 for a create), or its error status.
pub fn write_response(write: &Write, result: &Result<Object, WriteError>) -> Response<Bytes> {
    match result {
        Ok(object) => {
            let code = if matches!(write, Write::Create { .. }) {
                201
            } else {
                200
            };
            json_response(code, &config_map_json(object))
        }
        Err(error) => {
            let (code, reason) = match error {
                WriteError::Conflict => (409, "Conflict"),
                WriteError::AlreadyExists => (409, "AlreadyExists"),
                WriteError::NotFound => (404, "NotFound"),
                WriteError::Unavailable => (500, "InternalError"),
            };
            status_response(code, reason, &error.to_string(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StatusReason;

    fn get(uri: &str) -> Result<FaceRequest, FaceError> {
        parse(&Method::GET, &uri.parse().expect("a URI"), b"")
    }

    #[test]
    fn kube_rs_s_paged_list_reads_as_a_list_with_limit_and_continue() {
        let first = get("/api/v1/namespaces/ns-0/configmaps?&limit=2").expect("a list");
        assert_eq!(
            first,
            FaceRequest::List(ListOptions {
                limit: 2,
                ..ListOptions::at(ResourceVersionParam::Unset)
            })
        );
        let token = ContinueToken {
            last_key: "ns-0/obj-3".to_owned(),
            resource_version: -1,
        };
        let encoded = encode_continue(&token).replace('/', "%2F");
        let next = get(&format!(
            "/api/v1/namespaces/ns-0/configmaps?&limit=2&continue={encoded}"
        ))
        .expect("a list");
        let FaceRequest::List(options) = next else {
            panic!("{next:?}")
        };
        assert_eq!(options.continue_token, Some(token));
    }

    #[test]
    fn a_watch_carries_every_parameter_kube_rs_sends() {
        let watch = get("/api/v1/namespaces/ns-0/configmaps?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0")
            .expect("a watch");
        let FaceRequest::Watch(options) = watch else {
            panic!("{watch:?}")
        };
        assert_eq!(options.resource_version, ResourceVersionParam::Zero);
        assert_eq!(
            options.resource_version_match,
            ResourceVersionMatch::NotOlderThan
        );
        assert!(options.send_initial_events && options.allow_watch_bookmarks);
        assert_eq!(options.timeout_ms, Some(290_000));
        assert_eq!(options.namespace.as_deref(), Some("ns-0"));
    }

    #[test]
    fn what_the_face_does_not_model_is_a_400_naming_it() {
        let error = get("/api/v1/namespaces/ns-0/configmaps?labelSelector=a%3Db").unwrap_err();
        assert_eq!(error, FaceError::Parameter("labelSelector".to_owned()));
        assert_eq!(error.response().status(), 400);
        assert!(matches!(get("/api/v1/pods"), Err(FaceError::Path(_))));
        assert!(matches!(
            get("/api/v1/namespaces/ns-0/configmaps?limit=x"),
            Err(FaceError::Value { name: "limit", .. })
        ));
    }

    #[test]
    fn an_object_survives_the_round_trip_through_a_config_map() {
        let object = Object {
            uid: 4,
            value: 17,
            labels: BTreeMap::from([("app".to_owned(), "a".to_owned())]).into(),
            node_name: "node-1".into(),
            ..Object::bare("ns-0/obj-1", 9)
        };
        let config_map: ConfigMap =
            serde_json::from_value(config_map_json(&object)).expect("a ConfigMap");
        assert_eq!(object_of(&config_map), Ok(object));
    }

    #[test]
    fn watch_lines_are_the_json_kube_rs_decodes() {
        type Event = kube::core::WatchEvent<ConfigMap>;
        let decode = |event: &WatchEvent| -> Event {
            serde_json::from_slice(&watch_line(event)).expect("kube-rs decodes it")
        };
        let end = decode(&WatchEvent::Bookmark {
            resource_version: 12,
            initial_events_end: true,
        });
        let Event::Bookmark(bookmark) = end else {
            panic!("a bookmark")
        };
        assert_eq!(bookmark.metadata.resource_version, "12");
        assert!(
            bookmark
                .metadata
                .annotations
                .contains_key(INITIAL_EVENTS_END)
        );
        let gone = decode(&WatchEvent::Error(Status::new(
            StatusReason::Expired,
            "too old",
        )));
        assert!(matches!(gone, Event::Error(status) if status.code == 410));
        let deleted = decode(&WatchEvent::Deleted(Object::bare("ns-0/a", 5)));
        assert!(matches!(deleted, Event::Deleted(config_map)
            if config_map.metadata.resource_version.as_deref() == Some("5")));
    }

    #[test]
    fn a_429_carries_its_retry_after() {
        let mut status = Status::new(StatusReason::TooManyRequests, "initializing");
        status.retry_after_seconds = Some(2);
        let response = error_response(&status);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "2");
    }

    #[test]
    fn writes_read_as_controller_writes_and_answer_with_their_codes() {
        let uri: Uri = "/api/v1/namespaces/ns-0/configmaps/obj-1"
            .parse()
            .expect("URI");
        let delete = parse(
            &Method::DELETE,
            &uri,
            br#"{"preconditions":{"resourceVersion":"7"}}"#,
        )
        .expect("a delete");
        let expected = Write::Delete {
            key: ObjectKey::new("ns-0/obj-1"),
            precondition: 7,
        };
        assert_eq!(delete, FaceRequest::Write(expected.clone()));
        let body = config_map_json(&Object::bare("ns-0/obj-1", 7)).to_string();
        let update = parse(&Method::PUT, &uri, body.as_bytes()).expect("an update");
        assert_eq!(
            update,
            FaceRequest::Write(Write::Update(Object::bare("ns-0/obj-1", 7)))
        );
        let conflict = write_response(&expected, &Err(WriteError::Conflict));
        assert_eq!(conflict.status(), 409);
        let created = write_response(
            &Write::Create {
                key: ObjectKey::new("ns-0/obj-2"),
                labels: BTreeMap::new(),
                value: 1,
            },
            &Ok(Object::bare("ns-0/obj-2", 8)),
        );
        assert_eq!(created.status(), 201);
    }
}
