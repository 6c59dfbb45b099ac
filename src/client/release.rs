//! Which client-go release an informer models: the feature-gate defaults of that release
//! (client-go `features/known_features.go`) decide the queue a shared informer builds
//! (`controller.go newQueueFIFO`), whether its reflector streams the initial list, and
//! whether its process loop pops batches.

use std::fmt;

use crate::client::fifo::FifoKind;

/// A client-go release, named as scenarios name it (`"1.36"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientGoRelease {
    /// ≤ 1.32: DeltaFIFO (`InOrderInformers` did not exist), LIST then WATCH.
    #[serde(rename = "1.30")]
    V1_30,
    /// 1.33 and 1.34: `InOrderInformers` beta and on, so RealFIFO with the indexer as known
    /// objects; `WatchListClient` still off.
    #[serde(rename = "1.33")]
    V1_33,
    /// 1.35: `WatchListClient` and `InOrderInformersBatchProcess` beta and on.
    #[serde(rename = "1.35")]
    V1_35,
    /// 1.36 (HEAD): `InOrderInformers` GA and locked on, `AtomicFIFO` and
    /// `UnlockWhileProcessingFIFO` beta and on.
    #[default]
    #[serde(rename = "1.36")]
    V1_36,
}

/// What a release's feature defaults give a shared informer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientGoFeatures {
    /// The queue `newQueueFIFO` builds.
    pub fifo: FifoKind,
    /// `WatchListClient`: the reflector streams its initial list (`sendInitialEvents`).
    pub watch_list_client: bool,
    /// `InOrderInformersBatchProcess`: the process loop uses `PopBatch` (RealFIFO only).
    pub batch_process: bool,
}

impl ClientGoRelease {
    /// Every release, oldest first.
    pub const ALL: [ClientGoRelease; 4] = [
        ClientGoRelease::V1_30,
        ClientGoRelease::V1_33,
        ClientGoRelease::V1_35,
        ClientGoRelease::V1_36,
    ];

    /// The release as scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientGoRelease::V1_30 => "1.30",
            ClientGoRelease::V1_33 => "1.33",
            ClientGoRelease::V1_35 => "1.35",
            ClientGoRelease::V1_36 => "1.36",
        }
    }

    /// The release's feature defaults (client-go `defaultVersionedKubernetesFeatureGates`).
    pub fn features(self) -> ClientGoFeatures {
        let fifo = match self {
            ClientGoRelease::V1_30 => FifoKind::Delta,
            ClientGoRelease::V1_33 | ClientGoRelease::V1_35 => FifoKind::Real,
            ClientGoRelease::V1_36 => FifoKind::RealAtomic,
        };
        let since_1_35 = matches!(self, ClientGoRelease::V1_35 | ClientGoRelease::V1_36);
        ClientGoFeatures {
            fifo,
            watch_list_client: since_1_35,
            batch_process: since_1_35,
        }
    }
}

impl fmt::Display for ClientGoRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_the_default_and_builds_an_atomic_real_fifo_with_watch_list_and_batches() {
        let head = ClientGoRelease::default().features();
        assert_eq!(head.fifo, FifoKind::RealAtomic);
        assert!(head.watch_list_client && head.batch_process);
    }

    #[test]
    fn older_releases_turn_the_gates_off_in_the_order_they_graduated() {
        let features = ClientGoRelease::ALL.map(ClientGoRelease::features);
        let fifos = features.map(|f| f.fifo);
        assert_eq!(
            fifos,
            [
                FifoKind::Delta,
                FifoKind::Real,
                FifoKind::Real,
                FifoKind::RealAtomic
            ]
        );
        assert_eq!(
            features.map(|f| f.watch_list_client),
            [false, false, true, true]
        );
        assert_eq!(
            features.map(|f| f.batch_process),
            [false, false, true, true]
        );
    }

    #[test]
    fn scenarios_spell_a_release_as_its_version() {
        for release in ClientGoRelease::ALL {
            let json = serde_json::to_string(&release).unwrap();
            assert_eq!(json, format!("\"{release}\""));
            assert_eq!(
                serde_json::from_str::<ClientGoRelease>(&json).unwrap(),
                release
            );
        }
        assert!(serde_json::from_str::<ClientGoRelease>("\"1.29\"").is_err());
    }
}
