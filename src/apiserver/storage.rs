//! kube-apiserver's etcd3 storage layer: lists and watch events read straight from etcd
//! (`pkg/storage/etcd3/store.go`, `watcher.go`, `event.go`; SPEC §2.1).
//!
//! The cacher uses it for its own list and watch, the delegator for requests the cache cannot
//! serve, and the no-cache mode for everything.

use crate::api::WatchEventType;
use crate::api::{ContinueToken, ListResponse, Status, StatusReason};
use crate::etcd::{Etcd, EtcdError, Event, EventType, KeyRange, KeyValue, RangeRequest, Revision};
use crate::object::Object;

/// Decodes one stored key-value under `prefix` into an object.
pub fn decode_kv(prefix: &str, kv: &KeyValue) -> Result<Object, Status> {
    let key = kv
        .key
        .strip_prefix(prefix)
        .ok_or_else(|| internal(format!("key {} outside {prefix}", kv.key)))?;
    Object::decode(key, kv.mod_revision, kv.create_revision, &kv.value)
        .map_err(|error| internal(error.to_string()))
}

fn internal(message: String) -> Status {
    Status::new(StatusReason::InternalError, message)
}

/// One etcd watch event as kube-apiserver reads it: type, new object and previous object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEvent {
    /// ADDED, MODIFIED or DELETED.
    pub event_type: WatchEventType,
    /// The new state; for a deletion, the previous state with the deletion's revision.
    pub object: Object,
    /// The previous state, when there was one.
    pub prev_object: Option<Object>,
}

/// Mirrors `etcd3/event.go parseEvent` + `watcher.go prepareObjs`: a create has version 1; an
/// update or delete must carry `prev_kv` (else the watch fails, SPEC §8 B27); a deletion sends
/// the previous object with the deletion revision as its resourceVersion.
pub fn parse_event(prefix: &str, event: &Event) -> Result<ParsedEvent, Status> {
    let prev_object = event
        .prev_kv
        .as_ref()
        .map(|kv| decode_kv(prefix, kv))
        .transpose()?;
    match event.event_type {
        EventType::Put if event.kv.version == 1 => Ok(ParsedEvent {
            event_type: WatchEventType::Added,
            object: decode_kv(prefix, &event.kv)?,
            prev_object: None,
        }),
        EventType::Put => {
            let object = decode_kv(prefix, &event.kv)?;
            let prev_object = Some(prev_object.ok_or_else(no_prev_kv)?);
            Ok(ParsedEvent {
                event_type: WatchEventType::Modified,
                object,
                prev_object,
            })
        }
        EventType::Delete => {
            let previous = prev_object.ok_or_else(no_prev_kv)?;
            let object = previous.with_resource_version(event.kv.mod_revision);
            Ok(ParsedEvent {
                event_type: WatchEventType::Deleted,
                object,
                prev_object: Some(previous),
            })
        }
    }
}

fn no_prev_kv() -> Status {
    internal("etcd event received with PrevKv=nil".to_owned())
}

/// Maps an etcd read error to the status a client sees (`etcd3/store.go interpretListError`).
pub fn status_of(error: EtcdError) -> Status {
    match error {
        EtcdError::Compacted => Status::new(
            StatusReason::Expired,
            "The resourceVersion for the provided list is too old.",
        ),
        EtcdError::FutureRevision => Status::too_large_resource_version(),
        other => internal(other.to_string()),
    }
}

/// The next page of a paginated list: after the token's key, at its revision (-1: the latest).
/// If that revision was compacted, the 410 carries an inconsistent token for the rest at the
/// latest revision (etcd3 store.go `handleCompactedErrorForPaging`, PR #67284).
pub fn continue_list(
    etcd: &Etcd,
    prefix: &str,
    token: &ContinueToken,
    limit: u64,
) -> Result<ListResponse, Status> {
    continue_list_filtered(etcd, prefix, token, limit, |_| true)
}

/// [`continue_list`] for a filtered list (see [`list_filtered`]).
pub fn continue_list_filtered(
    etcd: &Etcd,
    prefix: &str,
    token: &ContinueToken,
    limit: u64,
    keep: impl Fn(&Object) -> bool,
) -> Result<ListResponse, Status> {
    let request = EtcdListRequest {
        revision: u64::try_from(token.resource_version).unwrap_or(0),
        limit,
        after_key: Some(token.last_key.clone()),
    };
    list_filtered(etcd, prefix, &request, keep).map_err(|status| match status.reason {
        StatusReason::Expired => Status {
            continue_token: Some(ContinueToken {
                last_key: token.last_key.clone(),
                resource_version: -1,
            }),
            ..Status::new(
                StatusReason::Expired,
                "The provided continue parameter is too old to display a consistent list result.",
            )
        },
        _ => status,
    })
}

