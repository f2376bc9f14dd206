//! One suite, every engine: each case runs on a SQLite file, a private in-memory SQLite database
//! and, when `GUESTLIST_TEST_DATABASE_URL` names a PostgreSQL server, a fresh PostgreSQL database.

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::FutureExt;
use guestlist_domain::audit::{activity, AuditRecord, Initiator, ModifiedProperty, TargetResource};
use guestlist_domain::audit_query::{AuditClause, AuditFilter, AuditQuery, AuditTextField};
use guestlist_domain::filter::{
    CompareOp, IdentityField, IdentityPredicate, Literal, StringCollection, StringPredicate, UserField, UserFilter, UserOrder, UserQuery,
};
use guestlist_domain::ids::{ObjectId, TenantId};
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::tenant::{Application, UpnOnReset};
use guestlist_domain::ticket::{InvitationRecord, TicketState};
use guestlist_domain::user::{ExternalUserState, ObjectIdentity, UserType, CREATION_TYPE_INVITATION};
use guestlist_domain::{Tenant, Upn, User};
use guestlist_store::{
    Conflict, Engine, InvitationWrite, SigningKeyRecord, SigningKeyReseal, SponsorChange, Store, StoreError, StoredPassword, UserKey,
    UserWrite,
};
use sqlx::Connection;

// ---- harness -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Target {
    SqliteFile,
    SqliteMemory,
    Postgres,
}

fn random_name() -> String {
    ObjectId::new_random().as_uuid().simple().to_string()
}

/// Runs `case` against a fresh store of `target`, and removes that store's database afterwards.
async fn run<F, Fut>(target: Target, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    match target {
        Target::SqliteMemory => {
            let store = guestlist_store::connect(None, None, true).await.expect("in-memory SQLite");
            assert_eq!(store.engine(), Engine::Sqlite);
            case(store).await;
        }
        Target::SqliteFile => {
            let path = std::env::temp_dir().join(format!("guestlist-store-{}.db", random_name()));
            let store = guestlist_store::connect(None, Some(&path), false).await.expect("SQLite file");
            assert_eq!(store.engine(), Engine::Sqlite);
            let outcome = AssertUnwindSafe(case(store)).catch_unwind().await;
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
        Target::Postgres => {
            let Ok(base_url) = std::env::var("GUESTLIST_TEST_DATABASE_URL") else {
                eprintln!("skipping PostgreSQL store tests: GUESTLIST_TEST_DATABASE_URL is not set");
                return;
            };
            // A database per test, so tests run in parallel without seeing each other's rows.
            let database = format!("gl_test_{}", random_name());
            let mut admin = sqlx::PgConnection::connect(&base_url).await.expect("connect to GUESTLIST_TEST_DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE {database}")).execute(&mut admin).await.expect("create test database");
            let mut url = url::Url::parse(&base_url).expect("GUESTLIST_TEST_DATABASE_URL is a URL");
            url.set_path(&database);
            let store = guestlist_store::connect(Some(url.as_str()), None, false).await.expect("PostgreSQL store");
            assert_eq!(store.engine(), Engine::Postgres);
            let outcome = AssertUnwindSafe(case(store)).catch_unwind().await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).execute(&mut admin).await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// `store_tests!(case, ...)` makes `case::sqlite_file`, `case::sqlite_memory` and `case::postgres`.
macro_rules! store_tests {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() {
                super::run(super::Target::SqliteFile, super::$case).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() {
                super::run(super::Target::SqliteMemory, super::$case).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(super::Target::Postgres, super::$case).await
            }
        }
    )*};
}

store_tests!(
    tenant_round_trip,
    application_round_trip,
    signing_keys_newest_first,
    signing_keys_reseal_all_or_nothing,
    user_round_trip,
    upn_conflict,
    proxy_address_conflict,
    concurrent_proxy_address_claims,
    concurrent_creates_all_succeed,
    concurrent_writes_fail_alone,
    stale_version_conflict,
    record_invitation_revokes_pending_tickets,
    record_invitation_is_atomic,
    users_by_every_kind_of_address,
    list_users_filters,
    list_users_pages,
    special_characters_are_literal,
    audit_newest_first,
    throttle_counts_per_window,
    tenant_throttle_round_trip,
    delete_user_revokes_invitations_and_sponsorships,
    sponsors_add_list_remove_and_refusals,
    invitation_adds_sponsors_once,
    audit_filters_select_exactly,
    audit_pages_newest_first,
);

// ---- fixtures ------------------------------------------------------------------------------

/// A time with microseconds, which both engines keep.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).single().expect("valid time") + Duration::microseconds(123_456) + Duration::minutes(minutes)
}

async fn new_tenant(store: &Arc<dyn Store>, domain: &str) -> Tenant {
    let tenant = Tenant {
        id: ObjectId::new_random(),
        display_name: format!("Tenant {domain}"),
        initial_domain: domain.to_string(),
        upn_on_reset: UpnOnReset::FollowNewEmail,
        invitation_lifetime_days: None,
        invitation_throttle: None,
        created_date_time: at(0),
    };
    store.insert_tenant(&tenant).await.expect("insert tenant");
    tenant
}

/// A member with nothing optional set.
fn member(tenant: TenantId, upn: &str, display_name: &str) -> User {
    User {
        id: ObjectId::new_random(),
        tenant_id: tenant,
        user_principal_name: Upn::parse(upn).expect("valid UPN"),
        display_name: display_name.to_string(),
        given_name: None,
        surname: None,
        mail: None,
        other_mails: Vec::new(),
        proxy_addresses: Vec::new(),
        user_type: UserType::Member,
        creation_type: None,
        external_user_state: None,
        external_user_state_change_date_time: None,
        identities: Vec::new(),
        account_enabled: true,
        created_date_time: at(1),
        company_name: None,
        job_title: None,
        department: None,
        mobile_phone: None,
        office_location: None,
        preferred_language: None,
        business_phones: Vec::new(),
        usage_location: None,
        invited_email: None,
        version: 0,
    }
}

/// An invited guest with every property set.
fn guest(tenant: &Tenant, email: &str) -> User {
    let (local, domain) = email.split_once('@').expect("an email");
    let upn = Upn::parse(&format!("{local}_{domain}#EXT#@{}", tenant.initial_domain)).expect("guest UPN");
    User {
        user_principal_name: upn.clone(),
        given_name: Some("Given".into()),
        surname: Some("Surname".into()),
        mail: Some(email.to_string()),
        other_mails: vec![format!("other.{email}")],
        proxy_addresses: vec![format!("SMTP:{email}")],
        user_type: UserType::Guest,
        creation_type: Some(CREATION_TYPE_INVITATION.into()),
        external_user_state: Some(ExternalUserState::PendingAcceptance),
        external_user_state_change_date_time: Some(at(2)),
        identities: vec![
            ObjectIdentity::user_principal_name(&upn),
            ObjectIdentity { sign_in_type: "federated".into(), issuer: "google.com".into(), issuer_assigned_id: Some(email.to_string()) },
        ],
        company_name: Some("Fabrikam".into()),
        job_title: Some("Engineer".into()),
        department: Some("R&D".into()),
        mobile_phone: Some("+1 555 0100".into()),
        office_location: Some("Building 1".into()),
        preferred_language: Some("en-US".into()),
        business_phones: vec!["+1 555 0101".into()],
        usage_location: Some("US".into()),
        invited_email: Some(email.to_string()),
        ..member(tenant.id, upn.as_str(), local)
    }
}

async fn create(store: &Arc<dyn Store>, user: User) -> User {
    store.write_user(&UserWrite::Create(user), &[]).await.expect("create user")
}

fn audit(tenant: TenantId, activity: &str, target: &User, when: DateTime<Utc>) -> AuditRecord {
    let initiator = Initiator::App {
        app_id: ObjectId::new_random().to_string(),
        display_name: "inviter".into(),
        service_principal_id: ObjectId::new_random().to_string(),
    };
    let target = TargetResource {
        id: target.id.to_string(),
        display_name: Some(target.display_name.clone()),
        resource_type: "User".into(),
        user_principal_name: Some(target.user_principal_name.to_string()),
        modified_properties: vec![ModifiedProperty { display_name: "Mail".into(), old_value: None, new_value: target.mail.clone() }],
    };
    AuditRecord::invited_users(tenant, activity, "Add", initiator, ObjectId::new_random(), target, when)
}

fn invitation(user: &User, ticket_hash: &str, when: DateTime<Utc>) -> InvitationRecord {
    InvitationRecord {
        id: ObjectId::new_random(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        email: user.mail.clone().unwrap_or_default(),
        redirect_url: "https://example.com/welcome".into(),
        ticket_hash: ticket_hash.to_string(),
        state: TicketState::Pending,
        reset_redemption: false,
        send_invitation_message: true,
        created_date_time: when,
        expires_date_time: Some(when + Duration::days(14)),
    }
}

fn conflict(result: Result<impl std::fmt::Debug, StoreError>) -> Conflict {
    match result {
        Err(StoreError::Conflict(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

// ---- cases ---------------------------------------------------------------------------------

async fn tenant_round_trip(store: Arc<dyn Store>) {
    let mut tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;

    assert_eq!(store.tenant(&tenant.id.to_string()).await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.tenant(&tenant.id.to_string().to_uppercase()).await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.tenant("CONTOSO.onmicrosoft.COM").await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.tenant("nobody.onmicrosoft.com").await.unwrap(), None);
    assert_eq!(store.tenant(&ObjectId::new_random().to_string()).await.unwrap(), None);
    let ids: BTreeSet<_> = store.tenants().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, BTreeSet::from([tenant.id, other.id]));

    tenant.upn_on_reset = UpnOnReset::Keep;
    tenant.invitation_lifetime_days = Some(14);
    tenant.display_name = "Contoso Ltd".into();
    store.update_tenant(&tenant).await.unwrap();
    assert_eq!(store.tenant(&tenant.id.to_string()).await.unwrap(), Some(tenant.clone()));

    let same_domain = Tenant { id: ObjectId::new_random(), initial_domain: "Contoso.OnMicrosoft.com".into(), ..tenant.clone() };
    assert_eq!(conflict(store.insert_tenant(&same_domain).await), Conflict::Duplicate);
    let unknown = Tenant { id: ObjectId::new_random(), initial_domain: "unknown.onmicrosoft.com".into(), ..tenant };
    assert!(matches!(store.update_tenant(&unknown).await, Err(StoreError::NotFound)));
}

async fn application_round_trip(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let app = Application {
        tenant_id: tenant.id,
        app_id: ObjectId::new_random(),
        service_principal_id: ObjectId::new_random(),
        display_name: "Inviter".into(),
        secret_hash: "a".repeat(64),
        app_roles: vec![AppPermission::UserInviteAll, AppPermission::UserReadWriteAll],
        created_date_time: at(3),
    };
    store.insert_application(&app).await.unwrap();
    assert_eq!(store.application(tenant.id, app.app_id).await.unwrap(), Some(app.clone()));
    assert_eq!(store.application(ObjectId::new_random(), app.app_id).await.unwrap(), None);
    assert_eq!(store.applications(tenant.id).await.unwrap(), vec![app.clone()]);
    assert_eq!(conflict(store.insert_application(&app).await), Conflict::Duplicate);

    store.set_application_secret_hash(tenant.id, app.app_id, &"b".repeat(64)).await.unwrap();
    let updated = store.application(tenant.id, app.app_id).await.unwrap().expect("app");
    assert_eq!(updated, Application { secret_hash: "b".repeat(64), ..app });
    assert!(matches!(store.set_application_secret_hash(tenant.id, ObjectId::new_random(), "c").await, Err(StoreError::NotFound)));
}

async fn signing_keys_newest_first(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    for (kid, minutes) in [("older", 1), ("newest", 9), ("middle", 5)] {
        let key = SigningKeyRecord {
            kid: kid.into(),
            private_key: format!("sealed {kid}"),
            key_encryption_key_id: Some("kek-1".into()),
            created_date_time: at(minutes),
        };
        store.insert_signing_key(&key).await.unwrap();
    }
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["newest", "middle", "older"]);
    assert_eq!(
        keys[0],
        SigningKeyRecord {
            kid: "newest".into(),
            private_key: "sealed newest".into(),
            key_encryption_key_id: Some("kek-1".into()),
            created_date_time: at(9)
        }
    );
    let duplicate =
        SigningKeyRecord { kid: "older".into(), private_key: String::new(), key_encryption_key_id: None, created_date_time: at(0) };
    assert_eq!(conflict(store.insert_signing_key(&duplicate).await), Conflict::Duplicate);
    assert!(!format!("{:?}", keys[0]).contains("sealed newest"), "{:?}", keys[0]);
}

async fn signing_keys_reseal_all_or_nothing(store: Arc<dyn Store>) {
    let plain = SigningKeyRecord { kid: "plain".into(), private_key: "PEM".into(), key_encryption_key_id: None, created_date_time: at(1) };
    let sealed = SigningKeyRecord {
        kid: "sealed".into(),
        private_key: "by one".into(),
        key_encryption_key_id: Some("one".into()),
        created_date_time: at(2),
    };
    store.insert_signing_key(&plain).await.unwrap();
    store.insert_signing_key(&sealed).await.unwrap();
    let reseal = |kid: &str, from: Option<&str>, to: &str| SigningKeyReseal {
        kid: kid.into(),
        from_key_encryption_key_id: from.map(str::to_string),
        private_key: format!("{kid} by {to}"),
        key_encryption_key_id: to.into(),
    };
    // The second row is not sealed by "two": nothing is written, the first row neither.
    let stale = store.reseal_signing_keys(&[reseal("plain", None, "two"), reseal("sealed", Some("two"), "three")]).await;
    assert_eq!(conflict(stale), Conflict::StaleVersion);
    assert_eq!(store.signing_keys().await.unwrap(), vec![sealed.clone(), plain.clone()]);
    assert_eq!(conflict(store.reseal_signing_keys(&[reseal("missing", None, "two")]).await), Conflict::StaleVersion);

    store.reseal_signing_keys(&[reseal("plain", None, "two"), reseal("sealed", Some("one"), "two")]).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.private_key.as_str(), k.key_encryption_key_id.as_deref())).collect::<Vec<_>>(),
        [("sealed by two", Some("two")), ("plain by two", Some("two"))]
    );
    // A second process that read the plain row before it was sealed finds it changed.
    assert_eq!(conflict(store.reseal_signing_keys(&[reseal("plain", None, "other")]).await), Conflict::StaleVersion);
}

