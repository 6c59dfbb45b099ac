//! Worked examples of SPEC §4, §8, §10 and §12 run through the FIFO script language, one test per
//! example, pinning the exact output lines for every FIFO mode.

use informer_sim::bug::Bugs;
use informer_sim::client::{Fifo, FifoKind, Indexer, NoKnownObjects, process_deltas};
use informer_sim::object::Object;
use informer_sim::testkit::fifo_script::run_script;

/// Runs `steps` against `fifo` and compares every output line.
#[track_caller]
fn check(fifo: &str, steps: &str, expected: &[&str]) {
    let output =
        run_script(&format!(r#"{{"fifo": "{fifo}", "steps": {steps}}}"#)).expect("script runs");
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines, expected, "fifo {fifo}");
    assert!(output.ends_with('\n'));
}

/// SPEC §10 T4 / §8 B4: `o` is still queued as Added when a relist without it arrives. At HEAD every mode
/// ends with `o` deleted: DeltaFIFO appends a tombstone to `o`'s deltas, RealFIFO queues one before the
/// Replaced items, atomic RealFIFO reconciles the ReplacedAll against the indexer after the add.
#[test]
fn t4_relist_without_a_queued_added_object_deletes_it_after_the_add() {
    let steps = r#"[{"op":"add","obj":"ns/o@200"},{"op":"replace","list":["ns/p@205"],"rv":"205"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["ns/o",[["Added","ns/o@200"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/o",[["Added","ns/o@200"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@200"}]]],["ns/p",[["Replaced","ns/p@205"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["ns/p@205"],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@200"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@200"}]],"handler":[["add","ns/o@200",false],["delete",{"tombstone":"ns/o","obj":"ns/o@200"}]]},{"key":"ns/p","initial":false,"deltas":[["Replaced","ns/p@205"]],"handler":[["add","ns/p@205",false]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/o@200"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/o@200"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@200"}],["Replaced","ns/p@205"]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["ns/p@205"],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@200"]],"handler":[["add","ns/o@200",false]]},{"key":"ns/o","initial":false,"deltas":[["Deleted",{"tombstone":"ns/o","obj":"ns/o@200"}]],"handler":[["delete",{"tombstone":"ns/o","obj":"ns/o@200"}]]},{"key":"ns/p","initial":false,"deltas":[["Replaced","ns/p@205"]],"handler":[["add","ns/p@205",false]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/o@200"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/o@200"],["ReplacedAll",{"rv":"205","objects":["ns/p@205"]}]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["ns/p@205"],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@200"]],"handler":[["add","ns/o@200",false]]},{"key":null,"initial":false,"deltas":[["ReplacedAll",{"rv":"205","objects":["ns/p@205"]}]],"handler":[["delete",{"tombstone":"ns/o","obj":"ns/o@200"}],["add","ns/p@205",false]]}]}"#,
        ],
    );
}

/// SPEC §10 T9 / §8 B6: resync must not queue the stale indexer copy of `x` behind its pending update;
/// the atomic mode syncs every indexer object once the update was applied.
#[test]
fn t9_resync_skips_a_key_with_a_pending_delta() {
    let steps = r#"[{"op":"known_add","obj":"ns/x@10"},{"op":"known_add","obj":"ns/y@10"},{"op":"update","obj":"ns/x@20"},{"op":"resync"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@10"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/x",[["Updated","ns/x@20"]]]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[["ns/x",[["Updated","ns/x@20"]]],["ns/y",[["Sync","ns/y@10"]]]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":4,"has_synced":true,"queue":[],"indexer":["ns/x@20","ns/y@10"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Updated","ns/x@20"]],"handler":[["update","ns/x@10","ns/x@20"]]},{"key":"ns/y","initial":false,"deltas":[["Sync","ns/y@10"]],"handler":[["update","ns/y@10","ns/y@10"]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@10"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Updated","ns/x@20"]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[["Updated","ns/x@20"],["Sync","ns/y@10"]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":4,"has_synced":true,"queue":[],"indexer":["ns/x@20","ns/y@10"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Updated","ns/x@20"]],"handler":[["update","ns/x@10","ns/x@20"]]},{"key":"ns/y","initial":false,"deltas":[["Sync","ns/y@10"]],"handler":[["update","ns/y@10","ns/y@10"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@10"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Updated","ns/x@20"]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[["Updated","ns/x@20"],["SyncAll",null]],"indexer":["ns/x@10","ns/y@10"],"pops":[]}"#,
            r#"{"step":4,"has_synced":true,"queue":[],"indexer":["ns/x@20","ns/y@10"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Updated","ns/x@20"]],"handler":[["update","ns/x@10","ns/x@20"]]},{"key":null,"initial":false,"deltas":[["SyncAll",null]],"handler":[["update","ns/x@20","ns/x@20"],["update","ns/y@10","ns/y@10"]]}]}"#,
        ],
    );
}

