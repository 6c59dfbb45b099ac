//! The fan-out from one informer to its handlers (client-go `tools/cache/shared_informer.go`
//! `sharedProcessor`, `processorListener`; SPEC §5.3).
//!
//! Each registered handler has a [`ProcessorListener`]: an unbounded queue of pending
//! notifications, its resync period and next resync time, the "syncing now" flag, the count of
//! queued-but-undelivered initial adds behind its per-registration `HasSynced`
//! (`synctrack.SingleFileTracker`), and a **mirror**: the state the handler would rebuild from its
//! `OnAdd`/`OnUpdate`/`OnDelete` calls (the SPEC §8 B3 oracle).
//!
//! Rules:
//! - `distribute`: a non-sync notification goes to every listener, a sync notification only to
//!   listeners whose syncing flag is set. A new listener starts syncing (client-go `addListener`).
//! - `should_resync(now)` recomputes every flag (`now >= next_resync`, never with period 0),
//!   moves the flagged listeners' next resync to `now + period`, and says whether any is flagged.
//!   The flags stay until the next call.
//! - A handler runs one notification per [`ProcessorListener::deliver_next`], in FIFO order. A
//!   panicking handler (SPEC §8 B18, `ReallyCrash=false`) skips that notification; the listener
//!   then sleeps [`SLEEP_AFTER_CRASH`] (the world's job) and an initial add that panicked is
//!   never counted as finished.
//!
//! Listeners are kept in registration order, so every fan-out is deterministic (client-go ranges
//! over a Go map).
//!
//! ```
//! use informer_sim::client::processor::{HandlerOutcome, SharedProcessor};
//! use informer_sim::client::Notification;
//! use informer_sim::object::Object;
//! use informer_sim::sim::{SimDuration, SimTime};
//!
//! let mut processor = SharedProcessor::default();
//! let never = processor.add_listener(SimTime::ZERO, SimDuration::ZERO, SimDuration::ZERO);
//! let every_second = processor.add_listener(SimTime::ZERO, SimDuration::from_secs(1), SimDuration::from_secs(1));
//! assert!(processor.should_resync(SimTime(1000)));
//! let same = Object::bare("ns/a", 7);
//! let sync = Notification::Update { old: same.clone(), new: same };
//! assert_eq!(processor.distribute(&sync, true), vec![every_second]);
//! assert_eq!(processor.listener(never).unwrap().pending_notifications(), 0);
//! let (_, outcome) = processor.deliver_next(every_second).unwrap();
//! assert_eq!(outcome, HandlerOutcome::Handled);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::bug::{Bug, Bugs};
use crate::client::process_deltas::Notification;
use crate::object::{Object, ObjectKey};
use crate::sim::{SimDuration, SimTime};

/// The smallest resync period a handler may ask for (client-go `minimumResyncPeriod`).
pub const MINIMUM_RESYNC_PERIOD: SimDuration = SimDuration::from_secs(1);

/// How long a listener pauses after its handler panicked (client-go `processorListener.run`
/// `wait.Until(..., 1*time.Second)`); the world schedules the next delivery no earlier.
pub const SLEEP_AFTER_CRASH: SimDuration = SimDuration::from_secs(1);

/// A handler registration (client-go `ResourceEventHandlerRegistration`); ids grow with
/// registration order and are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HandlerId(pub u64);

impl fmt::Display for HandlerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler-{}", self.0)
    }
}

/// How one handler call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// The handler ran; the mirror applied the notification.
    Handled,
    /// The handler panicked and the notification was skipped (lost); the mirror did not change.
    Panicked,
}

/// The moment a registration's `HasSynced` first turned true, and what its handler had not
/// yet been notified of then (the B20 check reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerSynced {
    /// When it turned true.
    pub at: SimTime,
    /// The keys of its initial list its handler had not been notified of at that moment.
    pub initial_list_unseen: BTreeSet<ObjectKey>,
}

