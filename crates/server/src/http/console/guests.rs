//! The guest list, a guest's page, Resend, and Reset redemption status with the email picker.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use guestlist_domain::audit::{AuditRecord, Initiator};
use guestlist_domain::audit_query::{AuditClause, AuditFilter, AuditQuery};
use guestlist_domain::filter::{CompareOp, Literal, UserField, UserFilter, UserQuery};
use guestlist_domain::ids::ObjectId;
use guestlist_domain::invitation::{validate_redirect_url, InvitationRequest, MessageInfo};
use guestlist_domain::ticket::TicketState;
use guestlist_domain::user::ExternalUserState;
use guestlist_domain::{EmailAddress, User};
use guestlist_store::{PageRequest, PendingInvitation, UserKey};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::{see_other, take_redeem_link, with_redeem_link, Problem, Session};
use crate::http::AppState;
use crate::services::groups::Membership;
use crate::services::invitations::InvitationOutcome;
use crate::services::ServiceError;

const PAGE_SIZE: u32 = 50;
/// Where a reset sends the guest when no earlier invitation names a place (Entra's default).
const DEFAULT_REDIRECT: &str = "https://myapps.microsoft.com";
/// The reset form's value for "another address".
const NEW_ADDRESS: &str = "new";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/guests", get(list))
        .route("/console/guests/{id}", get(detail))
        .route("/console/guests/{id}/resend", post(resend))
        .route("/console/guests/{id}/reset", get(reset_page).post(reset))
        .route("/console/guests/{id}/delete", get(delete_page).post(delete))
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn state_label(user: &User) -> &'static str {
    match user.external_user_state {
        Some(ExternalUserState::PendingAcceptance) => "Pending acceptance",
        Some(ExternalUserState::Accepted) => "Accepted",
        None => "—",
    }
}

/// A user as the pages show it.
#[derive(Serialize)]
struct GuestView {
    id: String,
    display_name: String,
    mail: Option<String>,
    user_principal_name: String,
    user_type: &'static str,
    state: &'static str,
    pending: bool,
    state_changed: Option<String>,
    created: String,
    creation_type: Option<String>,
    invited_email: Option<String>,
    other_mails: Vec<String>,
    identities: Vec<(String, String, Option<String>)>,
    account_enabled: bool,
}

impl From<&User> for GuestView {
    fn from(user: &User) -> Self {
        GuestView {
            id: user.id.to_string(),
            display_name: user.display_name.clone(),
            mail: user.mail.clone(),
            user_principal_name: user.user_principal_name.to_string(),
            user_type: user.user_type.as_str(),
            state: state_label(user),
            pending: user.external_user_state == Some(ExternalUserState::PendingAcceptance),
            state_changed: user.external_user_state_change_date_time.map(when),
            created: when(user.created_date_time),
            creation_type: user.creation_type.clone(),
            invited_email: user.invited_email.clone(),
            other_mails: user.other_mails.clone(),
            identities: user.identities.iter().map(|i| (i.sign_in_type.clone(), i.issuer.clone(), i.issuer_assigned_id.clone())).collect(),
            account_enabled: user.account_enabled,
        }
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    state: Option<String>,
    domain: Option<String>,
    q: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// The list's filters as the store's typed filter: guests, by state, by mail domain, and a
/// word-prefix search over name, mail and UPN (Graph's `$search` semantics).
fn guest_filter(state: &str, domain: &str, search: &str) -> Result<UserFilter, Problem> {
    let text = |v: &str| Literal::String(v.to_string());
    let mut filter = UserFilter::Compare { field: UserField::UserType, op: CompareOp::Eq, value: text("Guest") };
    let wanted = match state {
        "" | "all" => None,
        "pending" => Some(ExternalUserState::PendingAcceptance),
        "accepted" => Some(ExternalUserState::Accepted),
        other => return Err(Problem::invalid(format!("Unknown state '{other}': choose all, pending or accepted."))),
    };
    if let Some(wanted) = wanted {
        filter = filter.and(UserFilter::Compare { field: UserField::ExternalUserState, op: CompareOp::Eq, value: text(wanted.as_str()) });
    }
    let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    if !domain.is_empty() {
        if !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            return Err(Problem::invalid(format!("'{domain}' is not a domain name.")));
        }
        filter = filter.and(UserFilter::EndsWith { field: UserField::Mail, suffix: format!("@{domain}") });
    }
    for word in search.split_whitespace().take(5) {
        let term = |field| UserFilter::Search { field, term: word.to_string() };
        filter = filter.and(term(UserField::DisplayName).or(term(UserField::Mail)).or(term(UserField::UserPrincipalName)));
    }
    Ok(filter)
}

fn list_url(state: &str, domain: &str, search: &str, after: &str) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("state", state), ("domain", domain), ("q", search), ("after", after)] {
        if !value.is_empty() {
            url.append_pair(name, value);
        }
    }
    format!("/console/guests?{}", url.finish())
}

