//! Scenarios: the shape of a simulated cluster, its workload and its fault mix, as TOML.
//!
//! Every field has a default, so an empty file is a valid scenario; unknown fields are
//! rejected. The scenario library in `sim/scenarios/` is embedded in the binary.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::{Field, FieldSelector, LabelSelector, Selectors};
use crate::apiserver::server::ApiserverConfig;
use crate::bug::Bug;
use crate::check::{Invariant, Kind};
use crate::client::reflector::min_watch_timeout_honoured;
pub use crate::client::{ClientGoRelease, FifoKind};
use crate::etcd::EtcdRelease;
use crate::sim::{DelayConfig, SimDuration};

/// Reads `expected_hazards`: names of invariants of class [`Kind::Hazard`], or one line naming
/// the allowed ones.
fn hazard_names<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Invariant>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    names
        .iter()
        .map(|name| {
            let hazard = name
                .parse::<Invariant>()
                .ok()
                .filter(|invariant| invariant.kind() == Kind::Hazard);
            hazard.ok_or_else(|| {
                let allowed: Vec<&str> = Invariant::hazards().map(Invariant::name).collect();
                serde::de::Error::custom(format!(
                    "{name:?} is not an upstream hazard of the catalog (allowed: {})",
                    allowed.join(", ")
                ))
            })
        })
        .collect()
}

/// One simulated cluster and what happens to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// The name it is listed under.
    pub name: String,
    /// How long writers write and faults strike, in milliseconds.
    pub duration_ms: u64,
    /// After healing, how long the run may take to settle before it counts as stuck. The
    /// default (150 s) outlasts HTTP/2's health check on a connection that went silent just
    /// before the heal (45 s) plus the reflector's longest backoff (30 s with 100 % jitter) plus draining a backlog, so only a livelock or
    /// a hang fails it.
    pub settle_ms_max: u64,
    /// The most steps the run may take: one that needs more is stuck (every run ends with a
    /// verdict). The default (2,000,000) suits the small worlds; a scenario at cluster size
    /// raises it.
    pub steps_max: u64,
    /// How many seeds the main job (`informer-sim` with no command) sweeps of this scenario,
    /// when fewer than its usual number (the scenarios at cluster size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_job_seeds: Option<u64>,
    /// The writers.
    pub workload: WorkloadConfig,
    /// The etcd server.
    pub etcd: EtcdConfig,
    /// Raw etcd watch clients (exercising the fake etcd's watch directly).
    pub etcd_watchers: EtcdWatchersConfig,
    /// The apiservers between etcd and the clients.
    pub apiservers: ApiserversConfig,
    /// The informer clients.
    pub clients: ClientsConfig,
    /// The fault mix.
    pub faults: FaultsConfig,
    /// kube-rs clients (the `kube` feature): kube-rs's own watcher and reflector store, as
    /// client identities after the informer clients.
    #[serde(skip_serializing_if = "KubeRsConfig::is_off")]
    pub kube_rs: KubeRsConfig,
    /// The controller under test, if any (`workers = 0`: none).
    #[serde(skip_serializing_if = "ControllerConfig::is_off")]
    pub controller: ControllerConfig,
    /// Invariants this scenario shows upstream does NOT guarantee (SPEC §9.2): a violation of
    /// one is reported as an expected hazard with its seed, not as a failure. Each must be an
    /// invariant of class [`Kind::Hazard`].
    #[serde(deserialize_with = "hazard_names")]
    pub expected_hazards: Vec<Invariant>,
    /// Rare states every sweep of this scenario must reach (coverage probes): a sweep that
    /// never hits one fails, since its random search proved nothing about that state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// The planted bug switched on (SPEC §8, `src/bugs.rs`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bug: Option<Bug>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".to_owned(),
            duration_ms: 60_000,
            settle_ms_max: 150_000,
            steps_max: 2_000_000,
            main_job_seeds: None,
            workload: WorkloadConfig::default(),
            etcd: EtcdConfig::default(),
            etcd_watchers: EtcdWatchersConfig::default(),
            apiservers: ApiserversConfig::default(),
            clients: ClientsConfig::default(),
            faults: FaultsConfig::default(),
            kube_rs: KubeRsConfig::default(),
            controller: ControllerConfig::default(),
            expected_hazards: Vec::new(),
            probes: Vec::new(),
            bug: None,
        }
    }
}

/// The apiservers: how many, how each serves, and how far each cache lags behind etcd.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiserversConfig {
    /// How many (0: no apiserver, no clients).
    pub count: u32,
    /// How each serves.
    pub server: ApiserverConfig,
    /// The link from etcd to apiserver 0's cacher.
    pub etcd_link: DelayConfig,
    /// Apiserver i's etcd link is slower by i times this many milliseconds: caches lag
    /// independently.
    pub lag_ms_per_index: u64,
    /// How long a restarted apiserver refuses connections.
    pub restart_ms: u64,
}

impl Default for ApiserversConfig {
    fn default() -> Self {
        ApiserversConfig {
            count: 1,
            server: ApiserverConfig::default(),
            etcd_link: DelayConfig {
                delay_ms_min: 1,
                delay_ms_max: 10,
            },
            lag_ms_per_index: 0,
            restart_ms: 2_000,
        }
    }
}

/// How a reflector fills its store first (SPEC §3.2, §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialList {
    /// LIST (RV "0" first), then WATCH: the legacy path.
    #[default]
    List,
    /// A watch-list stream (`sendInitialEvents`), falling back to LIST.
    WatchList,
    /// LIST with RV "" from the start: a consistent first list (a client-side choice).
    ConsistentList,
}

