//! A paginated list as a sans-IO state machine (`cg: tools/pager/pager.go`, SPEC §3.2).
//!
//! The pager asks for the first page with the caller's options, then follows continue tokens
//! with `resourceVersion` unset (the token carries the list's revision), and assembles the pages
//! into one list at the first page's resource version. A 410 on a continuation page restarts
//! once as a full, unpaginated list at the original resource version; a 410 on the first page is
//! returned as is.
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::api::{ListOptions, ListResponse, ResourceVersionParam};
//! use informer_sim::client::pager::{ListPager, PagerStep};
//! use informer_sim::object::Object;
//!
//! let (mut pager, first) = ListPager::new(ListOptions::at(ResourceVersionParam::Zero), Bugs::NONE);
//! assert_eq!(first.resource_version, ResourceVersionParam::Zero);
//! let page = ListResponse { items: vec![Object::bare("a", 3)], resource_version: 9, continue_token: None };
//! let PagerStep::Done(list) = pager.handle_page(Ok(page)) else { panic!("one page") };
//! assert_eq!((list.items.len(), list.resource_version, list.paginated), (1, 9, false));
//! ```

use crate::api::{
    ContinueToken, ListOptions, ListResponse, RequestError, ResourceVersionMatch,
    ResourceVersionParam, Status,
};
use crate::bug::{Bug, Bugs};
use crate::object::{Object, ResourceVersion};

/// The page size when the caller sets none (`defaultPageSize`).
pub const DEFAULT_PAGE_SIZE: u64 = 500;

/// A complete list, assembled from one or more pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedItems {
    /// Every item, in the order the pages gave them.
    pub items: Vec<Object>,
    /// The list's resource version: the first page's.
    pub resource_version: ResourceVersion,
    /// Whether the server split the list into pages.
    pub paginated: bool,
}

/// What the pager needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PagerStep {
    /// Send this list request and hand its answer to [`ListPager::handle_page`].
    Request(ListOptions),
    /// The list is complete.
    Done(ListedItems),
    /// The list failed.
    Failed {
        /// The error of the last request.
        error: RequestError,
        /// Whether the server had already split the list into pages.
        paginated: bool,
    },
}

/// One paginated list in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPager {
    /// The caller's options: the first page, and the full-list fallback without its limit.
    requested: ListOptions,
    /// The items of the pages so far.
    items: Vec<Object>,
    /// The first page's resource version, once a page with a continue token arrived.
    resource_version: Option<ResourceVersion>,
    /// Whether the last request was the full-list fallback.
    full_list: bool,
    /// Planted bugs of the pager (SPEC §8 B16).
    bugs: Bugs,
}

impl ListPager {
    /// A pager for `options`, with `bugs` planted, and the first request to send.
    pub fn new(options: ListOptions, bugs: Bugs) -> (ListPager, ListOptions) {
        assert!(
            options.continue_token.is_none(),
            "a list starts without a token"
        );
        let pager = ListPager {
            requested: options.clone(),
            items: Vec::new(),
            resource_version: None,
            full_list: false,
            bugs,
        };
        (pager, options)
    }

    /// Takes the answer to the last request.
    ///
    /// Mirrors client-go pager.go `ListPager.list`: accumulate pages, clear the resource version
    /// on continuations, and fall back to a full list when a continuation expires.
    pub fn handle_page(&mut self, result: Result<ListResponse, RequestError>) -> PagerStep {
        let continuing = self.resource_version.is_some();
        let page = match result {
            Ok(page) => page,
            Err(RequestError::Status(Status {
                continue_token: Some(token),
                ..
            })) if self.bugs.is(Bug::PagerFollowsInconsistentContinue) => {
                // Planted: k/k#66981 (B16), the inconsistent token of an expired continuation
                // is followed, so the rest of the list comes from a later snapshot.
                return self.next_page(token);
            }
            Err(error) if error.is_expired() && continuing && !self.full_list => {
                self.full_list = true;
                let options = ListOptions {
                    limit: 0,
                    ..self.requested.clone()
                };
                return PagerStep::Request(options);
            }
            Err(error) => {
                let paginated = continuing;
                return PagerStep::Failed { error, paginated };
            }
        };
        if self.full_list || (!continuing && page.continue_token.is_none()) {
            return PagerStep::Done(ListedItems {
                items: page.items,
                resource_version: page.resource_version,
                paginated: continuing,
            });
        }
        let resource_version = *self.resource_version.get_or_insert(page.resource_version);
        self.items.extend(page.items);
        let Some(token) = page.continue_token else {
            return PagerStep::Done(ListedItems {
                items: std::mem::take(&mut self.items),
                resource_version,
                paginated: true,
            });
        };
        self.next_page(token)
    }

