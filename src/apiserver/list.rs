//! Lists: where the delegator sends one, how the cache pages it, and how the etcd3 store
//! answers it (`pkg/storage/cacher/delegator`, `cacher.go GetList`, `etcd3/store.go GetList`;
//! SPEC §2.4).
//!
//! With `ListFromCacheSnapshot` (on by default at HEAD), exact-RV lists (`Exact`, or an RV
//! with a limit and no match) and continuations are served from the cache's snapshots when it
//! keeps one, and wait for a cache that has not reached their RV; only what the cache cannot
//! serve goes to etcd. Lists served from the cache honour `limit` (except for RV "0") and
//! return a continue token at the list's RV.

use crate::api::{
    ContinueToken, ListOptions, ListResponse, ResourceVersionMatch, ResourceVersionParam, Status,
    StatusReason,
};
use crate::apiserver::cache_watcher::WatchFilter;
use crate::apiserver::storage::{self, EtcdListRequest};
use crate::apiserver::watch_cache::WatchCache;
use crate::etcd::Etcd;
use crate::object::{Object, ResourceVersion};

/// Where a list is served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListSource {
    /// etcd, with the request's own options (`CacheDelegator.GetList` → etcd3 `GetList`).
    Etcd,
    /// The cache's newest state, once it reached the RV the request needs.
    CacheLatest,
    /// The cache's snapshot at exactly this RV, once it reached it (`waitAndListExactRV`).
    CacheExact(ResourceVersion),
}

/// Mirrors `delegator/interface.go ShouldDelegateList` with the cacher's answers
/// (`ShouldDelegateExactRV`, `ShouldDelegateContinue`, `ShouldDelegateConsistentRead`).
/// `consistent_reads` is `ConsistentReadSupported`: etcd answers progress requests.
pub(crate) fn list_source(
    cache: &WatchCache,
    options: &ListOptions,
    consistent_reads: bool,
) -> ListSource {
    let consistent = if consistent_reads {
        ListSource::CacheLatest
    } else {
        ListSource::Etcd
    };
    let exact = |resource_version: ResourceVersion| {
        // `shouldDelegateExactRV`: an RV the cache has not reached waits for it only where
        // consistent reads are supported; a reached one needs a snapshot.
        let served = if resource_version > cache.resource_version() {
            consistent_reads
        } else {
            cache.can_serve_exact(resource_version)
        };
        if served {
            ListSource::CacheExact(resource_version)
        } else {
            ListSource::Etcd
        }
    };
    if let Some(token) = &options.continue_token {
        return match u64::try_from(token.resource_version) {
            Ok(resource_version) if resource_version > 0 => exact(resource_version),
            // A continuation at a negative RV is a consistent read.
            _ => consistent,
        };
    }
    match (options.resource_version_match, options.resource_version) {
        (ResourceVersionMatch::Exact, ResourceVersionParam::At(resource_version)) => {
            exact(resource_version)
        }
        (ResourceVersionMatch::Unset, ResourceVersionParam::At(resource_version))
            if options.limit > 0 =>
        {
            exact(resource_version)
        }
        (ResourceVersionMatch::Unset, ResourceVersionParam::Unset) => consistent,
        _ => ListSource::CacheLatest,
    }
}

/// Whether a list served by `source` is a consistent read: on a 3 s timeout it falls back to
/// etcd instead of answering 504 (`CacheDelegator.GetList`, `result.ConsistentRead`).
pub(crate) fn is_consistent_read(options: &ListOptions, source: ListSource) -> bool {
    let negative_continue = options
        .continue_token
        .as_ref()
        .is_some_and(|token| token.resource_version < 0);
    let unset =
        options.continue_token.is_none() && options.resource_version == ResourceVersionParam::Unset;
    source == ListSource::CacheLatest && (negative_continue || unset)
}