/// kube-rs clients: each runs kube-rs's `watcher` and `reflector` store over the simulated
/// apiservers' HTTP face, watching ConfigMaps in the workload's one namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeRsConfig {
    /// How many (0: none). Needs the `kube` feature.
    pub clients: u32,
    /// How each watcher fills its store first.
    pub initial_list: KubeRsInitialList,
    /// `watcher::Config::page_size` (0: kube-rs's default, 500).
    pub page_size: u32,
    /// kube-rs client 0 runs kube-rs's `Controller` with the sample ReplicaSet-like
    /// reconciler (`workers = 0`: none; `workers` is its concurrency).
    #[serde(skip_serializing_if = "ControllerConfig::is_off")]
    pub controller: ControllerConfig,
    /// The controller relies on kube-rs's own triggers alone: it does not reconcile every
    /// object again once a relist's store is swapped in (finding F4 in the README).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_reconcile_after_relist: bool,
}

impl KubeRsConfig {
    /// Whether there is no kube-rs client.
    pub fn is_off(&self) -> bool {
        self.clients == 0
    }
}

/// How a kube-rs watcher fills its store first (`watcher::InitialListStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeRsInitialList {
    /// Paged LISTs, then a WATCH from the list's RV (`ListWatch`).
    #[default]
    List,
    /// A watch with `sendInitialEvents` from RV "0" (`StreamingList`).
    Streaming,
}

/// The controller under test: its runtime (work queue and workers) fed by handler 0 of
/// client 0's informer, and by default the sample ReplicaSet-like controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// How many workers reconcile at once (0: no controller).
    pub workers: u32,
    /// The longest time one reconcile holds its worker.
    pub reconcile_ms_max: u64,
    /// The longest a worker waits before it takes its next key.
    pub worker_wake_ms_max: u64,
    /// The chance that a controller write fails at the apiserver (500/429) during the fault
    /// phase. 0: never, and no random number is drawn.
    pub write_error_probability: f64,
    /// The sample controller's owners ask for `value % (replicas_max + 1)` owned objects.
    pub replicas_max: u32,
}

impl ControllerConfig {
    /// Whether there is no controller.
    pub fn is_off(&self) -> bool {
        self.workers == 0
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            workers: 0,
            reconcile_ms_max: 20,
            worker_wake_ms_max: 5,
            write_error_probability: 0.0,
            replicas_max: 3,
        }
    }
}

/// The informer clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// How many.
    pub count: u32,
    /// The client-go release whose feature defaults the clients follow (the fields below
    /// that are left out take that release's value).
    pub client_go: ClientGoRelease,
    /// Their FIFO (default: the release's, [`ClientsConfig::fifo`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo: Option<FifoKind>,
    /// How their reflectors fill the store first (default: watch-list where the release turns
    /// `WatchListClient` on, else LIST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_list: Option<InitialList>,
    /// Whether the informer pops RealFIFO in batches (`InOrderInformersBatchProcess`; default:
    /// the release's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_process: Option<bool>,
    /// The informers have a `TransformFunc` (`SetTransform`): the model counts where it runs
    /// (see `client::transform`) and leaves objects as they are.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transform: bool,
    /// The informer's resync period (0: off).
    pub resync_period_ms: u64,
    /// Event handlers per informer, registered before it starts.
    pub handlers: u32,
    /// Event handlers per informer registered before it starts with resync period 0, after
    /// the others: they get sync notifications only until the first resync tick (SPEC §5.3, §8 B3).
    pub handlers_without_resync: u32,
    /// The chance that processing one popped item reports an error after applying it (SPEC §5.1:
    /// the controller drops the error; §8 B24). 0: never, and no random number is drawn.
    pub process_error_probability: f64,
    /// Event handlers registered while the informer runs (`AddEventHandler` after start: they
    /// get the indexer's objects as initial adds first, SPEC §5.2, §10 T8), at a random time.
    pub late_handlers: u32,
    /// The longest time a handler takes per notification.
    pub handler_ms_max: u64,
    /// The longest time the informer takes to process one popped item.
    pub process_ms_max: u64,
    /// The links between a client and its apiserver (both directions).
    pub link: DelayConfig,
    /// HTTP/2's `ReadIdleTimeout`: a PING goes out after this long without a frame
    /// (`HTTP2_READ_IDLE_TIMEOUT_SECONDS`; 0 switches the health check off, and a half-open
    /// connection then hangs until the faults heal).
    pub read_idle_timeout_ms: u64,
    /// HTTP/2's `PingTimeout`: an unanswered PING closes the connection after this long
    /// (`HTTP2_PING_TIMEOUT_SECONDS`).
    pub ping_timeout_ms: u64,
    /// The reflector's `MinWatchTimeout`: values below 5 min are raised to 5 min, as client-go
    /// does.
    pub min_watch_timeout_ms: u64,
    /// `WatchListPageSize` (0: unset).
    pub page_size: u64,
    /// What each client's lists and watches select.
    pub selector: ClientSelector,
    /// Settings no client-go reflector has, to reach rare states in short runs.
    pub test_only: ClientTestOnly,
}

/// TEST ONLY client settings, labelled as such in the scenarios that use them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTestOnly {
    /// A watch timeout below client-go's 5 min floor (which `min_watch_timeout_ms` obeys), so
    /// that server-side watch timeouts and their closing bookmarks happen within a minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_watch_timeout_ms: Option<u64>,
}

/// What each client's lists and watches select (`ListOptions.LabelSelector`, `FieldSelector`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientSelector {
    /// Every object.
    #[default]
    None,
    /// Client `i` selects `app=app-{i mod workload.label_values}`: many watchers, each of a
    /// slice of the objects, as a large cluster's kubelets each watch their own node's pods.
    AppPerClient,
    /// Client `i` selects the field `spec.nodeName=node-{i mod workload.nodes}`, as a kubelet
    /// watches the pods bound to its node (`workload.nodes` must be at least 1).
    NodePerClient,
}