/// Mirrors client-go `determineResyncPeriod`: 0 stays 0 (no resync); without informer resync
/// (`check` 0) a handler gets none; a period below the check period is raised to it.
pub fn determine_resync_period(desired: SimDuration, check: SimDuration) -> SimDuration {
    if desired == SimDuration::ZERO || check == SimDuration::ZERO {
        return SimDuration::ZERO;
    }
    desired.max(check)
}

/// One handler's queue, resync state, HasSynced tracker and mirror (client-go
/// `processorListener`).
#[derive(Clone, Debug)]
pub struct ProcessorListener {
    /// The period after the minimum and after-start adjustments (client-go
    /// `requestedResyncPeriod`).
    requested_resync_period: SimDuration,
    /// The period in force; 0 when the informer does not resync.
    resync_period: SimDuration,
    next_resync: SimTime,
    /// The sharedProcessor's per-listener "syncing now" flag.
    syncing: bool,
    pending_notifications: VecDeque<Notification>,
    mirror: BTreeMap<ObjectKey, Object>,
    /// `SingleFileTracker.count`: initial adds queued and not yet finished.
    initial_adds_undelivered: usize,
    /// The next delivery panics (fault injection, SPEC §8 B18).
    panic_next: bool,
    /// Keys of the initial list the handler has not been notified of yet (B20 oracle; emptied
    /// once synced).
    initial_keys_unseen: BTreeSet<ObjectKey>,
    synced: Option<HandlerSynced>,
    /// Planted bugs (SPEC §8 B20).
    bugs: Bugs,
}

impl ProcessorListener {
    /// Mirrors client-go `newProcessListener`: the first resync is due one period from `now`.
    fn new(
        now: SimTime,
        requested_resync_period: SimDuration,
        resync_period: SimDuration,
        bugs: Bugs,
    ) -> ProcessorListener {
        ProcessorListener {
            requested_resync_period,
            resync_period,
            next_resync: now + resync_period,
            syncing: true,
            pending_notifications: VecDeque::new(),
            mirror: BTreeMap::new(),
            initial_adds_undelivered: 0,
            panic_next: false,
            initial_keys_unseen: BTreeSet::new(),
            synced: None,
            bugs,
        }
    }

    /// The requested period (after the minimum and after-start adjustments).
    pub fn requested_resync_period(&self) -> SimDuration {
        self.requested_resync_period
    }

    /// The period in force (0: never resyncs).
    pub fn resync_period(&self) -> SimDuration {
        self.resync_period
    }

    /// The earliest time of the next resync.
    pub fn next_resync(&self) -> SimTime {
        self.next_resync
    }

    /// Whether sync notifications reach this listener now.
    pub fn is_syncing(&self) -> bool {
        self.syncing
    }

    /// How many notifications wait for the handler.
    pub fn pending_notifications(&self) -> usize {
        self.pending_notifications.len()
    }

    /// The state rebuilt from the handler's calls (SPEC §8 B3).
    pub fn mirror(&self) -> &BTreeMap<ObjectKey, Object> {
        &self.mirror
    }

    /// Initial adds queued and not yet finished by the handler.
    pub fn initial_adds_undelivered(&self) -> usize {
        self.initial_adds_undelivered
    }

    /// Mirrors client-go `SingleFileTracker.HasSynced`: the informer has synced and every queued
    /// initial add was handled. Latched, as the tracker's cancelled context is (cg@e70bc766e):
    /// once true, a later initial add does not turn it false.
    pub fn has_synced(&self, upstream_has_synced: bool) -> bool {
        if self.synced.is_some() {
            return true;
        }
        // Planted: k/k#113763 (B20), before PR #113985 a handler had only the informer's
        // HasSynced, true while its initial adds were still queued.
        let tracker_done =
            self.initial_adds_undelivered == 0 || self.bugs.is(Bug::HandlerSyncedBeforeInitialAdds);
        upstream_has_synced && tracker_done
    }

