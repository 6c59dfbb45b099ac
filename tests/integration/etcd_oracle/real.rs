//! A real etcd process, and a side that talks to it through its JSON gateway.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use informer_sim::etcd::{
    Compare, CompareResult, CompareTarget, EtcdError, Event, EventType, KeyRange, KeyValue, Op,
    OpResponse, RangeRequest, RangeResponse, Revision, TxnResponse, WatchRequest,
};
use serde_json::{Map, Value, json};

use super::model::{Reply, Step, StreamItem};
use super::runner::Side;
use super::watch_stream::WatchStream;

/// A real etcd on loopback ports, with a fresh data dir; killed by PID on drop.
pub struct EtcdProcess {
    child: Child,
    dir: PathBuf,
    /// The client URL's address.
    pub client: SocketAddr,
}

const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 3;

impl EtcdProcess {
    /// Starts `binary` and waits until it is healthy. `progress_interval` is the period of
    /// progress notifications for watches that asked for them.
    pub fn start(binary: &Path, progress_interval: &str) -> EtcdProcess {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match EtcdProcess::try_start(binary, progress_interval) {
                Ok(etcd) => return etcd,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start in {START_ATTEMPTS} attempts; last log:\n{last_log}");
    }

    fn try_start(binary: &Path, progress_interval: &str) -> Result<EtcdProcess, String> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let tmp = Path::new("/dev/shm");
        let tmp = if tmp.is_dir() {
            tmp.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = tmp.join(format!(
            "informer-sim-etcd-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temporary dir");
        let log = dir.join("etcd.log");
        let [client, peer] = free_ports();
        let client_url = format!("http://{client}");
        let peer_url = format!("http://{peer}");
        let child = Command::new(binary)
            .arg("--name=oracle")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=oracle={peer_url}"))
            .args(["--heartbeat-interval=10", "--election-timeout=100"])
            .arg(format!(
                "--experimental-watch-progress-notify-interval={progress_interval}"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let mut etcd = EtcdProcess { child, dir, client };
        let agent = agent();
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = etcd.child.try_wait() {
                break;
            }
            let health = agent.get(format!("{client_url}/health")).call();
            if health.is_ok_and(|response| response.status() == 200) {
                return Ok(etcd);
            }
            thread::sleep(Duration::from_millis(10));
        }
        let log = fs::read_to_string(&log).unwrap_or_default();
        etcd.stop();
        Err(log)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two loopback ports free right now.
fn free_ports() -> [SocketAddr; 2] {
    let listeners = [(); 2].map(|()| TcpListener::bind("127.0.0.1:0").expect("loopback port"));
    listeners.map(|listener| listener.local_addr().expect("bound"))
}

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(CALL_TIMEOUT))
        .build()
        .into()
}

/// How long a watch may take to deliver what the fake says it should.
const STREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Real etcd catches up watches from history in a loop that runs every 100 ms; a watch counts
/// as caught up once it delivered an event, or this long after it was opened (with room for a
/// loaded machine).
const SYNC_LOOP_MARGIN: Duration = Duration::from_millis(300);
/// Key written between sequences, below every sequence prefix.
const SEPARATOR_KEY: &str = "/0-separator";

/// One watch, on its own stream.
struct RealWatch {
    stream: WatchStream,
    items: Vec<StreamItem>,
    /// The watch's id on its stream, for `cancel_request`.
    id: i64,
    progress_notify: bool,
    /// Periodic progress notifications not asked for yet.
    periodic: Vec<Revision>,
    /// When a watch from history is surely caught up, if it may not be yet.
    sync_due: Option<Instant>,
}

/// Real etcd as a side. Sequences share the etcd: each has its own key prefix, and revisions
/// are shifted by the revision the sequence started at.
pub struct RealSide {
    agent: ureq::Agent,
    client: SocketAddr,
    offset: Revision,
    sequences: usize,
    watches: Vec<RealWatch>,
}

impl RealSide {
    /// A side on `etcd`.
    pub fn new(etcd: &EtcdProcess) -> RealSide {
        RealSide {
            agent: agent(),
            client: etcd.client,
            offset: 0,
            sequences: 0,
            watches: Vec::new(),
        }
    }

    /// Starts a sequence: closes the last one's watches and moves revision 1 of the sequence
    /// to a revision past every earlier compaction.
    pub fn begin_sequence(&mut self) {
        self.watches.clear();
        if self.sequences > 0 {
            self.call(
                "/v3/kv/put",
                json!({"key": b64(SEPARATOR_KEY), "value": ""}),
            )
            .expect("separator put");
        }
        self.sequences += 1;
        let probe = json!({"key": b64(SEPARATOR_KEY)});
        let response = self.call("/v3/kv/range", probe).expect("probe");
        self.offset = number(&response["header"]["revision"]) - 1;
    }

    /// One unary call: `Ok(body)` on 200, the etcd error on 400.
    fn call(&self, path: &str, request: Value) -> Result<Value, EtcdError> {
        let url = format!("http://{}{path}", self.client);
        let mut response = self
            .agent
            .post(&url)
            .send_json(&request)
            .unwrap_or_else(|e| panic!("{path} {request}: {e}"));
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("{path} {request}: unreadable answer: {e}"));
        if status == 200 {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or_default();
        Err(
            if message.contains("required revision has been compacted") {
                EtcdError::Compacted
            } else if message.contains("required revision is a future revision") {
                EtcdError::FutureRevision
            } else if message.contains("duplicate key given in txn request") {
                EtcdError::DuplicateKey
            } else {
                panic!("{path} {request}: etcd answered {status} {body}")
            },
        )
    }

    /// A sequence revision as a real one (0 stays 0: "latest" or "absent").
    fn real_revision(&self, revision: Revision) -> Revision {
        if revision == 0 {
            0
        } else {
            revision + self.offset
        }
    }

    /// A real revision as a sequence one (0 stays 0).
    fn sequence_revision(&self, value: &Value) -> Revision {
        match number(value) {
            0 => 0,
            revision => revision - self.offset,
        }
    }

    fn header(&self, response: &Value) -> Revision {
        self.sequence_revision(&response["header"]["revision"])
    }

    fn kv(&self, kv: &Value) -> KeyValue {
        KeyValue {
            key: String::from_utf8(bytes(&kv["key"])).expect("ascii keys"),
            create_revision: self.sequence_revision(&kv["create_revision"]),
            mod_revision: self.sequence_revision(&kv["mod_revision"]),
            version: number(&kv["version"]),
            value: bytes(&kv["value"]),
        }
    }

    fn kvs(&self, kvs: &Value) -> Vec<KeyValue> {
        list(kvs).iter().map(|kv| self.kv(kv)).collect()
    }

    fn maybe_kv(&self, kv: &Value) -> Option<KeyValue> {
        (!kv.is_null()).then(|| self.kv(kv))
    }

    fn range_json(&self, request: &RangeRequest) -> Value {
        let mut json = range_json(&request.range);
        json["revision"] = json!(self.real_revision(request.revision));
        json["limit"] = json!(request.limit);
        json
    }

    fn range_response(&self, response: &Value) -> RangeResponse {
        RangeResponse {
            header_revision: self.header(response),
            kvs: self.kvs(&response["kvs"]),
            more: response["more"].as_bool().unwrap_or(false),
            count: number(&response["count"]),
        }
    }

    fn compare_json(&self, compare: &Compare) -> Value {
        let (target, field, value) = match compare.target {
            CompareTarget::Mod => ("MOD", "mod_revision", self.real_revision(compare.value)),
            CompareTarget::Create => (
                "CREATE",
                "create_revision",
                self.real_revision(compare.value),
            ),
            CompareTarget::Version => ("VERSION", "version", compare.value),
        };
        let result = match compare.result {
            CompareResult::Equal => "EQUAL",
            CompareResult::NotEqual => "NOT_EQUAL",
            CompareResult::Greater => "GREATER",
            CompareResult::Less => "LESS",
        };
        json!({"key": b64(&compare.key), "target": target, "result": result, field: value})
    }

    fn op_json(&self, op: &Op) -> Value {
        match op {
            Op::Range(request) => json!({"request_range": self.range_json(request)}),
            Op::Put {
                key,
                value,
                prev_kv,
            } => json!({"request_put": put_json(key, value, *prev_kv)}),
            Op::DeleteRange { range, prev_kv } => {
                json!({"request_delete_range": delete_json(range, *prev_kv)})
            }
        }
    }

    fn op_response(&self, response: &Value) -> OpResponse {
        if let Some(range) = response.get("response_range") {
            OpResponse::Range(self.range_response(range))
        } else if let Some(put) = response.get("response_put") {
            OpResponse::Put {
                prev_kv: self.maybe_kv(&put["prev_kv"]),
            }
        } else if let Some(delete) = response.get("response_delete_range") {
            self.delete_response(delete)
        } else {
            panic!("unknown txn response {response}")
        }
    }

    fn delete_response(&self, response: &Value) -> OpResponse {
        OpResponse::DeleteRange {
            deleted: number(&response["deleted"]),
            prev_kvs: self.kvs(&response["prev_kvs"]),
        }
    }

    /// A put or delete answer as the answer of a one-operation txn.
    fn single(
        &self,
        response: Result<Value, EtcdError>,
        op: impl Fn(&Value) -> OpResponse,
    ) -> Reply {
        Reply::Txn(response.map(|response| TxnResponse {
            header_revision: self.header(&response),
            succeeded: true,
            responses: vec![op(&response)],
        }))
    }

    fn txn(&self, request: &informer_sim::etcd::TxnRequest) -> Reply {
        let ops = |ops: &[Op]| -> Vec<Value> { ops.iter().map(|op| self.op_json(op)).collect() };
        let compare: Vec<Value> = request
            .compare
            .iter()
            .map(|c| self.compare_json(c))
            .collect();
        let json = json!({
            "compare": compare,
            "success": ops(&request.success),
            "failure": ops(&request.failure),
        });
        Reply::Txn(self.call("/v3/kv/txn", json).map(|response| {
            TxnResponse {
                header_revision: self.header(&response),
                succeeded: response["succeeded"].as_bool().unwrap_or(false),
                responses: list(&response["responses"])
                    .iter()
                    .map(|op| self.op_response(op))
                    .collect(),
            }
        }))
    }

    fn open_watch(&mut self, request: &WatchRequest) {
        let mut create = range_json(&request.range);
        create["start_revision"] = json!(self.real_revision(request.start_revision));
        create["prev_kv"] = json!(request.prev_kv);
        create["progress_notify"] = json!(request.progress_notify);
        let mut stream = WatchStream::open(self.client).expect("watch stream");
        stream
            .send(&json!({"create_request": create}))
            .expect("create_request");
        let from_history = (1..=self.current()).contains(&request.start_revision);
        self.watches.push(RealWatch {
            stream,
            items: Vec::new(),
            id: 0,
            progress_notify: request.progress_notify,
            periodic: Vec::new(),
            sync_due: from_history.then(|| Instant::now() + SYNC_LOOP_MARGIN),
        });
    }

    /// The current sequence revision, from a cheap read.
    fn current(&self) -> Revision {
        let probe = json!({"key": b64(SEPARATOR_KEY)});
        self.header(&self.call("/v3/kv/range", probe).expect("probe"))
    }

    /// Reads watch `watch` until `done` holds for it, the stream ends, or a timeout.
    fn read_until(&mut self, watch: usize, done: impl Fn(&RealWatch) -> bool) {
        let deadline = Instant::now() + STREAM_TIMEOUT;
        while !done(&self.watches[watch]) {
            let Some(message) = self.watches[watch].stream.next_message(deadline) else {
                return;
            };
            self.take(watch, &message);
        }
    }

    /// Sends a request on a watch's stream and waits for its reply: etcd handles stream
    /// requests asynchronously, and the next step must not overtake it.
    fn request(&mut self, watch: usize, request: &Value, is_reply: fn(&StreamItem) -> bool) {
        let sent_at = self.watches[watch].items.len();
        let stream = &mut self.watches[watch].stream;
        stream.send(request).expect("watch stream request");
        self.read_until(watch, |real| real.items[sent_at..].iter().any(is_reply));
    }

    /// Files one watch message as stream items.
    fn take(&mut self, watch: usize, message: &Value) {
        let result = message
            .get("result")
            .unwrap_or_else(|| panic!("watch error: {message}"));
        let header = self.header(result);
        let mut items = Vec::new();
        if result["created"].as_bool() == Some(true) {
            self.watches[watch].id = number(&result["watch_id"]) as i64;
            items.push(StreamItem::Created { revision: header });
        }
        for event in list(&result["events"]) {
            items.push(StreamItem::Event(self.event(event)));
        }
        if result["canceled"].as_bool() == Some(true) {
            items.push(match self.sequence_revision(&result["compact_revision"]) {
                0 => StreamItem::Canceled,
                compact_revision => StreamItem::Compacted { compact_revision },
            });
        }
        let real = &mut self.watches[watch];
        if items.is_empty() {
            // Header only: a progress notification. A requested one has watch id -1.
            match result["watch_id"].as_str() {
                Some("-1") => items.push(StreamItem::Progress { revision: header }),
                _ => real.periodic.push(header),
            }
        }
        if items
            .iter()
            .any(|item| matches!(item, StreamItem::Event(_)))
        {
            real.sync_due = None;
        }
        real.items.extend(items);
    }

    fn event(&self, event: &Value) -> Event {
        let event_type = match event["type"].as_str() {
            None | Some("PUT") => EventType::Put,
            Some("DELETE") => EventType::Delete,
            Some(other) => panic!("unknown event type {other}"),
        };
        Event {
            event_type,
            kv: self.kv(&event["kv"]),
            prev_kv: self.maybe_kv(&event["prev_kv"]),
        }
    }

    /// Waits until every watch from history has surely been caught up by etcd's sync loop:
    /// until then a compaction could cancel it, and it gets no periodic progress.
    fn await_sync_loop(&self) {
        let due = self.watches.iter().filter_map(|watch| watch.sync_due).max();
        if let Some(wait) = due.map(|due| due.saturating_duration_since(Instant::now())) {
            thread::sleep(wait);
        }
    }

    /// The next periodic progress notification of every open watch that asked for them: the
    /// first one made after the last write (older ones may still be on their way).
    fn tick(&mut self) {
        self.await_sync_loop();
        let current = self.current();
        for watch in 0..self.watches.len() {
            let real = &mut self.watches[watch];
            let over = real.items.last().is_some_and(StreamItem::ends_stream);
            if over || !real.progress_notify {
                continue;
            }
            real.periodic.clear();
            self.read_until(watch, |real| real.periodic.iter().any(|&r| r >= current));
            let real = &mut self.watches[watch];
            if let Some(&revision) = real.periodic.iter().find(|&&r| r >= current) {
                real.items.push(StreamItem::Progress { revision });
            }
        }
    }
}

impl Side for RealSide {
    fn apply(&mut self, step: &Step) -> Reply {
        match step {
            Step::Put {
                key,
                value,
                prev_kv,
            } => {
                let response = self.call("/v3/kv/put", put_json(key, value, *prev_kv));
                self.single(response, |response| OpResponse::Put {
                    prev_kv: self.maybe_kv(&response["prev_kv"]),
                })
            }
            Step::Delete { range, prev_kv } => {
                let response = self.call("/v3/kv/deleterange", delete_json(range, *prev_kv));
                self.single(response, |response| self.delete_response(response))
            }
            Step::Txn(request) => self.txn(request),
            Step::Range(request) => {
                let response = self.call("/v3/kv/range", self.range_json(request));
                Reply::Range(response.map(|response| self.range_response(&response)))
            }
            Step::Compact { revision } => {
                self.await_sync_loop();
                let request = json!({"revision": self.real_revision(*revision), "physical": true});
                let response = self.call("/v3/kv/compaction", request);
                Reply::Compact(response.map(|response| self.header(&response)))
            }
            Step::Watch(request) => {
                self.open_watch(request);
                let watch = self.watches.len() - 1;
                self.read_until(watch, |real| !real.items.is_empty());
                Reply::Streamed
            }
            Step::Cancel { watch } => {
                let cancel = json!({"cancel_request": {"watch_id": self.watches[*watch].id}});
                self.request(*watch, &cancel, StreamItem::ends_stream);
                Reply::Streamed
            }
            Step::RequestProgress { watch } => {
                let request = json!({"progress_request": {}});
                self.request(*watch, &request, |item| {
                    matches!(item, StreamItem::Progress { .. })
                });
                Reply::Streamed
            }
            Step::ProgressTick => {
                self.tick();
                Reply::Streamed
            }
        }
    }

    fn stream(&mut self, watch: usize, expected: usize) -> Vec<StreamItem> {
        self.read_until(watch, |real| {
            let over = real.items.last().is_some_and(StreamItem::ends_stream);
            over || real.items.len() >= expected
        });
        self.watches[watch].items.clone()
    }
}

fn b64(text: &str) -> String {
    BASE64.encode(text)
}

/// A base64 field as bytes (absent: empty).
fn bytes(value: &Value) -> Vec<u8> {
    let text = value.as_str().unwrap_or_default();
    BASE64
        .decode(text)
        .unwrap_or_else(|e| panic!("bad base64 {text:?}: {e}"))
}

/// A 64-bit number field, which the gateway sends as a string (absent: 0).
fn number(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("bad number {text:?}: {e}")),
        other => other
            .as_u64()
            .unwrap_or_else(|| panic!("bad number {other}")),
    }
}

/// A repeated field (absent: empty).
fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn range_json(range: &KeyRange) -> Value {
    let mut json = Map::new();
    json.insert("key".into(), json!(b64(&range.key)));
    if let Some(end) = &range.range_end {
        json.insert("range_end".into(), json!(b64(end)));
    }
    Value::Object(json)
}

fn put_json(key: &str, value: &[u8], prev_kv: bool) -> Value {
    json!({"key": b64(key), "value": BASE64.encode(value), "prev_kv": prev_kv})
}

fn delete_json(range: &KeyRange, prev_kv: bool) -> Value {
    let mut json = range_json(range);
    json["prev_kv"] = json!(prev_kv);
    json
}