impl ClientSelector {
    /// The selectors of client `client`.
    pub fn for_client(self, client: usize, workload: &WorkloadConfig) -> Selectors {
        match self {
            ClientSelector::None => Selectors::default(),
            ClientSelector::AppPerClient => Selectors {
                label: Some(LabelSelector {
                    name: "app".to_owned(),
                    value: format!(
                        "app-{}",
                        client as u64 % u64::from(workload.label_values.max(1))
                    ),
                }),
                field: None,
            },
            ClientSelector::NodePerClient => Selectors {
                label: None,
                field: Some(FieldSelector::equal(
                    Field::SpecNodeName,
                    &node_name(client as u64 % u64::from(workload.nodes.max(1))),
                )),
            },
        }
    }
}

impl ClientsConfig {
    /// The clients' FIFO: the one set, else the one their release's informers build.
    pub fn fifo(&self) -> FifoKind {
        self.fifo.unwrap_or(self.client_go.features().fifo)
    }

    /// How the reflectors fill the store first: as set, else as their release does.
    pub fn initial_list(&self) -> InitialList {
        self.initial_list.unwrap_or_else(|| {
            if self.client_go.features().watch_list_client {
                InitialList::WatchList
            } else {
                InitialList::List
            }
        })
    }

    /// Whether the informers pop in batches: as set, else as their release does.
    pub fn batch_process(&self) -> bool {
        self.batch_process
            .unwrap_or(self.client_go.features().batch_process)
    }

    /// The reflectors' watch timeout floor: the test-only one, else `MinWatchTimeout` as
    /// client-go honours it.
    pub fn min_watch_timeout(&self) -> SimDuration {
        match self.test_only.min_watch_timeout_ms {
            Some(ms) => SimDuration(ms),
            None => min_watch_timeout_honoured(SimDuration(self.min_watch_timeout_ms)),
        }
    }

    /// HTTP/2's health check as (read-idle timeout, PING timeout), unless it is off.
    pub fn health_check(&self) -> Option<(SimDuration, SimDuration)> {
        (self.read_idle_timeout_ms > 0).then_some((
            SimDuration(self.read_idle_timeout_ms),
            SimDuration(self.ping_timeout_ms),
        ))
    }
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            count: 1,
            client_go: ClientGoRelease::default(),
            fifo: None,
            initial_list: None,
            batch_process: None,
            transform: false,
            resync_period_ms: 0,
            handlers: 1,
            handlers_without_resync: 0,
            process_error_probability: 0.0,
            late_handlers: 0,
            handler_ms_max: 5,
            process_ms_max: 2,
            link: DelayConfig {
                delay_ms_min: 1,
                delay_ms_max: 10,
            },
            read_idle_timeout_ms: 30_000,
            ping_timeout_ms: 15_000,
            min_watch_timeout_ms: 300_000,
            page_size: 0,
            selector: ClientSelector::None,
            test_only: ClientTestOnly::default(),
        }
    }
}

/// The fault mix: per second of simulated time, the chance of each fault. With `swarm`, each
/// seed keeps a random subset of these kinds switched on (swarm testing), so that rare
/// combinations get explored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Switch a random subset of fault kinds off per seed.
    pub swarm: bool,
    /// A client's connection to its apiserver breaks.
    pub disconnect_probability: f64,
    /// A client stops reading its watch stream for a while (a slow consumer).
    pub slow_consumer_probability: f64,
    /// How long a slow consumer stops reading at most.
    pub slow_consumer_ms_max: u64,
    /// A client's connection goes silent without closing (half-open).
    pub silent_connection_probability: f64,
    /// A message to a client is held back (a latency spike).
    pub delay_spike_probability: f64,
    /// The longest latency spike.
    pub delay_spike_ms_max: u64,
    /// An apiserver's cacher loses its etcd watch and re-initializes.
    pub cacher_reinit_probability: f64,
    /// An apiserver restarts.
    pub apiserver_restart_probability: f64,
    /// A client process restarts with a fresh informer.
    pub client_restart_probability: f64,
    /// An apiserver's etcd watch stops being read for a while (its cache lags).
    pub cache_stall_probability: f64,
    /// How long a cache stall lasts at most.
    pub cache_stall_ms_max: u64,
    /// An apiserver's etcd member loses its leader: the cacher's watch fails with an internal
    /// error and re-watches from its last RV, the cache ready but frozen meanwhile.
    pub cache_watch_error_probability: f64,
    /// How long the member has no leader at most (past 30 s the cache re-initializes).
    pub cache_watch_error_ms_max: u64,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        FaultsConfig {
            swarm: true,
            disconnect_probability: 0.02,
            slow_consumer_probability: 0.01,
            slow_consumer_ms_max: 2_000,
            silent_connection_probability: 0.005,
            delay_spike_probability: 0.02,
            delay_spike_ms_max: 5_000,
            cacher_reinit_probability: 0.003,
            apiserver_restart_probability: 0.002,
            client_restart_probability: 0.003,
            cache_stall_probability: 0.01,
            cache_stall_ms_max: 20_000,
            cache_watch_error_probability: 0.003,
            cache_watch_error_ms_max: 40_000,
        }
    }
}