async fn user_round_trip(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let full = guest(&tenant, "ann@fabrikam.com");
    let stored = create(&store, User { version: 42, ..full.clone() }).await;
    assert_eq!(stored, User { version: 1, ..full.clone() }, "a created user starts at version 1");

    let by_id = store.user(tenant.id, &UserKey::Id(full.id)).await.unwrap().expect("by id");
    assert_eq!(by_id, stored);
    // Upn compares case-insensitively, so check the stored spelling separately.
    assert_eq!(by_id.user_principal_name.as_str(), full.user_principal_name.as_str());
    assert_eq!(by_id.created_date_time, at(1));
    let upn = full.user_principal_name.as_str().to_uppercase();
    assert_eq!(store.user(tenant.id, &UserKey::UserPrincipalName(upn)).await.unwrap(), Some(stored.clone()));
    assert_eq!(store.user(ObjectId::new_random(), &UserKey::Id(full.id)).await.unwrap(), None, "users belong to one tenant");

    let bare = create(&store, member(tenant.id, "bare@contoso.onmicrosoft.com", "Bare")).await;
    assert_eq!(store.user(tenant.id, &UserKey::Id(bare.id)).await.unwrap(), Some(bare));

    // Nanoseconds are cut to what the database keeps; the write returns what a read returns.
    let precise =
        User { created_date_time: at(0) + Duration::nanoseconds(789), ..member(tenant.id, "precise@contoso.onmicrosoft.com", "Precise") };
    let written = create(&store, precise.clone()).await;
    assert_eq!(written.created_date_time, at(0));
    assert_eq!(store.user(tenant.id, &UserKey::Id(precise.id)).await.unwrap(), Some(written));
}

async fn upn_conflict(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    create(&store, member(tenant.id, "Pat@contoso.onmicrosoft.com", "Pat")).await;
    let clash = member(tenant.id, "pat@CONTOSO.onmicrosoft.com", "Pat again");
    assert_eq!(conflict(store.write_user(&UserWrite::Create(clash.clone()), &[]).await), Conflict::UserPrincipalName);
    assert_eq!(store.user(tenant.id, &UserKey::Id(clash.id)).await.unwrap(), None);
    // The same UPN text in another tenant is another user.
    create(&store, member(other_tenant.id, "pat@contoso.onmicrosoft.com", "Pat elsewhere")).await;
    assert_eq!(store.count_users(tenant.id, None).await.unwrap(), 1);
}

async fn proxy_address_conflict(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let first = User { proxy_addresses: vec!["SMTP:a@b.com".into()], ..member(tenant.id, "one@contoso.onmicrosoft.com", "One") };
    let first = create(&store, first).await;
    let second = User { proxy_addresses: vec!["smtp:A@B.com".into()], ..member(tenant.id, "two@contoso.onmicrosoft.com", "Two") };
    assert_eq!(conflict(store.write_user(&UserWrite::Create(second.clone()), &[]).await), Conflict::ProxyAddress);
    assert_eq!(store.user(tenant.id, &UserKey::Id(second.id)).await.unwrap(), None, "the losing write left nothing");

    // One user may list the same address under both prefixes.
    let both = User {
        proxy_addresses: vec!["SMTP:c@d.com".into(), "smtp:C@d.com".into()],
        ..member(tenant.id, "three@contoso.onmicrosoft.com", "Three")
    };
    let both = create(&store, both).await;
    assert_eq!(both.proxy_addresses.len(), 2);

    // Moving an address away frees it for another user.
    let moved = store.write_user(&UserWrite::Update(User { proxy_addresses: vec!["SMTP:e@f.com".into()], ..first }), &[]).await.unwrap();
    assert_eq!(moved.version, 2);
    create(&store, second).await;
}

