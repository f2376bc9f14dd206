//! External collaboration settings: who may invite, what guests may read (`authorizationPolicy`),
//! and which domains may be invited (the allow/deny list).

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use guestlist_domain::policy::{AllowInvitesFrom, GuestUserRole, InvitationDomainPolicy};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{see_other, Problem, Session};
use crate::http::AppState;
use crate::services::ServiceError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/settings", get(settings_page))
        .route("/console/settings/invitations", post(save_invitations))
        .route("/console/settings/domains", post(save_domains))
}

fn allow_invites_label(value: AllowInvitesFrom) -> &'static str {
    match value {
        AllowInvitesFrom::Everyone => "Anyone in the organization can invite guest users including guests and non-admins",
        AllowInvitesFrom::AdminsGuestInvitersAndAllMembers => {
            "Member users and users assigned to specific admin roles can invite guest users"
        }
        AllowInvitesFrom::AdminsAndGuestInviters => "Only users assigned to specific admin roles can invite guest users",
        AllowInvitesFrom::None => "No one in the organization can invite guest users including admins",
    }
}

fn guest_role_label(value: GuestUserRole) -> &'static str {
    match value {
        GuestUserRole::SameAsMembers => "Guest users have the same access as members (most inclusive)",
        GuestUserRole::Limited => "Guest users have limited access to properties and memberships of directory objects",
        GuestUserRole::Restricted => {
            "Guest user access is restricted to properties and memberships of their own directory objects (most restrictive)"
        }
    }
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

/// The page with what the forms last sent, or the stored settings.
async fn render(state: &AppState, session: &Session, problem: Option<Problem>, notice: Option<&str>) -> Response {
    let caller = &session.caller;
    let policy = state.services.authorization_policy(caller).await.map_err(Problem::from);
    let domains = state.services.invitation_domain_policy(caller).await.map_err(Problem::from);
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let invitations = match &policy {
        Ok(policy) => context! {
            allow_invites_from => AllowInvitesFrom::ALL.iter().map(|v| context! {
                value => v.as_str(), label => allow_invites_label(*v), checked => *v == policy.allow_invites_from,
            }).collect::<Vec<_>>(),
            guest_roles => GuestUserRole::ALL.iter().map(|v| context! {
                value => v.role_id(), label => guest_role_label(*v), checked => *v == policy.guest_user_role,
            }).collect::<Vec<_>>(),
        },
        Err(_) => context! {},
    };
    let (mode, listed) = match &domains {
        Ok(InvitationDomainPolicy::AnyDomain) | Err(_) => ("any", String::new()),
        Ok(InvitationDomainPolicy::AllowList(list)) => ("allow", list.join("\n")),
        Ok(InvitationDomainPolicy::BlockList(list)) => ("block", list.join("\n")),
    };
    let read_problem = policy.as_ref().err().or(domains.as_ref().err()).cloned();
    let page = context! {
        title => "External collaboration settings",
        invitations, mode, listed, read_problem, problem, notice,
    };
    session.render(status, "console/settings.html", "settings", page)
}

async fn settings_page(State(state): State<AppState>, session: Session, Query(query): Query<DoneQuery>) -> Response {
    let notice = (query.done.as_deref() == Some("saved")).then_some("Settings saved.");
    render(&state, &session, None, notice).await
}

#[derive(Deserialize)]
struct InvitationsForm {
    csrf_token: Option<String>,
    allow_invites_from: Option<String>,
    guest_user_role: Option<String>,
}

async fn save_invitations(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: Result<Form<InvitationsForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render(&state, &session, Some(Problem::invalid("The settings form is malformed.")), None).await;
    };
    if let Err(rejection) = session.verify(&state, &headers, form.csrf_token.as_deref()) {
        return super::csrf_refused(rejection);
    }
    // The same PATCH body Graph's `PATCH /policies/authorizationPolicy` takes.
    let mut body = Map::new();
    if let Some(value) = form.allow_invites_from {
        body.insert("allowInvitesFrom".into(), Value::String(value));
    }
    if let Some(value) = form.guest_user_role {
        body.insert("guestUserRoleId".into(), Value::String(value));
    }
    match state.services.update_authorization_policy(&session.caller, &body).await {
        Ok(_) => see_other("/console/settings?done=saved"),
        Err(error) => render(&state, &session, Some(error.into()), None).await,
    }
}

#[derive(Deserialize)]
struct DomainsForm {
    csrf_token: Option<String>,
    mode: Option<String>,
    domains: Option<String>,
}

/// The form's mode and list as a policy (one domain per line or comma-separated).
fn domain_policy(mode: &str, domains: &str) -> Result<InvitationDomainPolicy, Problem> {
    let listed: Vec<&str> = domains.split(['\n', '\r', ',', ' ']).map(str::trim).filter(|d| !d.is_empty()).collect();
    let policy = match mode {
        "any" => Ok(InvitationDomainPolicy::AnyDomain),
        "allow" | "block" => InvitationDomainPolicy::parse_cli(&format!("{mode}:{}", listed.join(","))),
        other => return Err(Problem::invalid(format!("Unknown mode '{other}'."))),
    };
    policy.map_err(|e| Problem::from(ServiceError::from_directory_rule(e)))
}

async fn save_domains(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: Result<Form<DomainsForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render(&state, &session, Some(Problem::invalid("The settings form is malformed.")), None).await;
    };
    if let Err(rejection) = session.verify(&state, &headers, form.csrf_token.as_deref()) {
        return super::csrf_refused(rejection);
    }
    let outcome = async {
        let policy = domain_policy(form.mode.as_deref().unwrap_or("any"), form.domains.as_deref().unwrap_or_default())?;
        state.services.set_invitation_domain_policy(&session.caller, &policy).await?;
        Ok::<(), Problem>(())
    }
    .await;
    match outcome {
        Ok(()) => see_other("/console/settings?done=saved"),
        Err(problem) => render(&state, &session, Some(problem), None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_form_reads_lines_and_commas() {
        assert_eq!(domain_policy("any", "ignored.example").unwrap(), InvitationDomainPolicy::AnyDomain);
        assert_eq!(
            domain_policy("block", "evil.example\r\nbad.example, worse.example").unwrap(),
            InvitationDomainPolicy::BlockList(vec!["evil.example".into(), "bad.example".into(), "worse.example".into()])
        );
        let empty = domain_policy("allow", " \n ").unwrap_err();
        assert_eq!(empty.code, "Request_BadRequest");
        assert!(domain_policy("sometimes", "x.example").is_err());
    }
}