/// Writers doing create, update and delete with compare-and-swap, as kube-apiserver does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// How many writers.
    pub writers: u32,
    /// How many distinct object names (spread over the namespaces).
    pub keys: u32,
    /// How many objects (the first of the names) exist before anything starts, as in a
    /// cluster that already holds its objects when an apiserver or informer comes up.
    pub initial_objects: u32,
    /// How many namespaces.
    pub namespaces: u32,
    /// The shortest pause between two writes of one writer.
    pub write_interval_ms_min: u64,
    /// The longest pause between two writes of one writer.
    pub write_interval_ms_max: u64,
    /// The longest time between reading an object and writing it back: the window for CAS
    /// conflicts.
    pub think_ms_max: u64,
    /// The chance that a write to an existing object deletes it.
    pub delete_probability: f64,
    /// How many values the `app` label takes.
    pub label_values: u32,
    /// The chance that a write also sets a `tier` label, so objects' index values grow and
    /// shrink (SPEC §8 B8). 0 draws nothing, keeping older seeds' runs unchanged.
    pub second_label_probability: f64,
    /// How many nodes pods are bound to (0: objects are no pods, nothing is drawn). A pod is
    /// created unscheduled and bound to a random node by a later update, then keeps its node
    /// (`spec.nodeName` is set once, by the scheduler's binding).
    pub nodes: u32,
}

/// The name of node `index`.
pub fn node_name(index: u64) -> String {
    format!("node-{index}")
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            writers: 3,
            keys: 12,
            initial_objects: 0,
            namespaces: 2,
            write_interval_ms_min: 50,
            write_interval_ms_max: 1_000,
            think_ms_max: 20,
            delete_probability: 0.25,
            label_values: 2,
            second_label_probability: 0.0,
            nodes: 0,
        }
    }
}

/// The etcd server and the compaction kube-apiserver drives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// kube-apiserver's `--etcd-compaction-interval` (0: never compact).
    pub compaction_interval_ms: u64,
    /// etcd's `--experimental-watch-progress-notify-interval` (0: never).
    pub progress_notify_interval_ms: u64,
    /// etcd's own `--auto-compaction-mode=revision --auto-compaction-retention`: each
    /// compaction tick compacts at the current revision minus this many, so compact revisions
    /// land on resource writes (0: kube-apiserver's compactor, whose compact revision is
    /// always its own `compact_rev_key` bump).
    pub auto_compaction_retention: u64,
    /// The etcd release line where releases differ: "3.6" (what Kubernetes HEAD runs, the
    /// default) or "3.4" (3.4.23, the real-etcd oracle's).
    pub release: EtcdRelease,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            compaction_interval_ms: 10_000,
            progress_notify_interval_ms: 5_000,
            auto_compaction_retention: 0,
            release: EtcdRelease::default(),
        }
    }
}

/// Clients that watch etcd directly, fall behind, get compacted and resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdWatchersConfig {
    /// How many.
    pub count: u32,
    /// The link from etcd to each of them.
    pub link: DelayConfig,
    /// Per second of simulated time, the chance that a watcher stops reading for a while.
    pub stall_probability: f64,
    /// How long a stall lasts at most.
    pub stall_ms_max: u64,
    /// Per second, the chance that a watcher's connection breaks.
    pub disconnect_probability: f64,
    /// Per second, the chance that a watcher asks for a progress notification.
    pub progress_request_probability: f64,
}

impl Default for EtcdWatchersConfig {
    fn default() -> Self {
        EtcdWatchersConfig {
            count: 0,
            link: DelayConfig {
                delay_ms_min: 1,
                delay_ms_max: 20,
            },
            stall_probability: 0.05,
            stall_ms_max: 15_000,
            disconnect_probability: 0.03,
            progress_request_probability: 0.1,
        }
    }
}

/// Why a scenario is not acceptable: one line naming the field, what it was and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not TOML of the scenario's shape.
    #[error("scenario {source_name}: {message}")]
    Parse {
        /// The file or library name.
        source_name: String,
        /// What the TOML parser said, on one line.
        message: String,
    },
    /// A value is out of its range.
    #[error("scenario {source_name}: {field} = {given} is out of range (allowed: {allowed})")]
    OutOfRange {
        /// The file or library name.
        source_name: String,
        /// The field.
        field: &'static str,
        /// The value given.
        given: String,
        /// The allowed range.
        allowed: &'static str,
    },
    /// A duration is longer than a day.
    #[error(
        "scenario {source_name}: {field} = {given} is out of range (allowed: 0..=86400000, a day)"
    )]
    TooLong {
        /// The file or library name.
        source_name: String,
        /// The field, dotted.
        field: String,
        /// The value given.
        given: u64,
    },
    /// No library scenario has this name and no file has this path.
    #[error("unknown scenario {given:?} (allowed: {allowed}, or a path to a .toml file)")]
    Unknown {
        /// What was asked for.
        given: String,
        /// The library's names.
        allowed: String,
    },
}

/// One scenario of the embedded library.
#[derive(Clone, Copy, Debug)]
pub struct LibraryEntry {
    /// Its name (the file stem).
    pub name: &'static str,
    /// The TOML text.
    pub text: &'static str,
}

impl LibraryEntry {
    /// The first comment line of the file: what the scenario exercises.
    pub fn summary(&self) -> &'static str {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix('#'))
            .map_or("", str::trim)
    }
}