/// SPEC §8 B2: a queued Deleted is kept and the relisted object follows it, so the consumer sees the delete
/// and then an add, and the indexer ends with the new object.
#[test]
fn b2_pending_deleted_and_key_in_the_new_list_gives_delete_then_add() {
    let steps = r#"[{"op":"known_add","obj":"ns/x@1"},{"op":"delete","obj":"ns/x@2"},{"op":"replace","list":["ns/x@3"],"rv":"3"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/x",[["Deleted","ns/x@2"]]]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/x",[["Deleted","ns/x@2"],["Replaced","ns/x@3"]]]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/x@3"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"],["Replaced","ns/x@3"]],"handler":[["delete","ns/x@2"],["add","ns/x@3",false]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted","ns/x@2"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted","ns/x@2"],["Replaced","ns/x@3"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/x@3"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]},{"key":"ns/x","initial":false,"deltas":[["Replaced","ns/x@3"]],"handler":[["add","ns/x@3",false]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted","ns/x@2"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted","ns/x@2"],["ReplacedAll",{"rv":"3","objects":["ns/x@3"]}]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/x@3"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]},{"key":null,"initial":false,"deltas":[["ReplacedAll",{"rv":"3","objects":["ns/x@3"]}]],"handler":[["add","ns/x@3",false]]}]}"#,
        ],
    );
}

/// SPEC §8 B7: the key is queued but unknown to the indexer; the Delete must still be queued.
#[test]
fn b7_delete_while_the_add_is_still_queued_is_kept() {
    let steps = r#"[{"op":"add","obj":"ns/x@1"},{"op":"delete","obj":"ns/x@2"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["ns/x",[["Added","ns/x@1"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/x",[["Added","ns/x@1"],["Deleted","ns/x@2"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/x","initial":false,"deltas":[["Added","ns/x@1"],["Deleted","ns/x@2"]],"handler":[["add","ns/x@1",false],["delete","ns/x@2"]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/x@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/x@1"],["Deleted","ns/x@2"]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/x","initial":false,"deltas":[["Added","ns/x@1"]],"handler":[["add","ns/x@1",false]]},{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/x@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/x@1"],["Deleted","ns/x@2"]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/x","initial":false,"deltas":[["Added","ns/x@1"]],"handler":[["add","ns/x@1",false]]},{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]}]}"#,
        ],
    );
}

/// SPEC §8 B5: after two relists without `o` the tombstone still holds the plain object (DeltaFIFO merges the
/// two Deleted, RealFIFO skips a key whose last delta is Deleted).
#[test]
fn b5_a_second_relist_does_not_wrap_a_tombstone_again() {
    let steps = r#"[{"op":"add","obj":"ns/o@1"},{"op":"replace","list":[],"rv":"2"},{"op":"replace","list":[],"rv":"3"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["ns/o",[["Added","ns/o@1"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/o",[["Added","ns/o@1"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/o",[["Added","ns/o@1"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@1"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]],"handler":[["add","ns/o@1",false],["delete",{"tombstone":"ns/o","obj":"ns/o@1"}]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/o@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/o@1"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Added","ns/o@1"],["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@1"]],"handler":[["add","ns/o@1",false]]},{"key":"ns/o","initial":false,"deltas":[["Deleted",{"tombstone":"ns/o","obj":"ns/o@1"}]],"handler":[["delete",{"tombstone":"ns/o","obj":"ns/o@1"}]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/o@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/o@1"],["ReplacedAll",{"rv":"2","objects":[]}]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Added","ns/o@1"],["ReplacedAll",{"rv":"2","objects":[]}],["ReplacedAll",{"rv":"3","objects":[]}]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/o","initial":false,"deltas":[["Added","ns/o@1"]],"handler":[["add","ns/o@1",false]]},{"key":null,"initial":false,"deltas":[["ReplacedAll",{"rv":"2","objects":[]}]],"handler":[["delete",{"tombstone":"ns/o","obj":"ns/o@1"}]]},{"key":null,"initial":false,"deltas":[["ReplacedAll",{"rv":"3","objects":[]}]],"handler":[]}]}"#,
        ],
    );
}