async fn concurrent_proxy_address_claims(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let claims = (0..2).map(|n| {
        let user = User {
            proxy_addresses: vec!["SMTP:Shared@Example.com".to_string()],
            ..member(tenant.id, &format!("claim{n}@contoso.onmicrosoft.com"), "Claim")
        };
        let store = store.clone();
        tokio::spawn(async move { store.write_user(&UserWrite::Create(user), &[]).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(claims).await.into_iter().map(|joined| joined.expect("task")).collect();
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().any(|outcome| matches!(outcome, Err(StoreError::Conflict(Conflict::ProxyAddress)))), "{outcomes:?}");
    assert_eq!(store.users_by_address(tenant.id, "shared@example.com").await.unwrap().len(), 1);
}

/// Many concurrent writes, some refused (a UPN taken), commit together on the SQLite file's
/// group writer: each refused write leaves nothing behind (not its audit entry either) and the
/// writes around it in its group stay.
async fn concurrent_writes_fail_alone(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let creates = (0..120).map(|n| {
        let upn = if n % 3 == 0 { format!("shared{}@contoso.onmicrosoft.com", n % 5) } else { format!("own{n}@contoso.onmicrosoft.com") };
        let user = member(tenant.id, &upn, &format!("User {n}"));
        let record = audit(tenant.id, activity::ADD_USER, &user, at(n));
        let store = store.clone();
        let tenant = tenant.id;
        tokio::spawn(async move {
            let outcome = store.write_user(&UserWrite::Create(user), &[record]).await;
            if matches!(outcome, Err(StoreError::Conflict(_))) {
                // Refused for the winner's sake: the winner is already readable (services re-read and retry).
                let winner = store.user(tenant, &UserKey::UserPrincipalName(upn.clone())).await.unwrap();
                assert!(winner.is_some(), "{upn} refused before its holder was committed");
            }
            outcome
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(creates).await.into_iter().map(|joined| joined.expect("task")).collect();
    let created: Vec<&User> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
    let refused = outcomes.iter().filter(|outcome| matches!(outcome, Err(StoreError::Conflict(Conflict::UserPrincipalName)))).count();
    assert_eq!(created.len(), 80 + 5, "every own UPN and one of each shared one");
    assert_eq!(refused, 40 - 5, "{:?}", outcomes.iter().filter(|o| o.is_err()).collect::<Vec<_>>());
    assert_eq!(store.count_users(tenant.id, None).await.unwrap(), 85);
    let audited = store.audit_records(tenant.id, 500).await.unwrap();
    assert_eq!(audited.len(), 85, "a refused write leaves no audit entry");
    for user in created {
        assert_eq!(store.user(tenant.id, &UserKey::Id(user.id)).await.unwrap().as_ref(), Some(user));
        assert!(audited.iter().any(|record| record.target_resources[0].id == user.id.to_string()));
    }
}

async fn concurrent_creates_all_succeed(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let creates = (0..20).map(|n| {
        let user = member(tenant.id, &format!("user{n}@contoso.onmicrosoft.com"), &format!("User {n}"));
        let record = audit(tenant.id, activity::ADD_USER, &user, at(n));
        let store = store.clone();
        tokio::spawn(async move { store.write_user(&UserWrite::Create(user), &[record]).await })
    });
    for outcome in futures::future::join_all(creates).await {
        assert_eq!(outcome.expect("task").expect("create").version, 1);
    }
    assert_eq!(store.count_users(tenant.id, None).await.unwrap(), 20);
    assert_eq!(store.audit_records(tenant.id, 100).await.unwrap().len(), 20);
}

async fn stale_version_conflict(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let created = create(&store, guest(&tenant, "sam@fabrikam.com")).await;
    let renamed = User { display_name: "Samantha".into(), other_mails: vec!["sam@new.com".into()], ..created.clone() };
    let record = audit(tenant.id, activity::UPDATE_USER, &renamed, at(5));
    let updated = store.write_user(&UserWrite::Update(renamed.clone()), std::slice::from_ref(&record)).await.unwrap();
    assert_eq!(updated, User { version: 2, ..renamed });
    assert_eq!(store.user(tenant.id, &UserKey::Id(created.id)).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.audit_records(tenant.id, 10).await.unwrap(), vec![record]);

    // A writer that read version 1 loses, and changes nothing.
    let stale = User { display_name: "Stale".into(), ..created.clone() };
    assert_eq!(
        conflict(store.write_user(&UserWrite::Update(stale), &[audit(tenant.id, activity::UPDATE_USER, &created, at(6))]).await),
        Conflict::StaleVersion
    );
    assert_eq!(store.user(tenant.id, &UserKey::Id(created.id)).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.audit_records(tenant.id, 10).await.unwrap().len(), 1);

    let unknown = User { id: ObjectId::new_random(), ..updated.clone() };
    assert!(matches!(store.write_user(&UserWrite::Update(unknown), &[]).await, Err(StoreError::NotFound)));
    let elsewhere = User { tenant_id: ObjectId::new_random(), ..updated.clone() };
    assert!(matches!(store.write_user(&UserWrite::Update(elsewhere), &[]).await, Err(StoreError::NotFound)));

    // The lookup rows follow the update.
    assert!(store.users_by_address(tenant.id, "other.sam@fabrikam.com").await.unwrap().is_empty());
    assert_eq!(store.users_by_address(tenant.id, "SAM@new.com").await.unwrap(), vec![updated]);
}

async fn record_invitation_revokes_pending_tickets(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let user = guest(&tenant, "ivy@fabrikam.com");
    let first = invitation(&user, "hash-1", at(10));
    let first_audit = audit(tenant.id, activity::INVITE_EXTERNAL_USER, &user, at(10));
    let stored = store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Create(user.clone()),
            invitation: first.clone(),
            audit: vec![first_audit.clone()],
            sponsors: vec![],
            mail: None,
        })
        .await
        .unwrap();
    assert_eq!(stored, User { version: 1, ..user });
    assert_eq!(store.invitation_by_ticket_hash(tenant.id, "hash-1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.invitation_by_ticket_hash(ObjectId::new_random(), "hash-1").await.unwrap(), None);

    let reset = User { mail: Some("ivy@new.com".into()), ..stored.clone() };
    let second = InvitationRecord { reset_redemption: true, ..invitation(&reset, "hash-2", at(20)) };
    let second_audit = audit(tenant.id, activity::INVITE_WITH_RESET, &reset, at(20));
    let stored = store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Update(reset.clone()),
            invitation: second.clone(),
            audit: vec![second_audit.clone()],
            sponsors: vec![],
            mail: None,
        })
        .await
        .unwrap();
    assert_eq!(stored, User { version: 2, ..reset });

    let revoked_first = InvitationRecord { state: TicketState::Revoked, ..first };
    assert_eq!(store.invitations_for_user(tenant.id, stored.id).await.unwrap(), vec![revoked_first.clone(), second.clone()]);
    assert_eq!(store.invitation_by_ticket_hash(tenant.id, "hash-1").await.unwrap(), Some(revoked_first));
    assert_eq!(store.audit_records(tenant.id, 10).await.unwrap(), vec![second_audit, first_audit]);
}

async fn record_invitation_is_atomic(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let holder = create(&store, guest(&tenant, "joe@fabrikam.com")).await;
    let earlier = invitation(&holder, "hash-held", at(1));
    store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Update(holder.clone()),
            invitation: earlier.clone(),
            audit: vec![],
            sponsors: vec![],
            mail: None,
        })
        .await
        .unwrap();

    // A second user with the holder's UPN: the whole invitation must vanish with it.
    let clash = User { id: ObjectId::new_random(), proxy_addresses: vec![], ..guest(&tenant, "joe@fabrikam.com") };
    let write = InvitationWrite {
        user: UserWrite::Create(clash.clone()),
        invitation: invitation(&clash, "hash-lost", at(2)),
        audit: vec![audit(tenant.id, activity::INVITE_EXTERNAL_USER, &clash, at(2))],
        sponsors: vec![],
        mail: None,
    };
    assert_eq!(conflict(store.record_invitation(&write).await), Conflict::UserPrincipalName);
    assert_eq!(store.invitation_by_ticket_hash(tenant.id, "hash-lost").await.unwrap(), None);
    assert!(store.audit_records(tenant.id, 10).await.unwrap().is_empty());
    assert_eq!(store.user(tenant.id, &UserKey::Id(clash.id)).await.unwrap(), None);

    // A stale re-invite neither revokes the pending ticket nor adds one.
    let stale = InvitationWrite {
        user: UserWrite::Update(holder.clone()),
        invitation: invitation(&holder, "hash-stale", at(3)),
        audit: vec![audit(tenant.id, activity::INVITE_EXTERNAL_USER, &holder, at(3))],
        sponsors: vec![],
        mail: None,
    };
    assert_eq!(conflict(store.record_invitation(&stale).await), Conflict::StaleVersion);
    assert_eq!(store.invitations_for_user(tenant.id, holder.id).await.unwrap(), vec![earlier]);
    assert!(store.audit_records(tenant.id, 10).await.unwrap().is_empty());
}

async fn users_by_every_kind_of_address(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    let by_mail =
        create(&store, User { mail: Some("Mail@Example.com".into()), ..member(tenant.id, "m1@contoso.onmicrosoft.com", "Mail") }).await;
    let by_invite = create(
        &store,
        User { invited_email: Some("Invited@Example.com".into()), ..member(tenant.id, "m2@contoso.onmicrosoft.com", "Invited") },
    )
    .await;
    let by_other = create(
        &store,
        User {
            other_mails: vec!["x@y.com".into(), "Other@Example.com".into()],
            ..member(tenant.id, "m3@contoso.onmicrosoft.com", "Other")
        },
    )
    .await;
    let by_proxy = create(
        &store,
        User { proxy_addresses: vec!["smtp:Proxy@Example.com".into()], ..member(tenant.id, "m4@contoso.onmicrosoft.com", "Proxy") },
    )
    .await;
    let by_sip = create(
        &store,
        User { proxy_addresses: vec!["SIP:Phone@Example.com".into()], ..member(tenant.id, "m5@contoso.onmicrosoft.com", "Sip") },
    )
    .await;
    let by_upn = create(&store, member(tenant.id, "Upn@contoso.onmicrosoft.com", "Upn")).await;
    create(&store, User { mail: Some("mail@example.com".into()), ..member(other_tenant.id, "m1@contoso.onmicrosoft.com", "Elsewhere") })
        .await;

    for (address, expected) in [
        ("mail@example.COM", &by_mail),
        ("INVITED@example.com", &by_invite),
        ("other@example.com", &by_other),
        ("proxy@EXAMPLE.com", &by_proxy),
        ("phone@example.com", &by_sip),
        ("upn@CONTOSO.onmicrosoft.com", &by_upn),
    ] {
        assert_eq!(store.users_by_address(tenant.id, address).await.unwrap(), vec![expected.clone()], "{address}");
    }
    assert!(store.users_by_address(tenant.id, "nobody@example.com").await.unwrap().is_empty());
    // The prefix is not part of the address.
    assert!(store.users_by_address(tenant.id, "smtp:proxy@example.com").await.unwrap().is_empty());

    let shared =
        create(&store, User { mail: Some("shared@example.com".into()), ..member(tenant.id, "m6@contoso.onmicrosoft.com", "Shared 1") })
            .await;
    let also = create(
        &store,
        User { other_mails: vec!["SHARED@example.com".into()], ..member(tenant.id, "m7@contoso.onmicrosoft.com", "Shared 2") },
    )
    .await;
    let found: BTreeSet<_> = store.users_by_address(tenant.id, "shared@example.com").await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(found, BTreeSet::from([shared.id, also.id]));
}

fn compare(field: UserField, op: CompareOp, value: Literal) -> UserFilter {
    UserFilter::Compare { field, op, value }
}

fn eq(field: UserField, text: &str) -> UserFilter {
    compare(field, CompareOp::Eq, Literal::String(text.into()))
}

fn any(collection: StringCollection, predicate: StringPredicate) -> UserFilter {
    UserFilter::AnyString { collection, predicate }
}

fn identity(equals: &[(IdentityField, &str)]) -> UserFilter {
    UserFilter::AnyIdentity(IdentityPredicate { equals: equals.iter().map(|(field, text)| (*field, text.to_string())).collect() })
}

fn everything(filter: Option<UserFilter>) -> UserQuery {
    UserQuery { filter, order: None, top: 999, after: None }
}

/// Display names of the users `filter` selects, checked against `count_users` too.
async fn selected(store: &Arc<dyn Store>, tenant: TenantId, filter: &UserFilter) -> BTreeSet<String> {
    let page = store.list_users(tenant, &everything(Some(filter.clone()))).await.unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    assert_eq!(page.next, None);
    let count = store.count_users(tenant, Some(filter)).await.unwrap();
    assert_eq!(count as usize, page.users.len(), "count of {filter:?}");
    page.users.into_iter().map(|u| u.display_name).collect()
}

async fn list_users_filters(store: Arc<dyn Store>) {
    use CompareOp::*;
    use StringCollection::*;
    use UserField::*;
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    let alice = User {
        given_name: Some("Alice".into()),
        mail: Some("alice@contoso.com".into()),
        other_mails: vec!["alice.other@x.com".into()],
        proxy_addresses: vec!["SMTP:alice@contoso.com".into()],
        department: Some("Sales".into()),
        created_date_time: at(10),
        ..member(tenant.id, "alice@contoso.onmicrosoft.com", "alice")
    };
    let alice = create(&store, alice).await;
    let bob = User {
        proxy_addresses: vec!["SMTP:bob@fabrikam.com".into(), "smtp:robert@fabrikam.com".into()],
        other_mails: vec![],
        identities: vec![ObjectIdentity {
            sign_in_type: "federated".into(),
            issuer: "google.com".into(),
            issuer_assigned_id: Some("Bob@gmail.com".into()),
        }],
        department: None,
        created_date_time: at(20),
        ..guest(&tenant, "bob@fabrikam.com")
    };
    create(&store, User { display_name: "bob".into(), ..bob }).await;
    let carol = User {
        mail: None,
        other_mails: vec!["carol@a.com".into(), "carol@b.com".into()],
        proxy_addresses: vec![],
        external_user_state: Some(guestlist_domain::user::ExternalUserState::Accepted),
        identities: vec![ObjectIdentity {
            sign_in_type: "emailAddress".into(),
            issuer: "contoso.onmicrosoft.com".into(),
            issuer_assigned_id: Some("carol@a.com".into()),
        }],
        account_enabled: false,
        department: None,
        created_date_time: at(30),
        ..guest(&tenant, "carol@fabrikam.com")
    };
    create(&store, User { display_name: "carol".into(), ..carol }).await;
    create(
        &store,
        User { department: Some("sales".into()), created_date_time: at(40), ..member(tenant.id, "dave@contoso.onmicrosoft.com", "dave") },
    )
    .await;
    // Matches many filters below, but lives in another tenant.
    create(&store, User { mail: Some("alice@contoso.com".into()), ..member(other_tenant.id, "alice@contoso.onmicrosoft.com", "intruder") })
        .await;

    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let null = |field, op| compare(field, op, Literal::Null);
    let cases: Vec<(UserFilter, BTreeSet<String>)> = vec![
        (eq(UserType, "guest"), set(&["bob", "carol"])),
        (eq(UserType, "Member"), set(&["alice", "dave"])),
        (eq(Mail, "ALICE@contoso.com"), set(&["alice"])),
        (eq(UserPrincipalName, "BOB_fabrikam.com#EXT#@contoso.onmicrosoft.com"), set(&["bob"])),
        (eq(Id, &alice.id.to_string().to_uppercase()), set(&["alice"])),
        (eq(CreationType, "invitation"), set(&["bob", "carol"])),
        (eq(ExternalUserState, "Accepted"), set(&["carol"])),
        (null(Mail, Eq), set(&["carol", "dave"])),
        (null(Mail, Ne), set(&["alice", "bob"])),
        (compare(Mail, Ne, Literal::String("alice@contoso.com".into())), set(&["bob", "carol", "dave"])),
        (compare(DisplayName, Gt, Literal::String("BOB".into())), set(&["carol", "dave"])),
        (compare(DisplayName, Ge, Literal::String("bob".into())), set(&["bob", "carol", "dave"])),
        (compare(DisplayName, Le, Literal::String("bob".into())), set(&["alice", "bob"])),
        (compare(DisplayName, Lt, Literal::String("b".into())), set(&["alice"])),
        (compare(AccountEnabled, Eq, Literal::Boolean(false)), set(&["carol"])),
        (compare(AccountEnabled, Ne, Literal::Boolean(false)), set(&["alice", "bob", "dave"])),
        (compare(CreatedDateTime, Ge, Literal::DateTime(at(20))), set(&["bob", "carol", "dave"])),
        (compare(CreatedDateTime, Lt, Literal::DateTime(at(20))), set(&["alice"])),
        (compare(CreatedDateTime, Eq, Literal::DateTime(at(30))), set(&["carol"])),
        (compare(ExternalUserStateChangeDateTime, Gt, Literal::DateTime(at(0))), set(&["bob", "carol"])),
        (UserFilter::StartsWith { field: DisplayName, prefix: "A".into() }, set(&["alice"])),
        (UserFilter::StartsWith { field: UserPrincipalName, prefix: "CAROL_".into() }, set(&["carol"])),
        (UserFilter::EndsWith { field: Mail, suffix: "@FABRIKAM.com".into() }, set(&["bob"])),
        (eq(UserType, "Guest").and(compare(AccountEnabled, Eq, Literal::Boolean(true))), set(&["bob"])),
        (eq(UserType, "Member").or(eq(ExternalUserState, "Accepted")), set(&["alice", "carol", "dave"])),
        (UserFilter::Not(Box::new(eq(UserType, "Guest"))), set(&["alice", "dave"])),
        (eq(Department, "SALES"), set(&["alice", "dave"])),
        // not() over a null property holds, as in OData.
        (UserFilter::Not(Box::new(eq(Department, "sales"))), set(&["bob", "carol"])),
        (
            UserFilter::In { field: DisplayName, values: vec![Literal::String("Alice".into()), Literal::String("CAROL".into())] },
            set(&["alice", "carol"]),
        ),
        (
            UserFilter::In { field: Mail, values: vec![Literal::Null, Literal::String("bob@fabrikam.com".into())] },
            set(&["bob", "carol", "dave"]),
        ),
        (UserFilter::In { field: Mail, values: vec![] }, set(&[])),
        (any(OtherMails, StringPredicate::Compare(Eq, "CAROL@b.com".into())), set(&["carol"])),
        (any(OtherMails, StringPredicate::Compare(Ge, "carol@b".into())), set(&["carol"])),
        (any(OtherMails, StringPredicate::StartsWith("Alice".into())), set(&["alice"])),
        (any(OtherMails, StringPredicate::EndsWith("@A.com".into())), set(&["carol"])),
        (any(OtherMails, StringPredicate::In(vec!["nobody@x.com".into(), "ALICE.other@x.com".into()])), set(&["alice"])),
        (any(ProxyAddresses, StringPredicate::Compare(Eq, "smtp:BOB@fabrikam.com".into())), set(&["bob"])),
        // The full proxy address is compared, prefix included.
        (any(ProxyAddresses, StringPredicate::Compare(Eq, "bob@fabrikam.com".into())), set(&[])),
        (any(ProxyAddresses, StringPredicate::StartsWith("SMTP:robert".into())), set(&["bob"])),
        (any(ProxyAddresses, StringPredicate::EndsWith("@contoso.com".into())), set(&["alice"])),
        (any(ProxyAddresses, StringPredicate::In(vec!["smtp:alice@contoso.com".into()])), set(&["alice"])),
        (identity(&[(IdentityField::IssuerAssignedId, "bob@GMAIL.com"), (IdentityField::Issuer, "Google.com")]), set(&["bob"])),
        (identity(&[(IdentityField::SignInType, "emailAddress")]), set(&["carol"])),
        (identity(&[(IdentityField::Issuer, "google.com"), (IdentityField::IssuerAssignedId, "carol@a.com")]), set(&[])),
        (UserFilter::CollectionCount { collection: OtherMails, op: Eq, count: 0 }, set(&["bob", "dave"])),
        (UserFilter::CollectionCount { collection: OtherMails, op: Gt, count: 1 }, set(&["carol"])),
        (UserFilter::CollectionCount { collection: ProxyAddresses, op: Ne, count: 0 }, set(&["alice", "bob"])),
    ];
    for (filter, expected) in cases {
        assert_eq!(selected(&store, tenant.id, &filter).await, expected, "{filter:?}");
    }
    assert_eq!(store.count_users(tenant.id, None).await.unwrap(), 4);

    let mistyped = compare(AccountEnabled, Eq, Literal::String("yes".into()));
    assert!(matches!(store.list_users(tenant.id, &everything(Some(mistyped))).await, Err(StoreError::InvalidQuery(_))));
}

/// Every page of `query`, following `next` until it ends.
async fn all_pages(store: &Arc<dyn Store>, tenant: TenantId, mut query: UserQuery) -> Vec<Vec<User>> {
    let mut pages = Vec::new();
    loop {
        let page = store.list_users(tenant, &query).await.unwrap();
        assert!(page.users.len() <= query.top as usize);
        pages.push(page.users);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
}

async fn list_users_pages(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    // Repeated display names and creation times make the id break ties.
    let names = ["g", "c", "e", "a", "c", "f", "b"];
    let mut created = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let user = User { created_date_time: at(n as i64 % 3), ..member(tenant.id, &format!("u{n}@contoso.onmicrosoft.com"), name) };
        created.push(create(&store, user).await);
    }

    let orders = [
        None,
        Some(UserOrder { field: UserField::DisplayName, descending: false }),
        Some(UserOrder { field: UserField::DisplayName, descending: true }),
        Some(UserOrder { field: UserField::UserPrincipalName, descending: true }),
        Some(UserOrder { field: UserField::CreatedDateTime, descending: false }),
        Some(UserOrder { field: UserField::CreatedDateTime, descending: true }),
    ];
    for order in orders {
        let pages = all_pages(&store, tenant.id, UserQuery { filter: None, order, top: 3, after: None }).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1], "{order:?}");
        let listed: Vec<User> = pages.concat();
        let mut expected = created.clone();
        expected.sort_by(|a, b| {
            let by_field = match order.map(|o| o.field) {
                Some(UserField::DisplayName) => a.display_name.cmp(&b.display_name),
                Some(UserField::UserPrincipalName) => a.user_principal_name.normalized().cmp(&b.user_principal_name.normalized()),
                Some(UserField::CreatedDateTime) => a.created_date_time.cmp(&b.created_date_time),
                _ => std::cmp::Ordering::Equal,
            };
            let ordering = by_field.then(a.id.to_string().cmp(&b.id.to_string()));
            if order.is_some_and(|o| o.descending) {
                ordering.reverse()
            } else {
                ordering
            }
        });
        assert_eq!(listed, expected, "{order:?}");
    }

    // Paging within a filter.
    let filter = UserFilter::In {
        field: UserField::DisplayName,
        values: vec![Literal::String("c".into()), Literal::String("a".into()), Literal::String("b".into())],
    };
    let order = Some(UserOrder { field: UserField::DisplayName, descending: false });
    let pages = all_pages(&store, tenant.id, UserQuery { filter: Some(filter), order, top: 2, after: None }).await;
    let listed: Vec<String> = pages.concat().into_iter().map(|u| u.display_name).collect();
    assert_eq!(listed, ["a", "b", "c", "c"]);
    assert_eq!(pages.len(), 2);

    // A token only continues the query that made it.
    let first = store.list_users(tenant.id, &UserQuery { filter: None, order, top: 3, after: None }).await.unwrap();
    let token = first.next.expect("more pages");
    let other_order = UserQuery { filter: None, order: None, top: 3, after: Some(token) };
    assert!(matches!(store.list_users(tenant.id, &other_order).await, Err(StoreError::InvalidQuery(_))));
    let garbage = UserQuery { filter: None, order: None, top: 3, after: Some("%%%".into()) };
    assert!(matches!(store.list_users(tenant.id, &garbage).await, Err(StoreError::InvalidQuery(_))));
}

async fn special_characters_are_literal(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let names = ["O'Brien", "100% sure", "1000 sure", "a_b", "axb", r"back\slash", "backslash"];
    for (n, name) in names.iter().enumerate() {
        create(&store, member(tenant.id, &format!("s{n}@contoso.onmicrosoft.com"), name)).await;
    }
    create(&store, User { other_mails: vec!["a_b@x.com".into()], ..member(tenant.id, "o1@contoso.onmicrosoft.com", "underscore mail") })
        .await;
    create(&store, User { other_mails: vec!["axb@x.com".into()], ..member(tenant.id, "o2@contoso.onmicrosoft.com", "plain mail") }).await;

    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let starts = |prefix: &str| UserFilter::StartsWith { field: UserField::DisplayName, prefix: prefix.into() };
    let ends = |suffix: &str| UserFilter::EndsWith { field: UserField::DisplayName, suffix: suffix.into() };
    let cases = [
        (eq(UserField::DisplayName, "o'brien"), set(&["O'Brien"])),
        (starts("O'"), set(&["O'Brien"])),
        (starts("100%"), set(&["100% sure"])),
        (starts("a_"), set(&["a_b"])),
        (ends("_b"), set(&["a_b"])),
        (ends("% sure"), set(&["100% sure"])),
        (starts(r"back\"), set(&[r"back\slash"])),
        (starts("%"), set(&[])),
        (any(StringCollection::OtherMails, StringPredicate::StartsWith("a_".into())), set(&["underscore mail"])),
    ];
    for (filter, expected) in cases {
        assert_eq!(selected(&store, tenant.id, &filter).await, expected, "{filter:?}");
    }
}

async fn audit_newest_first(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    let user = create(&store, guest(&tenant, "amy@fabrikam.com")).await;
    let records: Vec<AuditRecord> =
        [3, 1, 4, 2].into_iter().map(|minutes| audit(tenant.id, activity::UPDATE_USER, &user, at(minutes))).collect();
    let mut latest = user.clone();
    for record in &records {
        latest = store.write_user(&UserWrite::Update(latest), std::slice::from_ref(record)).await.unwrap();
    }
    let elsewhere = create(&store, member(other_tenant.id, "x@fabrikam.onmicrosoft.com", "x")).await;
    store
        .write_user(&UserWrite::Update(elsewhere.clone()), &[audit(other_tenant.id, activity::UPDATE_USER, &elsewhere, at(9))])
        .await
        .unwrap();

    let newest = store.audit_records(tenant.id, 3).await.unwrap();
    assert_eq!(newest, vec![records[2].clone(), records[0].clone(), records[3].clone()]);
    assert_eq!(store.audit_records(tenant.id, 100).await.unwrap().len(), 4);
    assert_eq!(latest.version, 5);
}

async fn throttle_counts_per_window(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    // Concurrent requests in one window each get a distinct count.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.count_request(tenant.id, "invitations", 1_000, 0).await.unwrap() })
        })
        .collect();
    let mut counts = vec![];
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort();
    assert_eq!(counts, (1..=10).collect::<Vec<u64>>());
    // Windows, scopes and tenants are counted apart.
    assert_eq!(store.count_request(tenant.id, "invitations", 1_005, 0).await.unwrap(), 1);
    assert_eq!(store.count_request(tenant.id, "users", 1_000, 0).await.unwrap(), 1);
    assert_eq!(store.count_request(other.id, "invitations", 1_000, 0).await.unwrap(), 1);
    // Pruning drops old windows: counting in window 1000 again starts from 1.
    assert_eq!(store.count_request(tenant.id, "invitations", 1_010, 1_001).await.unwrap(), 1);
    assert_eq!(store.count_request(tenant.id, "invitations", 1_000, 0).await.unwrap(), 1);
}

async fn tenant_throttle_round_trip(store: Arc<dyn Store>) {
    let mut tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    assert_eq!(store.tenant(&tenant.id.to_string()).await.unwrap().unwrap().invitation_throttle, None);
    tenant.invitation_throttle = Some(guestlist_domain::tenant::InvitationThrottle::GRAPH);
    store.update_tenant(&tenant).await.unwrap();
    assert_eq!(store.tenant(&tenant.id.to_string()).await.unwrap().unwrap(), tenant);
}

// ---- connecting ----------------------------------------------------------------------------

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on the loopback interface refuses connections.
    let outcome = guestlist_store::connect(Some("postgres://guestlist@127.0.0.1:1/guestlist"), None, false).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{:?}", outcome.err());
}

