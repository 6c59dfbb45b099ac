//! Lists: pagination, continuations, exact resource versions and consistent reads, from
//! `pkg/storage/testing/store_tests.go` (upstream runs each against the etcd3 store, the
//! cacher, or both; here every case runs in both modes).
//!
//! `limit` and `continue` are the request's; a continue token is the model's
//! [`ContinueToken`] (last key, RV) rather than upstream's encoded string. With the cache, a
//! list honours `limit` except at RV "0" (`computeListLimit`), and continuations are served
//! from the cache's snapshots (`ListFromCacheSnapshot`).

use std::collections::BTreeMap;

use super::{ConformanceCase, Mode, ensure, harness, pod, wait_for};
use crate::api::{
    ContinueToken, Field, FieldSelector, LabelSelector, ListOptions, ListResponse, RequestError,
    ResourceVersionMatch, ResourceVersionParam as Rv, StatusReason,
};
use crate::object::{Object, ResourceVersion};
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::Harness;

/// A list from `resource_version` with `limit`, continuing after `token` if given.
fn list(resource_version: Rv, limit: u64, token: Option<ContinueToken>) -> ListOptions {
    ListOptions {
        limit,
        continue_token: token,
        ..ListOptions::at(resource_version)
    }
}

/// Sends `options` and returns the page, once it came (a consistent read waits for the cache).
fn page(h: &mut Harness, options: ListOptions) -> Result<ListResponse, String> {
    let id = h.list(options.clone());
    wait_for(h, SimDuration::from_secs(4), |h| {
        h.list_result(id).is_some()
    })?;
    match h.list_result(id) {
        Some(Ok(page)) => Ok(page.clone()),
        other => Err(format!("{options}: {other:?}")),
    }
}

/// The page holds exactly `expected`, at `resource_version`, with a token iff `more`.
fn ensure_page(
    page: &ListResponse,
    expected: &[Object],
    resource_version: ResourceVersion,
    more: bool,
) -> Result<(), String> {
    let keys =
        |items: &[Object]| -> Vec<String> { items.iter().map(ToString::to_string).collect() };
    ensure(page.items == expected, || {
        format!("items {:?}, want {:?}", keys(&page.items), keys(expected))
    })?;
    ensure(page.resource_version == resource_version, || {
        format!("RV {}, want {resource_version}", page.resource_version)
    })?;
    ensure(page.continue_token.is_some() == more, || {
        format!(
            "continue token {:?}, more expected: {more}",
            page.continue_token
        )
    })
}

/// Writes the pods `namespace/name` in order; returns the stored objects.
fn create(h: &mut Harness, pods: &[(&'static str, &'static str)]) -> Vec<Object> {
    pods.iter()
        .map(|&(namespace, name)| pod(namespace, name).write(h))
        .collect()
}

/// `RunTestListPaging`: four pods listed one per page; a pod created between the second
/// and third page is not in the list (the pages share the first page's RV). Covered in full.
pub(super) const LIST_PAGING: ConformanceCase = ConformanceCase {
    name: "RunTestListPaging",
    summary: "one-item pages share the first page's RV; a later create is not listed",
    run: |mode| {
        let mut h = harness(mode);
        let names = ["test-0", "test-1", "test-2", "test-3"];
        for name in names {
            pod("paging", name).write(&mut h);
        }
        let mut listed = Vec::new();
        let mut token = None;
        let mut calls = 0;
        loop {
            calls += 1;
            let next = page(&mut h, list(Rv::Unset, 1, token))?;
            listed.extend(next.items.iter().map(|object| object.key.name().to_owned()));
            if calls == 2 {
                pod("paging", "test-5").write(&mut h);
            }
            token = next.continue_token;
            if token.is_none() {
                break;
            }
        }
        ensure(calls == 4 && listed == names, || {
            format!("{calls} calls listed {listed:?}")
        })?;
        h.check_oracles()
    },
};

/// `RunTestListContinuation`: a consistent list with limit 1 returns the first pod and a
/// token; the token without a limit returns the other two, with limit 1 one page each, every
/// page at the RV of the last create. Covered in full (the storage-call counts aside).
pub(super) const LIST_CONTINUATION: ConformanceCase = ConformanceCase {
    name: "RunTestListContinuation",
    summary: "continuations with and without a limit, every page at the first page's RV",
    run: |mode| {
        let mut h = harness(mode);
        let pods = create(
            &mut h,
            &[("first", "bar"), ("second", "bar"), ("second", "foo")],
        );
        let current = pods[2].resource_version;
        let first = page(&mut h, list(Rv::Unset, 1, None))?;
        ensure_page(&first, &pods[..1], current, true)?;
        let rest = page(&mut h, list(Rv::Unset, 0, first.continue_token.clone()))?;
        ensure_page(&rest, &pods[1..], current, false)?;
        let second = page(&mut h, list(Rv::Unset, 1, first.continue_token))?;
        ensure_page(&second, &pods[1..2], current, true)?;
        let third = page(&mut h, list(Rv::Unset, 1, second.continue_token))?;
        ensure_page(&third, &pods[2..], current, false)?;
        h.check_oracles()
    },
};