/// SPEC §12 "Delete of unknown key" and §9.2 N2.
#[test]
fn delete_of_an_unknown_key_is_dropped_by_delta_fifo_and_delivered_by_real_fifo() {
    let steps = r#"[{"op":"delete","obj":"ns/ghost@1"},{"op":"pop"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":[],"pops":[]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Deleted","ns/ghost@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/ghost","initial":false,"deltas":[["Deleted","ns/ghost@1"]],"handler":[["delete","ns/ghost@1"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Deleted","ns/ghost@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/ghost","initial":false,"deltas":[["Deleted","ns/ghost@1"]],"handler":[["delete","ns/ghost@1"]]}]}"#,
        ],
    );
}

/// SPEC §4.4, §5.1, §12: the same relist, resync and bookmark per mode. DeltaFIFO orders by key (new keys in
/// list order, then known-only tombstones), RealFIFO queues deletions first, the atomic mode queues one
/// delta per call and reconciles at pop time (deletions, then list order); only it queues the bookmark.
#[test]
fn atomic_fifo_queues_one_replaced_all_sync_all_and_bookmark() {
    let steps = r#"[{"op":"known_add","obj":"ns/a@1"},{"op":"known_add","obj":"ns/b@1"},{"op":"replace","list":["ns/c@2","ns/b@2"],"rv":"5"},{"op":"resync"},{"op":"bookmark","rv":"6"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":false,"queue":[["ns/c",[["Replaced","ns/c@2"]]],["ns/b",[["Replaced","ns/b@2"]]],["ns/a",[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}]]]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":false,"queue":[["ns/c",[["Replaced","ns/c@2"]]],["ns/b",[["Replaced","ns/b@2"]]],["ns/a",[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}]]]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":4,"has_synced":false,"queue":[["ns/c",[["Replaced","ns/c@2"]]],["ns/b",[["Replaced","ns/b@2"]]],["ns/a",[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}]]]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":5,"has_synced":true,"queue":[],"indexer":["ns/b@2","ns/c@2"],"pops":[{"key":"ns/c","initial":true,"deltas":[["Replaced","ns/c@2"]],"handler":[["add","ns/c@2",true]]},{"key":"ns/b","initial":true,"deltas":[["Replaced","ns/b@2"]],"handler":[["update","ns/b@1","ns/b@2"]]},{"key":"ns/a","initial":true,"deltas":[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}]],"handler":[["delete",{"tombstone":"ns/a","obj":"ns/a@1"}]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":false,"queue":[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}],["Replaced","ns/c@2"],["Replaced","ns/b@2"]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":false,"queue":[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}],["Replaced","ns/c@2"],["Replaced","ns/b@2"]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":4,"has_synced":false,"queue":[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}],["Replaced","ns/c@2"],["Replaced","ns/b@2"]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":5,"has_synced":true,"queue":[],"indexer":["ns/b@2","ns/c@2"],"pops":[{"key":"ns/a","initial":true,"deltas":[["Deleted",{"tombstone":"ns/a","obj":"ns/a@1"}]],"handler":[["delete",{"tombstone":"ns/a","obj":"ns/a@1"}]]},{"key":"ns/c","initial":true,"deltas":[["Replaced","ns/c@2"]],"handler":[["add","ns/c@2",true]]},{"key":"ns/b","initial":true,"deltas":[["Replaced","ns/b@2"]],"handler":[["update","ns/b@1","ns/b@2"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":false,"queue":[["ReplacedAll",{"rv":"5","objects":["ns/c@2","ns/b@2"]}]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":false,"queue":[["ReplacedAll",{"rv":"5","objects":["ns/c@2","ns/b@2"]}],["SyncAll",null]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":4,"has_synced":false,"queue":[["ReplacedAll",{"rv":"5","objects":["ns/c@2","ns/b@2"]}],["SyncAll",null],["Bookmark","6"]],"indexer":["ns/a@1","ns/b@1"],"pops":[]}"#,
            r#"{"step":5,"has_synced":true,"queue":[],"indexer":["ns/b@2","ns/c@2"],"pops":[{"key":null,"initial":true,"deltas":[["ReplacedAll",{"rv":"5","objects":["ns/c@2","ns/b@2"]}]],"handler":[["delete",{"tombstone":"ns/a","obj":"ns/a@1"}],["add","ns/c@2",true],["update","ns/b@1","ns/b@2"]]},{"key":null,"initial":false,"deltas":[["SyncAll",null]],"handler":[["update","ns/b@2","ns/b@2"],["update","ns/c@2","ns/c@2"]]},{"key":null,"initial":false,"deltas":[["Bookmark","6"]],"handler":[]}]}"#,
        ],
    );
}