#[tokio::test]
async fn a_store_needs_a_database() {
    let outcome = guestlist_store::connect(None, None, false).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{:?}", outcome.err());
    let outcome = guestlist_store::connect(Some("mysql://localhost/guestlist"), None, false).await;
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{:?}", outcome.err());
}

#[tokio::test]
async fn a_sqlite_file_keeps_its_data_across_connections() {
    let path = std::env::temp_dir().join(format!("guestlist-store-{}.db", random_name()));
    let store = guestlist_store::connect(None, Some(&path), false).await.expect("SQLite file");
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    drop(store);
    let url = format!("sqlite://{}", path.display());
    let reopened = guestlist_store::connect(Some(&url), None, false).await.expect("reopen by URL");
    assert_eq!(reopened.tenant("contoso.onmicrosoft.com").await.unwrap(), Some(tenant));
    drop(reopened);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

// ---- deletion, sponsors, audit log API ------------------------------------------------------

async fn delete_user_revokes_invitations_and_sponsorships(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let doomed = create(&store, guest(&tenant, "doomed@example.com")).await;
    let sponsor = create(&store, member(tenant.id, "sam@contoso.onmicrosoft.com", "Sam")).await;
    let sponsored = create(&store, guest(&tenant, "other@example.com")).await;
    let first = invitation(&doomed, "first", at(3));
    store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Update(doomed.clone()),
            invitation: first,
            audit: vec![],
            sponsors: vec![sponsor.id],
            mail: None,
        })
        .await
        .unwrap();
    assert_eq!(store.add_sponsor(tenant.id, sponsored.id, doomed.id, &[]).await.unwrap(), SponsorChange::Added);

    let entry = audit(tenant.id, activity::DELETE_EXTERNAL_USER, &doomed, at(4));
    store.delete_user(tenant.id, doomed.id, std::slice::from_ref(&entry)).await.unwrap();
    assert_eq!(store.user(tenant.id, &UserKey::Id(doomed.id)).await.unwrap(), None);
    let invitations = store.invitations_for_user(tenant.id, doomed.id).await.unwrap();
    assert_eq!(invitations.len(), 1, "invitations outlive the user");
    assert!(invitations.iter().all(|i| i.state == TicketState::Revoked));
    assert!(store.sponsors(tenant.id, sponsored.id).await.unwrap().is_empty(), "a deleted user sponsors no one");
    assert_eq!(store.audit_record(tenant.id, entry.id).await.unwrap(), Some(entry.clone()));
    // Its addresses and UPN are free again.
    create(&store, guest(&tenant, "doomed@example.com")).await;

    let again = audit(tenant.id, activity::DELETE_EXTERNAL_USER, &doomed, at(5));
    assert!(matches!(store.delete_user(tenant.id, doomed.id, std::slice::from_ref(&again)).await, Err(StoreError::NotFound)));
    assert_eq!(store.audit_record(tenant.id, again.id).await.unwrap(), None, "a failed delete writes no audit entry");
}

async fn sponsors_add_list_remove_and_refusals(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    let guest_user = create(&store, guest(&tenant, "g@example.com")).await;
    let mut sponsors = Vec::new();
    for n in 0..6 {
        sponsors.push(create(&store, member(tenant.id, &format!("s{n}@contoso.onmicrosoft.com"), &format!("S{n}"))).await);
    }
    let stranger = create(&store, member(other_tenant.id, "x@fabrikam.onmicrosoft.com", "X")).await;
    for sponsor in &sponsors[..5] {
        let entry = audit(tenant.id, activity::ADD_USER_SPONSOR, &guest_user, at(3));
        assert_eq!(
            store.add_sponsor(tenant.id, guest_user.id, sponsor.id, std::slice::from_ref(&entry)).await.unwrap(),
            SponsorChange::Added
        );
        assert!(store.audit_record(tenant.id, entry.id).await.unwrap().is_some());
    }
    let refused = audit(tenant.id, activity::ADD_USER_SPONSOR, &guest_user, at(3));
    let add = |user: ObjectId, sponsor: ObjectId| {
        let store = store.clone();
        let refused = refused.clone();
        async move { store.add_sponsor(tenant.id, user, sponsor, &[refused]).await.unwrap() }
    };
    assert_eq!(add(guest_user.id, sponsors[5].id).await, SponsorChange::LimitReached);
    assert_eq!(add(guest_user.id, sponsors[0].id).await, SponsorChange::AlreadySponsor);
    assert_eq!(add(guest_user.id, stranger.id).await, SponsorChange::SponsorNotFound);
    assert_eq!(add(ObjectId::new_random(), sponsors[0].id).await, SponsorChange::UserNotFound);
    assert_eq!(store.audit_record(tenant.id, refused.id).await.unwrap(), None, "refusals write nothing");
    let listed: Vec<ObjectId> = store.sponsors(tenant.id, guest_user.id).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(listed, sponsors[..5].iter().map(|u| u.id).collect::<Vec<_>>());

    store.remove_sponsor(tenant.id, guest_user.id, sponsors[0].id, &[]).await.unwrap();
    assert!(matches!(store.remove_sponsor(tenant.id, guest_user.id, sponsors[0].id, &[]).await, Err(StoreError::NotFound)));
    assert_eq!(store.sponsors(tenant.id, guest_user.id).await.unwrap().len(), 4);
    assert_eq!(add(guest_user.id, sponsors[5].id).await, SponsorChange::Added, "room again after a removal");
}

async fn invitation_adds_sponsors_once(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
    let first = create(&store, member(tenant.id, "a@contoso.onmicrosoft.com", "A")).await;
    let second = create(&store, member(tenant.id, "b@contoso.onmicrosoft.com", "B")).await;
    let new_guest = guest(&tenant, "new@example.com");
    let stored = store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Create(new_guest.clone()),
            invitation: invitation(&new_guest, "t1", at(3)),
            audit: vec![],
            sponsors: vec![first.id, ObjectId::new_random()],
            mail: None,
        })
        .await
        .unwrap();
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(store.sponsors(tenant.id, stored.id).await.unwrap()), vec![first.id], "a vanished sponsor is skipped");
    store
        .record_invitation(&InvitationWrite {
            user: UserWrite::Update(stored.clone()),
            invitation: invitation(&stored, "t2", at(4)),
            audit: vec![],
            sponsors: vec![first.id, second.id],
            mail: None,
        })
        .await
        .unwrap();
    assert_eq!(ids(store.sponsors(tenant.id, stored.id).await.unwrap()), vec![first.id, second.id]);
}

/// Five entries with distinct values in every filterable property.
async fn audit_fixture(store: &Arc<dyn Store>) -> (Tenant, Vec<AuditRecord>) {
    let tenant = new_tenant(store, "contoso.onmicrosoft.com").await;
    let target = create(store, guest(&tenant, "t@example.com")).await;
    let other = create(store, guest(&tenant, "o@example.com")).await;
    let mut records = vec![
        audit(tenant.id, activity::INVITE_EXTERNAL_USER, &target, at(10)),
        audit(tenant.id, activity::INVITE_WITH_RESET, &target, at(20)),
        audit(tenant.id, activity::ADD_USER, &other, at(30)),
        audit(tenant.id, activity::UPDATE_USER, &other, at(40)),
        audit(tenant.id, "Invite 50%_off", &other, at(40)),
    ];
    records[2].logged_by_service = "Core Directory".into();
    records[3].logged_by_service = "Core Directory".into();
    records[3].result = "failure".into();
    records[3].category = "Other".into();
    records[1].initiated_by =
        Initiator::User { id: target.id.to_string().to_uppercase(), user_principal_name: "admin@contoso.onmicrosoft.com".into() };
    let first_target = records[0].target_resources[0].clone();
    records[2].target_resources.push(first_target);
    store.write_user(&UserWrite::Create(member(tenant.id, "w@contoso.onmicrosoft.com", "W")), &records).await.unwrap();
    (tenant, records)
}

async fn audit_ids(store: &Arc<dyn Store>, tenant: TenantId, clauses: Vec<AuditClause>) -> Vec<ObjectId> {
    let query = AuditQuery { filter: AuditFilter { clauses }, top: 100, after: None };
    store.list_audit_records(tenant, &query).await.unwrap().records.iter().map(|r| r.id).collect()
}

async fn audit_filters_select_exactly(store: Arc<dyn Store>) {
    let (tenant, r) = audit_fixture(&store).await;
    let ids = |picks: &[usize]| picks.iter().map(|&i| r[i].id).collect::<Vec<_>>();
    // Newest first; entries at the same instant by id, descending.
    let mut same_time = ids(&[3, 4]);
    same_time.sort();
    same_time.reverse();
    let everything = [same_time.clone(), ids(&[2, 1, 0])].concat();
    assert_eq!(audit_ids(&store, tenant.id, vec![]).await, everything);
    let target = r[0].target_resources[0].id.clone();
    let app = r[0].initiated_by.app_id().unwrap().to_uppercase();
    let user = r[1].initiated_by.user_id().unwrap().to_lowercase();
    for (clauses, expected) in [
        (vec![AuditClause::ActivityDateTime(CompareOp::Ge, at(30))], [same_time.clone(), ids(&[2])].concat()),
        (vec![AuditClause::ActivityDateTime(CompareOp::Gt, at(30))], same_time.clone()),
        (vec![AuditClause::ActivityDateTime(CompareOp::Le, at(20))], ids(&[1, 0])),
        (vec![AuditClause::ActivityDateTime(CompareOp::Lt, at(20))], ids(&[0])),
        (vec![AuditClause::ActivityDateTime(CompareOp::Eq, at(20))], ids(&[1])),
        (vec![AuditClause::Equals(AuditTextField::ActivityDisplayName, "add USER".into())], ids(&[2])),
        (vec![AuditClause::ActivityDisplayNameStartsWith("invite".into())], [ids(&[4]), ids(&[1, 0])].concat()),
        (vec![AuditClause::ActivityDisplayNameStartsWith("Invite 50%_".into())], ids(&[4])),
        (vec![AuditClause::ActivityDisplayNameStartsWith("Invite 5_%".into())], vec![]),
        (vec![AuditClause::Equals(AuditTextField::Category, "Other".into())], ids(&[3])),
        (vec![AuditClause::Equals(AuditTextField::LoggedByService, "core directory".into())], ids(&[3, 2])),
        (vec![AuditClause::Equals(AuditTextField::Result, "failure".into())], ids(&[3])),
        (vec![AuditClause::TargetResourceId(target.to_uppercase())], ids(&[2, 1, 0])),
        (vec![AuditClause::InitiatedByAppId(app)], ids(&[0])),
        (vec![AuditClause::InitiatedByUserId(user)], ids(&[1])),
        (
            vec![AuditClause::TargetResourceId(target), AuditClause::Equals(AuditTextField::LoggedByService, "Invited Users".into())],
            ids(&[1, 0]),
        ),
    ] {
        assert_eq!(audit_ids(&store, tenant.id, clauses.clone()).await, expected, "{clauses:?}");
    }
    let other_tenant = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
    assert!(audit_ids(&store, other_tenant.id, vec![]).await.is_empty());
}

async fn audit_pages_newest_first(store: Arc<dyn Store>) {
    let (tenant, _) = audit_fixture(&store).await;
    let everything = audit_ids(&store, tenant.id, vec![]).await;
    let mut seen = Vec::new();
    let mut query = AuditQuery { filter: AuditFilter::default(), top: 2, after: None };
    loop {
        let page = store.list_audit_records(tenant.id, &query).await.unwrap();
        assert!(page.records.len() <= 2);
        seen.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, everything);
    query.after = Some("garbage".into());
    assert!(matches!(store.list_audit_records(tenant.id, &query).await, Err(StoreError::InvalidQuery(_))));
}

// ---- groups and memberships ----------------------------------------------------------------

mod group_cases {
    use super::*;
    use guestlist_domain::filter::{GroupField, GroupFilter, GroupOrder, GroupQuery};
    use guestlist_domain::group::{DirectoryObject, Group, NewGroup};
    use guestlist_store::{GroupWrite, PageRequest};

    store_tests!(
        group_round_trip_update_and_stale_version,
        group_mail_is_unique_in_a_tenant,
        group_filters_and_pages,
        memberships_add_remove_and_refusals,
        transitive_member_of_survives_a_cycle,
        deletions_cascade_to_memberships,
        member_pages_mix_users_and_groups_in_id_order,
        group_counts_ends_with_and_search,
        groups_page_by_display_name_both_ways,
        member_counts_direct_and_transitive,
    );

