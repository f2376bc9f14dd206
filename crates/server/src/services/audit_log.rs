//! `GET /auditLogs/directoryAudits[/{id}]`: the audit log, read with `AuditLog.Read.All`.

use guestlist_domain::audit::AuditRecord;
use guestlist_domain::audit_query::AuditQuery;
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::Action;
use guestlist_store::AuditPage;

use super::users::require;
use super::{Caller, ServiceError, ServiceResult, Services};

impl Services {
    pub async fn directory_audits(&self, caller: &Caller, query: &AuditQuery) -> ServiceResult<AuditPage> {
        require(caller, Action::ReadAuditLog)?;
        Ok(self.store.list_audit_records(caller.tenant.id, query).await?)
    }

    pub async fn directory_audit(&self, caller: &Caller, id: &str) -> ServiceResult<AuditRecord> {
        require(caller, Action::ReadAuditLog)?;
        let missing = || ServiceError::NotFound(id.to_string());
        let id = ObjectId::parse(id).map_err(|_| missing())?;
        self.store.audit_record(caller.tenant.id, id).await?.ok_or_else(missing)
    }
}