/// The embedded scenario library (every file of `sim/scenarios/`), in name order.
pub const LIBRARY: &[LibraryEntry] = include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// The scenario a command runs when none is named.
pub const DEFAULT_SCENARIO: &str = "informer";

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario =
            toml::from_str(text).map_err(|error| ScenarioError::Parse {
                source_name: source_name.to_owned(),
                message: error.message().replace('\n', " "),
            })?;
        if scenario.name == Scenario::default().name {
            scenario.name = source_name.to_owned();
        }
        scenario.validate(source_name)?;
        Ok(scenario)
    }

    /// A library scenario by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some(entry) = LIBRARY.iter().find(|entry| entry.name == name_or_path) {
            return Scenario::from_toml(entry.name, entry.text);
        }
        if name_or_path.ends_with(".toml") {
            let text =
                std::fs::read_to_string(name_or_path).map_err(|error| ScenarioError::Parse {
                    source_name: name_or_path.to_owned(),
                    message: error.to_string(),
                })?;
            return Scenario::from_toml(name_or_path, &text);
        }
        let allowed: Vec<&str> = LIBRARY.iter().map(|entry| entry.name).collect();
        Err(ScenarioError::Unknown {
            given: name_or_path.to_owned(),
            allowed: allowed.join(", "),
        })
    }

    pub(crate) fn validate(&self, source_name: &str) -> Result<(), ScenarioError> {
        let out_of_range = |field, given: String, allowed| ScenarioError::OutOfRange {
            source_name: source_name.to_owned(),
            field,
            given,
            allowed,
        };
        let w = &self.workload;
        let c = &self.clients;
        let test_only = &self.apiservers.server.test_only;
        // An unset test-only size is in range.
        let optional = |value: Option<usize>| value.map_or(1, |value| value as u64);
        let checks: [(&'static str, u64, u64, u64, &'static str); 28] = [
            (
                "apiservers.server.watch_events_per_ms",
                self.apiservers.server.watch_events_per_ms as u64,
                1,
                1_000,
                "1..=1000",
            ),
            (
                "apiservers.server.test_only.history_capacity",
                optional(test_only.history_capacity),
                1,
                102_400,
                "1..=102400",
            ),
            (
                "apiservers.server.test_only.watcher_buffer",
                optional(test_only.watcher_buffer),
                1,
                1_000,
                "1..=1000",
            ),
            (
                "controller.workers",
                u64::from(self.controller.workers),
                0,
                64,
                "0..=64",
            ),
            (
                "controller.replicas_max",
                u64::from(self.controller.replicas_max),
                0,
                1_000,
                "0..=1000",
            ),
            (
                "apiservers.count",
                u64::from(self.apiservers.count),
                0,
                7,
                "0..=7",
            ),
            ("clients.count", u64::from(c.count), 0, 1_000, "0..=1000"),
            ("clients.handlers", u64::from(c.handlers), 0, 8, "0..=8"),
            (
                "clients.handlers_without_resync",
                u64::from(c.handlers_without_resync),
                0,
                8,
                "0..=8",
            ),
            (
                "clients.late_handlers",
                u64::from(c.late_handlers),
                0,
                8,
                "0..=8",
            ),
            (
                "clients.read_idle_timeout_ms",
                c.read_idle_timeout_ms,
                0,
                3_600_000,
                "0..=3600000",
            ),
            (
                "clients.ping_timeout_ms",
                c.ping_timeout_ms,
                1_000,
                3_600_000,
                "1000..=3600000",
            ),
            (
                "clients.min_watch_timeout_ms",
                c.min_watch_timeout_ms,
                1_000,
                86_400_000,
                "1000..=86400000",
            ),
            (
                "clients.test_only.min_watch_timeout_ms",
                c.test_only.min_watch_timeout_ms.unwrap_or(1_000),
                1_000,
                86_400_000,
                "1000..=86400000",
            ),
            (
                "clients.link.delay_ms_min",
                c.link.delay_ms_min,
                0,
                60_000,
                "0..=60000",
            ),
            (
                "duration_ms",
                self.duration_ms,
                1,
                86_400_000,
                "1..=86400000",
            ),
            (
                "settle_ms_max",
                self.settle_ms_max,
                1_000,
                86_400_000,
                "1000..=86400000",
            ),
            (
                "main_job_seeds",
                self.main_job_seeds.unwrap_or(1),
                1,
                100_000,
                "1..=100000",
            ),
            (
                "steps_max",
                self.steps_max,
                1_000,
                1_000_000_000,
                "1000..=1000000000",
            ),
            (
                "workload.writers",
                u64::from(w.writers),
                0,
                1_000,
                "0..=1000",
            ),
            (
                "workload.keys",
                u64::from(w.keys),
                1,
                1_000_000,
                "1..=1000000",
            ),
            (
                "workload.initial_objects",
                u64::from(w.initial_objects),
                0,
                u64::from(w.keys),
                "0..=workload.keys",
            ),
            (
                "workload.namespaces",
                u64::from(w.namespaces),
                1,
                100,
                "1..=100",
            ),
            (
                "workload.write_interval_ms_min",
                w.write_interval_ms_min,
                1,
                3_600_000,
                "1..=3600000",
            ),
            (
                "workload.label_values",
                u64::from(w.label_values),
                1,
                100_000,
                "1..=100000",
            ),
            ("workload.nodes", u64::from(w.nodes), 0, 10_000, "0..=10000"),
            (
                "etcd_watchers.count",
                u64::from(self.etcd_watchers.count),
                0,
                64,
                "0..=64",
            ),
            (
                "etcd_watchers.link.delay_ms_min",
                self.etcd_watchers.link.delay_ms_min,
                0,
                60_000,
                "0..=60000",
            ),
        ];
        for (field, given, low, high, allowed) in checks {
            if !(low..=high).contains(&given) {
                return Err(out_of_range(field, given.to_string(), allowed));
            }
        }
        if w.write_interval_ms_max < w.write_interval_ms_min {
            return Err(out_of_range(
                "workload.write_interval_ms_max",
                w.write_interval_ms_max.to_string(),
                ">= write_interval_ms_min",
            ));
        }
        if c.selector == ClientSelector::NodePerClient && w.nodes == 0 {
            return Err(out_of_range(
                "workload.nodes",
                w.nodes.to_string(),
                ">= 1 with clients.selector = \"node-per-client\"",
            ));
        }
        if c.link.delay_ms_max < c.link.delay_ms_min {
            return Err(out_of_range(
                "clients.link.delay_ms_max",
                c.link.delay_ms_max.to_string(),
                ">= delay_ms_min",
            ));
        }
        if self.apiservers.etcd_link.delay_ms_max < self.apiservers.etcd_link.delay_ms_min {
            return Err(out_of_range(
                "apiservers.etcd_link.delay_ms_max",
                self.apiservers.etcd_link.delay_ms_max.to_string(),
                ">= delay_ms_min",
            ));
        }
        if self.etcd_watchers.link.delay_ms_max < self.etcd_watchers.link.delay_ms_min {
            return Err(out_of_range(
                "etcd_watchers.link.delay_ms_max",
                self.etcd_watchers.link.delay_ms_max.to_string(),
                ">= delay_ms_min",
            ));
        }
        let f = &self.faults;
        let probabilities = [
            ("faults.disconnect_probability", f.disconnect_probability),
            (
                "faults.slow_consumer_probability",
                f.slow_consumer_probability,
            ),
            (
                "faults.silent_connection_probability",
                f.silent_connection_probability,
            ),
            ("faults.delay_spike_probability", f.delay_spike_probability),
            (
                "faults.cacher_reinit_probability",
                f.cacher_reinit_probability,
            ),
            (
                "faults.apiserver_restart_probability",
                f.apiserver_restart_probability,
            ),
            (
                "faults.client_restart_probability",
                f.client_restart_probability,
            ),
            ("faults.cache_stall_probability", f.cache_stall_probability),
            (
                "faults.cache_watch_error_probability",
                f.cache_watch_error_probability,
            ),
            ("workload.delete_probability", w.delete_probability),
            (
                "clients.process_error_probability",
                c.process_error_probability,
            ),
            (
                "workload.second_label_probability",
                w.second_label_probability,
            ),
            (
                "etcd_watchers.stall_probability",
                self.etcd_watchers.stall_probability,
            ),
            (
                "etcd_watchers.disconnect_probability",
                self.etcd_watchers.disconnect_probability,
            ),
            (
                "etcd_watchers.progress_request_probability",
                self.etcd_watchers.progress_request_probability,
            ),
            (
                "controller.write_error_probability",
                self.controller.write_error_probability,
            ),
        ];
        for (field, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(out_of_range(field, p.to_string(), "0.0..=1.0"));
            }
        }
        if self.controller.workers > 0
            && (c.count == 0 || c.handlers == 0 || self.apiservers.count == 0)
        {
            return Err(out_of_range(
                "controller.workers",
                self.controller.workers.to_string(),
                "0 unless apiservers.count, clients.count and clients.handlers are >= 1 (handler 0 of client 0 feeds the controller)",
            ));
        }
        self.check_kube_rs(source_name)?;
        self.check_durations()
            .map_err(|(field, given)| ScenarioError::TooLong {
                source_name: source_name.to_owned(),
                field,
                given,
            })
    }

    /// Every client identity a world of this scenario runs (none without an apiserver): the
    /// informer clients, then the kube-rs clients.
    pub fn client_identities(&self) -> u32 {
        if self.apiservers.count == 0 {
            0
        } else {
            self.clients.count + self.kube_rs.clients
        }
    }

    /// kube-rs clients need the `kube` feature, and watch the workload's one namespace.
    fn check_kube_rs(&self, source_name: &str) -> Result<(), ScenarioError> {
        let kube = &self.kube_rs;
        let out_of_range = |field, given: String, allowed| ScenarioError::OutOfRange {
            source_name: source_name.to_owned(),
            field,
            given,
            allowed,
        };
        if kube.is_off() {
            if !kube.controller.is_off() {
                return Err(out_of_range(
                    "kube_rs.controller.workers",
                    kube.controller.workers.to_string(),
                    "0 unless kube_rs.clients >= 1 (kube-rs client 0 runs the controller)",
                ));
            }
            return Ok(());
        }
        if !cfg!(feature = "kube") {
            return Err(out_of_range(
                "kube_rs.clients",
                kube.clients.to_string(),
                "0 in a build without the kube feature (cargo build --features kube)",
            ));
        }
        if kube.clients > 16 {
            return Err(out_of_range(
                "kube_rs.clients",
                kube.clients.to_string(),
                "0..=16",
            ));
        }
        if self.workload.namespaces != 1 {
            return Err(out_of_range(
                "workload.namespaces",
                self.workload.namespaces.to_string(),
                "1 with kube-rs clients (they watch ConfigMaps in ns-0)",
            ));
        }
        if !kube.controller.is_off() && !self.controller.is_off() {
            return Err(out_of_range(
                "kube_rs.controller.workers",
                kube.controller.workers.to_string(),
                "0 while [controller] runs the modelled controller (one controller owns the objects)",
            ));
        }
        Ok(())
    }

    /// Every duration (a field whose name has `_ms`) is at most a day, so no sum of simulated
    /// times can overflow: the first one that is not, as its dotted name and value.
    fn check_durations(&self) -> Result<(), (String, u64)> {
        fn walk(path: &str, value: &serde_json::Value) -> Result<(), (String, u64)> {
            match value {
                serde_json::Value::Object(fields) => fields.iter().try_for_each(|(name, value)| {
                    let path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    match value.as_u64() {
                        Some(given) if name.contains("_ms") && given > DURATION_MS_MAX => {
                            Err((path, given))
                        }
                        _ => walk(&path, value),
                    }
                }),
                _ => Ok(()),
            }
        }
        let value = serde_json::to_value(self).expect("scenarios serialize");
        walk("", &value)
    }
}

