//! Groups and memberships: `/groups`, `/groups/{id}/members`, and `memberOf`/`transitiveMemberOf`
//! of users and groups. Every write and its `Core Directory` audit entry commit together.

use chrono::Utc;
use guestlist_domain::audit::{activity, AuditRecord, ModifiedProperty, TargetResource};
use guestlist_domain::authorization::Reach;
use guestlist_domain::filter::{GroupFilter, GroupQuery};
use guestlist_domain::group::{DirectoryObject, Group, GroupChanges, NewGroup};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::Action;
use guestlist_store::{Conflict, GroupPage, GroupWrite, MemberPage, PageRequest, StoreError, UserKey};

use super::{Caller, ServiceError, ServiceResult, Services};

const MAX_ATTEMPTS: usize = 8;

/// Graph's answer to adding a member twice (`POST /groups/{id}/members/$ref`).
pub const MEMBER_ALREADY_PRESENT: &str =
    "One or more added object references already exist for the following modified properties: 'members'.";

/// Which groups `memberOf` lists: the direct ones, or also those reached through nested groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Direct,
    Transitive,
}

/// Passes when the caller may do any one of `actions` on what `reach` names.
fn require_any(caller: &Caller, actions: &[Action], reach: Reach) -> ServiceResult<()> {
    if actions.iter().any(|action| caller.may_reach(*action, reach)) {
        Ok(())
    } else {
        Err(ServiceError::DirectoryAccessDenied)
    }
}

/// Reading a group or its memberships: `GroupMember.Read.All` is the least privileged
/// permission (Graph's get-group and list-members references).
const READ_GROUP: &[Action] = &[Action::ReadGroups, Action::ReadGroupMembers];

fn not_found(id: ObjectId) -> ServiceError {
    ServiceError::NotFound(id.to_string())
}

impl Services {
    pub async fn create_group(&self, caller: &Caller, request: NewGroup) -> ServiceResult<Group> {
        require_any(caller, &[Action::WriteGroups], Reach::Collection)?;
        let group = Group::create(caller.tenant.id, &caller.tenant.initial_domain, request, Utc::now())
            .map_err(ServiceError::from_directory_rule)?;
        let audit = group_audit(caller, activity::ADD_GROUP, "Add", vec![group_target(&group, vec![])]);
        map_group_write(self.store.write_group(&GroupWrite::Create(group), &[audit]).await)
    }

    pub async fn group(&self, caller: &Caller, id: ObjectId) -> ServiceResult<Group> {
        require_any(caller, READ_GROUP, Reach::OtherObject)?;
        self.existing_group(caller, id).await
    }

    pub async fn groups(&self, caller: &Caller, query: &GroupQuery) -> ServiceResult<GroupPage> {
        require_any(caller, READ_GROUP, Reach::Collection)?;
        Ok(self.store.list_groups(caller.tenant.id, query).await?)
    }

    pub async fn count_groups(&self, caller: &Caller, filter: Option<&GroupFilter>) -> ServiceResult<u64> {
        require_any(caller, READ_GROUP, Reach::Collection)?;
        Ok(self.store.count_groups(caller.tenant.id, filter).await?)
    }

    pub async fn update_group(&self, caller: &Caller, id: ObjectId, changes: GroupChanges) -> ServiceResult<Group> {
        require_any(caller, &[Action::WriteGroups], Reach::Collection)?;
        for _ in 0..MAX_ATTEMPTS {
            let current = self.existing_group(caller, id).await?;
            let updated = current.clone().apply(&changes, &caller.tenant.initial_domain).map_err(ServiceError::from_directory_rule)?;
            let audit = group_audit(caller, activity::UPDATE_GROUP, "Update", vec![group_target(&updated, diff(&current, &updated))]);
            match self.store.write_group(&GroupWrite::Update(updated), &[audit]).await {
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                Err(StoreError::NotFound) => return Err(not_found(id)),
                other => return map_group_write(other),
            }
        }
        Err(ServiceError::Internal("group update kept conflicting with concurrent writes".into()))
    }

    pub async fn delete_group(&self, caller: &Caller, id: ObjectId) -> ServiceResult<()> {
        require_any(caller, &[Action::WriteGroups], Reach::Collection)?;
        let group = self.existing_group(caller, id).await?;
        let audit = group_audit(caller, activity::DELETE_GROUP, "Delete", vec![group_target(&group, vec![])]);
        match self.store.delete_group(caller.tenant.id, id, &[audit]).await {
            Err(StoreError::NotFound) => Err(not_found(id)),
            other => Ok(other?),
        }
    }