    /// When this registration first reported synced, if it has.
    pub fn synced(&self) -> Option<&HandlerSynced> {
        self.synced.as_ref()
    }

    /// Makes the next delivery panic (with `ReallyCrash=false`): that notification is lost.
    pub fn panic_next_delivery(&mut self) {
        self.panic_next = true;
    }

    /// Mirrors client-go `processorListener.add`: an initial add starts the tracker.
    fn add(&mut self, notification: Notification) {
        if matches!(
            notification,
            Notification::Add {
                is_in_initial_list: true,
                ..
            }
        ) {
            self.initial_adds_undelivered += 1;
        }
        self.pending_notifications.push_back(notification);
    }

    /// Mirrors client-go `processorListener.run` for one notification: the handler runs; an
    /// initial add is `Finished` only if the handler returned (a panic skips it).
    fn deliver_next(&mut self) -> Option<(Notification, HandlerOutcome)> {
        let notification = self.pending_notifications.pop_front()?;
        if std::mem::take(&mut self.panic_next) {
            return Some((notification, HandlerOutcome::Panicked));
        }
        let key = match &notification {
            Notification::Add {
                obj,
                is_in_initial_list,
            } => {
                if *is_in_initial_list {
                    assert!(self.initial_adds_undelivered > 0, "tracker count underflow");
                    self.initial_adds_undelivered -= 1;
                }
                self.mirror.insert(obj.key.clone(), obj.clone());
                obj.key.clone()
            }
            Notification::Update { new, .. } => {
                self.mirror.insert(new.key.clone(), new.clone());
                new.key.clone()
            }
            Notification::Delete(obj) => {
                self.mirror.remove(obj.key());
                obj.key().clone()
            }
        };
        self.initial_keys_unseen.remove(&key);
        Some((notification, HandlerOutcome::Handled))
    }

    /// Adds `keys` to the initial list this handler must see before it reports synced.
    pub(super) fn expect_initial_keys<'a>(
        &mut self,
        keys: impl IntoIterator<Item = &'a ObjectKey>,
    ) {
        if self.synced.is_none() {
            self.initial_keys_unseen.extend(keys.into_iter().cloned());
        }
    }

    /// Records the first moment [`ProcessorListener::has_synced`] holds, with the initial
    /// keys its handler had not seen yet.
    fn observe_synced(&mut self, now: SimTime, upstream_has_synced: bool) {
        if self.synced.is_some() || !self.has_synced(upstream_has_synced) {
            return;
        }
        self.synced = Some(HandlerSynced {
            at: now,
            initial_list_unseen: std::mem::take(&mut self.initial_keys_unseen),
        });
    }

    /// Mirrors client-go `processorListener.shouldResync`: due at or after `next_resync`,
    /// never with period 0.
    fn should_resync(&self, now: SimTime) -> bool {
        self.resync_period != SimDuration::ZERO && now >= self.next_resync
    }
}

/// The informer's listeners, in registration order (client-go `sharedProcessor`).
#[derive(Clone, Debug, Default)]
pub struct SharedProcessor {
    listeners: BTreeMap<HandlerId, ProcessorListener>,
    next_id: u64,
    /// Planted bugs of the listeners (SPEC §8 B20).
    bugs: Bugs,
}

impl SharedProcessor {
    /// No listeners; the listeners it adds get `bugs` planted.
    pub fn new(bugs: Bugs) -> SharedProcessor {
        SharedProcessor {
            bugs,
            ..SharedProcessor::default()
        }
    }

    /// Registers a listener with its final periods (client-go `addListener`; the informer
    /// computes the periods). It starts with the syncing flag set.
    pub fn add_listener(
        &mut self,
        now: SimTime,
        requested_resync_period: SimDuration,
        resync_period: SimDuration,
    ) -> HandlerId {
        let id = HandlerId(self.next_id);
        self.next_id += 1;
        let listener =
            ProcessorListener::new(now, requested_resync_period, resync_period, self.bugs);
        assert!(self.listeners.insert(id, listener).is_none());
        id
    }