    /// The request for the page after `token` (the token carries the revision).
    fn next_page(&self, token: ContinueToken) -> PagerStep {
        PagerStep::Request(ListOptions {
            resource_version: ResourceVersionParam::Unset,
            resource_version_match: ResourceVersionMatch::Unset,
            continue_token: Some(token),
            ..self.requested.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StatusReason;

    fn page(keys: &[&str], resource_version: u64, next: Option<&str>) -> ListResponse {
        ListResponse {
            items: keys.iter().map(|key| Object::bare(key, 5)).collect(),
            resource_version,
            continue_token: next.map(|key| ContinueToken {
                last_key: key.to_string(),
                resource_version: resource_version as i64,
            }),
        }
    }

    fn expired() -> RequestError {
        RequestError::Status(Status::new(StatusReason::Expired, "continue expired"))
    }

    fn paged_options() -> ListOptions {
        ListOptions {
            limit: 2,
            ..ListOptions::at(ResourceVersionParam::At(40))
        }
    }

    #[test]
    fn continuation_pages_send_unset_resource_version_with_the_token() {
        let (mut pager, first) = ListPager::new(paged_options(), Bugs::NONE);
        assert_eq!(first.limit, 2);
        let PagerStep::Request(next) = pager.handle_page(Ok(page(&["a", "b"], 50, Some("b"))))
        else {
            panic!("a continuation follows");
        };
        assert_eq!(next.resource_version, ResourceVersionParam::Unset);
        assert_eq!(
            next.continue_token.as_ref().map(|t| t.last_key.as_str()),
            Some("b")
        );
        assert_eq!(next.limit, 2);
        let PagerStep::Done(list) = pager.handle_page(Ok(page(&["c"], 51, None))) else {
            panic!("the last page completes the list");
        };
        assert_eq!(list.items.len(), 3);
        assert_eq!(
            list.resource_version, 50,
            "the first page's resource version"
        );
        assert!(list.paginated);
    }

    #[test]
    fn expired_continuation_falls_back_to_one_full_list_at_the_original_resource_version() {
        let (mut pager, _) = ListPager::new(paged_options(), Bugs::NONE);
        pager.handle_page(Ok(page(&["a", "b"], 50, Some("b"))));
        let PagerStep::Request(full) = pager.handle_page(Err(expired())) else {
            panic!("a full list follows");
        };
        assert_eq!(full.limit, 0);
        assert_eq!(full.continue_token, None);
        assert_eq!(full.resource_version, ResourceVersionParam::At(40));
        let step = pager.handle_page(Err(expired()));
        assert_eq!(
            step,
            PagerStep::Failed {
                error: expired(),
                paginated: true
            }
        );
    }

    #[test]
    fn bug_b16_follows_the_inconsistent_token_of_an_expired_continuation() {
        let (mut pager, _) = ListPager::new(
            paged_options(),
            Bugs::new(Some(Bug::PagerFollowsInconsistentContinue)),
        );
        pager.handle_page(Ok(page(&["a", "b"], 50, Some("b"))));
        let inconsistent = ContinueToken {
            last_key: "b".to_owned(),
            resource_version: -1,
        };
        let expired = RequestError::Status(Status {
            continue_token: Some(inconsistent.clone()),
            ..Status::new(StatusReason::Expired, "continue expired")
        });
        let PagerStep::Request(next) = pager.handle_page(Err(expired)) else {
            panic!("the inconsistent token is followed");
        };
        assert_eq!(next.continue_token, Some(inconsistent));
        let PagerStep::Done(list) = pager.handle_page(Ok(page(&["c"], 70, None))) else {
            panic!("the last page completes the list");
        };
        assert_eq!((list.items.len(), list.resource_version), (3, 50));
    }

    #[test]
    fn expired_first_page_is_returned_as_is() {
        let (mut pager, _) = ListPager::new(paged_options(), Bugs::NONE);
        let step = pager.handle_page(Err(expired()));
        assert_eq!(
            step,
            PagerStep::Failed {
                error: expired(),
                paginated: false
            }
        );
    }
}