    pub async fn add_group_member(&self, caller: &Caller, group_id: ObjectId, member_id: ObjectId) -> ServiceResult<()> {
        require_any(caller, &[Action::WriteGroupMembers], Reach::Collection)?;
        let group = self.existing_group(caller, group_id).await?;
        let member = self.directory_object(caller, member_id).await?.ok_or_else(|| not_found(member_id))?;
        if member_id == group_id {
            return Err(ServiceError::InvalidRequest("A group cannot be added as a member of itself.".into()));
        }
        let audit = membership_audit(caller, activity::ADD_MEMBER_TO_GROUP, &member, &group);
        match self.store.add_group_member(caller.tenant.id, group_id, member_id, &[audit]).await {
            Err(StoreError::Conflict(Conflict::Duplicate)) => Err(ServiceError::InvalidRequest(MEMBER_ALREADY_PRESENT.into())),
            Err(StoreError::NotFound) => Err(not_found(member_id)),
            other => Ok(other?),
        }
    }

    pub async fn remove_group_member(&self, caller: &Caller, group_id: ObjectId, member_id: ObjectId) -> ServiceResult<()> {
        require_any(caller, &[Action::WriteGroupMembers], Reach::Collection)?;
        let group = self.existing_group(caller, group_id).await?;
        let member = self.directory_object(caller, member_id).await?.ok_or_else(|| not_found(member_id))?;
        let audit = membership_audit(caller, activity::REMOVE_MEMBER_FROM_GROUP, &member, &group);
        match self.store.remove_group_member(caller.tenant.id, group_id, member_id, &[audit]).await {
            // Graph names the object that is not among the members.
            Err(StoreError::NotFound) => Err(not_found(member_id)),
            other => Ok(other?),
        }
    }

    pub async fn group_members(&self, caller: &Caller, group_id: ObjectId, page: &PageRequest) -> ServiceResult<MemberPage> {
        require_any(caller, &[Action::ReadGroupMembers], Reach::OtherObject)?;
        self.existing_group(caller, group_id).await?;
        Ok(self.store.group_members(caller.tenant.id, group_id, page).await?)
    }

    pub async fn count_group_members(&self, caller: &Caller, group_id: ObjectId) -> ServiceResult<u64> {
        require_any(caller, &[Action::ReadGroupMembers], Reach::OtherObject)?;
        self.existing_group(caller, group_id).await?;
        Ok(self.store.count_group_members(caller.tenant.id, group_id).await?)
    }

    /// How many groups [`Services::group_member_of`] lists in all.
    pub async fn count_group_member_of(&self, caller: &Caller, group_id: ObjectId, membership: Membership) -> ServiceResult<u64> {
        require_any(caller, READ_GROUP, Reach::OtherObject)?;
        self.existing_group(caller, group_id).await?;
        Ok(self.store.count_member_of(caller.tenant.id, group_id, membership == Membership::Transitive).await?)
    }

    /// How many groups [`Services::user_member_of`] lists in all.
    pub async fn count_user_member_of(&self, caller: &Caller, key: &UserKey, membership: Membership) -> ServiceResult<u64> {
        require_any(caller, &[Action::ReadUsers], caller.reach_of(key))?;
        require_any(caller, READ_GROUP, caller.reach_of(key))?;
        let user = self.user(caller, key).await?;
        Ok(self.store.count_member_of(caller.tenant.id, user.id, membership == Membership::Transitive).await?)
    }

    pub async fn group_member_of(
        &self,
        caller: &Caller,
        group_id: ObjectId,
        membership: Membership,
        page: &PageRequest,
    ) -> ServiceResult<GroupPage> {
        require_any(caller, READ_GROUP, Reach::OtherObject)?;
        self.existing_group(caller, group_id).await?;
        Ok(self.store.member_of(caller.tenant.id, group_id, membership == Membership::Transitive, page).await?)
    }

    /// A user's groups: reading them needs the user (`User.Read.All`) and the memberships
    /// (`GroupMember.Read.All` or a group permission).
    pub async fn user_member_of(
        &self,
        caller: &Caller,
        key: &UserKey,
        membership: Membership,
        page: &PageRequest,
    ) -> ServiceResult<GroupPage> {
        require_any(caller, &[Action::ReadUsers], caller.reach_of(key))?;
        require_any(caller, READ_GROUP, caller.reach_of(key))?;
        let user = self.user(caller, key).await?;
        Ok(self.store.member_of(caller.tenant.id, user.id, membership == Membership::Transitive, page).await?)
    }

