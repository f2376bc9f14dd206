//! Reading and changing users: `GET /users`, `GET/PATCH /users/{id}`, `POST /users`.

use chrono::Utc;
use guestlist_domain::audit::{activity, graph_value, AuditRecord, ModifiedProperty, TargetResource};
use guestlist_domain::authorization::Reach;
use guestlist_domain::filter::{UserFilter, UserQuery};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::Action;
use guestlist_domain::user::{check_length, check_other_mails, limits, ObjectIdentity, UserType};
use guestlist_domain::{DomainError, EmailAddress, Upn, User};
use guestlist_store::{Conflict, StoreError, UserKey, UserPage, UserWrite};

use super::{Caller, ServiceError, ServiceResult, Services};

/// The writable properties of `PATCH /users/{id}` that guestlist stores. `None` leaves a
/// property alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub given_name: Option<Option<String>>,
    pub surname: Option<Option<String>>,
    pub mail: Option<Option<String>>,
    pub other_mails: Option<Vec<String>>,
    pub user_principal_name: Option<String>,
    pub user_type: Option<UserType>,
    pub account_enabled: Option<bool>,
    pub company_name: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub mobile_phone: Option<Option<String>>,
    pub office_location: Option<Option<String>>,
    pub preferred_language: Option<Option<String>>,
    pub usage_location: Option<Option<String>>,
    pub business_phones: Option<Vec<String>>,
}

/// A member user to create (`POST /users`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMember {
    pub display_name: String,
    pub user_principal_name: String,
    pub mail_nickname: String,
    pub account_enabled: bool,
    pub changes: UserChanges,
}

const MAX_ATTEMPTS: usize = 8;

impl Services {
    pub async fn user(&self, caller: &Caller, key: &UserKey) -> ServiceResult<User> {
        require_reach(caller, Action::ReadUsers, caller.reach_of(key))?;
        self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))
    }

    pub async fn users(&self, caller: &Caller, query: &UserQuery) -> ServiceResult<UserPage> {
        require(caller, Action::ReadUsers)?;
        Ok(self.store.list_users(caller.tenant.id, query).await?)
    }

    pub async fn count_users(&self, caller: &Caller, filter: Option<&UserFilter>) -> ServiceResult<u64> {
        require(caller, Action::ReadUsers)?;
        Ok(self.store.count_users(caller.tenant.id, filter).await?)
    }

    pub async fn update_user(&self, caller: &Caller, key: &UserKey, changes: UserChanges) -> ServiceResult<User> {
        require(caller, Action::WriteUsers)?;
        for _ in 0..MAX_ATTEMPTS {
            let current = self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))?;
            self.gate_target(caller, Action::WriteUsers, &current).await?;
            let updated =
                apply_changes(current.clone(), &changes, &caller.tenant.initial_domain).map_err(ServiceError::from_directory_rule)?;
            let audit = core_directory_audit(caller, activity::UPDATE_USER, &updated, diff(&current, &updated));
            match self.store.write_user(&UserWrite::Update(updated), &[audit]).await {
                Err(StoreError::Conflict(Conflict::StaleVersion)) => continue,
                other => return map_write(other),
            }
        }
        Err(ServiceError::Internal("user update kept conflicting with concurrent writes".into()))
    }

    /// Hard delete: the user, its sponsor links and memberships go, its pending invitations are
    /// revoked; deleting the guest is how Graph revokes an invitation (DECISIONS 14, contract §7).
    pub async fn delete_user(&self, caller: &Caller, key: &UserKey) -> ServiceResult<()> {
        require(caller, Action::DeleteUser)?;
        let user = self.store.user(caller.tenant.id, key).await?.ok_or_else(|| ServiceError::NotFound(describe(key)))?;
        self.gate_target(caller, Action::DeleteUser, &user).await?;
        let audit = if user.is_invited_external() {
            let mut record = core_directory_audit(caller, activity::DELETE_EXTERNAL_USER, &user, vec![]);
            record.logged_by_service = "Invited Users".into();
            record
        } else {
            core_directory_audit(caller, activity::DELETE_USER, &user, vec![])
        };
        let audit = AuditRecord { operation_type: "Delete".into(), ..audit };
        match self.store.delete_user(caller.tenant.id, user.id, &[audit]).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound(describe(key))),
            other => Ok(other?),
        }
    }

    /// Creates a member with `passwordProfile.password` (hashed with argon2);
    /// `forceChangePasswordNextSignIn` makes the next interactive sign-in ask for a new password.
    pub async fn create_member(
        &self,
        caller: &Caller,
        member: NewMember,
        password: String,
        force_change_password: bool,
    ) -> ServiceResult<User> {
        require(caller, Action::CreateUser)?;
        let upn = Upn::parse(&member.user_principal_name).map_err(ServiceError::from_directory_rule)?;
        if !upn.domain().eq_ignore_ascii_case(&caller.tenant.initial_domain) {
            return Err(ServiceError::InvalidRequest("The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.".into()));
        }
        if member.mail_nickname.trim().is_empty() || member.mail_nickname.len() > 64 {
            return Err(ServiceError::InvalidRequest("Invalid value specified for property 'mailNickname' of resource 'User'.".into()));
        }
        let mut user = User::new(caller.tenant.id, upn, member.display_name, UserType::Member, Utc::now());
        user.account_enabled = member.account_enabled;
        let user = apply_changes(user, &member.changes, &caller.tenant.initial_domain).map_err(ServiceError::from_directory_rule)?;
        if !guestlist_domain::signin::password_meets_complexity(&password) {
            return Err(ServiceError::InvalidRequest(guestlist_domain::signin::PASSWORD_COMPLEXITY_MESSAGE.into()));
        }
        let password_hash = self.hash_password(password).await?;
        let audit = core_directory_audit(caller, activity::ADD_USER, &user, vec![]);
        let user = map_write(self.store.write_user(&UserWrite::Create(user), &[audit]).await)?;
        self.store.set_user_password(user.tenant_id, user.id, &password_hash, force_change_password, Utc::now()).await?;
        Ok(user)
    }
}