/// SPEC §4.3 observed behaviour: `[Deleted, Updated]` in one DeltaFIFO pop gives OnDelete then OnAdd;
/// RealFIFO pops the Deleted alone.
#[test]
fn deleted_followed_by_updated_in_one_pop_gives_delete_then_add() {
    let steps = r#"[{"op":"known_add","obj":"ns/x@1"},{"op":"delete","obj":"ns/x@2"},{"op":"update","obj":"ns/x@3"},{"op":"pop"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/x",[["Deleted","ns/x@2"]]]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/x",[["Deleted","ns/x@2"],["Updated","ns/x@3"]]]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/x@3"],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"],["Updated","ns/x@3"]],"handler":[["delete","ns/x@2"],["add","ns/x@3",false]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted","ns/x@2"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted","ns/x@2"],["Updated","ns/x@3"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[["Updated","ns/x@3"]],"indexer":[],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted","ns/x@2"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted","ns/x@2"],["Updated","ns/x@3"]],"indexer":["ns/x@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[["Updated","ns/x@3"]],"indexer":[],"pops":[{"key":"ns/x","initial":false,"deltas":[["Deleted","ns/x@2"]],"handler":[["delete","ns/x@2"]]}]}"#,
        ],
    );
}

/// SPEC §4.3 observed behaviour: relisting an unchanged `o@12` notifies `update(o@12, o@12)` in every mode.
#[test]
fn relist_of_an_unchanged_object_gives_a_sync_update() {
    let steps = r#"[{"op":"replace","list":["ns/o@12"],"rv":"12"},{"op":"drain"},{"op":"replace","list":["ns/o@12"],"rv":"13"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["ns/o",[["Replaced","ns/o@12"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":"ns/o","initial":true,"deltas":[["Replaced","ns/o@12"]],"handler":[["add","ns/o@12",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/o",[["Replaced","ns/o@12"]]]],"indexer":["ns/o@12"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":"ns/o","initial":false,"deltas":[["Replaced","ns/o@12"]],"handler":[["update","ns/o@12","ns/o@12"]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["Replaced","ns/o@12"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":"ns/o","initial":true,"deltas":[["Replaced","ns/o@12"]],"handler":[["add","ns/o@12",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Replaced","ns/o@12"]],"indexer":["ns/o@12"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":"ns/o","initial":false,"deltas":[["Replaced","ns/o@12"]],"handler":[["update","ns/o@12","ns/o@12"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["ReplacedAll",{"rv":"12","objects":["ns/o@12"]}]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":null,"initial":true,"deltas":[["ReplacedAll",{"rv":"12","objects":["ns/o@12"]}]],"handler":[["add","ns/o@12",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ReplacedAll",{"rv":"13","objects":["ns/o@12"]}]],"indexer":["ns/o@12"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/o@12"],"pops":[{"key":null,"initial":false,"deltas":[["ReplacedAll",{"rv":"13","objects":["ns/o@12"]}]],"handler":[["update","ns/o@12","ns/o@12"]]}]}"#,
        ],
    );
}