/// Where an etcd list reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdListRequest {
    /// The revision to read at; 0 for the latest.
    pub revision: Revision,
    /// Items per page; 0 for all.
    pub limit: u64,
    /// Continue after this key (relative to the prefix).
    pub after_key: Option<String>,
}

/// Mirrors `etcd3/store.go GetList`: a page read at a fixed revision (the first page's header
/// revision when reading the latest), with a continue token carrying that revision.
pub fn list(etcd: &Etcd, prefix: &str, request: &EtcdListRequest) -> Result<ListResponse, Status> {
    let range = match &request.after_key {
        Some(key) => KeyRange::prefix(prefix).starting_at(&format!("{prefix}{key}\0")),
        None => KeyRange::prefix(prefix),
    };
    let read = RangeRequest {
        range,
        revision: request.revision,
        limit: request.limit,
    };
    let response = etcd.range(&read).map_err(status_of)?;
    let resource_version = if request.revision == 0 {
        response.header_revision
    } else {
        request.revision
    };
    let items = response
        .kvs
        .iter()
        .map(|kv| decode_kv(prefix, kv))
        .collect::<Result<Vec<_>, _>>()?;
    let continue_token = response.more.then(|| ContinueToken {
        last_key: items
            .last()
            .expect("more implies items")
            .key
            .as_str()
            .to_owned(),
        resource_version: resource_version as i64,
    });
    Ok(ListResponse {
        items,
        resource_version,
        continue_token,
    })
}

/// The largest chunk the etcd3 store reads while a filter drops objects (`maxLimit`).
const FILTERED_CHUNK_MAX: u64 = 10_000;

