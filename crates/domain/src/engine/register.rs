//! Register: write the registry key other services read (SPEC §4).

use super::{Engine, Mode, VendorEntry};
use crate::Dispatch;

impl Engine {
    /// Writes the registry key other services read; a failure alerts and is retried next cycle.
    pub(super) async fn register(&self, entry: &VendorEntry, dispatch: &Dispatch) {
        let value = dispatch.registry_value();
        match self
            .ports
            .registry
            .register(dispatch.dispatch_number.as_str(), &value)
            .await
        {
            Ok(true) => tracing::info!("dispatch registered"),
            Ok(false) => {}
            Err(error) => {
                let event = format!("registry write failed: {error}");
                tracing::warn!(event = %event, "registry write failed; retried next cycle");
                self.alert_failure(entry, dispatch, Mode::Execute, &event)
                    .await;
            }
        }
    }
}