    async fn existing_group(&self, caller: &Caller, id: ObjectId) -> ServiceResult<Group> {
        self.store.group(caller.tenant.id, id).await?.ok_or_else(|| not_found(id))
    }

    /// The user or group with this id, as `directoryObjects/{id}` names either.
    async fn directory_object(&self, caller: &Caller, id: ObjectId) -> ServiceResult<Option<DirectoryObject>> {
        if let Some(user) = self.store.user(caller.tenant.id, &UserKey::Id(id)).await? {
            return Ok(Some(DirectoryObject::User(Box::new(user))));
        }
        Ok(self.store.group(caller.tenant.id, id).await?.map(DirectoryObject::Group))
    }
}

fn map_group_write(result: Result<Group, StoreError>) -> ServiceResult<Group> {
    match result {
        Ok(group) => Ok(group),
        // The group's mail (from its mailNickname) is taken (Graph answers for proxyAddresses).
        Err(StoreError::Conflict(Conflict::Duplicate)) => Err(ServiceError::UniqueValueTaken("proxyAddresses")),
        Err(other) => Err(other.into()),
    }
}

/// Graph's audit values are JSON arrays inside a string (`"[\"Partners\"]"`, contract §7).
fn audit_value(value: Option<&str>) -> Option<String> {
    Some(serde_json::Value::Array(value.map(|v| serde_json::Value::String(v.to_string())).into_iter().collect()).to_string())
}

fn diff(before: &Group, after: &Group) -> Vec<ModifiedProperty> {
    let pairs = [
        ("DisplayName", Some(before.display_name.clone()), Some(after.display_name.clone())),
        ("Description", before.description.clone(), after.description.clone()),
        ("MailNickname", Some(before.mail_nickname.clone()), Some(after.mail_nickname.clone())),
        ("SecurityEnabled", Some(before.security_enabled.to_string()), Some(after.security_enabled.to_string())),
        ("Visibility", before.visibility.map(|v| v.as_str().to_string()), after.visibility.map(|v| v.as_str().to_string())),
    ];
    pairs
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(name, old, new)| ModifiedProperty {
            display_name: name.into(),
            old_value: audit_value(old.as_deref()),
            new_value: audit_value(new.as_deref()),
        })
        .collect()
}

fn group_target(group: &Group, modified_properties: Vec<ModifiedProperty>) -> TargetResource {
    TargetResource {
        id: group.id.to_string(),
        display_name: Some(group.display_name.clone()),
        resource_type: "Group".into(),
        user_principal_name: None,
        modified_properties,
    }
}

/// `Add member to group` / `Remove member from group`: the member first, then the group with
/// `Group.ObjectID` and `Group.DisplayName` (the portal's audit entries).
fn membership_audit(caller: &Caller, activity_name: &str, member: &DirectoryObject, group: &Group) -> AuditRecord {
    let member_target = match member {
        DirectoryObject::User(user) => TargetResource {
            id: user.id.to_string(),
            display_name: Some(user.display_name.clone()),
            resource_type: "User".into(),
            user_principal_name: Some(user.user_principal_name.to_string()),
            modified_properties: vec![],
        },
        DirectoryObject::Group(nested) => group_target(nested, vec![]),
    };
    let adding = activity_name == activity::ADD_MEMBER_TO_GROUP;
    let property = |name: &str, value: String| {
        let (old, new) = if adding { (None, Some(value.as_str())) } else { (Some(value.as_str()), None) };
        ModifiedProperty { display_name: name.into(), old_value: audit_value(old), new_value: audit_value(new) }
    };
    let group_target = group_target(
        group,
        vec![property("Group.ObjectID", group.id.to_string()), property("Group.DisplayName", group.display_name.clone())],
    );
    let operation = if adding { "Assign" } else { "Unassign" };
    group_audit(caller, activity_name, operation, vec![member_target, group_target])
}

/// A `Core Directory` / `GroupManagement` entry (contract §7).
fn group_audit(caller: &Caller, activity_name: &str, operation_type: &str, targets: Vec<TargetResource>) -> AuditRecord {
    AuditRecord {
        id: ObjectId::new_random(),
        tenant_id: caller.tenant.id,
        activity_date_time: Utc::now(),
        activity_display_name: activity_name.to_string(),
        category: "GroupManagement".into(),
        logged_by_service: "Core Directory".into(),
        operation_type: operation_type.to_string(),
        result: "success".into(),
        correlation_id: ObjectId::new_random(),
        initiated_by: caller.initiator(),
        target_resources: targets,
    }
}