/// The longest duration a scenario may give any field: a day of simulated time.
const DURATION_MS_MAX: u64 = 86_400_000;

/// One named rare state. The serde name (kebab-case) is what scenarios list under `probes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// A reflector ran ListAndWatch again (a relist, or a watch-list restart).
    Relist,
    /// An apiserver answered 410 Expired (a list or a watch).
    #[serde(rename = "expired-410")]
    Expired410,
    /// A list was served at an RV below etcd's revision when the request arrived.
    StaleList,
    /// A list was served at an RV below one the client had already seen.
    ListOlderThanSeen,
    /// A watch resumed from the RV of a bookmark (newer than the client's last event).
    BookmarkResume,
    /// A watch-list stream reached its initial-events-end bookmark.
    InitialEventsEnd,
    /// A list page was asked for with a continue token.
    PaginatedList,
    /// etcd compacted while a watch was open on it.
    CompactionUnderWatch,
    /// etcd canceled a watch because its revision was compacted.
    EtcdWatchCompacted,
    /// etcd sent a progress notification.
    ProgressNotify,
    /// An informer processed a `DeletedFinalStateUnknown` tombstone from a relist.
    ReplaceTombstone,
    /// A DeltaFIFO resync skipped a known key that still had queued deltas (SPEC T9).
    ResyncSkipPending,
    /// The cacher's dispatcher terminated a slow watcher.
    SlowWatcherTermination,
    /// A watch cache re-initialized after its upstream watch failed.
    CacherReinit,
    /// An apiserver answered 504 TooLargeResourceVersion.
    #[serde(rename = "too-large-504")]
    TooLarge504,
    /// An apiserver answered 429 while its cache was not ready.
    #[serde(rename = "not-ready-429")]
    NotReady429,
    /// A consistent list timed out waiting for the cache and was served by etcd.
    EtcdFallback,
    /// A client process stopped while its informer's Pop was in the empty-queue loop.
    CloseUnderPop,
    /// A watch resumed from an RV the client got a minute or more before was served, not
    /// answered 410: the watch cache keeps 75 s of history (KEP-956).
    OldRvResume,
    /// A cacher re-watched etcd after an internal error, its cache ready and frozen meanwhile.
    CacherRewatch,
    /// A list page was served from the cache with a continue token.
    CachePage,
    /// An exact-RV or continue list waited 3 s for a lagging cache and got 504
    /// (`ListFromCacheSnapshot`).
    #[serde(rename = "snapshot-504")]
    Snapshot504,
    /// A watch served straight from etcd filled its buffers for a client that did not read,
    /// and stopped reading its etcd watch (which then falls behind).
    DirectWatchBehind,
    /// A reflector watched again without a relist (after a clean close, such as a probable
    /// EOF on a broken connection).
    Rewatch,
    /// HTTP/2's health check closed a silent connection.
    HealthCheckClose,
    /// A controller write failed on its resource-version precondition (409 Conflict).
    ControllerConflict,
    /// A failed reconcile put its key back rate limited.
    ControllerRequeue,
    /// A reconcile read a lister that had not yet seen the controller's own last write.
    ListerBehindWrite,
    /// The dispatcher terminated a slow watcher that was still sending its initial events (a
    /// large initial state written slower than live events arrived).
    InitialEventsCutOff,
    /// A cache watcher closed silently: the history dropped events of its interval before it
    /// sent them ("cache interval invalidated").
    IntervalInvalidated,
    /// The dispatcher terminated a slow watch-list watcher whose end bookmark it had buffered:
    /// the watcher drains its input before it closes (`cacheWatcher.add`, graceful `forget`).
    GracefulDrain,
}

