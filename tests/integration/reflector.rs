//! The reflector against a random, monotonic fake apiserver, through its public API only:
//! every input starts at most one request, a reflector that is not waiting on a request always
//! has a timer (it never stalls), timers lie in the future, and lastSyncRV never goes back.

use informer_sim::api::{
    ClientMessage, ListResponse, RequestError, RequestId, ServerMessage, Status, StatusReason,
    WatchEvent,
};
use informer_sim::bug::Bugs;
use informer_sim::client::reflector::{
    ConnectionLoss, Reflector, ReflectorConfig, ReflectorOutput, ReflectorPhase, StoreOp,
};
use informer_sim::object::Object;
use informer_sim::sim::{RngStream, SimDuration, SimTime};
use proptest::prelude::*;

const REASONS: [StatusReason; 4] = [
    StatusReason::Expired,
    StatusReason::TooManyRequests,
    StatusReason::Timeout,
    StatusReason::InternalError,
];

/// What the fake server does next, decoded from one random byte.
fn server_input(choice: u8, id: RequestId, is_list: bool, revision: &mut u64) -> ServerMessage {
    let error = || match choice % 5 {
        4 => RequestError::ConnectionRefused,
        reason => RequestError::Status(Status::new(REASONS[reason as usize], "fake")),
    };
    *revision += u64::from(choice % 3);
    let resource_version = *revision;
    if is_list {
        let result = if choice < 160 {
            Ok(ListResponse {
                items: vec![Object::bare("ns/a", resource_version)],
                resource_version,
                continue_token: None,
            })
        } else {
            Err(error())
        };
        return ServerMessage::List { id, result };
    }
    let event = match choice {
        0..=59 => WatchEvent::Modified(Object::bare("ns/a", resource_version)),
        60..=119 => WatchEvent::Bookmark {
            resource_version,
            initial_events_end: choice.is_multiple_of(2),
        },
        120..=159 => WatchEvent::Added(Object::bare("ns/b", resource_version)),
        160..=199 => return ServerMessage::WatchClosed { id },
        200..=229 => return ServerMessage::WatchRejected { id, error: error() },
        _ => match error() {
            RequestError::Status(status) => WatchEvent::Error(status),
            RequestError::ConnectionRefused => return ServerMessage::WatchClosed { id },
        },
    };
    ServerMessage::WatchEvent { id, event }
}

fn run(config: ReflectorConfig, seed: u64, choices: &[u8]) {
    let mut reflector = Reflector::new(config, RngStream::new(seed, "reflector"), Bugs::NONE);
    let mut now = SimTime::ZERO;
    let mut revision = 10u64;
    let mut in_flight: Option<(RequestId, bool)> = None;
    let mut last_sync = None;
    reflector.start(now);
    for &choice in choices {
        let mut requests = 0;
        while let Some(output) = reflector.poll_output() {
            match output {
                ReflectorOutput::Send(ClientMessage::List { id, .. }) => {
                    in_flight = Some((id, true));
                    requests += 1;
                }
                ReflectorOutput::Send(ClientMessage::Watch { id, .. }) => {
                    in_flight = Some((id, false));
                    requests += 1;
                }
                ReflectorOutput::Send(ClientMessage::StopWatch { .. }) => in_flight = None,
                ReflectorOutput::Store(StoreOp::Replace {
                    resource_version, ..
                }) => assert!(resource_version >= 10),
                ReflectorOutput::Store(_) => {}
            }
        }
        assert!(requests <= 1, "one input started {requests} requests");
        assert!(
            reflector.last_sync_resource_version() >= last_sync,
            "lastSyncRV went back"
        );
        last_sync = reflector.last_sync_resource_version();
        if let Some(at) = reflector.poll_timeout() {
            assert!(at >= now, "a timer in the past");
        }
        if matches!(
            reflector.phase(),
            ReflectorPhase::Stopped | ReflectorPhase::Finished
        ) {
            return;
        }
        let request = reflector.request_in_flight();
        if request.is_none() {
            assert!(
                reflector.poll_timeout().is_some(),
                "stalled in {:?}",
                reflector.phase()
            );
        }
        now = now + SimDuration(u64::from(choice % 7) * 150);
        let timer = reflector.poll_timeout();
        match request {
            Some(id) if timer.is_none_or(|at| at > now && !choice.is_multiple_of(11)) => {
                if choice.is_multiple_of(13) {
                    let loss = if choice.is_multiple_of(2) {
                        ConnectionLoss::PeerClosed
                    } else {
                        ConnectionLoss::HealthCheckFailed
                    };
                    reflector.handle_connection_lost(now, id, loss);
                } else {
                    let is_list = in_flight.expect("a request was sent").1;
                    let message = server_input(choice, id, is_list, &mut revision);
                    reflector.handle_message(now, message);
                }
            }
            _ => {
                now = now.max(timer.expect("a timer is armed"));
                reflector.handle_timeout(now);
            }
        }
    }
    reflector.stop();
    assert_eq!(reflector.poll_timeout(), None);
}

proptest! {
    #[test]
    fn list_mode_never_stalls_or_loops_without_time(seed: u64, choices in prop::collection::vec(any::<u8>(), 1..300)) {
        let config = ReflectorConfig {
            resync_period: Some(SimDuration::from_secs(30)),
            page_size: None,
            ..ReflectorConfig::default()
        };
        run(config, seed, &choices);
    }

    #[test]
    fn watch_list_mode_never_stalls_or_loops_without_time(seed: u64, choices in prop::collection::vec(any::<u8>(), 1..300)) {
        let config = ReflectorConfig {
            use_watch_list: true,
            max_internal_error_retry_duration: SimDuration::from_secs(30),
            ..ReflectorConfig::default()
        };
        run(config, seed, &choices);
    }
}