/// Mirrors apimachinery `ValidateListOptions` and storage `ValidateListOptions`: the request
/// combinations the API refuses with 400 Bad Request.
pub(crate) fn validate(options: &ListOptions) -> Result<(), Status> {
    let bad = |message: &str| Err(Status::new(StatusReason::BadRequest, message));
    let has_rv = options.resource_version != ResourceVersionParam::Unset;
    let rv_zero = options.resource_version == ResourceVersionParam::Zero;
    match options.resource_version_match {
        ResourceVersionMatch::Unset => {}
        _ if !has_rv => {
            return bad("resourceVersionMatch is forbidden unless resourceVersion is provided");
        }
        _ if options.continue_token.is_some() => {
            return bad("resourceVersionMatch is forbidden when continue is provided");
        }
        ResourceVersionMatch::Exact if rv_zero => {
            return bad("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
        }
        _ => {}
    }
    if options.continue_token.is_some() && has_rv && !rv_zero {
        return bad("specifying resource version is not allowed when using continue");
    }
    Ok(())
}

/// Mirrors `cacher.go GetList` after the cache answered: the objects after the continue key
/// that pass the filters, at most `limit` of them (none for RV "0": `computeListLimit`), and a
/// continue token at the list's RV when more objects follow (`PrepareContinueToken`).
pub(crate) fn cache_page(
    items: Vec<Object>,
    resource_version: ResourceVersion,
    options: &ListOptions,
) -> ListResponse {
    let after = options
        .continue_token
        .as_ref()
        .map(|token| token.last_key.as_str());
    let limit = match options.resource_version {
        ResourceVersionParam::Zero => 0,
        _ => options.limit,
    };
    let filter = WatchFilter::of_list(options);
    let candidates: Vec<Object> = items
        .into_iter()
        .filter(|object| after.is_none_or(|key| object.key.as_str() > key))
        .collect();
    let mut selected: Vec<Object> = Vec::new();
    let mut more = false;
    for (index, object) in candidates.iter().enumerate() {
        if filter.matches(object) {
            selected.push(object.clone());
        }
        if limit > 0 && selected.len() as u64 >= limit {
            more = index + 1 < candidates.len();
            break;
        }
    }
    let continue_token = more.then(|| ContinueToken {
        last_key: selected
            .last()
            .expect("a full page")
            .key
            .as_str()
            .to_owned(),
        resource_version: resource_version as i64,
    });
    ListResponse {
        items: selected,
        resource_version,
        continue_token,
    }
}

/// Mirrors `etcd3/store.go GetList` for the request's own options: a continuation at its
/// token's RV; an exact RV (`Exact`, or an RV with a limit) at that revision; otherwise the
/// latest, which must not be older than an RV given (`validateMinimumResourceVersion`).
pub(crate) fn etcd_get_list(
    etcd: &Etcd,
    prefix: &str,
    options: &ListOptions,
) -> Result<ListResponse, Status> {
    let filter = WatchFilter::of_list(options);
    let keep = |object: &Object| filter.matches(object);
    if let Some(token) = &options.continue_token {
        return storage::continue_list_filtered(etcd, prefix, token, options.limit, keep);
    }
    let at = match (options.resource_version_match, options.resource_version) {
        (ResourceVersionMatch::Exact, ResourceVersionParam::At(revision)) => revision,
        (ResourceVersionMatch::Unset, ResourceVersionParam::At(revision)) if options.limit > 0 => {
            revision
        }
        _ => 0,
    };
    if at == 0
        && let ResourceVersionParam::At(minimum) = options.resource_version
        && minimum > etcd.revision()
    {
        return Err(Status::too_large_resource_version());
    }
    let request = EtcdListRequest {
        revision: at,
        limit: options.limit,
        after_key: None,
    };
    storage::list_filtered(etcd, prefix, &request, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::watch_cache::WatchCacheConfig;
    use crate::bug::Bugs;
    use crate::sim::SimTime;

    fn cache(list_rv: ResourceVersion, event_rvs: &[ResourceVersion]) -> WatchCache {
        let mut cache = WatchCache::new(WatchCacheConfig::default(), Bugs::NONE);
        cache.replace(vec![Object::bare("ns/a", list_rv)], list_rv);
        for &rv in event_rvs {
            cache.add(Object::bare(&format!("ns/{rv}"), rv), SimTime(rv));
        }
        cache
    }

    fn exact(resource_version: ResourceVersion) -> ListOptions {
        ListOptions {
            resource_version_match: ResourceVersionMatch::Exact,
            ..ListOptions::at(ResourceVersionParam::At(resource_version))
        }
    }

    fn continuing(resource_version: i64) -> ListOptions {
        ListOptions {
            continue_token: Some(ContinueToken {
                last_key: "ns/a".to_owned(),
                resource_version,
            }),
            limit: 2,
            ..ListOptions::at(ResourceVersionParam::Unset)
        }
    }

    #[test]
    fn exact_and_continue_lists_go_to_a_snapshot_or_wait_for_the_cache() {
        let cache = cache(10, &[12, 15]);
        assert_eq!(
            list_source(&cache, &exact(11), true),
            ListSource::CacheExact(11)
        );
        assert_eq!(
            list_source(&cache, &exact(20), true),
            ListSource::CacheExact(20),
            "a future RV waits"
        );
        assert_eq!(
            list_source(&cache, &exact(9), true),
            ListSource::Etcd,
            "no snapshot"
        );
        assert_eq!(
            list_source(&cache, &continuing(12), true),
            ListSource::CacheExact(12)
        );
        let legacy = ListOptions {
            limit: 5,
            ..ListOptions::at(ResourceVersionParam::At(12))
        };
        assert_eq!(
            list_source(&cache, &legacy, true),
            ListSource::CacheExact(12)
        );
    }

    #[test]
    fn without_consistent_reads_unreached_and_consistent_lists_go_to_etcd() {
        let cache = cache(10, &[12]);
        assert_eq!(list_source(&cache, &exact(20), false), ListSource::Etcd);
        let consistent = ListOptions::at(ResourceVersionParam::Unset);
        assert_eq!(list_source(&cache, &consistent, false), ListSource::Etcd);
        assert_eq!(
            list_source(&cache, &consistent, true),
            ListSource::CacheLatest
        );
        assert_eq!(
            list_source(&cache, &continuing(-1), false),
            ListSource::Etcd
        );
        assert_eq!(
            list_source(&cache, &exact(12), false),
            ListSource::CacheExact(12),
            "a kept snapshot needs no progress requests"
        );
    }

    #[test]
    fn a_cache_page_honours_the_limit_except_at_rv_zero_and_carries_the_list_rv() {
        let items: Vec<Object> = ["ns/a", "ns/b", "ns/c"]
            .iter()
            .map(|key| Object::bare(key, 3))
            .collect();
        let options = ListOptions {
            limit: 2,
            ..ListOptions::at(ResourceVersionParam::Unset)
        };
        let page = cache_page(items.clone(), 9, &options);
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.continue_token,
            Some(ContinueToken {
                last_key: "ns/b".to_owned(),
                resource_version: 9
            })
        );
        let next = ListOptions {
            continue_token: page.continue_token,
            ..options.clone()
        };
        let last = cache_page(items.clone(), 9, &next);
        assert_eq!((last.items.len(), last.continue_token), (1, None));
        let zero = ListOptions {
            limit: 2,
            ..ListOptions::at(ResourceVersionParam::Zero)
        };
        assert_eq!(cache_page(items, 9, &zero).items.len(), 3);
    }

    #[test]
    fn requests_the_api_refuses_are_bad_requests() {
        let match_without_rv = ListOptions {
            resource_version_match: ResourceVersionMatch::NotOlderThan,
            ..ListOptions::at(ResourceVersionParam::Unset)
        };
        let exact_zero = ListOptions {
            resource_version_match: ResourceVersionMatch::Exact,
            ..ListOptions::at(ResourceVersionParam::Zero)
        };
        let continue_with_rv = ListOptions {
            resource_version: ResourceVersionParam::At(5),
            ..continuing(5)
        };
        for options in [match_without_rv, exact_zero, continue_with_rv] {
            let status = validate(&options).unwrap_err();
            assert_eq!(status.code, 400, "{options:?}");
        }
        assert_eq!(validate(&continuing(5)), Ok(()));
        assert_eq!(validate(&exact(5)), Ok(()));
    }
}