impl Probe {
    /// Every probe.
    pub const ALL: &'static [Probe] = &[
        Probe::Relist,
        Probe::Expired410,
        Probe::StaleList,
        Probe::ListOlderThanSeen,
        Probe::BookmarkResume,
        Probe::InitialEventsEnd,
        Probe::PaginatedList,
        Probe::CompactionUnderWatch,
        Probe::EtcdWatchCompacted,
        Probe::ProgressNotify,
        Probe::ReplaceTombstone,
        Probe::ResyncSkipPending,
        Probe::SlowWatcherTermination,
        Probe::CacherReinit,
        Probe::TooLarge504,
        Probe::NotReady429,
        Probe::EtcdFallback,
        Probe::CloseUnderPop,
        Probe::OldRvResume,
        Probe::CacherRewatch,
        Probe::CachePage,
        Probe::Snapshot504,
        Probe::DirectWatchBehind,
        Probe::Rewatch,
        Probe::HealthCheckClose,
        Probe::ControllerConflict,
        Probe::ControllerRequeue,
        Probe::ListerBehindWrite,
        Probe::InitialEventsCutOff,
        Probe::IntervalInvalidated,
        Probe::GracefulDrain,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Relist => "relist",
            Probe::Expired410 => "expired-410",
            Probe::StaleList => "stale-list",
            Probe::ListOlderThanSeen => "list-older-than-seen",
            Probe::BookmarkResume => "bookmark-resume",
            Probe::InitialEventsEnd => "initial-events-end",
            Probe::PaginatedList => "paginated-list",
            Probe::CompactionUnderWatch => "compaction-under-watch",
            Probe::EtcdWatchCompacted => "etcd-watch-compacted",
            Probe::ProgressNotify => "progress-notify",
            Probe::ReplaceTombstone => "replace-tombstone",
            Probe::ResyncSkipPending => "resync-skip-pending",
            Probe::SlowWatcherTermination => "slow-watcher-termination",
            Probe::CacherReinit => "cacher-reinit",
            Probe::TooLarge504 => "too-large-504",
            Probe::NotReady429 => "not-ready-429",
            Probe::EtcdFallback => "etcd-fallback",
            Probe::CloseUnderPop => "close-under-pop",
            Probe::OldRvResume => "old-rv-resume",
            Probe::CacherRewatch => "cacher-rewatch",
            Probe::CachePage => "cache-page",
            Probe::Snapshot504 => "snapshot-504",
            Probe::DirectWatchBehind => "direct-watch-behind",
            Probe::Rewatch => "rewatch",
            Probe::HealthCheckClose => "health-check-close",
            Probe::ControllerConflict => "controller-conflict",
            Probe::ControllerRequeue => "controller-requeue",
            Probe::ListerBehindWrite => "lister-behind-write",
            Probe::InitialEventsCutOff => "initial-events-cut-off",
            Probe::IntervalInvalidated => "interval-invalidated",
            Probe::GracefulDrain => "graceful-drain",
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_scenario() {
        let scenario = Scenario::from_toml("empty", "").expect("valid");
        assert_eq!(scenario.workload, WorkloadConfig::default());
        assert_eq!(scenario.name, "empty");
    }