/// Mirrors `etcd3/store.go GetList`'s paging loop for a filtered list: it reads `limit` keys
/// at a time, doubling the chunk (up to 10,000) while the filter drops objects, until `limit`
/// objects pass or the keys run out, all at the first chunk's revision; the continue token
/// resumes after the last key read, not the last one returned.
pub fn list_filtered(
    etcd: &Etcd,
    prefix: &str,
    request: &EtcdListRequest,
    keep: impl Fn(&Object) -> bool,
) -> Result<ListResponse, Status> {
    let mut page = list(etcd, prefix, request)?;
    if request.limit == 0 {
        page.items.retain(|object| keep(object));
        return Ok(page);
    }
    let revision = page.resource_version;
    let mut chunk_limit = request.limit;
    let mut selected = Vec::new();
    let mut last_key: Option<String> = None;
    loop {
        let mut more = page.continue_token.is_some();
        for object in page.items {
            if selected.len() as u64 >= request.limit {
                more = true;
                break;
            }
            last_key = Some(object.key.as_str().to_owned());
            if keep(&object) {
                selected.push(object);
            }
        }
        if !more || selected.len() as u64 >= request.limit {
            let continue_token = more.then(|| ContinueToken {
                last_key: last_key.expect("more implies a key read"),
                resource_version: revision as i64,
            });
            return Ok(ListResponse {
                items: selected,
                resource_version: revision,
                continue_token,
            });
        }
        chunk_limit = (chunk_limit * 2).min(FILTERED_CHUNK_MAX).max(chunk_limit);
        let next = EtcdListRequest {
            revision,
            limit: chunk_limit,
            after_key: last_key.clone(),
        };
        page = list(etcd, prefix, &next)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::WatchResponseKind;

    const PREFIX: &str = "/registry/pods/";

    fn body(value: u64) -> Vec<u8> {
        Object::encode_body(&Default::default(), value)
    }

    #[test]
    fn list_at_latest_carries_the_global_revision_even_when_nothing_matches() {
        let mut etcd = Etcd::default();
        etcd.put("/registry/other/x", &body(1)).unwrap();
        let page = list(
            &etcd,
            PREFIX,
            &EtcdListRequest {
                revision: 0,
                limit: 0,
                after_key: None,
            },
        )
        .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.resource_version, 2);
    }

    #[test]
    fn paging_keeps_the_first_page_revision_and_continues_after_the_last_key() {
        let mut etcd = Etcd::default();
        for name in ["ns/a", "ns/b", "ns/c"] {
            etcd.put(&format!("{PREFIX}{name}"), &body(1)).unwrap();
        }
        let first = list(
            &etcd,
            PREFIX,
            &EtcdListRequest {
                revision: 0,
                limit: 2,
                after_key: None,
            },
        )
        .unwrap();
        let token = first.continue_token.clone().expect("more pages");
        assert_eq!(
            (token.last_key.as_str(), token.resource_version),
            ("ns/b", 4)
        );
        etcd.put(&format!("{PREFIX}ns/d"), &body(1)).unwrap();
        let next = EtcdListRequest {
            revision: 4,
            limit: 2,
            after_key: Some(token.last_key),
        };
        let second = list(&etcd, PREFIX, &next).unwrap();
        assert_eq!(second.items.len(), 1, "ns/d was written after revision 4");
        assert_eq!(second.continue_token, None);
    }

    #[test]
    fn a_filtered_page_reads_on_until_the_limit_is_filled_and_continues_after_the_last_key_read() {
        let mut etcd = Etcd::default();
        for name in ["ns/a", "ns/b", "ns/c", "ns/d", "ns/e"] {
            etcd.put(&format!("{PREFIX}{name}"), &body(1)).unwrap();
        }
        let request = EtcdListRequest {
            revision: 0,
            limit: 1,
            after_key: None,
        };
        let wanted = |object: &Object| ["ns/c", "ns/e"].contains(&object.key.as_str());
        let first = list_filtered(&etcd, PREFIX, &request, wanted).unwrap();
        assert_eq!(first.items.len(), 1);
        assert_eq!(first.items[0].key.as_str(), "ns/c");
        let token = first.continue_token.expect("more keys");
        assert_eq!(token.last_key, "ns/c");
        let rest = continue_list_filtered(&etcd, PREFIX, &token, 1, wanted).unwrap();
        assert_eq!(rest.items[0].key.as_str(), "ns/e");
        assert_eq!(rest.continue_token, None);
    }

    #[test]
    fn a_compacted_revision_is_410_and_a_future_one_too_large() {
        let mut etcd = Etcd::default();
        etcd.put(&format!("{PREFIX}ns/a"), &body(1)).unwrap();
        etcd.put(&format!("{PREFIX}ns/a"), &body(2)).unwrap();
        etcd.compact(3).unwrap();
        let old = list(
            &etcd,
            PREFIX,
            &EtcdListRequest {
                revision: 2,
                limit: 1,
                after_key: None,
            },
        );
        assert_eq!(old.unwrap_err().reason, StatusReason::Expired);
        let future = list(
            &etcd,
            PREFIX,
            &EtcdListRequest {
                revision: 9,
                limit: 1,
                after_key: None,
            },
        );
        assert_eq!(future.unwrap_err().reason, StatusReason::Timeout);
    }

    #[test]
    fn an_expired_continuation_offers_an_inconsistent_token_for_the_rest_at_the_latest() {
        let mut etcd = Etcd::default();
        for name in ["ns/a", "ns/b", "ns/c"] {
            etcd.put(&format!("{PREFIX}{name}"), &body(1)).unwrap();
        }
        let token = ContinueToken {
            last_key: "ns/a".to_owned(),
            resource_version: 2,
        };
        etcd.put(&format!("{PREFIX}ns/d"), &body(1)).unwrap();
        etcd.compact(5).unwrap();
        let expired = continue_list(&etcd, PREFIX, &token, 2).unwrap_err();
        assert_eq!(expired.reason, StatusReason::Expired);
        let inconsistent = expired.continue_token.expect("an inconsistent token");
        assert_eq!(
            (
                inconsistent.last_key.as_str(),
                inconsistent.resource_version
            ),
            ("ns/a", -1)
        );
        let rest = continue_list(&etcd, PREFIX, &inconsistent, 0).unwrap();
        assert_eq!(rest.resource_version, 5, "the latest revision");
        assert_eq!(rest.items.len(), 3, "ns/b, ns/c and the later ns/d");
    }

    #[test]
    fn a_deleted_event_carries_the_old_object_at_the_deletion_revision() {
        let mut etcd = Etcd::default();
        etcd.put(&format!("{PREFIX}ns/a"), &body(7)).unwrap();
        etcd.watch(crate::etcd::WatchRequest {
            range: KeyRange::prefix(PREFIX),
            start_revision: 0,
            prev_kv: true,
            progress_notify: false,
        });
        etcd.delete_range(KeyRange::single(&format!("{PREFIX}ns/a")))
            .unwrap();
        etcd.poll_response();
        let WatchResponseKind::Events(events) = etcd.poll_response().unwrap().kind else {
            panic!("events")
        };
        let parsed = parse_event(PREFIX, &events[0]).unwrap();
        assert_eq!(parsed.event_type, WatchEventType::Deleted);
        assert_eq!(
            (parsed.object.resource_version, parsed.object.value),
            (3, 7)
        );
    }

    #[test]
    fn an_update_without_prev_kv_fails_the_watch() {
        let kv = KeyValue {
            key: format!("{PREFIX}ns/a"),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            value: body(1),
        };
        let event = Event {
            event_type: EventType::Put,
            kv,
            prev_kv: None,
        };
        let error = parse_event(PREFIX, &event).unwrap_err();
        assert_eq!(error.message, "etcd event received with PrevKv=nil");
    }
}
