//! A guest's sponsors: `GET /users/{id}/sponsors`, `POST .../sponsors/$ref`,
//! `DELETE .../sponsors/{id}/$ref` (contract §1.2, §2; graph-docs `user-post-sponsors.md`).

use chrono::{DateTime, Utc};
use guestlist_domain::audit::{activity, AuditRecord, TargetResource};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::invitation::MAX_SPONSORS;
use guestlist_domain::permissions::Action;
use guestlist_domain::User;
use guestlist_store::{SponsorChange, StoreError, UserKey};

use super::users::{core_directory_audit, describe, require, require_reach};
use super::{Caller, ServiceError, ServiceResult, Services};

/// A `Core Directory` entry about a sponsor link: the sponsored user, then the sponsor.
pub(crate) fn sponsor_audit(caller: &Caller, activity_name: &str, user: &User, sponsor: ObjectId, at: DateTime<Utc>) -> AuditRecord {
    let mut record = core_directory_audit(caller, activity_name, user, vec![]);
    record.activity_date_time = at;
    record.operation_type = if activity_name == activity::ADD_USER_SPONSOR { "Assign" } else { "Unassign" }.into();
    record.target_resources.push(TargetResource {
        id: sponsor.to_string(),
        display_name: None,
        resource_type: "User".into(),
        user_principal_name: None,
        modified_properties: vec![],
    });
    record
}

impl Services {
    pub async fn sponsors(&self, caller: &Caller, key: &UserKey) -> ServiceResult<Vec<User>> {
        require_reach(caller, Action::ReadUsers, caller.reach_of(key))?;
        let user = self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))?;
        Ok(self.store.sponsors(caller.tenant.id, user.id).await?)
    }

    pub async fn add_sponsor(&self, caller: &Caller, key: &UserKey, sponsor: ObjectId) -> ServiceResult<()> {
        require(caller, Action::WriteUsers)?;
        let user = self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))?;
        self.gate_target(caller, Action::WriteUsers, &user).await?;
        if user.id == sponsor {
            return Err(ServiceError::InvalidRequest("A user can't be its own sponsor.".into()));
        }
        let audit = sponsor_audit(caller, activity::ADD_USER_SPONSOR, &user, sponsor, Utc::now());
        match self.store.add_sponsor(caller.tenant.id, user.id, sponsor, &[audit]).await? {
            SponsorChange::Added => Ok(()),
            SponsorChange::UserNotFound => Err(ServiceError::NotFound(describe(key))),
            // The referenced object is missing: Graph answers 404 for an @odata.id it can't resolve.
            SponsorChange::SponsorNotFound => Err(ServiceError::NotFound(sponsor.to_string())),
            // Graph's sentence for a reference that is already there.
            SponsorChange::AlreadySponsor => Err(ServiceError::InvalidRequest(
                "One or more added object references already exist for the following modified properties: 'sponsors'.".into(),
            )),
            SponsorChange::LimitReached => Err(ServiceError::InvalidRequest(format!(
                "The user already has the maximum of {MAX_SPONSORS} sponsors. Remove a sponsor before adding another."
            ))),
        }
    }

    pub async fn remove_sponsor(&self, caller: &Caller, key: &UserKey, sponsor: ObjectId) -> ServiceResult<()> {
        require(caller, Action::WriteUsers)?;
        let user = self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))?;
        self.gate_target(caller, Action::WriteUsers, &user).await?;
        let audit = sponsor_audit(caller, activity::REMOVE_USER_SPONSOR, &user, sponsor, Utc::now());
        match self.store.remove_sponsor(caller.tenant.id, user.id, sponsor, &[audit]).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound(sponsor.to_string())),
            other => Ok(other?),
        }
    }
}