pub(super) fn require(caller: &Caller, action: Action) -> ServiceResult<()> {
    require_reach(caller, action, Reach::Collection)
}

/// A read of what `reach` names (one object, or the caller's own); guests' access depends on it.
pub(super) fn require_reach(caller: &Caller, action: Action, reach: Reach) -> ServiceResult<()> {
    if caller.may_reach(action, reach) {
        Ok(())
    } else {
        Err(ServiceError::DirectoryAccessDenied)
    }
}

pub(super) fn describe(key: &UserKey) -> String {
    match key {
        UserKey::Id(id) => id.to_string(),
        UserKey::UserPrincipalName(upn) => upn.clone(),
    }
}

fn map_write(result: Result<User, StoreError>) -> ServiceResult<User> {
    match result {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict(Conflict::UserPrincipalName)) => Err(ServiceError::UniqueValueTaken("userPrincipalName")),
        Err(StoreError::Conflict(Conflict::ProxyAddress)) => Err(ServiceError::UniqueValueTaken("proxyAddresses")),
        Err(StoreError::NotFound) => Err(ServiceError::NotFound("user".into())),
        Err(other) => Err(other.into()),
    }
}

fn optional_text(property: &str, value: &Option<String>, max: usize) -> Result<(), DomainError> {
    value.as_deref().map_or(Ok(()), |v| check_length(property, v, max))
}

