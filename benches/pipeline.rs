//! Speed of the simulator, stage by stage: one complete informer schedule, the whole pipeline
//! with and without checks, the fake etcd's write path, the ground truth's and the resource
//! history's write paths (with forgetting), and the DeltaFIFO + indexer stage. Run with
//! `cargo bench`; `informer-sim bench` gives the headline figures, and
//! `valgrind --tool=callgrind` on the release binary repeatable instruction counts.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use informer_sim::bench;
use informer_sim::check::resource::ResourceHistory;
use informer_sim::check::truth::GroundTruth;
use informer_sim::etcd::{Etcd, KeyRange, Op, TxnRequest, WatchRequest};
use informer_sim::object::Object;
use informer_sim::scenario::Scenario;
use informer_sim::trace::Trace;
use informer_sim::world::World;

const PREFIX: &str = "/registry/pods/";

fn informer_schedule(c: &mut Criterion) {
    let scenario = Scenario::load("informer").expect("library scenario");
    c.bench_function("informer scenario, one seed", |b| {
        b.iter(|| World::new(scenario.clone(), black_box(7), Trace::default()).run())
    });
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline, 2,000 writes over 1,000 keys");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2_000));
    for checked in [false, true] {
        let name = if checked {
            "every check on"
        } else {
            "no check"
        };
        group.bench_function(name, |b| {
            b.iter(|| bench::pipeline(black_box(2_000), 1_000, checked))
        });
    }
    group.finish();
}

fn etcd_writes_with_a_watcher(c: &mut Criterion) {
    c.bench_function("fake etcd: 1000 puts with one prefix watch", |b| {
        b.iter(|| {
            let mut etcd = Etcd::default();
            let range = KeyRange::prefix(PREFIX);
            etcd.watch(WatchRequest {
                range,
                start_revision: 0,
                prev_kv: true,
                progress_notify: false,
            });
            for index in 0..1000u32 {
                etcd.put(&format!("{PREFIX}ns/obj-{}", index % 50), b"v=1;")
                    .expect("put");
                while etcd.poll_response().is_some() {}
            }
            black_box(etcd.revision())
        })
    });
}

/// 10,000 writes over 1,000 keys, compacting and forgetting every 1,000: the ground truth's
/// write path, and the resource history decoding each revision beside it.
fn ground_truth_and_resource_history(c: &mut Criterion) {
    const WRITES: usize = 10_000;
    let keys: Vec<String> = (0..1_000)
        .map(|i| format!("{PREFIX}ns-{}/obj-{i}", i % 10))
        .collect();
    let body = Object::encode_body(&[("app".to_owned(), "a".to_owned())].into(), 1);
    let put = |key: &str| TxnRequest {
        success: vec![Op::Put {
            key: key.to_owned(),
            value: body.clone(),
            prev_kv: false,
        }],
        ..TxnRequest::default()
    };
    let mut group = c.benchmark_group("history, 10,000 writes over 1,000 keys");
    group.throughput(Throughput::Elements(WRITES as u64));
    for decoded in [false, true] {
        let name = if decoded {
            "ground truth + resource history"
        } else {
            "ground truth"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut truth = GroundTruth::default();
                let mut resource = ResourceHistory::new(PREFIX);
                for write in 0..WRITES {
                    truth
                        .txn(&put(&keys[write % keys.len()]))
                        .expect("accepted");
                    let revision = truth.revision();
                    if decoded {
                        resource.record(revision, truth.events_at(revision));
                    }
                    if write % 1_000 == 999 {
                        truth.compact(revision).expect("a new compact revision");
                        truth.forget_before(revision);
                        resource.forget_before(revision.min(resource.revision()));
                    }
                }
                black_box(truth.retained())
            })
        });
    }
    group.finish();
}

fn fifo_and_indexer(c: &mut Criterion) {
    let mut group = c.benchmark_group("DeltaFIFO + indexer");
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("100,000 add/update then pop over 10,000 keys", |b| {
        b.iter(|| bench::fifo_indexer(black_box(100_000)))
    });
    group.finish();
}

criterion_group!(
    benches,
    informer_schedule,
    pipeline,
    etcd_writes_with_a_watcher,
    ground_truth_and_resource_history,
    fifo_and_indexer
);
criterion_main!(benches);