/// `RunTestListPaginationRareObject`: among 1,000 pods, a one-item page with the field
/// selector `metadata.name=pod-999` returns that pod and no token: etcd reads on until the
/// page is full (doubling its chunk), the cache scans its store. Covered (the call counts
/// aside).
pub(super) const LIST_PAGINATION_RARE_OBJECT: ConformanceCase = ConformanceCase {
    name: "RunTestListPaginationRareObject",
    summary: "a one-item page finds the one matching pod among 1,000",
    run: |mode| {
        let mut h = harness(mode);
        let pods: Vec<Object> = (0..1000)
            .map(|index| h.write_object(&format!("pod-{index}"), &BTreeMap::new(), 0))
            .collect();
        let rare = pods[999].clone();
        let options = ListOptions {
            field_selector: Some(FieldSelector::equal(Field::MetadataName, "pod-999")),
            ..list(Rv::Unset, 1, None)
        };
        let found = page(&mut h, options)?;
        ensure_page(&found, &[rare], h.etcd.revision(), false)?;
        h.check_oracles()
    },
};

/// `RunTestListContinuationWithFilter`: with `metadata.name!=bar` and limit 2 over foo, bar,
/// foo, foo, the first page is both matching foos before the last and a token, the next the
/// last foo and none. Covered (the call counts aside).
pub(super) const LIST_CONTINUATION_WITH_FILTER: ConformanceCase = ConformanceCase {
    name: "RunTestListContinuationWithFilter",
    summary: "a filtered page is filled past non-matching objects",
    run: |mode| {
        let mut h = harness(mode);
        let pods = create(
            &mut h,
            &[("1", "foo"), ("2", "bar"), ("3", "foo"), ("4", "foo")],
        );
        let current = pods[3].resource_version;
        let not_bar = FieldSelector::not_equal(Field::MetadataName, "bar");
        let filtered = |token| ListOptions {
            field_selector: Some(not_bar.clone()),
            ..list(Rv::Unset, 2, token)
        };
        let first = page(&mut h, filtered(None))?;
        ensure_page(&first, &[pods[0].clone(), pods[2].clone()], current, true)?;
        let next = page(&mut h, filtered(first.continue_token))?;
        ensure_page(&next, &pods[3..], current, false)?;
        h.check_oracles()
    },
};

/// `RunTestConsistentList`: after a write and a write elsewhere (`increaseRV`), an RV "0" list
/// may be stale with the cache and is current without; a list without RV and a continuation
/// at RV -1 are at etcd's revision; an RV "0" list after them is at the revision the cache
/// synced to. Each row moves etcd one revision on. Covered in full, with consistent reads
/// and `ListFromCacheSnapshot` on.
pub(super) const CONSISTENT_LIST: ConformanceCase = ConformanceCase {
    name: "RunTestConsistentList",
    summary: "RV \"\" lists and RV -1 continuations are at etcd's revision",
    run: |mode| {
        let mut h = harness(mode);
        let written = pod("default", "foo").write(&mut h).resource_version;
        h.bump_global_revision();
        let mut consistent = written + 1;
        let stale_zero = page(&mut h, list(Rv::Zero, 0, None))?.resource_version;
        let zero_ok = match mode {
            Mode::Cache => stale_zero <= written,
            Mode::NoCache => stale_zero == consistent,
        };
        ensure(zero_ok, || format!("RV \"0\" list at {stale_zero}"))?;
        h.bump_global_revision();
        consistent += 1;
        let unset = page(&mut h, list(Rv::Unset, 0, None))?.resource_version;
        ensure(unset == consistent, || format!("RV \"\" list at {unset}"))?;
        h.bump_global_revision();
        consistent += 1;
        let token = ContinueToken {
            last_key: "a".to_owned(),
            resource_version: -1,
        };
        let continued = page(&mut h, list(Rv::Unset, 0, Some(token)))?.resource_version;
        ensure(continued == consistent, || {
            format!("RV -1 continuation at {continued}")
        })?;
        let synced = continued;
        h.bump_global_revision();
        consistent += 1;
        let after = page(&mut h, list(Rv::Zero, 0, None))?.resource_version;
        let after_ok = match mode {
            Mode::Cache => after == synced,
            Mode::NoCache => after == consistent,
        };
        ensure(after_ok, || format!("RV \"0\" list after them at {after}"))?;
        h.check_oracles()
    },
};