    fn new_group(tenant: &Tenant, name: &str, unified: bool) -> Group {
        let request = NewGroup {
            display_name: Some(name.to_string()),
            mail_nickname: Some(name.to_lowercase().replace(' ', "-")),
            mail_enabled: Some(unified),
            security_enabled: Some(!unified),
            group_types: if unified { vec!["Unified".into()] } else { vec![] },
            ..NewGroup::default()
        };
        Group::create(tenant.id, &tenant.initial_domain, request, at(3)).expect("valid group")
    }

    async fn create_group(store: &Arc<dyn Store>, group: Group) -> Group {
        store.write_group(&GroupWrite::Create(group), &[]).await.expect("create group")
    }

    fn group_audit(tenant: TenantId, activity: &str, group: &Group) -> AuditRecord {
        let mut record = audit(tenant, activity, &member(tenant, "x@contoso.onmicrosoft.com", "x"), at(4));
        record.target_resources[0].id = group.id.to_string();
        record.target_resources[0].resource_type = "Group".into();
        record
    }

    fn first_page(top: u32) -> PageRequest {
        PageRequest { top, after: None }
    }

    async fn member_of_names(store: &Arc<dyn Store>, tenant: TenantId, id: ObjectId, transitive: bool) -> BTreeSet<String> {
        let page = store.member_of(tenant, id, transitive, &first_page(999)).await.expect("memberOf");
        assert_eq!(page.next, None);
        page.groups.into_iter().map(|g| g.display_name).collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    async fn group_round_trip_update_and_stale_version(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let group = new_group(&tenant, "Partners", true);
        let audit = group_audit(tenant.id, activity::ADD_GROUP, &group);
        let stored = store.write_group(&GroupWrite::Create(group.clone()), &[audit]).await.unwrap();
        assert_eq!(stored.version, 1);
        assert_eq!(store.group(tenant.id, group.id).await.unwrap(), Some(stored.clone()));
        assert_eq!(stored.group_types, vec!["Unified".to_string()]);
        assert_eq!(store.audit_records(tenant.id, 10).await.unwrap()[0].activity_display_name, activity::ADD_GROUP);

        let renamed = Group { display_name: "Partners EU".into(), description: Some("d".into()), ..stored.clone() };
        let updated = store.write_group(&GroupWrite::Update(renamed), &[]).await.unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(store.group(tenant.id, group.id).await.unwrap(), Some(updated.clone()));
        // A write based on version 1 loses and changes nothing.
        let stale = Group { display_name: "Stale".into(), ..stored.clone() };
        assert_eq!(conflict(store.write_group(&GroupWrite::Update(stale), &[]).await), Conflict::StaleVersion);
        assert_eq!(store.group(tenant.id, group.id).await.unwrap().unwrap().display_name, "Partners EU");
        let missing = Group { id: ObjectId::new_random(), ..updated };
        assert!(matches!(store.write_group(&GroupWrite::Update(missing), &[]).await, Err(StoreError::NotFound)));
        // Another tenant does not see it.
        let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        assert_eq!(store.group(other.id, group.id).await.unwrap(), None);
    }

    async fn group_mail_is_unique_in_a_tenant(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        create_group(&store, new_group(&tenant, "Partners", true)).await;
        let audit = group_audit(tenant.id, activity::ADD_GROUP, &new_group(&tenant, "x", false));
        let result = store.write_group(&GroupWrite::Create(new_group(&tenant, "PARTNERS", true)), &[audit]).await;
        assert_eq!(conflict(result), Conflict::Duplicate);
        // Nothing of the refused write stays, its audit entry included.
        assert!(store.audit_records(tenant.id, 10).await.unwrap().is_empty());
        // Security groups have no mail, so their nicknames may repeat.
        create_group(&store, new_group(&tenant, "Readers", false)).await;
        create_group(&store, new_group(&tenant, "Readers", false)).await;
    }

    async fn group_filters_and_pages(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        for name in ["Alpha", "Alpine", "Beta", "O'Brien 50%"] {
            create_group(&store, new_group(&tenant, name, false)).await;
        }
        create_group(&store, new_group(&tenant, "Unified One", true)).await;
        let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        create_group(&store, new_group(&other, "Alpha", false)).await;

        let select = |filter: GroupFilter| {
            let store = store.clone();
            async move {
                let query = GroupQuery { filter: Some(filter), order: None, top: 999, after: None };
                let page = store.list_groups(tenant.id, &query).await.expect("list groups");
                page.groups.into_iter().map(|g| g.display_name).collect::<BTreeSet<_>>()
            }
        };
        let text = |s: &str| Literal::String(s.to_string());
        assert_eq!(
            select(GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "alp".into() }).await,
            names(&["Alpha", "Alpine"])
        );
        assert_eq!(
            select(GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "O'Brien 5".into() }).await,
            names(&["O'Brien 50%"])
        );
        assert_eq!(select(GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "_".into() }).await, names(&[]));
        assert_eq!(
            select(GroupFilter::Compare { field: GroupField::Mail, op: CompareOp::Eq, value: text("UNIFIED-ONE@contoso.onmicrosoft.com") })
                .await,
            names(&["Unified One"])
        );
        assert_eq!(
            select(GroupFilter::AnyGroupType(StringPredicate::Compare(CompareOp::Eq, "unified".into()))).await,
            names(&["Unified One"])
        );
        assert_eq!(
            select(GroupFilter::Compare { field: GroupField::SecurityEnabled, op: CompareOp::Eq, value: Literal::Boolean(true) }).await,
            names(&["Alpha", "Alpine", "Beta", "O'Brien 50%"])
        );
        assert_eq!(
            select(GroupFilter::In { field: GroupField::MailNickname, values: vec![text("beta"), text("alpha")] }).await,
            names(&["Alpha", "Beta"])
        );
        assert_eq!(select(GroupFilter::Compare { field: GroupField::Mail, op: CompareOp::Eq, value: Literal::Null }).await.len(), 4);
        assert_eq!(
            select(GroupFilter::Not(Box::new(GroupFilter::Compare { field: GroupField::Mail, op: CompareOp::Eq, value: text("x@y") })))
                .await
                .len(),
            5
        );

        // Pages of two, in id order, cover every group of the tenant exactly once.
        let mut seen = Vec::new();
        let mut query = GroupQuery { filter: None, order: None, top: 2, after: None };
        loop {
            let page = store.list_groups(tenant.id, &query).await.unwrap();
            assert!(page.groups.len() <= 2);
            seen.extend(page.groups.iter().map(|g| g.id.to_string()));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
        assert_eq!(seen.len(), 5);
        let bad = GroupQuery { filter: None, order: None, top: 2, after: Some("not-a-token".into()) };
        assert!(matches!(store.list_groups(tenant.id, &bad).await, Err(StoreError::InvalidQuery(_))));
    }

    async fn memberships_add_remove_and_refusals(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let guest = create(&store, guest(&tenant, "alice@example.com")).await;
        let group = create_group(&store, new_group(&tenant, "Partners", false)).await;
        let audit_of = |name| group_audit(tenant.id, name, &group);

        store.add_group_member(tenant.id, group.id, guest.id, &[audit_of(activity::ADD_MEMBER_TO_GROUP)]).await.unwrap();
        assert_eq!(member_of_names(&store, tenant.id, guest.id, false).await, names(&["Partners"]));
        let duplicate = store.add_group_member(tenant.id, group.id, guest.id, &[audit_of(activity::ADD_MEMBER_TO_GROUP)]).await;
        assert_eq!(conflict(duplicate), Conflict::Duplicate);
        let unknown = ObjectId::new_random();
        assert!(matches!(store.add_group_member(tenant.id, group.id, unknown, &[]).await, Err(StoreError::NotFound)));
        assert!(matches!(store.add_group_member(tenant.id, unknown, guest.id, &[]).await, Err(StoreError::NotFound)));
        // A user of another tenant can't join.
        let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        let stranger = create(&store, member(other.id, "bob@fabrikam.onmicrosoft.com", "Bob")).await;
        assert!(matches!(store.add_group_member(tenant.id, group.id, stranger.id, &[]).await, Err(StoreError::NotFound)));
        let activities: Vec<String> =
            store.audit_records(tenant.id, 10).await.unwrap().into_iter().map(|r| r.activity_display_name).collect();
        assert_eq!(activities, vec![activity::ADD_MEMBER_TO_GROUP.to_string()], "refused writes leave no audit entry");

        store.remove_group_member(tenant.id, group.id, guest.id, &[audit_of(activity::REMOVE_MEMBER_FROM_GROUP)]).await.unwrap();
        assert!(member_of_names(&store, tenant.id, guest.id, false).await.is_empty());
        assert!(matches!(store.remove_group_member(tenant.id, group.id, guest.id, &[]).await, Err(StoreError::NotFound)));
        assert_eq!(store.audit_records(tenant.id, 10).await.unwrap().len(), 2);
    }

    async fn transitive_member_of_survives_a_cycle(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let guest = create(&store, guest(&tenant, "alice@example.com")).await;
        let inner = create_group(&store, new_group(&tenant, "Inner", false)).await;
        let outer = create_group(&store, new_group(&tenant, "Outer", false)).await;
        let top = create_group(&store, new_group(&tenant, "Top", false)).await;
        for (group, member) in [(inner.id, guest.id), (outer.id, inner.id), (top.id, outer.id), (inner.id, top.id)] {
            store.add_group_member(tenant.id, group, member, &[]).await.unwrap();
        }
        assert_eq!(member_of_names(&store, tenant.id, guest.id, false).await, names(&["Inner"]));
        assert_eq!(member_of_names(&store, tenant.id, guest.id, true).await, names(&["Inner", "Outer", "Top"]));
        // Inner -> Outer -> Top -> Inner: a group is never listed as its own ancestor.
        assert_eq!(member_of_names(&store, tenant.id, inner.id, true).await, names(&["Outer", "Top"]));
        assert_eq!(member_of_names(&store, tenant.id, top.id, false).await, names(&["Inner"]));
    }

    async fn deletions_cascade_to_memberships(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let guest = create(&store, guest(&tenant, "alice@example.com")).await;
        let inner = create_group(&store, new_group(&tenant, "Inner", false)).await;
        let outer = create_group(&store, new_group(&tenant, "Outer", true)).await;
        store.add_group_member(tenant.id, inner.id, guest.id, &[]).await.unwrap();
        store.add_group_member(tenant.id, outer.id, inner.id, &[]).await.unwrap();

        store.delete_group(tenant.id, inner.id, &[group_audit(tenant.id, activity::DELETE_GROUP, &inner)]).await.unwrap();
        assert_eq!(store.group(tenant.id, inner.id).await.unwrap(), None);
        assert!(member_of_names(&store, tenant.id, guest.id, true).await.is_empty());
        assert!(store.group_members(tenant.id, outer.id, &first_page(10)).await.unwrap().members.is_empty());
        assert!(matches!(store.delete_group(tenant.id, inner.id, &[]).await, Err(StoreError::NotFound)));
        assert_eq!(store.audit_records(tenant.id, 10).await.unwrap().len(), 1);
    }

    async fn member_pages_mix_users_and_groups_in_id_order(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let parent = create_group(&store, new_group(&tenant, "Parent", false)).await;
        let mut expected = Vec::new();
        for i in 0..3 {
            let user = create(&store, guest(&tenant, &format!("u{i}@example.com"))).await;
            let group = create_group(&store, new_group(&tenant, &format!("Child {i}"), false)).await;
            store.add_group_member(tenant.id, parent.id, user.id, &[]).await.unwrap();
            store.add_group_member(tenant.id, parent.id, group.id, &[]).await.unwrap();
            expected.extend([user.id.to_string(), group.id.to_string()]);
        }
        expected.sort();
        let mut seen = Vec::new();
        let mut kinds = (0, 0);
        let mut page = first_page(4);
        loop {
            let result = store.group_members(tenant.id, parent.id, &page).await.unwrap();
            assert!(result.members.len() <= 4);
            for member in &result.members {
                match member {
                    DirectoryObject::User(_) => kinds.0 += 1,
                    DirectoryObject::Group(_) => kinds.1 += 1,
                }
                seen.push(member.id().to_string());
            }
            match result.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
        assert_eq!(kinds, (3, 3));
    }

    async fn group_counts_ends_with_and_search(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        create_group(&store, new_group(&tenant, "Sales Team", true)).await;
        create_group(&store, new_group(&tenant, "sales-eu", false)).await;
        create_group(&store, Group { description: Some("Sales support".into()), ..new_group(&tenant, "Marketing", true) }).await;
        create_group(&store, new_group(&tenant, "O'Brien 50%", false)).await;
        let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        create_group(&store, new_group(&other, "Sales Team", true)).await;

        let select = |filter: GroupFilter| {
            let store = store.clone();
            async move {
                let count = store.count_groups(tenant.id, Some(&filter)).await.expect("count groups");
                let query = GroupQuery { filter: Some(filter), order: None, top: 999, after: None };
                let found: BTreeSet<String> =
                    store.list_groups(tenant.id, &query).await.expect("list groups").groups.into_iter().map(|g| g.display_name).collect();
                assert_eq!(count, found.len() as u64, "the count agrees with the list");
                found
            }
        };
        assert_eq!(store.count_groups(tenant.id, None).await.unwrap(), 4);
        assert_eq!(store.count_groups(other.id, None).await.unwrap(), 1);
        let ends = |field, suffix: &str| GroupFilter::EndsWith { field, suffix: suffix.into() };
        let search = |field, term: &str| GroupFilter::Search { field, term: term.into() };
        assert_eq!(select(ends(GroupField::Mail, "@CONTOSO.onmicrosoft.com")).await, names(&["Sales Team", "Marketing"]));
        assert_eq!(select(ends(GroupField::MailNickname, "-eu")).await, names(&["sales-eu"]));
        assert_eq!(select(ends(GroupField::MailNickname, "_eu")).await, names(&[]));
        assert_eq!(select(search(GroupField::DisplayName, "SAL")).await, names(&["Sales Team", "sales-eu"]));
        assert_eq!(select(search(GroupField::DisplayName, "team")).await, names(&["Sales Team"]));
        assert_eq!(select(search(GroupField::DisplayName, "eu")).await, names(&["sales-eu"]));
        assert_eq!(select(search(GroupField::DisplayName, "eam")).await, names(&[]), "a word prefix, not a substring");
        assert_eq!(select(search(GroupField::DisplayName, "50%")).await, names(&["O'Brien 50%"]));
        assert_eq!(select(search(GroupField::DisplayName, "5_")).await, names(&[]));
        assert_eq!(select(search(GroupField::Description, "support")).await, names(&["Marketing"]));
        assert_eq!(select(search(GroupField::Mail, "team")).await, names(&["Sales Team"]));
        assert_eq!(select(search(GroupField::Mail, "sales")).await, names(&["Sales Team"]), "security groups have no mail");
        assert_eq!(
            select(search(GroupField::DisplayName, "sales").and(ends(GroupField::Mail, "onmicrosoft.com"))).await,
            names(&["Sales Team"])
        );
    }

    async fn groups_page_by_display_name_both_ways(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let mut groups = Vec::new();
        for name in ["Delta", "Alpha", "Echo", "Delta", "Charlie", "Bravo", "Delta"] {
            groups.push(create_group(&store, new_group(&tenant, name, false)).await);
        }
        let mut expected: Vec<(String, String)> = groups.iter().map(|g| (g.display_name.clone(), g.id.to_string())).collect();
        expected.sort();
        for descending in [false, true] {
            let order = Some(GroupOrder { descending });
            let mut seen = Vec::new();
            let mut query = GroupQuery { filter: None, order, top: 2, after: None };
            loop {
                let page = store.list_groups(tenant.id, &query).await.unwrap();
                assert!(page.groups.len() <= 2);
                seen.extend(page.groups.iter().map(|g| (g.display_name.clone(), g.id.to_string())));
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            let mut want = expected.clone();
            if descending {
                want.reverse();
            }
            assert_eq!(seen, want, "descending: {descending}");
        }
        // A filtered, ordered page; and a token is only good for the order it was made in.
        let filter = GroupFilter::StartsWith { field: GroupField::DisplayName, prefix: "d".into() };
        let query = GroupQuery { filter: Some(filter), order: Some(GroupOrder { descending: false }), top: 2, after: None };
        let page = store.list_groups(tenant.id, &query).await.unwrap();
        assert_eq!(page.groups.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>(), ["Delta", "Delta"]);
        let token = page.next.expect("a third Delta follows");
        let rest = store.list_groups(tenant.id, &GroupQuery { after: Some(token.clone()), ..query.clone() }).await.unwrap();
        assert_eq!(rest.groups.len(), 1);
        assert_eq!(rest.next, None);
        for wrong in [None, Some(GroupOrder { descending: true })] {
            let replay = GroupQuery { order: wrong, after: Some(token.clone()), ..query.clone() };
            assert!(matches!(store.list_groups(tenant.id, &replay).await, Err(StoreError::InvalidQuery(_))), "{wrong:?}");
        }
    }

    async fn member_counts_direct_and_transitive(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let other_guest = create(&store, guest(&tenant, "bob@example.com")).await;
        let guest = create(&store, guest(&tenant, "alice@example.com")).await;
        let inner = create_group(&store, new_group(&tenant, "Inner", false)).await;
        let outer = create_group(&store, new_group(&tenant, "Outer", false)).await;
        let top = create_group(&store, new_group(&tenant, "Top", false)).await;
        for (group, member) in
            [(inner.id, guest.id), (outer.id, inner.id), (top.id, outer.id), (inner.id, top.id), (outer.id, other_guest.id)]
        {
            store.add_group_member(tenant.id, group, member, &[]).await.unwrap();
        }
        assert_eq!(store.count_group_members(tenant.id, inner.id).await.unwrap(), 2);
        assert_eq!(store.count_group_members(tenant.id, outer.id).await.unwrap(), 2);
        assert_eq!(store.count_member_of(tenant.id, guest.id, false).await.unwrap(), 1);
        assert_eq!(store.count_member_of(tenant.id, guest.id, true).await.unwrap(), 3);
        // Inner -> Outer -> Top -> Inner: never counted as its own ancestor.
        assert_eq!(store.count_member_of(tenant.id, inner.id, true).await.unwrap(), 2);
        assert_eq!(store.count_member_of(tenant.id, other_guest.id, true).await.unwrap(), 3);
        // Counts agree with the lists, and belong to the tenant.
        assert_eq!(member_of_names(&store, tenant.id, guest.id, true).await.len(), 3);
        let other = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        assert_eq!(store.count_group_members(other.id, inner.id).await.unwrap(), 0);
        assert_eq!(store.count_member_of(other.id, guest.id, true).await.unwrap(), 0);
        store.remove_group_member(tenant.id, inner.id, guest.id, &[]).await.unwrap();
        assert_eq!(store.count_member_of(tenant.id, guest.id, true).await.unwrap(), 0);
        assert_eq!(store.count_group_members(tenant.id, inner.id).await.unwrap(), 1);
    }
}

// ---- mail outbox ---------------------------------------------------------------------------

mod mail_cases {
    use super::*;
    use guestlist_domain::mail::{DeliveryState, MailKind, OutgoingMail};
    use guestlist_store::{MailFailure, MailWrite};

    store_tests!(
        mail_claim_is_exclusive_and_marks_need_the_lease,
        mail_expired_lease_retry_and_give_up,
        concurrent_mail_claims_never_overlap,
        mail_supersede_pending_list_and_unsubscribe,
    );

    fn outgoing(tenant: TenantId, user: Option<&User>, invitation: Option<ObjectId>, to: &str, when: DateTime<Utc>) -> OutgoingMail {
        OutgoingMail {
            id: ObjectId::new_random(),
            tenant_id: tenant,
            kind: if invitation.is_some() { MailKind::Invitation } else { MailKind::OneTimePasscode },
            invitation_id: invitation,
            user_id: user.map(|u| u.id),
            sender_name: "Contoso invitations".into(),
            sender_address: "invites@contoso.onmicrosoft.com".into(),
            recipient: to.to_string(),
            cc: Some("cc@example.com".into()),
            reply_to: None,
            subject: "You're invited".into(),
            text_body: "secret link".into(),
            html_body: "<a>secret link</a>".into(),
            language: "en-US".into(),
            created_date_time: when,
        }
    }

    fn pending(mail: OutgoingMail) -> MailWrite {
        MailWrite { mail, state: DeliveryState::Pending, unsubscribe_token_hash: None }
    }

    async fn invite_with_mail(
        store: &Arc<dyn Store>,
        tenant: &Tenant,
        user: UserWrite,
        when: DateTime<Utc>,
        hash: &str,
    ) -> (InvitationRecord, OutgoingMail) {
        let invitation = invitation(user.user(), hash, when);
        let mail = outgoing(tenant.id, Some(user.user()), Some(invitation.id), &invitation.email, when);
        let write = InvitationWrite {
            user,
            invitation: invitation.clone(),
            audit: vec![],
            sponsors: vec![],
            mail: Some(MailWrite { unsubscribe_token_hash: Some(format!("unsub-{hash}")), ..pending(mail.clone()) }),
        };
        store.record_invitation(&write).await.expect("record invitation with mail");
        (invitation, mail)
    }

    async fn mail_claim_is_exclusive_and_marks_need_the_lease(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let user = guest(&tenant, "ivy@fabrikam.com");
        let (_, mail) = invite_with_mail(&store, &tenant, UserWrite::Create(user), at(1), "h1").await;
        let stored = store.mail(tenant.id, mail.id).await.unwrap().expect("the mail is in the outbox");
        assert_eq!((stored.state, stored.attempts, stored.mail.clone()), (DeliveryState::Pending, 0, mail.clone()));

        let claimed = store.claim_mail("a", at(2), at(7), 10).await.unwrap();
        assert_eq!(claimed.iter().map(|m| m.mail.id).collect::<Vec<_>>(), vec![mail.id]);
        assert_eq!((claimed[0].claimed_by.as_deref(), claimed[0].claimed_until), (Some("a"), Some(at(7))));
        assert!(store.claim_mail("b", at(3), at(8), 10).await.unwrap().is_empty(), "a live lease keeps others off");
        assert!(!store.mark_mail_sent(mail.id, "b", at(3)).await.unwrap(), "only the holder records the outcome");
        assert!(store.mark_mail_sent(mail.id, "a", at(3)).await.unwrap());
        let sent = store.mail(tenant.id, mail.id).await.unwrap().unwrap();
        assert_eq!((sent.state, sent.attempts, sent.sent_date_time, sent.claimed_by), (DeliveryState::Sent, 1, Some(at(3)), None));
        assert_eq!((sent.mail.text_body.as_str(), sent.mail.html_body.as_str()), ("", ""), "the link leaves the database once sent");
        assert!(store.claim_mail("a", at(60), at(65), 10).await.unwrap().is_empty(), "a sent mail is never claimed again");
        assert!(!store.mark_mail_sent(mail.id, "a", at(4)).await.unwrap());
    }

    async fn mail_expired_lease_retry_and_give_up(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let mail = outgoing(tenant.id, None, None, "ivy@fabrikam.com", at(1));
        store.enqueue_mail(&pending(mail.clone()), &[]).await.unwrap();
        assert_eq!(store.claim_mail("a", at(2), at(3), 10).await.unwrap().len(), 1);
        // a died: its lease runs out and b takes over.
        assert_eq!(store.claim_mail("b", at(4), at(9), 10).await.unwrap().len(), 1);
        let failure = MailFailure::RetryAt { next_attempt: at(20), error: "connection refused".into() };
        assert!(!store.mark_mail_failed(mail.id, "a", &failure, &[]).await.unwrap(), "a lost its lease");
        let user = guest(&tenant, "ivy@fabrikam.com");
        let entry = audit(tenant.id, "Email delivery failed", &user, at(5));
        assert!(store.mark_mail_failed(mail.id, "b", &failure, std::slice::from_ref(&entry)).await.unwrap());
        assert_eq!(
            store.audit_record(tenant.id, entry.id).await.unwrap().map(|a| a.activity_display_name),
            Some("Email delivery failed".into())
        );
        let waiting = store.mail(tenant.id, mail.id).await.unwrap().unwrap();
        assert_eq!((waiting.state, waiting.attempts, waiting.next_attempt_date_time), (DeliveryState::Pending, 1, at(20)));
        assert_eq!(waiting.last_error.as_deref(), Some("connection refused"));
        assert!(store.claim_mail("a", at(19), at(25), 10).await.unwrap().is_empty(), "not due before its backoff ends");
        assert_eq!(store.claim_mail("a", at(20), at(25), 10).await.unwrap().len(), 1);
        let give_up = MailFailure::GiveUp { error: "still refused".into() };
        assert!(store.mark_mail_failed(mail.id, "a", &give_up, &[]).await.unwrap());
        let failed = store.mail(tenant.id, mail.id).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.attempts, failed.mail.text_body.as_str()), (DeliveryState::Failed, 2, ""));
        assert!(store.claim_mail("a", at(90), at(95), 10).await.unwrap().is_empty());
    }

    async fn concurrent_mail_claims_never_overlap(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let mut expected = BTreeSet::new();
        for n in 0..24 {
            let mail = outgoing(tenant.id, None, None, &format!("guest{n}@fabrikam.com"), at(1));
            expected.insert(mail.id);
            store.enqueue_mail(&pending(mail), &[]).await.unwrap();
        }
        let workers = (0..4).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_mail(&format!("w{w}"), at(2), at(30), 3).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|m| m.mail.id));
                }
            })
        });
        let mut seen = Vec::new();
        for worker in workers.collect::<Vec<_>>() {
            seen.extend(worker.await.unwrap());
        }
        let unique: BTreeSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a message was claimed twice");
        assert_eq!(unique, expected, "every message was claimed");
    }

    async fn mail_supersede_pending_list_and_unsubscribe(store: Arc<dyn Store>) {
        let tenant = new_tenant(&store, "contoso.onmicrosoft.com").await;
        let user = guest(&tenant, "ivy@fabrikam.com");
        let (first, first_mail) = invite_with_mail(&store, &tenant, UserWrite::Create(user.clone()), at(1), "h1").await;
        let current = store.user(tenant.id, &UserKey::Id(user.id)).await.unwrap().unwrap();
        let (second, second_mail) = invite_with_mail(&store, &tenant, UserWrite::Update(current), at(2), "h2").await;
        let superseded = store.mail(tenant.id, first_mail.id).await.unwrap().unwrap();
        assert_eq!((superseded.state, superseded.mail.text_body.as_str()), (DeliveryState::Superseded, ""), "a revoked link is not mailed");
        let other = guest(&tenant, "oak@fabrikam.com");
        let (third, _) = invite_with_mail(&store, &tenant, UserWrite::Create(other), at(3), "h3").await;

        let page = store.pending_invitations(tenant.id, None, 10).await.unwrap();
        assert_eq!(page.iter().map(|p| p.invitation.id).collect::<Vec<_>>(), vec![second.id, third.id], "revoked ones are not pending");
        assert_eq!(page[0].mail.as_ref().map(|m| (m.mail.id, m.state)), Some((second_mail.id, DeliveryState::Pending)));
        let after = guestlist_store::InvitationCursor { created_date_time: second.created_date_time, id: second.id };
        let rest = store.pending_invitations(tenant.id, Some(after), 10).await.unwrap();
        assert_eq!(rest.iter().map(|p| p.invitation.id).collect::<Vec<_>>(), vec![third.id]);
        assert_eq!(store.invitation(tenant.id, first.id).await.unwrap().map(|i| i.state), Some(TicketState::Revoked));
        assert_eq!(store.mails_for_invitation(tenant.id, second.id).await.unwrap().len(), 1);

        assert_eq!(store.unsubscribe_link("unsub-h2").await.unwrap(), Some((tenant.id, "ivy@fabrikam.com".to_string())));
        assert_eq!(store.unsubscribe_link("unknown").await.unwrap(), None);
        assert!(!store.is_unsubscribed(tenant.id, "IVY@fabrikam.com").await.unwrap());
        assert!(store.unsubscribe(tenant.id, "Ivy@Fabrikam.com", at(4), &[]).await.unwrap());
        assert!(store.is_unsubscribed(tenant.id, "ivy@FABRIKAM.com").await.unwrap());
        assert!(!store.unsubscribe(tenant.id, "ivy@fabrikam.com", at(5), &[]).await.unwrap(), "twice changes nothing");
        let elsewhere = new_tenant(&store, "fabrikam.onmicrosoft.com").await;
        assert!(!store.is_unsubscribed(elsewhere.id, "ivy@fabrikam.com").await.unwrap(), "per tenant");
    }
}