/// SPEC §4.3: Resync replays known objects only, so with none it queues nothing; the atomic mode still queues
/// a SyncAll, which notifies nobody.
#[test]
fn resync_with_no_known_objects_queues_nothing() {
    let steps = r#"[{"op":"resync"},{"op":"pop"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["SyncAll",null]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":[],"pops":[{"key":null,"initial":true,"deltas":[["SyncAll",null]],"handler":[]}]}"#,
        ],
    );
}

/// SPEC §4.2, §4.4: the initial flag and HasSynced after each fully processed pop (the N6 window between pop and
/// processing is shown by `delta_fifo_reports_synced_before_the_last_initial_item_is_processed`).
#[test]
fn has_synced_after_the_last_initial_item_was_popped_and_processed() {
    let steps = r#"[{"op":"replace","list":["ns/a@1","b@1"],"rv":"1"},{"op":"pop"},{"op":"pop"},{"op":"pop"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["ns/a",[["Replaced","ns/a@1"]]],["b",[["Replaced","b@1"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[["b",[["Replaced","b@1"]]]],"indexer":["ns/a@1"],"pops":[{"key":"ns/a","initial":true,"deltas":[["Replaced","ns/a@1"]],"handler":[["add","ns/a@1",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[{"key":"b","initial":true,"deltas":[["Replaced","b@1"]],"handler":[["add","b@1",true]]}]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["Replaced","ns/a@1"],["Replaced","b@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":false,"queue":[["Replaced","b@1"]],"indexer":["ns/a@1"],"pops":[{"key":"ns/a","initial":true,"deltas":[["Replaced","ns/a@1"]],"handler":[["add","ns/a@1",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[{"key":"b","initial":true,"deltas":[["Replaced","b@1"]],"handler":[["add","b@1",true]]}]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[["ReplacedAll",{"rv":"1","objects":["ns/a@1","b@1"]}]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[{"key":null,"initial":true,"deltas":[["ReplacedAll",{"rv":"1","objects":["ns/a@1","b@1"]}]],"handler":[["add","ns/a@1",true],["add","b@1",true]]}]}"#,
            r#"{"step":2,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["b@1","ns/a@1"],"pops":[]}"#,
        ],
    );
}

/// SPEC §4.3, §8 B23: DeltaFIFO delivers `a`'s later update before `b`'s earlier add.
#[test]
fn delta_fifo_orders_by_key_and_real_fifo_by_arrival() {
    let steps = r#"[{"op":"add","obj":"ns/a@1"},{"op":"add","obj":"ns/b@2"},{"op":"update","obj":"ns/a@3"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["ns/a",[["Added","ns/a@1"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/a",[["Added","ns/a@1"]]],["ns/b",[["Added","ns/b@2"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/a",[["Added","ns/a@1"],["Updated","ns/a@3"]]],["ns/b",[["Added","ns/b@2"]]]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/a@3","ns/b@2"],"pops":[{"key":"ns/a","initial":false,"deltas":[["Added","ns/a@1"],["Updated","ns/a@3"]],"handler":[["add","ns/a@1",false],["update","ns/a@1","ns/a@3"]]},{"key":"ns/b","initial":false,"deltas":[["Added","ns/b@2"]],"handler":[["add","ns/b@2",false]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/a@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/a@1"],["Added","ns/b@2"]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Added","ns/a@1"],["Added","ns/b@2"],["Updated","ns/a@3"]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/a@3","ns/b@2"],"pops":[{"key":"ns/a","initial":false,"deltas":[["Added","ns/a@1"]],"handler":[["add","ns/a@1",false]]},{"key":"ns/b","initial":false,"deltas":[["Added","ns/b@2"]],"handler":[["add","ns/b@2",false]]},{"key":"ns/a","initial":false,"deltas":[["Updated","ns/a@3"]],"handler":[["update","ns/a@1","ns/a@3"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":true,"queue":[["Added","ns/a@1"]],"indexer":[],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Added","ns/a@1"],["Added","ns/b@2"]],"indexer":[],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Added","ns/a@1"],["Added","ns/b@2"],["Updated","ns/a@3"]],"indexer":[],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":["ns/a@3","ns/b@2"],"pops":[{"key":"ns/a","initial":false,"deltas":[["Added","ns/a@1"]],"handler":[["add","ns/a@1",false]]},{"key":"ns/b","initial":false,"deltas":[["Added","ns/b@2"]],"handler":[["add","ns/b@2",false]]},{"key":"ns/a","initial":false,"deltas":[["Updated","ns/a@3"]],"handler":[["update","ns/a@1","ns/a@3"]]}]}"#,
        ],
    );
}

