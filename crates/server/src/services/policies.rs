//! External collaboration settings (contract §5): `authorizationPolicy` and the invitation domain
//! allow/deny list (`B2BManagementPolicy`), and the permission matrix's checks that need them.

use chrono::Utc;
use guestlist_domain::audit::{graph_text, AuditRecord, Initiator, ModifiedProperty, TargetResource};
use guestlist_domain::authorization::{authorize, Context, Principal, Refusal};
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::permissions::Action;
use guestlist_domain::policy::{AuthorizationPolicy, InvitationDomainPolicy, AUTHORIZATION_POLICY_ID};
use guestlist_domain::Tenant;
use serde_json::{Map, Value};

use super::{Caller, CallerPrincipal, ServiceError, ServiceResult, Services};

/// Policy types as stored (and as Graph's audit log names them).
pub const AUTHORIZATION_POLICY_TYPE: &str = "authorizationPolicy";
pub const B2B_MANAGEMENT_POLICY_TYPE: &str = "B2BManagementPolicy";

/// Runs the permission matrix for `caller`: app permissions, or delegated scope AND directory role,
/// within the tenant's settings and the target's roles in `context`.
pub(crate) fn check(caller: &Caller, action: Action, context: &Context<'_>) -> ServiceResult<()> {
    let decision = match &caller.principal {
        CallerPrincipal::App { roles, .. } => authorize(Principal::App { permissions: roles }, action, context),
        CallerPrincipal::User { scopes, roles, is_guest, .. } => {
            let scope_granted = guestlist_domain::permissions::delegated_scope_permits(action, scopes);
            authorize(Principal::User { scope_granted, roles, is_guest: *is_guest }, action, context)
        }
    };
    decision.map_err(|refusal| match refusal {
        Refusal::AppCannotInvite => ServiceError::InviteNotPermitted(caller.tenant.id.to_string()),
        Refusal::ResetForbidden => ServiceError::ResetNotPermitted,
        Refusal::DirectoryAccessDenied => ServiceError::DirectoryAccessDenied,
    })
}

/// An `Update policy` entry (contract §7): Core Directory, category Policy, `PolicyDetails`.
fn update_policy_audit(
    tenant: TenantId,
    initiator: Initiator,
    policy_id: &str,
    display_name: &str,
    old: Option<&str>,
    new: &str,
) -> AuditRecord {
    let mut record = AuditRecord::invited_users(
        tenant,
        "Update policy",
        "Update",
        initiator,
        ObjectId::new_random(),
        TargetResource {
            id: policy_id.to_string(),
            display_name: Some(display_name.to_string()),
            resource_type: "Policy".into(),
            user_principal_name: None,
            modified_properties: vec![ModifiedProperty {
                display_name: "PolicyDetails".into(),
                old_value: Some(graph_text(old)),
                new_value: Some(graph_text(Some(new))),
            }],
        },
        Utc::now(),
    );
    record.category = "Policy".into();
    record.logged_by_service = "Core Directory".into();
    record
}

impl Services {
    /// The tenant's `authorizationPolicy`, Graph's defaults until first changed.
    pub(crate) async fn load_authorization_policy(&self, tenant: TenantId) -> ServiceResult<AuthorizationPolicy> {
        match self.store.tenant_policy(tenant, AUTHORIZATION_POLICY_TYPE).await? {
            None => Ok(AuthorizationPolicy::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| ServiceError::Internal(format!("stored authorizationPolicy: {e}"))),
        }
    }

    pub(crate) async fn load_invitation_domain_policy(&self, tenant: TenantId) -> ServiceResult<InvitationDomainPolicy> {
        match self.store.tenant_policy(tenant, B2B_MANAGEMENT_POLICY_TYPE).await? {
            None => Ok(InvitationDomainPolicy::AnyDomain),
            Some(text) => serde_json::from_str::<Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|value| InvitationDomainPolicy::from_definition(&value).map_err(|e| e.to_string()))
                .map_err(|e| ServiceError::Internal(format!("stored B2BManagementPolicy: {e}"))),
        }
    }

    pub async fn authorization_policy(&self, caller: &Caller) -> ServiceResult<AuthorizationPolicy> {
        check(caller, Action::ReadPolicies, &Context::default())?;
        self.load_authorization_policy(caller.tenant.id).await
    }

    /// `PATCH /policies/authorizationPolicy`: a bad body changes nothing; an unchanged policy writes nothing.
    pub async fn update_authorization_policy(&self, caller: &Caller, body: &Map<String, Value>) -> ServiceResult<AuthorizationPolicy> {
        check(caller, Action::WritePolicies, &Context::default())?;
        let current = self.load_authorization_policy(caller.tenant.id).await?;
        let next = current.patched(body).map_err(ServiceError::from_directory_rule)?;
        if next == current {
            return Ok(current);
        }
        let (old, new) = (current.to_graph().to_string(), next.to_graph().to_string());
        let audit =
            update_policy_audit(caller.tenant.id, caller.initiator(), AUTHORIZATION_POLICY_ID, "Authorization Policy", Some(&old), &new);
        let stored = serde_json::to_string(&next).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.put_tenant_policy(caller.tenant.id, AUTHORIZATION_POLICY_TYPE, &stored, Utc::now(), &[audit]).await?;
        Ok(next)
    }

    pub async fn invitation_domain_policy(&self, caller: &Caller) -> ServiceResult<InvitationDomainPolicy> {
        check(caller, Action::ReadPolicies, &Context::default())?;
        self.load_invitation_domain_policy(caller.tenant.id).await
    }

    pub async fn set_invitation_domain_policy(&self, caller: &Caller, policy: &InvitationDomainPolicy) -> ServiceResult<()> {
        check(caller, Action::WritePolicies, &Context::default())?;
        self.write_invitation_domain_policy(&caller.tenant, policy, caller.initiator()).await
    }

    /// Writes the allow/deny list with its `Update policy` entry (also for the CLI, as `initiator`).
    pub async fn write_invitation_domain_policy(
        &self,
        tenant: &Tenant,
        policy: &InvitationDomainPolicy,
        initiator: Initiator,
    ) -> ServiceResult<()> {
        let old = self.store.tenant_policy(tenant.id, B2B_MANAGEMENT_POLICY_TYPE).await?;
        let new = policy.definition_text();
        let audit = update_policy_audit(tenant.id, initiator, B2B_MANAGEMENT_POLICY_TYPE, B2B_MANAGEMENT_POLICY_TYPE, old.as_deref(), &new);
        self.store.put_tenant_policy(tenant.id, B2B_MANAGEMENT_POLICY_TYPE, &new, Utc::now(), &[audit]).await?;
        Ok(())
    }
}