// ---- directory roles and tenant policies (issue 5 items 2 and 3) ----------------------------

store_tests!(role_assignments_add_list_remove_and_refusals, tenant_policies_upsert_with_audit);

async fn role_assignments_add_list_remove_and_refusals(store: Arc<dyn Store>) {
    use guestlist_domain::roles::{DirectoryRoleTemplate, RoleAssignment};
    let tenant = new_tenant(&store, &random_name()).await;
    let other = new_tenant(&store, &random_name()).await;
    let admin = create(&store, member(tenant.id, &format!("admin@{}", tenant.initial_domain), "Admin")).await;
    let stranger = create(&store, member(other.id, &format!("someone@{}", other.initial_domain), "Someone")).await;
    let assignment = |principal_id, role| RoleAssignment {
        id: ObjectId::new_random(),
        tenant_id: tenant.id,
        principal_id,
        role,
        created_date_time: at(3),
    };
    let global = assignment(admin.id, DirectoryRoleTemplate::GlobalAdministrator);
    store.add_role_assignment(&global, &[audit(tenant.id, "Add member to role", &admin, at(3))]).await.expect("assign");
    let helpdesk = RoleAssignment { created_date_time: at(4), ..assignment(admin.id, DirectoryRoleTemplate::HelpdeskAdministrator) };
    store.add_role_assignment(&helpdesk, &[]).await.expect("second role");
    assert_eq!(store.role_assignments(tenant.id, None).await.unwrap(), vec![global.clone(), helpdesk.clone()]);
    assert_eq!(store.role_assignments(tenant.id, Some(admin.id)).await.unwrap().len(), 2);
    assert_eq!(store.role_assignment(tenant.id, global.id).await.unwrap(), Some(global.clone()));
    assert_eq!(store.role_assignment(other.id, global.id).await.unwrap(), None);

    // The same role twice is a conflict; a user of another tenant or no user at all is not found.
    let again = assignment(admin.id, DirectoryRoleTemplate::GlobalAdministrator);
    assert_eq!(
        conflict(store.add_role_assignment(&again, &[audit(tenant.id, "Add member to role", &admin, at(5))]).await),
        Conflict::Duplicate
    );
    for principal in [stranger.id, ObjectId::new_random()] {
        let refused = store.add_role_assignment(&assignment(principal, DirectoryRoleTemplate::GuestInviter), &[]).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    }
    let audits = store.audit_records(tenant.id, 10).await.unwrap();
    assert_eq!(audits.len(), 1, "refused assignments write no audit entry");

    store
        .remove_role_assignment(tenant.id, helpdesk.id, &[audit(tenant.id, "Remove member from role", &admin, at(6))])
        .await
        .expect("remove");
    assert!(matches!(store.remove_role_assignment(tenant.id, helpdesk.id, &[]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.remove_role_assignment(other.id, global.id, &[]).await, Err(StoreError::NotFound)));
    assert_eq!(store.role_assignments(tenant.id, None).await.unwrap(), vec![global.clone()]);
    assert_eq!(store.audit_records(tenant.id, 10).await.unwrap().len(), 2);

    // Deleting the user drops its assignments.
    store.delete_user(tenant.id, admin.id, &[]).await.expect("delete user");
    assert!(store.role_assignments(tenant.id, None).await.unwrap().is_empty());
}

async fn tenant_policies_upsert_with_audit(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store, &random_name()).await;
    let other = new_tenant(&store, &random_name()).await;
    let someone = create(&store, member(tenant.id, &format!("someone@{}", tenant.initial_domain), "Someone")).await;
    assert_eq!(store.tenant_policy(tenant.id, "B2BManagementPolicy").await.unwrap(), None);
    let first = r#"{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":["a.com"],"BlockedDomains":[]}}}"#;
    store
        .put_tenant_policy(tenant.id, "B2BManagementPolicy", first, at(1), &[audit(tenant.id, "Update policy", &someone, at(1))])
        .await
        .unwrap();
    let second =
        r#"{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":[],"BlockedDomains":["x.com"]}}}"#;
    store
        .put_tenant_policy(tenant.id, "B2BManagementPolicy", second, at(2), &[audit(tenant.id, "Update policy", &someone, at(2))])
        .await
        .unwrap();
    store.put_tenant_policy(tenant.id, "authorizationPolicy", "{}", at(2), &[]).await.unwrap();
    assert_eq!(store.tenant_policy(tenant.id, "B2BManagementPolicy").await.unwrap().as_deref(), Some(second));
    assert_eq!(store.tenant_policy(tenant.id, "authorizationPolicy").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(store.tenant_policy(other.id, "B2BManagementPolicy").await.unwrap(), None);
    let audits = store.audit_records(tenant.id, 10).await.unwrap();
    assert_eq!(audits.iter().filter(|a| a.activity_display_name == "Update policy").count(), 2);
}

// ---- member sign-in: passwords, OAuth grants, attempt slots (issues 5, 9) --------------------

store_tests!(
    user_passwords_set_replace_and_scope,
    user_password_change_is_compare_and_set,
    oauth_grants_insert_and_look_up,
    oauth_grant_transition_is_compare_and_set,
    oauth_grant_exchange_spends_once,
    oauth_family_revocation_takes_live_grants_only,
    device_polls_count_once_an_interval,
    spent_oauth_grants_are_pruned_in_batches,
    concurrent_attempts_take_exactly_the_limit_of_slots,
    attempt_slots_are_given_back_and_windows_pruned,
);

mod grants {
    use super::*;
    pub use guestlist_domain::signin::{GrantKind, GrantState, OAuthGrant};

    /// A grant of `kind` in its first state, issued at `at(0)`, expiring at `expires`.
    pub fn grant(tenant: TenantId, kind: GrantKind, user: Option<ObjectId>, family: ObjectId, expires: DateTime<Utc>) -> OAuthGrant {
        let (state, redirect_uri, code_challenge, nonce, user_code) = match kind {
            GrantKind::AuthorizationCode => (
                GrantState::Active,
                Some("http://localhost:8400/callback".to_string()),
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string()),
                Some("n-0S6_WzA2Mj".to_string()),
                None,
            ),
            GrantKind::RefreshToken => (GrantState::Active, None, None, None, None),
            GrantKind::DeviceCode => (GrantState::Pending, None, None, None, Some(random_name()[..8].to_uppercase())),
        };
        OAuthGrant {
            token_hash: random_name(),
            tenant_id: tenant,
            kind,
            state,
            client_id: ObjectId::new_random(),
            user_id: if kind == GrantKind::DeviceCode { None } else { user },
            family_id: family,
            scope: "User.Read.All openid offline_access".into(),
            redirect_uri,
            code_challenge,
            nonce,
            user_code,
            created_date_time: at(0),
            expires_date_time: expires,
        }
    }

    /// The next refresh token of `spent`'s family.
    pub fn next_refresh(spent: &OAuthGrant, user: ObjectId, expires: DateTime<Utc>) -> OAuthGrant {
        OAuthGrant { client_id: spent.client_id, ..grant(spent.tenant_id, GrantKind::RefreshToken, Some(user), spent.family_id, expires) }
    }

    pub async fn state(store: &Arc<dyn Store>, grant: &OAuthGrant) -> Option<GrantState> {
        store.oauth_grant(&grant.token_hash).await.unwrap().map(|g| g.state)
    }

    /// A tenant and a member to sign in.
    pub async fn fixture(store: &Arc<dyn Store>) -> (Tenant, User) {
        let tenant = new_tenant(store, &random_name()).await;
        let user = create(store, member(tenant.id, &format!("alice@{}", tenant.initial_domain), "Alice")).await;
        (tenant, user)
    }
}

