//! Test support the drivers and the integration tests share: components wired by hand, each
//! message checked by the oracles, with no random schedule (floor 3, above the checks it uses).

pub mod apiserver_pair;
pub mod fifo_script;