/// Applies a PATCH to a user, enforcing the user resource's limits (contract §2).
pub fn apply_changes(mut user: User, changes: &UserChanges, tenant_domain: &str) -> Result<User, DomainError> {
    if let Some(name) = &changes.display_name {
        if name.trim().is_empty() {
            return Err(DomainError::invalid("Invalid value specified for property 'displayName' of resource 'User'."));
        }
        check_length("displayName", name, limits::DISPLAY_NAME)?;
        user.display_name = name.clone();
    }
    // (property, requested change, maximum length, field to change)
    type TextChange<'a> = (&'static str, &'a Option<Option<String>>, usize, &'a mut Option<String>);
    let texts: [TextChange; 9] = [
        ("givenName", &changes.given_name, limits::SHORT_TEXT, &mut user.given_name),
        ("surname", &changes.surname, limits::SHORT_TEXT, &mut user.surname),
        ("companyName", &changes.company_name, limits::COMPANY_NAME, &mut user.company_name),
        ("jobTitle", &changes.job_title, limits::SHORT_TEXT, &mut user.job_title),
        ("department", &changes.department, limits::SHORT_TEXT, &mut user.department),
        ("mobilePhone", &changes.mobile_phone, 64, &mut user.mobile_phone),
        ("officeLocation", &changes.office_location, limits::SHORT_TEXT, &mut user.office_location),
        ("preferredLanguage", &changes.preferred_language, 16, &mut user.preferred_language),
        ("usageLocation", &changes.usage_location, 2, &mut user.usage_location),
    ];
    for (property, change, max, target) in texts {
        if let Some(value) = change {
            optional_text(property, value, max)?;
            *target = value.clone();
        }
    }
    if let Some(mail) = &changes.mail {
        if let Some(address) = mail {
            EmailAddress::parse(address)
                .map_err(|e| DomainError::invalid(format!("Invalid value specified for property 'mail' of resource 'User': {e}")))?;
        }
        user.mail = mail.clone();
    }
    if let Some(other_mails) = &changes.other_mails {
        check_other_mails(other_mails)?;
        user.other_mails = other_mails.clone();
    }
    if let Some(phones) = &changes.business_phones {
        // Graph allows one business phone number to be set.
        if phones.len() > 1 {
            return Err(DomainError::invalid(
                "Invalid value specified for property 'businessPhones' of resource 'User': only one number can be set.",
            ));
        }
        for phone in phones {
            check_length("businessPhones", phone, 64)?;
        }
        user.business_phones = phones.clone();
    }
    if let Some(upn_text) = &changes.user_principal_name {
        let upn = Upn::parse(upn_text)?;
        if !upn.domain().eq_ignore_ascii_case(tenant_domain) {
            return Err(DomainError::invalid("The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."));
        }
        for identity in user.identities.iter_mut().filter(|i| i.sign_in_type == "userPrincipalName") {
            *identity = ObjectIdentity::user_principal_name(&upn);
        }
        user.user_principal_name = upn;
    }
    if let Some(user_type) = changes.user_type {
        user.user_type = user_type;
    }
    if let Some(enabled) = changes.account_enabled {
        user.account_enabled = enabled;
    }
    Ok(user)
}

fn diff(before: &User, after: &User) -> Vec<ModifiedProperty> {
    let pairs = [
        ("DisplayName", Some(before.display_name.clone()), Some(after.display_name.clone())),
        ("UserPrincipalName", Some(before.user_principal_name.to_string()), Some(after.user_principal_name.to_string())),
        ("Mail", before.mail.clone(), after.mail.clone()),
        ("OtherMail", Some(before.other_mails.join(";")), Some(after.other_mails.join(";"))),
        ("AccountEnabled", Some(before.account_enabled.to_string()), Some(after.account_enabled.to_string())),
        ("UserType", Some(before.user_type.as_str().into()), Some(after.user_type.as_str().into())),
    ];
    let mut modified: Vec<ModifiedProperty> = pairs
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(name, old, new)| ModifiedProperty::text(name, old.as_deref(), new.as_deref()))
        .collect();
    // Graph's encoding: a JSON array of the values, `[true]` for a flag, every address for a list (contract §7).
    for property in modified.iter_mut() {
        match property.display_name.as_str() {
            "AccountEnabled" => {
                property.old_value = Some(graph_value(&[before.account_enabled.into()]));
                property.new_value = Some(graph_value(&[after.account_enabled.into()]));
            }
            "OtherMail" => {
                let list = |mails: &[String]| graph_value(&mails.iter().map(|m| m.as_str().into()).collect::<Vec<serde_json::Value>>());
                property.old_value = Some(list(&before.other_mails));
                property.new_value = Some(list(&after.other_mails));
            }
            _ => {}
        }
    }
    modified
}

pub(super) fn core_directory_audit(caller: &Caller, activity_name: &str, user: &User, modified: Vec<ModifiedProperty>) -> AuditRecord {
    let mut record = AuditRecord::invited_users(
        caller.tenant.id,
        activity_name,
        if activity_name == activity::ADD_USER { "Add" } else { "Update" },
        caller.initiator(),
        ObjectId::new_random(),
        TargetResource {
            id: user.id.to_string(),
            display_name: Some(user.display_name.clone()),
            resource_type: "User".into(),
            user_principal_name: Some(user.user_principal_name.to_string()),
            modified_properties: modified,
        },
        Utc::now(),
    );
    record.logged_by_service = "Core Directory".into();
    record
}