async fn user_passwords_set_replace_and_scope(store: Arc<dyn Store>) {
    let (tenant, alice) = grants::fixture(&store).await;
    let other = new_tenant(&store, &random_name()).await;
    let bob = create(&store, member(tenant.id, &format!("bob@{}", tenant.initial_domain), "Bob")).await;
    let stored = |hash: &str, force: bool| Some(StoredPassword { hash: hash.into(), force_change_next_sign_in: force });
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), None);
    store.set_user_password(tenant.id, alice.id, "$argon2id$v=19$first", true, at(1)).await.unwrap();
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), stored("$argon2id$v=19$first", true));
    // A second set replaces the hash and the flag; it is per user and per tenant.
    store.set_user_password(tenant.id, alice.id, "$argon2id$v=19$second", false, at(2)).await.unwrap();
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), stored("$argon2id$v=19$second", false));
    assert_eq!(store.user_password(tenant.id, bob.id).await.unwrap(), None);
    assert_eq!(store.user_password(other.id, alice.id).await.unwrap(), None);
    // The hash goes with its user.
    store.delete_user(tenant.id, alice.id, &[]).await.unwrap();
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), None);
}

async fn user_password_change_is_compare_and_set(store: Arc<dyn Store>) {
    let (tenant, alice) = grants::fixture(&store).await;
    let other = new_tenant(&store, &random_name()).await;
    store.set_user_password(tenant.id, alice.id, "$argon2id$v=19$first", true, at(1)).await.unwrap();
    let entry = |n: i64| audit(tenant.id, "Change user password", &alice, at(n));
    // From a hash that is no longer current, or in another tenant: nothing written.
    assert!(!store
        .change_user_password(tenant.id, alice.id, "$argon2id$v=19$stale", "$argon2id$v=19$x", at(2), &[entry(2)])
        .await
        .unwrap());
    assert!(!store.change_user_password(other.id, alice.id, "$argon2id$v=19$first", "$argon2id$v=19$x", at(2), &[entry(2)]).await.unwrap());
    let unchanged = StoredPassword { hash: "$argon2id$v=19$first".into(), force_change_next_sign_in: true };
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), Some(unchanged));
    assert!(store.audit_records(tenant.id, 10).await.unwrap().is_empty());
    // From the current hash: replaced, the flag cleared, the audit entry written; a second
    // change from the same hash loses.
    assert!(store
        .change_user_password(tenant.id, alice.id, "$argon2id$v=19$first", "$argon2id$v=19$new", at(3), &[entry(3)])
        .await
        .unwrap());
    assert!(!store
        .change_user_password(tenant.id, alice.id, "$argon2id$v=19$first", "$argon2id$v=19$other", at(4), &[entry(4)])
        .await
        .unwrap());
    let changed = StoredPassword { hash: "$argon2id$v=19$new".into(), force_change_next_sign_in: false };
    assert_eq!(store.user_password(tenant.id, alice.id).await.unwrap(), Some(changed));
    let audits = store.audit_records(tenant.id, 10).await.unwrap();
    assert_eq!(audits.iter().map(|a| a.activity_display_name.as_str()).collect::<Vec<_>>(), ["Change user password"]);
}

/// Reserve-before-hash (issue 9 item 2): 20 concurrent attempts against a limit of 5 get exactly
/// the slots 1 to 5; the other 15 are refused and count nothing.
async fn concurrent_attempts_take_exactly_the_limit_of_slots(store: Arc<dyn Store>) {
    let scope = format!("sign-in:account:{}", random_name());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, scope) = (store.clone(), scope.clone());
            tokio::spawn(async move { store.reserve_attempt(&scope, 900, 5).await.unwrap() })
        })
        .collect();
    let mut granted = vec![];
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(count) => granted.push(count),
            None => refused += 1,
        }
    }
    granted.sort();
    assert_eq!(granted, vec![1, 2, 3, 4, 5]);
    assert_eq!(refused, 15);
    assert_eq!(store.attempt_count(&scope, 900).await.unwrap(), 5);
    // Other windows and scopes are counted apart.
    assert_eq!(store.reserve_attempt(&scope, 1_800, 5).await.unwrap(), Some(1));
    assert_eq!(store.reserve_attempt(&format!("{scope}-other"), 900, 5).await.unwrap(), Some(1));
    assert_eq!(store.attempt_count(&scope, 900).await.unwrap(), 5);
}

async fn attempt_slots_are_given_back_and_windows_pruned(store: Arc<dyn Store>) {
    let scope = format!("sign-in:address:{}", random_name());
    assert_eq!(store.attempt_count(&scope, 900).await.unwrap(), 0);
    // Releasing where nothing is taken stays at zero.
    store.release_attempt(&scope, 900).await.unwrap();
    assert_eq!(store.reserve_attempt(&scope, 900, 2).await.unwrap(), Some(1));
    assert_eq!(store.reserve_attempt(&scope, 900, 2).await.unwrap(), Some(2));
    assert_eq!(store.reserve_attempt(&scope, 900, 2).await.unwrap(), None);
    store.release_attempt(&scope, 900).await.unwrap();
    assert_eq!(store.attempt_count(&scope, 900).await.unwrap(), 1);
    assert_eq!(store.reserve_attempt(&scope, 900, 2).await.unwrap(), Some(2));
    for _ in 0..3 {
        store.release_attempt(&scope, 900).await.unwrap();
    }
    assert_eq!(store.attempt_count(&scope, 900).await.unwrap(), 0);

    // Pruning deletes windows that started before the cutoff, a batch at a time.
    for window in [100, 200, 300] {
        store.reserve_attempt(&scope, window, 5).await.unwrap();
    }
    assert_eq!(store.prune_attempts(250, 1).await.unwrap(), 1);
    assert_eq!(store.attempt_count(&scope, 100).await.unwrap(), 0, "the oldest first");
    assert_eq!(store.attempt_count(&scope, 200).await.unwrap(), 1);
    assert_eq!(store.prune_attempts(250, 10).await.unwrap(), 1);
    assert_eq!(store.attempt_count(&scope, 200).await.unwrap(), 0);
    assert_eq!(store.attempt_count(&scope, 300).await.unwrap(), 1);
}

async fn oauth_grants_insert_and_look_up(store: Arc<dyn Store>) {
    use grants::*;
    let (tenant, alice) = fixture(&store).await;
    let code = grant(tenant.id, GrantKind::AuthorizationCode, Some(alice.id), ObjectId::new_random(), at(10));
    let refresh = grant(tenant.id, GrantKind::RefreshToken, Some(alice.id), code.family_id, at(60 * 24 * 90));
    let device = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    for g in [&code, &refresh, &device] {
        store.insert_oauth_grant(g).await.expect("insert grant");
    }
    // Every field comes back as written, optional ones included.
    assert_eq!(store.oauth_grant(&code.token_hash).await.unwrap(), Some(code.clone()));
    assert_eq!(store.oauth_grant(&refresh.token_hash).await.unwrap(), Some(refresh.clone()));
    assert_eq!(store.oauth_grant(&device.token_hash).await.unwrap(), Some(device.clone()));
    assert_eq!(store.oauth_grant("no-such-hash").await.unwrap(), None);
    let user_code = device.user_code.clone().unwrap();
    assert_eq!(store.oauth_grant_by_user_code(&user_code).await.unwrap(), Some(device.clone()));
    assert_eq!(store.oauth_grant_by_user_code("NOSUCHCD").await.unwrap(), None);

    // A token hash and a user code each name one grant.
    let same_hash = OAuthGrant {
        token_hash: code.token_hash.clone(),
        ..grant(tenant.id, GrantKind::RefreshToken, Some(alice.id), code.family_id, at(20))
    };
    assert_eq!(conflict(store.insert_oauth_grant(&same_hash).await), Conflict::Duplicate);
    let same_user_code =
        OAuthGrant { user_code: Some(user_code.clone()), ..grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15)) };
    assert_eq!(conflict(store.insert_oauth_grant(&same_user_code).await), Conflict::Duplicate);
    assert_eq!(store.oauth_grant(&code.token_hash).await.unwrap(), Some(code));

    // Grants go with their user (device codes nobody approved have none).
    store.delete_user(tenant.id, alice.id, &[]).await.unwrap();
    assert_eq!(store.oauth_grant(&refresh.token_hash).await.unwrap(), None);
    assert_eq!(store.oauth_grant(&device.token_hash).await.unwrap(), Some(device));
}

