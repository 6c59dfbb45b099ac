//! The API objects that flow through the pipeline.
//!
//! An object is what kube-apiserver decodes from an etcd key-value: its key (`namespace/name`, or
//! `name` when cluster-scoped, as client-go's `MetaNamespaceKeyFunc` makes it), its
//! `resourceVersion` (the etcd `mod_revision`), its `uid` (the etcd `create_revision`, which
//! changes when a name is deleted and re-created), its labels, the node it is bound to (a pod's
//! `spec.nodeName`, for field selectors), and a payload value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A resource version: an etcd revision. Upstream these are opaque strings; like the cacher,
/// the reflector and RealFIFO, the simulator compares them as integers (SPEC §9.2 N9).
pub type ResourceVersion = u64;

/// An object's identity within its resource: `namespace/name` or `name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectKey(Arc<str>);

impl ObjectKey {
    /// A key from its `namespace/name` (or `name`) form.
    pub fn new(key: &str) -> ObjectKey {
        ObjectKey(Arc::from(key))
    }

    /// The key of `name` in `namespace` (cluster-scoped when `namespace` is empty).
    pub fn namespaced(namespace: &str, name: &str) -> ObjectKey {
        if namespace.is_empty() {
            ObjectKey::new(name)
        } else {
            ObjectKey::new(&format!("{namespace}/{name}"))
        }
    }

    /// The key as client-go writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace, or `""` for a cluster-scoped object (`MetaNamespaceIndexFunc`).
    pub fn namespace(&self) -> &str {
        self.0
            .split_once('/')
            .map_or("", |(namespace, _)| namespace)
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, name)| name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object's labels, shared: objects are cloned at every stage of the pipeline (cache, watch
/// stream, FIFO, indexer), and labels change only when a writer writes new ones.
pub type Labels = Arc<BTreeMap<String, String>>;

/// The node a pod is bound to, shared like [`Labels`].
pub type NodeName = Arc<str>;

/// Whether `node_name` is unset (an unscheduled pod, or any object that is not a pod).
fn is_unscheduled(node_name: &NodeName) -> bool {
    node_name.is_empty()
}

/// One state of one API object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Object {
    /// `namespace/name` or `name`.
    pub key: ObjectKey,
    /// The etcd `mod_revision` this state was written at (for a DELETED event: the deletion
    /// revision, SPEC §2.1).
    pub resource_version: ResourceVersion,
    /// The etcd `create_revision`: distinguishes a re-created object from the old one.
    pub uid: u64,
    /// Labels, for selectors and the label index.
    pub labels: Labels,
    /// A pod's `spec.nodeName`: the node it is bound to, `""` while unscheduled (not
    /// serialized then, so runs without nodes encode as before).
    #[serde(default, skip_serializing_if = "is_unscheduled")]
    pub node_name: NodeName,
    /// The payload the workload wrote; any change of it is a real update.
    pub value: u64,
}

impl Object {
    /// An object with no labels and payload 0, as the FIFO script language writes them.
    pub fn bare(key: &str, resource_version: ResourceVersion) -> Object {
        Object {
            key: ObjectKey::new(key),
            resource_version,
            uid: 0,
            labels: Labels::default(),
            node_name: NodeName::default(),
            value: 0,
        }
    }

    /// The label `name`, if set.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The same object with `resource_version` replaced (DELETED events carry the deletion RV).
    pub fn with_resource_version(&self, resource_version: ResourceVersion) -> Object {
        Object {
            resource_version,
            ..self.clone()
        }
    }

    /// Encodes labels and payload as the etcd value bytes: `v=7;app=a,tier=b`.
    pub fn encode_body(labels: &BTreeMap<String, String>, value: u64) -> Vec<u8> {
        Object::encode_body_on_node(labels, value, "")
    }