async fn list(State(state): State<AppState>, session: Session, Query(query): Query<ListQuery>) -> Response {
    let wanted = query.state.as_deref().unwrap_or("all");
    let domain = query.domain.as_deref().unwrap_or_default();
    let search = query.q.as_deref().unwrap_or_default();
    let filters = context! { state => wanted, domain, q => search };
    let outcome = match guest_filter(wanted, domain, search) {
        Ok(filter) => {
            let query = UserQuery { filter: Some(filter), order: None, top: PAGE_SIZE, after: query.after.clone() };
            state.services.users(&session.caller, &query).await.map_err(Problem::from)
        }
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(page) => {
            let guests: Vec<GuestView> = page.users.iter().map(GuestView::from).collect();
            let next = page.next.as_deref().map(|token| list_url(wanted, domain, search, token));
            let notice = (query.done.as_deref() == Some("deleted")).then_some("Guest deleted. Their invitations no longer work.");
            let page = context! { title => "Guests", guests, filters, next, notice };
            session.render(StatusCode::OK, "console/guests.html", "guests", page)
        }
        Err(problem) => session.render(problem.status, "console/guests.html", "guests", context! { title => "Guests", filters, problem }),
    }
}

#[derive(Serialize)]
struct InvitationView {
    id: String,
    email: String,
    state: &'static str,
    reset: bool,
    created: String,
    expires: Option<String>,
    mail: Option<String>,
}

fn invitation_view(item: &PendingInvitation) -> InvitationView {
    let invitation = &item.invitation;
    InvitationView {
        id: invitation.id.to_string(),
        email: invitation.email.clone(),
        state: match invitation.state {
            TicketState::Pending => "Pending",
            TicketState::Redeemed => "Redeemed",
            TicketState::Revoked => "Revoked",
        },
        reset: invitation.reset_redemption,
        created: when(invitation.created_date_time),
        expires: invitation.expires_date_time.map(when),
        mail: item.mail.as_ref().map(|m| match &m.last_error {
            Some(error) => format!("{} ({error})", m.state.as_str()),
            None => m.state.as_str().to_string(),
        }),
    }
}

#[derive(Serialize)]
struct AuditView {
    when: String,
    activity: String,
    initiated_by: String,
    result: String,
    changes: Vec<String>,
}

fn audit_view(record: &AuditRecord) -> AuditView {
    AuditView {
        when: when(record.activity_date_time),
        activity: record.activity_display_name.clone(),
        initiated_by: match &record.initiated_by {
            Initiator::User { user_principal_name, .. } => user_principal_name.clone(),
            Initiator::App { display_name, .. } => format!("{display_name} (app)"),
        },
        result: record.result.clone(),
        changes: record
            .target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .map(|p| format!("{}: {}", p.display_name, p.new_value.as_deref().unwrap_or("")))
            .collect(),
    }
}

/// A section of the guest page either lists its items or says why it can't (Graph's refusal).
fn section<T: Serialize>(result: Result<T, ServiceError>) -> Value {
    match result {
        Ok(items) => context! { items },
        Err(error) => context! { problem => Problem::from(error) },
    }
}