async fn oauth_grant_transition_is_compare_and_set(store: Arc<dyn Store>) {
    use grants::*;
    let (tenant, alice) = fixture(&store).await;
    let device = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    store.insert_oauth_grant(&device).await.unwrap();
    let hash = device.token_hash.as_str();

    // Pending → approved sets the user; the same move again finds nothing to move.
    assert!(store.transition_oauth_grant(hash, GrantState::Pending, GrantState::Approved, Some(alice.id), at(1)).await.unwrap());
    let approved = store.oauth_grant(hash).await.unwrap().unwrap();
    assert_eq!((approved.state, approved.user_id), (GrantState::Approved, Some(alice.id)));
    assert!(!store.transition_oauth_grant(hash, GrantState::Pending, GrantState::Denied, None, at(2)).await.unwrap());
    assert_eq!(state(&store, &device).await, Some(GrantState::Approved));
    // Without a user the stored one stays.
    assert!(store.transition_oauth_grant(hash, GrantState::Approved, GrantState::Used, None, at(3)).await.unwrap());
    let used = store.oauth_grant(hash).await.unwrap().unwrap();
    assert_eq!((used.state, used.user_id), (GrantState::Used, Some(alice.id)));
    assert!(!store.transition_oauth_grant("no-such-hash", GrantState::Pending, GrantState::Approved, None, at(3)).await.unwrap());

    // An expired grant never moves: at its expiry instant or later.
    let late = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    store.insert_oauth_grant(&late).await.unwrap();
    for now in [at(15), at(16)] {
        assert!(!store
            .transition_oauth_grant(&late.token_hash, GrantState::Pending, GrantState::Approved, Some(alice.id), now)
            .await
            .unwrap());
    }
    assert_eq!(store.oauth_grant(&late.token_hash).await.unwrap(), Some(late));

    // Of concurrent approvals and denials of one device code exactly one wins.
    let contested = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    store.insert_oauth_grant(&contested).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let hash = contested.token_hash.clone();
            let to = if i % 2 == 0 { GrantState::Approved } else { GrantState::Denied };
            tokio::spawn(async move { store.transition_oauth_grant(&hash, GrantState::Pending, to, Some(alice.id), at(1)).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(matches!(state(&store, &contested).await, Some(GrantState::Approved | GrantState::Denied)));
}

async fn oauth_grant_exchange_spends_once(store: Arc<dyn Store>) {
    use grants::*;
    let (tenant, alice) = fixture(&store).await;
    let code = grant(tenant.id, GrantKind::AuthorizationCode, Some(alice.id), ObjectId::new_random(), at(10));
    store.insert_oauth_grant(&code).await.unwrap();

    // The first exchange spends the code and stores the family's refresh token.
    let first = next_refresh(&code, alice.id, at(60 * 24 * 90));
    assert!(store.exchange_oauth_grant(&code.token_hash, GrantState::Active, &first, at(1)).await.unwrap());
    assert_eq!(state(&store, &code).await, Some(GrantState::Used));
    assert_eq!(store.oauth_grant(&first.token_hash).await.unwrap(), Some(first.clone()));
    // The second loses and writes nothing.
    let second = next_refresh(&code, alice.id, at(60 * 24 * 90));
    assert!(!store.exchange_oauth_grant(&code.token_hash, GrantState::Active, &second, at(2)).await.unwrap());
    assert_eq!(store.oauth_grant(&second.token_hash).await.unwrap(), None);
    assert!(!store.exchange_oauth_grant("no-such-hash", GrantState::Active, &second, at(2)).await.unwrap());
    assert_eq!(store.oauth_grant(&second.token_hash).await.unwrap(), None);

    // An expired grant, or one in another state than `from`, is not spent.
    let expired = grant(tenant.id, GrantKind::AuthorizationCode, Some(alice.id), ObjectId::new_random(), at(10));
    store.insert_oauth_grant(&expired).await.unwrap();
    let issued = next_refresh(&expired, alice.id, at(100));
    assert!(!store.exchange_oauth_grant(&expired.token_hash, GrantState::Active, &issued, at(10)).await.unwrap());
    let device = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    store.insert_oauth_grant(&device).await.unwrap();
    assert!(!store.exchange_oauth_grant(&device.token_hash, GrantState::Approved, &issued, at(1)).await.unwrap());
    assert_eq!(state(&store, &expired).await, Some(GrantState::Active));
    assert_eq!(state(&store, &device).await, Some(GrantState::Pending));
    assert_eq!(store.oauth_grant(&issued.token_hash).await.unwrap(), None);

    // Spending and storing are one transaction: when the new grant can't be stored the old one
    // stays unspent.
    let clash = OAuthGrant { token_hash: first.token_hash.clone(), ..next_refresh(&expired, alice.id, at(100)) };
    let unspent = grant(tenant.id, GrantKind::RefreshToken, Some(alice.id), ObjectId::new_random(), at(100));
    store.insert_oauth_grant(&unspent).await.unwrap();
    assert_eq!(conflict(store.exchange_oauth_grant(&unspent.token_hash, GrantState::Active, &clash, at(1)).await), Conflict::Duplicate);
    assert_eq!(state(&store, &unspent).await, Some(GrantState::Active));
    assert_eq!(store.oauth_grant(&first.token_hash).await.unwrap(), Some(first.clone()));

    // Of concurrent exchanges of one refresh token exactly one wins, and only its successor is stored.
    let successors: Vec<OAuthGrant> = (0..8).map(|_| next_refresh(&first, alice.id, at(60 * 24 * 90))).collect();
    let tasks: Vec<_> = successors
        .iter()
        .cloned()
        .map(|next| {
            let store = store.clone();
            let spent = first.token_hash.clone();
            tokio::spawn(async move { store.exchange_oauth_grant(&spent, GrantState::Active, &next, at(3)).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(state(&store, &first).await, Some(GrantState::Used));
    let mut stored = 0;
    for next in &successors {
        stored += usize::from(store.oauth_grant(&next.token_hash).await.unwrap().is_some());
    }
    assert_eq!(stored, 1);
}

async fn oauth_family_revocation_takes_live_grants_only(store: Arc<dyn Store>) {
    use grants::*;
    let (tenant, alice) = fixture(&store).await;
    let other = new_tenant(&store, &random_name()).await;
    let family = ObjectId::new_random();
    let code = grant(tenant.id, GrantKind::AuthorizationCode, Some(alice.id), family, at(10));
    store.insert_oauth_grant(&code).await.unwrap();
    let first = next_refresh(&code, alice.id, at(1_000));
    assert!(store.exchange_oauth_grant(&code.token_hash, GrantState::Active, &first, at(1)).await.unwrap());
    let second = next_refresh(&code, alice.id, at(1_000));
    assert!(store.exchange_oauth_grant(&first.token_hash, GrantState::Active, &second, at(2)).await.unwrap());
    // Device codes of the family in each live state, and one already denied.
    let in_state = |state| OAuthGrant { state, ..grant(tenant.id, GrantKind::DeviceCode, None, family, at(15)) };
    let (pending, approved, denied) = (in_state(GrantState::Pending), in_state(GrantState::Approved), in_state(GrantState::Denied));
    // Another sign-in of the tenant, and a grant of another tenant that happens to share the family id.
    let unrelated = grant(tenant.id, GrantKind::RefreshToken, Some(alice.id), ObjectId::new_random(), at(1_000));
    let elsewhere = OAuthGrant { tenant_id: other.id, ..grant(other.id, GrantKind::DeviceCode, None, family, at(15)) };
    for g in [&pending, &approved, &denied, &unrelated, &elsewhere] {
        store.insert_oauth_grant(g).await.unwrap();
    }

    assert_eq!(store.revoke_oauth_family(tenant.id, family).await.unwrap(), 3, "second, pending and approved");
    for (g, expected) in [
        (&code, GrantState::Used),
        (&first, GrantState::Used),
        (&second, GrantState::Revoked),
        (&pending, GrantState::Revoked),
        (&approved, GrantState::Revoked),
        (&denied, GrantState::Denied),
        (&unrelated, GrantState::Active),
        (&elsewhere, GrantState::Pending),
    ] {
        assert_eq!(state(&store, g).await, Some(expected), "{:?} {:?}", g.kind, g.state);
    }
    assert_eq!(store.revoke_oauth_family(tenant.id, family).await.unwrap(), 0, "revoking twice changes nothing");
    // A revoked refresh token can't be exchanged.
    let after = next_refresh(&second, alice.id, at(1_000));
    assert!(!store.exchange_oauth_grant(&second.token_hash, GrantState::Active, &after, at(3)).await.unwrap());
}

async fn device_polls_count_once_an_interval(store: Arc<dyn Store>) {
    use grants::*;
    let tenant = new_tenant(&store, &random_name()).await;
    let device = grant(tenant.id, GrantKind::DeviceCode, None, ObjectId::new_random(), at(15));
    store.insert_oauth_grant(&device).await.unwrap();
    let hash = device.token_hash.as_str();
    let t0 = at(1);
    let interval = Duration::seconds(5);
    let poll = |now: DateTime<Utc>| {
        let store = store.clone();
        async move { store.record_device_poll(hash, now, now - interval).await.unwrap() }
    };
    assert!(poll(t0).await, "the first poll counts");
    assert!(!poll(t0 + Duration::seconds(2)).await, "too soon");
    // A refused poll is not recorded: the interval still runs from t0.
    assert!(poll(t0 + interval).await, "exactly one interval later");
    assert!(!poll(t0 + interval + Duration::milliseconds(4_999)).await);
    assert!(poll(t0 + interval * 2).await);
    assert!(!store.record_device_poll("no-such-hash", t0, t0 - interval).await.unwrap());

    // Of concurrent polls at one instant one counts.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let hash = device.token_hash.clone();
            let now = t0 + interval * 3;
            tokio::spawn(async move { store.record_device_poll(&hash, now, now - interval).await.unwrap() })
        })
        .collect();
    let mut counted = 0;
    for task in tasks {
        counted += usize::from(task.await.unwrap());
    }
    assert_eq!(counted, 1);
}

async fn spent_oauth_grants_are_pruned_in_batches(store: Arc<dyn Store>) {
    use grants::*;
    let (tenant, alice) = fixture(&store).await;
    let other = new_tenant(&store, &random_name()).await;
    let now = at(60 * 24 * 30);
    let cutoff = now - Duration::days(1);
    let family = ObjectId::new_random();
    let expiring =
        |kind, minutes_before_now: i64| grant(tenant.id, kind, Some(alice.id), family, now - Duration::minutes(minutes_before_now));

    // Expired more than a day ago, in every kind and whatever the state: these go.
    let mut spent = vec![
        OAuthGrant { state: GrantState::Used, ..expiring(GrantKind::AuthorizationCode, 60 * 24 * 3) },
        expiring(GrantKind::AuthorizationCode, 60 * 24 + 1),
        OAuthGrant { state: GrantState::Used, ..expiring(GrantKind::RefreshToken, 60 * 24 * 2) },
        OAuthGrant { state: GrantState::Revoked, ..expiring(GrantKind::RefreshToken, 60 * 25) },
        expiring(GrantKind::DeviceCode, 60 * 24 * 5),
        OAuthGrant { state: GrantState::Denied, ..expiring(GrantKind::DeviceCode, 60 * 24 + 30) },
    ];
    // Another tenant's too: pruning is housekeeping over the whole database.
    spent.push(OAuthGrant { tenant_id: other.id, ..grant(other.id, GrantKind::DeviceCode, None, family, now - Duration::days(2)) });
    // Live, recently expired, and expired exactly a day ago: these stay.
    let kept = vec![
        expiring(GrantKind::RefreshToken, -60 * 24 * 90),
        expiring(GrantKind::AuthorizationCode, -5),
        OAuthGrant { state: GrantState::Used, ..expiring(GrantKind::AuthorizationCode, 1) },
        OAuthGrant { state: GrantState::Used, ..expiring(GrantKind::RefreshToken, 60 * 23) },
        expiring(GrantKind::DeviceCode, 60 * 24 - 1),
        expiring(GrantKind::RefreshToken, 60 * 24),
    ];
    for g in spent.iter().chain(&kept) {
        store.insert_oauth_grant(g).await.unwrap();
    }

    // Bounded batches, oldest expiry first, until nothing is left to prune.
    assert_eq!(store.prune_oauth_grants(cutoff, 3).await.unwrap(), 3);
    let mut by_expiry = spent.clone();
    by_expiry.sort_by_key(|g| g.expires_date_time);
    for g in &by_expiry[..3] {
        assert_eq!(store.oauth_grant(&g.token_hash).await.unwrap(), None, "oldest first");
    }
    assert_eq!(store.prune_oauth_grants(cutoff, 3).await.unwrap(), 3);
    assert_eq!(store.prune_oauth_grants(cutoff, 3).await.unwrap(), 1);
    assert_eq!(store.prune_oauth_grants(cutoff, 3).await.unwrap(), 0);
    for g in &spent {
        assert_eq!(store.oauth_grant(&g.token_hash).await.unwrap(), None, "{:?} expiring {}", g.kind, g.expires_date_time);
    }
    for g in &kept {
        assert_eq!(store.oauth_grant(&g.token_hash).await.unwrap().as_ref(), Some(g), "{:?} expiring {}", g.kind, g.expires_date_time);
    }
    // A pruned device code's user code may be handed out again.
    let reused = OAuthGrant {
        user_code: spent[4].user_code.clone(),
        ..grant(tenant.id, GrantKind::DeviceCode, None, family, now + Duration::minutes(15))
    };
    store.insert_oauth_grant(&reused).await.expect("the user code is free again");

    // Replicas pruning at once delete each grant once, without errors.
    let many: Vec<OAuthGrant> =
        (0..40).map(|i| OAuthGrant { state: GrantState::Used, ..expiring(GrantKind::RefreshToken, 60 * 24 * 2 + i) }).collect();
    for g in &many {
        store.insert_oauth_grant(g).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut deleted = 0;
                loop {
                    match store.prune_oauth_grants(cutoff, 7).await.unwrap() {
                        0 => return deleted,
                        n => deleted += n,
                    }
                }
            })
        })
        .collect();
    let mut deleted = 0;
    for task in tasks {
        deleted += task.await.unwrap();
    }
    assert_eq!(deleted, 40);
    for g in &many {
        assert_eq!(store.oauth_grant(&g.token_hash).await.unwrap(), None);
    }
    for g in &kept {
        assert!(store.oauth_grant(&g.token_hash).await.unwrap().is_some());
    }
}