    /// Drops a listener and whatever it had pending (client-go `removeListener` closes
    /// `addCh`, and `pop` returns without draining the ring). Returns whether it was registered.
    pub fn remove_listener(&mut self, id: HandlerId) -> bool {
        self.listeners.remove(&id).is_some()
    }

    /// Mirrors client-go `sharedProcessor.distribute`: non-sync to every listener, sync only to
    /// the syncing ones. Returns the recipients in registration order.
    pub fn distribute(&mut self, notification: &Notification, is_sync: bool) -> Vec<HandlerId> {
        let mut recipients = Vec::new();
        for (id, listener) in &mut self.listeners {
            if !is_sync || listener.syncing {
                listener.add(notification.clone());
                recipients.push(*id);
            }
        }
        recipients
    }

    /// Queues `notification` for one listener only (a late handler's synthetic initial adds).
    pub(super) fn add_to(&mut self, id: HandlerId, notification: Notification) {
        self.listener_mut(id).add(notification);
    }

    /// Mirrors client-go `sharedProcessor.shouldResync`: recomputes every syncing flag at
    /// `now`, schedules the flagged listeners' next resync, and says whether any is flagged.
    pub fn should_resync(&mut self, now: SimTime) -> bool {
        let mut resync_needed = false;
        for listener in self.listeners.values_mut() {
            listener.syncing = listener.should_resync(now);
            if listener.syncing {
                resync_needed = true;
                listener.next_resync = now + listener.resync_period;
                assert!(listener.next_resync > now);
            }
        }
        resync_needed
    }

    /// Mirrors client-go `resyncCheckPeriodChanged`: recomputes every listener's period from
    /// its requested one.
    pub fn resync_check_period_changed(&mut self, resync_check_period: SimDuration) {
        for listener in self.listeners.values_mut() {
            listener.resync_period =
                determine_resync_period(listener.requested_resync_period, resync_check_period);
        }
    }

    /// Runs the handler of `id` on its oldest pending notification; `None` if nothing is
    /// pending or `id` is not registered.
    pub fn deliver_next(&mut self, id: HandlerId) -> Option<(Notification, HandlerOutcome)> {
        self.listeners.get_mut(&id)?.deliver_next()
    }

    /// The listener of `id`, if registered.
    pub fn listener(&self, id: HandlerId) -> Option<&ProcessorListener> {
        self.listeners.get(&id)
    }

    /// The listener of `id`, which must be registered.
    pub fn listener_mut(&mut self, id: HandlerId) -> &mut ProcessorListener {
        self.listeners
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{id} is not registered"))
    }

    /// Every listener, in registration order.
    pub fn listeners(&self) -> impl Iterator<Item = (HandlerId, &ProcessorListener)> {
        self.listeners.iter().map(|(id, listener)| (*id, listener))
    }

    /// Whether no listener has anything pending.
    pub fn is_drained(&self) -> bool {
        self.listeners
            .values()
            .all(|listener| listener.pending_notifications.is_empty())
    }

    /// Adds `keys` to every listener's expected initial list (B20 oracle).
    pub(super) fn expect_initial_keys(&mut self, keys: &BTreeSet<ObjectKey>) {
        for listener in self.listeners.values_mut() {
            listener.expect_initial_keys(keys);
        }
    }

