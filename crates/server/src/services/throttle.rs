//! Graph's invitation limit, opt-in per tenant (contract §6.3, DECISIONS 17). Counts live in
//! the database, so every replica enforces one limit per tenant.

use chrono::Utc;

use super::{Caller, ServiceError, ServiceResult, Services};

/// How much of the window's allowance a request used, for `x-ms-throttle-limit-percentage`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleUsage {
    pub count: u64,
    pub limit: u32,
}

impl ThrottleUsage {
    /// Graph sends the header only above 80% of the limit (contract §6.3).
    pub fn limit_percentage(&self) -> Option<f64> {
        let ratio = self.count as f64 / f64::from(self.limit.max(1));
        (ratio >= 0.8).then_some(ratio)
    }
}

const INVITATIONS_SCOPE: &str = "invitations";

impl Services {
    /// Counts one `/invitations` request against the caller's tenant; refuses it when the
    /// window's limit is used up. `None` when the tenant does not throttle.
    pub async fn admit_invitation_request(&self, caller: &Caller) -> ServiceResult<Option<ThrottleUsage>> {
        let Some(throttle) = caller.tenant.invitation_throttle else {
            return Ok(None);
        };
        let now = Utc::now();
        let window_start = throttle.window_start(now);
        // Keep one previous window for diagnosis; older ones are pruned in the same transaction.
        let prune_before = window_start - i64::from(throttle.window_seconds);
        let count = self.store.count_request(caller.tenant.id, INVITATIONS_SCOPE, window_start, prune_before).await?;
        if count > u64::from(throttle.requests) {
            return Err(ServiceError::Throttled {
                tenant_id: caller.tenant.id.to_string(),
                app_id: caller.app_id().to_string(),
                retry_after_seconds: throttle.retry_after_seconds(now),
            });
        }
        Ok(Some(ThrottleUsage { count, limit: throttle.requests }))
    }
}
