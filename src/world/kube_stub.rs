//! Without the `kube` feature a world has no kube-rs clients (a scenario asking for them is
//! refused when it loads): this uninhabited slot keeps the world's routes the same in both
//! builds.

use crate::api::ServerMessage;
use crate::check::Violation;
use crate::sim::SimTime;

use super::clients::Wire;
use super::core::Core;
use super::etcd_side::EtcdSide;

/// No kube-rs client can exist in this build (the field is uninhabited).
pub(crate) struct KubeSlot(std::convert::Infallible);

impl KubeSlot {
    pub(crate) fn start(_: &mut Core, _: usize, _: u32, _: usize) -> KubeSlot {
        unreachable!("scenarios with kube-rs clients are refused without the kube feature")
    }

    pub(crate) fn incarnation(&self) -> u32 {
        match self.0 {}
    }

    pub(crate) fn wire(&mut self) -> &mut Wire {
        match self.0 {}
    }

    pub(crate) fn catch_up(&mut self, _: &mut Core, _: usize, _: SimTime) {
        match self.0 {}
    }

    pub(crate) fn wake(
        &mut self,
        _: &mut Core,
        _: &mut EtcdSide,
        _: usize,
    ) -> Result<(), Violation> {
        match self.0 {}
    }

    pub(crate) fn answer(
        &mut self,
        _: &mut Core,
        _: usize,
        _: ServerMessage,
    ) -> Result<(), Violation> {
        match self.0 {}
    }

    pub(crate) fn connection_lost(&mut self) {
        match self.0 {}
    }

    pub(crate) fn check_settled(&self, _: &Core, _: usize) -> Result<(), Violation> {
        match self.0 {}
    }
}