    /// Records, for every listener, the first moment its registration reports synced.
    pub(super) fn observe_synced(&mut self, now: SimTime, upstream_has_synced: bool) {
        for listener in self.listeners.values_mut() {
            listener.observe_synced(now, upstream_has_synced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::delta::DeltaObject;

    fn update(key: &str, old: u64, new: u64) -> Notification {
        Notification::Update {
            old: Object::bare(key, old),
            new: Object::bare(key, new),
        }
    }

    #[test]
    fn non_sync_notifications_reach_every_listener_and_sync_ones_only_the_syncing() {
        let mut processor = SharedProcessor::default();
        let period = SimDuration::from_secs(10);
        let never = processor.add_listener(SimTime::ZERO, SimDuration::ZERO, SimDuration::ZERO);
        let resyncing = processor.add_listener(SimTime::ZERO, period, period);
        assert_eq!(
            processor.distribute(&update("a", 1, 1), true),
            vec![never, resyncing],
            "a new listener starts syncing"
        );
        assert!(!processor.should_resync(SimTime(9_999)));
        assert_eq!(processor.distribute(&update("a", 1, 1), true), vec![]);
        assert!(processor.should_resync(SimTime(10_000)));
        assert_eq!(
            processor.distribute(&update("a", 1, 1), true),
            vec![resyncing]
        );
        assert_eq!(
            processor.distribute(&update("a", 1, 2), false),
            vec![never, resyncing]
        );
        assert_eq!(
            processor.listener(never).unwrap().pending_notifications(),
            2
        );
        assert_eq!(
            processor
                .listener(resyncing)
                .unwrap()
                .pending_notifications(),
            3
        );
    }

    #[test]
    fn should_resync_moves_next_resync_of_flagged_listeners_and_never_flags_period_zero() {
        let mut processor = SharedProcessor::default();
        let period = SimDuration::from_secs(3);
        let never = processor.add_listener(SimTime::ZERO, SimDuration::ZERO, SimDuration::ZERO);
        let every_3s = processor.add_listener(SimTime::ZERO, period, period);
        assert!(processor.should_resync(SimTime(3_500)));
        assert_eq!(
            processor.listener(every_3s).unwrap().next_resync(),
            SimTime(6_500)
        );
        assert!(!processor.should_resync(SimTime(6_499)));
        assert!(!processor.listener(every_3s).unwrap().is_syncing());
        assert!(processor.should_resync(SimTime(1_000_000)));
        assert!(!processor.listener(never).unwrap().is_syncing());
        assert_eq!(
            processor.listener(never).unwrap().next_resync(),
            SimTime::ZERO
        );
    }

    #[test]
    fn resync_period_is_zero_without_informer_resync_and_raised_to_the_check_period() {
        let second = SimDuration::from_secs(1);
        let minute = SimDuration::from_secs(60);
        assert_eq!(
            determine_resync_period(SimDuration::ZERO, second),
            SimDuration::ZERO
        );
        assert_eq!(
            determine_resync_period(minute, SimDuration::ZERO),
            SimDuration::ZERO
        );
        assert_eq!(determine_resync_period(second, minute), minute);
        assert_eq!(determine_resync_period(minute, second), minute);
    }

    #[test]
    fn a_delivery_updates_the_mirror_and_a_panic_skips_it() {
        let mut processor = SharedProcessor::default();
        let id = processor.add_listener(SimTime::ZERO, SimDuration::ZERO, SimDuration::ZERO);
        let add = Notification::Add {
            obj: Object::bare("a", 1),
            is_in_initial_list: false,
        };
        processor.distribute(&add, false);
        processor.distribute(&update("a", 1, 2), false);
        processor.distribute(
            &Notification::Delete(DeltaObject::Object(Object::bare("a", 3))),
            false,
        );
        assert_eq!(
            processor.deliver_next(id).unwrap().1,
            HandlerOutcome::Handled
        );
        processor.listener_mut(id).panic_next_delivery();
        assert_eq!(
            processor.deliver_next(id).unwrap().1,
            HandlerOutcome::Panicked
        );
        let mirror = processor.listener(id).unwrap().mirror();
        assert_eq!(
            mirror.get(&ObjectKey::new("a")),
            Some(&Object::bare("a", 1))
        );
        assert_eq!(
            processor.deliver_next(id).unwrap().1,
            HandlerOutcome::Handled
        );
        assert!(processor.listener(id).unwrap().mirror().is_empty());
        assert_eq!(processor.deliver_next(id), None);
    }
}