/// `RunTestListInconsistentContinuation`: a continuation whose RV was compacted gets 410
/// "The provided continue parameter is too old" with an inconsistent token; following it
/// lists the rest at a newer RV, a further page at that same RV.
///
/// Upstream runs it against etcd3 only, with RV "0" and limit 1. With the cache an RV "0"
/// list ignores the limit (`computeListLimit`), so the cache row lists with RV "", and waits
/// for the cacher's compactor (15 s) to drop the snapshot that would serve the token's RV.
pub(super) const LIST_INCONSISTENT_CONTINUATION: ConformanceCase = ConformanceCase {
    name: "RunTestListInconsistentContinuation",
    summary: "an expired continuation's 410 offers a token for the rest at a newer RV",
    run: |mode| {
        let mut h = harness(mode);
        let mut pods = create(
            &mut h,
            &[("first", "bar"), ("second", "bar"), ("second", "foo")],
        );
        let at = match mode {
            Mode::Cache => Rv::Unset,
            Mode::NoCache => Rv::Zero,
        };
        let first = page(&mut h, list(at, 1, None))?;
        ensure(first.items == pods[..1], || format!("first page {first:?}"))?;
        pods[2] = pod("second", "foo").updated().write(&mut h);
        h.compact(pods[2].resource_version);
        h.advance(SimDuration::from_secs(15));
        let id = h.list(list(at, 0, first.continue_token));
        let status = match h.list_result(id) {
            Some(Err(RequestError::Status(status))) => status.clone(),
            other => return Err(format!("expected a 410, got {other:?}")),
        };
        ensure(
            status.reason == StatusReason::Expired
                && status
                    .message
                    .contains("The provided continue parameter is too old"),
            || format!("{status:?}"),
        )?;
        let inconsistent = status.continue_token.ok_or("no inconsistent token")?;
        let second = page(&mut h, list(at, 1, Some(inconsistent)))?;
        let newer = second.resource_version;
        ensure(newer >= pods[2].resource_version, || {
            format!("second page at {newer}")
        })?;
        ensure_page(&second, &pods[1..2], newer, true)?;
        let third = page(&mut h, list(at, 1, second.continue_token))?;
        ensure_page(&third, &pods[2..], newer, false)?;
        h.check_oracles()
    },
};

/// `RunTestListResourceVersionMatch`: a list with a label selector and a limit, then the
/// same list at exactly its RV, is the same list; so is a not-older-than list and the exact
/// list at its RV. Upstream creates a pod during each read (a reproducing transformer); here
/// a pod is created between the reads, so each exact list is of a past RV.
pub(super) const LIST_RESOURCE_VERSION_MATCH: ConformanceCase = ConformanceCase {
    name: "RunTestListResourceVersionMatch",
    summary: "an exact list at a list's RV is that list",
    run: |mode| {
        let mut h = harness(mode);
        let even = LabelSelector {
            name: "even".to_owned(),
            value: "true".to_owned(),
        };
        let mut next_index = 0;
        let mut create_next = |h: &mut Harness| {
            let labels = BTreeMap::from([("even".to_owned(), (next_index % 2 == 0).to_string())]);
            h.write_object(&format!("pod-{next_index}"), &labels, 0);
            next_index += 1;
        };
        for _ in 0..5 {
            create_next(&mut h);
        }
        let selected = |resource_version, resource_version_match| ListOptions {
            label_selector: Some(even.clone()),
            resource_version_match,
            ..list(resource_version, 4, None)
        };
        let latest = page(&mut h, selected(Rv::Unset, ResourceVersionMatch::Unset))?;
        create_next(&mut h);
        let exact = Rv::At(latest.resource_version);
        let again = page(&mut h, selected(exact, ResourceVersionMatch::Exact))?;
        ensure(again == latest, || format!("{again:?} is not {latest:?}"))?;
        let newer = page(&mut h, selected(exact, ResourceVersionMatch::NotOlderThan))?;
        create_next(&mut h);
        let exact = Rv::At(newer.resource_version);
        let same = page(&mut h, selected(exact, ResourceVersionMatch::Exact))?;
        ensure(same == newer, || format!("{same:?} is not {newer:?}"))?;
        h.check_oracles()
    },
};