    #[test]
    fn unknown_fields_are_rejected_on_one_line() {
        let error = Scenario::from_toml("x", "[workload]\nwriterz = 3\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("writerz"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn out_of_range_values_name_the_field_and_the_range() {
        let error = Scenario::from_toml("x", "[workload]\nkeys = 0\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "scenario x: workload.keys = 0 is out of range (allowed: 1..=1000000)"
        );
    }

    #[test]
    fn a_kube_rs_controller_needs_a_kube_rs_client() {
        let text = "[kube_rs.controller]\nworkers = 2\n";
        let error = Scenario::from_toml("x", text).unwrap_err().to_string();
        assert!(error.contains("kube_rs.controller.workers = 2"), "{error}");
    }

    #[test]
    fn every_library_scenario_parses_and_says_what_it_exercises() {
        for entry in LIBRARY {
            Scenario::from_toml(entry.name, entry.text).expect("library scenarios are valid");
            assert!(
                !entry.summary().is_empty(),
                "{} has no summary comment",
                entry.name
            );
        }
    }

    #[test]
    fn names_are_the_serde_names() {
        for probe in Probe::ALL {
            let serde_name = serde_json::to_string(probe).expect("serializes");
            assert_eq!(serde_name, format!("\"{}\"", probe.name()));
        }
    }

    #[test]
    fn a_client_go_release_sets_the_defaults_and_explicit_fields_override_them() {
        let head = Scenario::from_toml("t", "name = \"t\"").unwrap().clients;
        assert_eq!(head.client_go, ClientGoRelease::V1_36);
        assert_eq!(
            (head.fifo(), head.initial_list(), head.batch_process()),
            (FifoKind::RealAtomic, InitialList::WatchList, true)
        );
        let old = "name = \"t\"\n[clients]\nclient_go = \"1.30\"\n";
        let old = Scenario::from_toml("t", old).unwrap().clients;
        assert_eq!(
            (old.fifo(), old.initial_list(), old.batch_process()),
            (FifoKind::Delta, InitialList::List, false)
        );
        let mixed = "name = \"t\"\n[clients]\nclient_go = \"1.33\"\nfifo = \"real-atomic\"\nbatch_process = true\n";
        let mixed = Scenario::from_toml("t", mixed).unwrap().clients;
        assert_eq!(
            (mixed.fifo(), mixed.initial_list(), mixed.batch_process()),
            (FifoKind::RealAtomic, InitialList::List, true)
        );
        let error = Scenario::from_toml("t", "[clients]\nclient_go = \"1.29\"").unwrap_err();
        assert!(error.to_string().contains("`1.36`"), "{error}");
    }

    #[test]
    fn a_min_watch_timeout_below_five_minutes_is_raised_unless_test_only() {
        let short = "name = \"t\"\n[clients]\nmin_watch_timeout_ms = 20000\n";
        let short = Scenario::from_toml("t", short).unwrap().clients;
        assert_eq!(short.min_watch_timeout(), SimDuration::from_secs(300));
        let long = "name = \"t\"\n[clients]\nmin_watch_timeout_ms = 600000\n";
        let long = Scenario::from_toml("t", long).unwrap().clients;
        assert_eq!(long.min_watch_timeout(), SimDuration::from_secs(600));
        let test_only = "name = \"t\"\n[clients.test_only]\nmin_watch_timeout_ms = 20000\n";
        let test_only = Scenario::from_toml("t", test_only).unwrap().clients;
        assert_eq!(test_only.min_watch_timeout(), SimDuration::from_secs(20));
        let zero = "name = \"t\"\n[clients.test_only]\nmin_watch_timeout_ms = 0\n";
        let error = Scenario::from_toml("t", zero).unwrap_err().to_string();
        assert!(
            error.contains("clients.test_only.min_watch_timeout_ms"),
            "{error}"
        );
    }

    #[test]
    fn expected_hazards_must_be_upstream_hazards_of_the_catalog() {
        let ok = Scenario::from_toml(
            "x",
            "expected_hazards = [\"no_time_travel_across_restarts\"]",
        )
        .expect("a hazard");
        assert_eq!(
            ok.expected_hazards,
            vec![Invariant::NoTimeTravelAcrossRestarts]
        );
        for name in ["run_settles", "no_such_invariant"] {
            let text = format!("expected_hazards = [\"{name}\"]");
            let error = Scenario::from_toml("x", &text).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
            assert!(
                error.contains("allowed: no_time_travel_across_restarts"),
                "{error}"
            );
            assert!(
                !error.contains("run_settles,"),
                "only hazards are allowed: {error}"
            );
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn every_duration_is_at_most_a_day_and_the_error_names_the_field() {
        let error = Scenario::from_toml("x", "[clients]\nhandler_ms_max = 86400001\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("clients.handler_ms_max = 86400001"),
            "{error}"
        );
        assert!(!error.contains('\n'));
        Scenario::from_toml("x", "[clients]\nhandler_ms_max = 86400000\n").expect("a day");
    }

    #[test]
    fn unknown_names_list_the_library() {
        let error = Scenario::load("nope").unwrap_err();
        assert!(error.to_string().contains("etcd-watch"));
    }
}