/// SPEC §4.2 dedupDeltas: of two Deleted the older is kept unless it is a tombstone; RealFIFO keeps both.
#[test]
fn a_deleted_after_a_tombstone_replaces_it_in_delta_fifo() {
    let steps = r#"[{"op":"known_add","obj":"ns/a@1"},{"op":"delete_tombstone","key":"ns/a","obj":null},{"op":"delete","obj":"ns/a@2"},{"op":"drain"}]"#;
    check(
        "delta",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["ns/a",[["Deleted",{"tombstone":"ns/a","obj":null}]]]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["ns/a",[["Deleted","ns/a@2"]]]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/a","initial":false,"deltas":[["Deleted","ns/a@2"]],"handler":[["delete","ns/a@2"]]}]}"#,
        ],
    );
    check(
        "real",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted",{"tombstone":"ns/a","obj":null}]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted",{"tombstone":"ns/a","obj":null}],["Deleted","ns/a@2"]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/a","initial":false,"deltas":[["Deleted",{"tombstone":"ns/a","obj":null}]],"handler":[["delete",{"tombstone":"ns/a","obj":null}]]},{"key":"ns/a","initial":false,"deltas":[["Deleted","ns/a@2"]],"handler":[["delete","ns/a@2"]]}]}"#,
        ],
    );
    check(
        "real-atomic",
        steps,
        &[
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":1,"has_synced":true,"queue":[["Deleted",{"tombstone":"ns/a","obj":null}]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":2,"has_synced":true,"queue":[["Deleted",{"tombstone":"ns/a","obj":null}],["Deleted","ns/a@2"]],"indexer":["ns/a@1"],"pops":[]}"#,
            r#"{"step":3,"has_synced":true,"queue":[],"indexer":[],"pops":[{"key":"ns/a","initial":false,"deltas":[["Deleted",{"tombstone":"ns/a","obj":null}]],"handler":[["delete",{"tombstone":"ns/a","obj":null}]]},{"key":"ns/a","initial":false,"deltas":[["Deleted","ns/a@2"]],"handler":[["delete","ns/a@2"]]}]}"#,
        ],
    );
}

/// SPEC §9.2 N6: DeltaFIFO counts the last initial item as synced when it is popped, before the informer
/// applied it; RealFIFO only after `done`. The script cannot show the gap, so this drives the API.
#[test]
fn delta_fifo_reports_synced_before_the_last_initial_item_is_processed() {
    for (kind, synced_before_processing) in [
        (FifoKind::Delta, true),
        (FifoKind::Real, false),
        (FifoKind::RealAtomic, false),
    ] {
        let mut indexer = Indexer::default();
        let mut fifo = Fifo::new(kind, Bugs::NONE);
        fifo.replace(vec![Object::bare("ns/a", 1)], 1, &NoKnownObjects);
        let popped = fifo.pop().expect("the initial item");
        assert!(popped.is_in_initial_list, "{kind}");
        assert_eq!(
            fifo.has_synced(),
            synced_before_processing,
            "{kind}: synced while processing"
        );
        assert!(indexer.is_empty(), "{kind}: the item is not applied yet");
        process_deltas(&mut indexer, &popped.deltas, popped.is_in_initial_list);
        fifo.done();
        assert!(fifo.has_synced(), "{kind}");
    }
}
