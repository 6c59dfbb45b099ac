//! Speed of the simulator: one complete informer schedule, and the fake etcd's write path.
//! Run with `cargo bench`; use `valgrind --tool=callgrind` on the release binary for
//! repeatable instruction counts.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use informer_sim::etcd::{Etcd, KeyRange, WatchRequest};
use informer_sim::scenario::Scenario;
use informer_sim::trace::Trace;
use informer_sim::world::World;

fn informer_schedule(c: &mut Criterion) {
    let scenario = Scenario::load("informer").expect("library scenario");
    c.bench_function("informer scenario, one seed", |b| {
        b.iter(|| World::new(scenario.clone(), black_box(7), Trace::default()).run())
    });
}

fn etcd_writes_with_a_watcher(c: &mut Criterion) {
    c.bench_function("fake etcd: 1000 puts with one prefix watch", |b| {
        b.iter(|| {
            let mut etcd = Etcd::default();
            let range = KeyRange::prefix("/registry/pods/");
            etcd.watch(WatchRequest {
                range,
                start_revision: 0,
                prev_kv: true,
                progress_notify: false,
            });
            for index in 0..1000u32 {
                etcd.put(&format!("/registry/pods/ns/obj-{}", index % 50), b"v=1;")
                    .expect("put");
                while etcd.poll_response().is_some() {}
            }
            black_box(etcd.revision())
        })
    });
}

criterion_group!(benches, informer_schedule, etcd_writes_with_a_watcher);
criterion_main!(benches);