fn parse_id(id: &str) -> Result<ObjectId, Problem> {
    ObjectId::parse(id).map_err(|_| Problem::from(ServiceError::NotFound(id.to_string())))
}

/// What a finished action says at the top of the guest page (after its redirect).
fn done_notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "invited" => Some("Invitation sent. The guest appears below as pending acceptance."),
        "resent" => Some("Invitation sent again with a new redeem link; earlier links no longer work."),
        "reset" => Some("Redemption status reset. The guest redeems again with the new invitation; earlier links no longer work."),
        _ => None,
    }
}

async fn guest_page(
    state: &AppState,
    session: &Session,
    id: &str,
    notice: Option<&str>,
    problem: Option<Problem>,
    redeem_link: Option<String>,
) -> Response {
    let services = &state.services;
    let caller = &session.caller;
    let user = match parse_id(id) {
        Ok(id) => services.user(caller, &UserKey::Id(id)).await.map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    let user = match user {
        Ok(user) => user,
        Err(problem) => {
            return session.render(problem.status, "console/guest.html", "guests", context! { title => "Guest", problem });
        }
    };
    let key = UserKey::Id(user.id);
    let invitations =
        services.invitations_of_user(caller, user.id).await.map(|items| items.iter().map(invitation_view).collect::<Vec<_>>());
    let can_resend = invitations.as_ref().is_ok_and(|items| items.iter().any(|i| i.state == "Pending"));
    let groups = services
        .user_member_of(caller, &key, Membership::Direct, &PageRequest { top: 100, after: None })
        .await
        .map(|page| page.groups.iter().map(|g| g.display_name.clone()).collect::<Vec<_>>());
    let sponsors = services
        .sponsors(caller, &key)
        .await
        .map(|users| users.iter().map(|u| format!("{} ({})", u.display_name, u.user_principal_name)).collect::<Vec<_>>());
    let query =
        AuditQuery { filter: AuditFilter { clauses: vec![AuditClause::TargetResourceId(user.id.to_string())] }, top: 25, after: None };
    let audit = services.directory_audits(caller, &query).await.map(|page| page.records.iter().map(audit_view).collect::<Vec<_>>());
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let page = context! {
        title => user.display_name.clone(),
        guest => GuestView::from(&user),
        invitations => section(invitations),
        can_resend,
        groups => section(groups),
        sponsors => section(sponsors),
        audit => section(audit),
        notice,
        redeem_link,
        problem,
    };
    session.render(status, "console/guest.html", "guests", page)
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let waiting = take_redeem_link(&state, &headers, &id);
    let link = waiting.as_ref().map(|(link, _)| link.clone());
    let mut response = guest_page(&state, &session, &id, done_notice(query.done.as_deref()), None, link).await;
    if let Some((_, forget)) = waiting {
        response.headers_mut().append(axum::http::header::SET_COOKIE, forget);
    }
    response
}

async fn resend(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<super::CsrfOnly>, FormRejection>,
) -> Response {
    let submitted = form.ok().and_then(|Form(f)| f.csrf_token);
    if let Err(rejection) = session.verify(&state, &headers, submitted.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let outcome = async {
        let user_id = parse_id(&id)?;
        let invitations = state.services.invitations_of_user(&session.caller, user_id).await?;
        let pending = invitations
            .iter()
            .find(|i| i.invitation.state == TicketState::Pending)
            .ok_or_else(|| Problem::invalid("This guest has no pending invitation to send again."))?;
        Ok::<_, Problem>(state.services.resend_invitation(&session.caller, pending.invitation.id).await?)
    }
    .await;
    match outcome {
        Ok(outcome) => with_redeem_link(&state, see_other(&format!("/console/guests/{id}?done=resent")), &outcome),
        Err(problem) => guest_page(&state, &session, &id, None, Some(problem), None).await,
    }
}

async fn delete_page(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    match load_user(&state, &session, &id).await {
        Ok(user) => {
            let page = context! { title => "Delete guest", guest => GuestView::from(&user) };
            session.render(StatusCode::OK, "console/delete.html", "guests", page)
        }
        Err(problem) => guest_page(&state, &session, &id, None, Some(problem), None).await,
    }
}

/// Deletes the guest through `DELETE /users`' service: its pending invitations are revoked, its
/// memberships and sponsor links go, and it is audited (`Delete external user`).
async fn delete(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<super::CsrfOnly>, FormRejection>,
) -> Response {
    let submitted = form.ok().and_then(|Form(f)| f.csrf_token);
    if let Err(rejection) = session.verify(&state, &headers, submitted.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let outcome = match parse_id(&id) {
        Ok(user_id) => state.services.delete_user(&session.caller, &UserKey::Id(user_id)).await.map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(()) => see_other("/console/guests?done=deleted"),
        Err(problem) => guest_page(&state, &session, &id, None, Some(problem), None).await,
    }
}

/// The addresses a reset may use (contract §3.4): mail, the original invitation's, otherMails.
fn reset_choices(user: &User) -> Vec<(String, &'static str)> {
    let mut choices: Vec<(String, &'static str)> = Vec::new();
    let mut add = |address: &str, source: &'static str| {
        if !address.is_empty() && !choices.iter().any(|(a, _)| a.eq_ignore_ascii_case(address)) {
            choices.push((address.to_string(), source));
        }
    };
    if let Some(mail) = &user.mail {
        add(mail, "current email (mail)");
    }
    if let Some(invited) = &user.invited_email {
        add(invited, "address of the original invitation");
    }
    for other in &user.other_mails {
        add(other, "other email (otherMails)");
    }
    choices
}

#[derive(Deserialize, Default, Serialize)]
struct ResetForm {
    #[serde(skip_serializing)]
    csrf_token: Option<String>,
    email: Option<String>,
    new_email: Option<String>,
    redirect_url: Option<String>,
    send_mail: Option<String>,
    message: Option<String>,
}

async fn reset_form(state: &AppState, session: &Session, user: &User, form: &ResetForm, problem: Option<Problem>) -> Response {
    let choices: Vec<Value> = reset_choices(user).into_iter().map(|(address, source)| context! { address, source }).collect();
    let selected = form.email.clone().or_else(|| user.mail.clone()).unwrap_or_default();
    let redirect_url = match &form.redirect_url {
        Some(url) => url.clone(),
        None => {
            let last = state.services.invitations_of_user(&session.caller, user.id).await.ok().and_then(|items| items.into_iter().next());
            last.map_or_else(|| DEFAULT_REDIRECT.to_string(), |item| item.invitation.redirect_url)
        }
    };
    let send_mail = form.send_mail.is_some() || form.email.is_none();
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let page = context! {
        title => "Reset redemption status",
        guest => GuestView::from(user),
        choices, selected, new_address => NEW_ADDRESS, new_email => form.new_email.clone().unwrap_or_default(),
        redirect_url, send_mail, message => form.message.clone().unwrap_or_default(),
        problem,
    };
    session.render(status, "console/reset.html", "guests", page)
}

async fn load_user(state: &AppState, session: &Session, id: &str) -> Result<User, Problem> {
    let id = parse_id(id)?;
    Ok(state.services.user(&session.caller, &UserKey::Id(id)).await?)
}

async fn reset_page(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    match load_user(&state, &session, &id).await {
        Ok(user) => reset_form(&state, &session, &user, &ResetForm::default(), None).await,
        Err(problem) => guest_page(&state, &session, &id, None, Some(problem), None).await,
    }
}

async fn reset(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return guest_page(&state, &session, &id, None, Some(Problem::invalid("The reset form is malformed.")), None).await;
    };
    if let Err(rejection) = session.verify(&state, &headers, form.csrf_token.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let user = match load_user(&state, &session, &id).await {
        Ok(user) => user,
        Err(problem) => return guest_page(&state, &session, &id, None, Some(problem), None).await,
    };
    match reset_with(&state, &session, user.clone(), &form).await {
        Ok(outcome) => with_redeem_link(&state, see_other(&format!("/console/guests/{}?done=reset", user.id)), &outcome),
        Err((user, problem)) => reset_form(&state, &session, &user, &form, Some(problem)).await,
    }
}

/// Resets redemption to the picked address; "another address" is added to otherMails first
/// (a `PATCH /users` through the same service), as the seed requires, once the reset is allowed.
async fn reset_with(state: &AppState, session: &Session, user: User, form: &ResetForm) -> Result<InvitationOutcome, (User, Problem)> {
    let refuse = |user: &User, error: ServiceError| (user.clone(), Problem::from(error));
    let picked = form.email.as_deref().unwrap_or_default();
    let email = if picked == NEW_ADDRESS {
        let typed = form.new_email.as_deref().unwrap_or_default().trim();
        EmailAddress::parse(typed).map_err(|e| (user.clone(), Problem::invalid(format!("New email address: {e}"))))?
    } else {
        EmailAddress::parse(picked).map_err(|e| refuse(&user, ServiceError::from_invitation_rule(e)))?
    };
    let redirect = form.redirect_url.as_deref().unwrap_or(DEFAULT_REDIRECT).trim();
    let redirect_url = validate_redirect_url(redirect).map_err(|e| refuse(&user, ServiceError::from_invitation_rule(e)))?;
    let message = form.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    let request = InvitationRequest {
        email,
        redirect_url,
        display_name: None,
        send_invitation_message: form.send_mail.is_some(),
        message_info: message.map(|m| MessageInfo { customized_message_body: Some(m.to_string()), ..MessageInfo::default() }),
        user_type: user.user_type,
        reset_redemption: true,
        invited_user_id: Some(user.id),
        sponsors: Vec::new(),
    };
    let result = if picked == NEW_ADDRESS {
        state.services.reset_to_new_address(&session.caller, request).await
    } else {
        state.services.invite(&session.caller, request).await
    };
    match result {
        Ok(outcome) => Ok(outcome),
        // The form shows the user as it is now (an added address included).
        Err(error) => {
            let current = state.services.user(&session.caller, &UserKey::Id(user.id)).await.unwrap_or(user);
            Err(refuse(&current, error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_the_typed_query() {
        let filter = guest_filter("pending", "@Example.COM", "ann lee").unwrap();
        assert!(filter.any_node(&|n| matches!(n, UserFilter::EndsWith { field: UserField::Mail, suffix } if suffix == "@example.com")));
        assert!(filter.any_node(&|n| matches!(n, UserFilter::Compare { field: UserField::ExternalUserState, value: Literal::String(v), .. } if v == "PendingAcceptance")));
        assert!(filter.any_node(&|n| matches!(n, UserFilter::Search { term, .. } if term == "lee")));
        assert!(guest_filter("gone", "", "").is_err());
        assert!(guest_filter("all", "x.com' or 1=1", "").is_err());
        let all = guest_filter("all", "", "").unwrap();
        assert!(!all.any_node(&|n| matches!(n, UserFilter::Compare { field: UserField::ExternalUserState, .. })));
    }

    #[test]
    fn reset_offers_each_address_once_with_where_it_comes_from() {
        let tenant = ObjectId::new_random();
        let upn = guestlist_domain::Upn::parse("ann_example.com#EXT#@contoso.onmicrosoft.com").unwrap();
        let mut user = User::new(tenant, upn, "Ann".into(), guestlist_domain::user::UserType::Guest, Utc::now());
        user.mail = Some("ann@example.com".into());
        user.invited_email = Some("ANN@example.com".into());
        user.other_mails = vec!["ann@new.example".into(), "ann@example.com".into()];
        let choices = reset_choices(&user);
        assert_eq!(
            choices,
            vec![("ann@example.com".to_string(), "current email (mail)"), ("ann@new.example".to_string(), "other email (otherMails)")]
        );
    }
}
