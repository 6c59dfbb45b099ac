//! kube-apiserver's watch cache and the watches it serves, as pure state machines (SPEC §2).
//!
//! - [`watch_cache`]: the store, the cache RV and the history ring buffer the cacher's internal
//!   reflector fills from etcd (SPEC §2.3, §2.8).
//! - [`cache_watcher`]: one client watch: its filter, initial events, input buffer, RV dedup and
//!   bookmarks (SPEC §2.6, §2.7, §2.10).
//! - [`time_budget`]: how long the dispatcher may wait for slow watchers (SPEC §2.6).
//! - [`watch_writer`]: how fast one watch's handler writes events to its client.
//! - [`event`]: the events between them and the client.
//! - `list`: where a list is served from, cache pages and the etcd3 store's lists.
//!
//! None of them reads a clock or does IO: time comes in as an argument and every output is
//! returned as data, for the simulated apiserver to schedule.

pub mod cache_watcher;
pub mod cacher;
pub mod event;
mod list;
pub mod server;
pub mod storage;
pub mod time_budget;
pub mod watch_cache;
pub mod watch_writer;