    /// Encodes labels, payload and the node a pod is bound to: `v=7;app=a;node=node-1` (no
    /// node part while unscheduled).
    pub fn encode_body_on_node(
        labels: &BTreeMap<String, String>,
        value: u64,
        node_name: &str,
    ) -> Vec<u8> {
        use std::io::Write as _;
        let mut body = Vec::with_capacity(32);
        write!(body, "v={value};").expect("writing to a Vec cannot fail");
        for (index, (name, label_value)) in labels.iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            body.extend_from_slice(name.as_bytes());
            body.push(b'=');
            body.extend_from_slice(label_value.as_bytes());
        }
        if !node_name.is_empty() {
            body.extend_from_slice(b";node=");
            body.extend_from_slice(node_name.as_bytes());
        }
        body
    }

    /// Decodes an object from an etcd key-value: `key` relative to the resource prefix, the
    /// revisions, and the value bytes written by [`Object::encode_body`].
    pub fn decode(
        key: &str,
        mod_revision: u64,
        create_revision: u64,
        body: &[u8],
    ) -> Result<Object, DecodeError> {
        let text = std::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8)?;
        let (value_part, rest) = text.split_once(';').ok_or(DecodeError::Malformed)?;
        let (labels_part, node_name) = match rest.split_once(';') {
            Some((labels, node)) => (
                labels,
                node.strip_prefix("node=").ok_or(DecodeError::Malformed)?,
            ),
            None => (rest, ""),
        };
        let value = value_part
            .strip_prefix("v=")
            .and_then(|v| v.parse().ok())
            .ok_or(DecodeError::Malformed)?;
        let mut labels = BTreeMap::new();
        for pair in labels_part.split(',').filter(|p| !p.is_empty()) {
            let (name, label_value) = pair.split_once('=').ok_or(DecodeError::Malformed)?;
            labels.insert(name.to_owned(), label_value.to_owned());
        }
        Ok(Object {
            key: ObjectKey::new(key),
            resource_version: mod_revision,
            uid: create_revision,
            labels: Arc::new(labels),
            node_name: NodeName::from(node_name),
            value,
        })
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.key, self.resource_version)
    }
}

/// Why an etcd value is not an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not UTF-8.
    #[error("object body is not utf-8")]
    NotUtf8,
    /// The bytes are not `v=N;labels`.
    #[error("object body is not of the form v=N;name=value,...")]
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_splits_namespace_and_name() {
        let key = ObjectKey::namespaced("default", "web");
        assert_eq!(key.as_str(), "default/web");
        assert_eq!(key.namespace(), "default");
        assert_eq!(key.name(), "web");
        let cluster = ObjectKey::namespaced("", "node-1");
        assert_eq!(cluster.namespace(), "");
        assert_eq!(cluster.name(), "node-1");
    }

    #[test]
    fn body_round_trips_through_etcd_bytes() {
        let labels = BTreeMap::from([("app".to_owned(), "a".to_owned())]);
        let body = Object::encode_body(&labels, 7);
        assert_eq!(body, b"v=7;app=a");
        let object = Object::decode("ns/x", 12, 10, &body).expect("decodes");
        assert_eq!(object.resource_version, 12);
        assert_eq!(object.uid, 10);
        assert_eq!(object.label("app"), Some("a"));
        assert_eq!(object.value, 7);
        assert_eq!(object.to_string(), "ns/x@12");
    }

    #[test]
    fn a_pods_node_round_trips_and_an_unscheduled_pod_has_none() {
        let body = Object::encode_body_on_node(&BTreeMap::new(), 3, "node-1");
        assert_eq!(body, b"v=3;;node=node-1");
        let object = Object::decode("ns/p", 5, 5, &body).expect("decodes");
        assert_eq!(&*object.node_name, "node-1");
        let unscheduled = Object::decode("ns/p", 5, 5, b"v=3;").expect("decodes");
        assert_eq!(&*unscheduled.node_name, "");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(
            Object::decode("k", 1, 1, b"garbage"),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            Object::decode("k", 1, 1, &[0xff]),
            Err(DecodeError::NotUtf8)
        );
    }
}
