//! The `guestlist` binary's client commands: `invite`, `reset-redemption`, `user get`, `user list`.
//!
//! # Output contract (scripts depend on it)
//!
//! Success, default: readable text on stdout (not stable; parse `--json` instead).
//!
//! Success with `--json`, on stdout, exactly what Graph returned:
//! * `invite`, `reset-redemption`: the invitation object of `POST /v1.0/invitations`
//!   (`{"id", "inviteRedeemUrl", "invitedUser": {"id", ...}, "status", ...}`).
//! * `user get`: the user object of `GET /v1.0/users/{id}` (with the `$select` used, see below).
//! * `user list`: a JSON **array** of user objects, all pages concatenated (never the `{"value": ...}` envelope).
//!
//! Failure: nothing on stdout; on stderr either `error: <one readable line>` or, with `--json`, one line
//! `{"error": {"status": <HTTP status or null>, "code": "<string>", "message": "<string>", "requestId": <string or null>}}`.
//! `code` is Graph's `error.code` (e.g. `Request_ResourceNotFound`), the token endpoint's `error`
//! (e.g. `invalid_client`, with the `AADSTS...` text as `message`), or one of the client's own:
//! `ConfigurationError`, `ConnectionFailed`, `InvalidResponse`, `ClientError` (these have `status: null`).
//!
//! Exit codes: 0 success; 1 the server refused or could not be reached (Graph, token, connection errors);
//! 2 usage or configuration error (missing connection file, bad URL, unreadable CA certificate). Clap's own
//! argument errors also exit with 2.
//!
//! `$select`: `user list` asks for `id,displayName,userPrincipalName,userType,externalUserState` and `user get`
//! for the B2B-relevant set in [`crate::output::USER_GET_SELECT`], unless `--select` says otherwise; `--json`
//! output carries the same properties.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::connection::{ConfigError, Connection, ConnectionOverrides, DEFAULT_CONNECTION_PATH};
use crate::graph::{GraphClient, InviteParams, DEFAULT_REDIRECT_URL};
use crate::output::{self, ErrorReport};

/// How the client commands find the server. Every option is global so it may follow the subcommand.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct ClientArgs {
    /// connection.json written by `guestlist serve` into its data directory
    #[arg(long, global = true, env = "GUESTLIST_CONNECTION", value_name = "PATH", default_value = DEFAULT_CONNECTION_PATH)]
    pub connection: PathBuf,
    /// Graph origin, e.g. https://127.0.0.1:8443 (overrides graphUrl)
    #[arg(long, global = true, value_name = "URL")]
    pub graph_url: Option<String>,
    /// Token authority origin (overrides authorityUrl; defaults to the Graph URL without a file)
    #[arg(long, global = true, value_name = "URL")]
    pub authority_url: Option<String>,
    /// Tenant id or domain (overrides tenantId)
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Application (client) id (overrides clientId)
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Client secret (overrides clientSecret)
    #[arg(long, global = true, env = "GUESTLIST_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub client_secret: Option<String>,
    /// PEM file of the CA to trust (overrides caCertificate)
    #[arg(long, global = true, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Print Graph's JSON on stdout, and errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,
    /// Use the app credentials even when `guestlist login` cached a person's sign-in
    #[arg(long, global = true)]
    pub app: bool,
}

// The client secret must never reach a log line or an error message.
impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("connection", &self.connection)
            .field("graph_url", &self.graph_url)
            .field("authority_url", &self.authority_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| format_args!("[redacted]")))
            .field("ca_cert", &self.ca_cert)
            .field("json", &self.json)
            .field("app", &self.app)
            .finish()
    }
}

impl Default for ClientArgs {
    fn default() -> Self {
        ClientArgs {
            connection: PathBuf::from(DEFAULT_CONNECTION_PATH),
            graph_url: None,
            authority_url: None,
            tenant: None,
            client_id: None,
            client_secret: None,
            ca_cert: None,
            json: false,
            app: false,
        }
    }
}

impl ClientArgs {
    pub fn overrides(&self) -> ConnectionOverrides {
        ConnectionOverrides {
            graph_url: self.graph_url.clone(),
            authority_url: self.authority_url.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            ca_cert: self.ca_cert.clone(),
        }
    }

    /// The connection file with the flags on top, or the flags alone when the file is absent.
    pub fn resolve_connection(&self) -> Result<Connection, ConfigError> {
        Connection::resolve(&self.connection, &self.overrides())
    }
}

/// The client commands, to be flattened into the binary's subcommands.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ClientCommand {
    /// Invite a guest (POST /v1.0/invitations)
    Invite {
        /// Email address to invite
        #[arg(long)]
        email: String,
        /// Where the guest lands after redeeming
        #[arg(long, default_value = DEFAULT_REDIRECT_URL, value_name = "URL")]
        redirect_url: String,
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Have the server email the invitation
        #[arg(long)]
        send_message: bool,
        /// Custom message body of the invitation email
        #[arg(long)]
        message: Option<String>,
        /// One address that gets a copy of the invitation email
        #[arg(long, value_name = "EMAIL")]
        cc: Option<String>,
        /// Language of the invitation email, e.g. en-US
        #[arg(long)]
        language: Option<String>,
        /// Invite as an external member (invitedUserType Member) instead of a guest
        #[arg(long)]
        member: bool,
    },
    /// Reset a guest's redemption so it redeems again, possibly with another email
    ResetRedemption {
        /// Object id or user principal name of the user to reset
        #[arg(long, value_name = "ID_OR_UPN")]
        user: String,
        /// Email the guest will redeem with (its mail, original invite email, or one of otherMails)
        #[arg(long)]
        email: String,
        #[arg(long, default_value = DEFAULT_REDIRECT_URL, value_name = "URL")]
        redirect_url: String,
        /// Have the server email the new invitation
        #[arg(long)]
        send_message: bool,
    },
    /// Read users
    #[command(subcommand)]
    User(UserCommand),
    /// Sign in as a person with the device code flow; later commands act as that person
    Login,
    /// Forget the cached sign-in
    Logout,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum UserCommand {
    /// Show one user (GET /v1.0/users/{id or UPN})
    Get {
        /// Object id or user principal name
        #[arg(value_name = "ID_OR_UPN")]
        id_or_upn: String,
        /// Properties to return, comma-separated ($select)
        #[arg(long, value_name = "PROPS")]
        select: Option<String>,
    },
    /// List users (GET /v1.0/users), all pages
    List {
        /// OData filter, e.g. "userType eq 'Guest'"
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
        /// Properties to return and show as columns, comma-separated ($select)
        #[arg(long, value_name = "PROPS")]
        select: Option<String>,
        /// Page size ($top); every page is fetched
        #[arg(long, value_name = "N")]
        top: Option<u32>,
    },
}

/// The client commands as a stand-alone parser (used by tests; the binary embeds the parts instead).
#[derive(Debug, clap::Parser)]
#[command(name = "guestlist")]
pub struct ClientCli {
    #[command(flatten)]
    pub args: ClientArgs,
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// Runs one client command, prints its result or error, and returns the exit code (see the module docs).
pub async fn run(args: &ClientArgs, command: ClientCommand) -> ExitCode {
    match execute(args, command).await {
        Ok(out) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            let report = ErrorReport::from_error(&err);
            let _ = std::io::stderr().lock().write_all(report.render(args.json).as_bytes());
            ExitCode::from(report.exit_code)
        }
    }
}

/// Runs one client command and returns what goes to stdout.
pub async fn execute(args: &ClientArgs, command: ClientCommand) -> anyhow::Result<String> {
    let client = GraphClient::new(args.resolve_connection()?)?;
    match command {
        ClientCommand::Login => {
            // The code and URL go to stderr, so `--json` output stays one document on stdout.
            let login = crate::login::device_login(&client, |message| eprintln!("{message}")).await?;
            crate::login::save(&login)?;
            let username = login.username.clone().unwrap_or_default();
            return Ok(if args.json {
                format!("{}\n", serde_json::json!({"userPrincipalName": username, "tenantId": login.tenant_id}))
            } else {
                format!("Signed in as {username}.\n")
            });
        }
        ClientCommand::Logout => {
            let deleted = crate::login::delete()?;
            return Ok(match (args.json, deleted) {
                (true, _) => format!("{}\n", serde_json::json!({"signedOut": deleted})),
                (false, true) => "Signed out.\n".to_string(),
                (false, false) => "Not signed in.\n".to_string(),
            });
        }
        _ => {}
    }
    let conn = client.connection();
    let client = match (args.app, crate::login::load(&conn.authority_url, &conn.tenant_id)) {
        (false, Some(login)) => client.with_login(login),
        _ => client,
    };
    execute_with(&client, args.json, command).await
}

/// As [`execute`], with a client built elsewhere (tests build one from a `Connection` value).
pub async fn execute_with(client: &GraphClient, json: bool, command: ClientCommand) -> anyhow::Result<String> {
    let pretty = |v: &serde_json::Value| format!("{}\n", serde_json::to_string_pretty(v).expect("JSON values serialize"));
    match command {
        ClientCommand::Login | ClientCommand::Logout => {
            Err(ConfigError("login and logout run through `execute`, not with a prepared client".into()).into())
        }
        ClientCommand::Invite { email, redirect_url, display_name, send_message, message, cc, language, member } => {
            let params = InviteParams {
                email: email.clone(),
                redirect_url,
                display_name,
                send_message,
                message,
                cc,
                language,
                user_type: member.then(|| "Member".to_string()),
            };
            let inv = client.invite(params).await?;
            Ok(if json { pretty(&inv) } else { output::render_invitation(&format!("Invited {email}"), &inv) })
        }
        ClientCommand::ResetRedemption { user, email, redirect_url, send_message } => {
            let inv = client.reset_redemption(&user, &email, &redirect_url, send_message).await?;
            Ok(if json {
                pretty(&inv)
            } else {
                output::render_invitation(&format!("Reset redemption of {user}; it redeems again as {email}"), &inv)
            })
        }
        ClientCommand::User(UserCommand::Get { id_or_upn, select }) => {
            let select = select.as_deref().unwrap_or(output::USER_GET_SELECT);
            let user = client.get_user(&id_or_upn, Some(select)).await?;
            Ok(if json { pretty(&user) } else { output::render_user(&user, select) })
        }
        ClientCommand::User(UserCommand::List { filter, select, top }) => {
            let select = select.as_deref().unwrap_or(output::USER_LIST_SELECT);
            let users = client.list_users(filter.as_deref(), Some(select), top).await?;
            Ok(if json { pretty(&serde_json::Value::Array(users)) } else { output::render_user_table(&users, select) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn parse(argv: &[&str]) -> ClientCli {
        ClientCli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn clap_definition_is_valid() {
        ClientCli::command().debug_assert();
    }

    #[test]
    fn invite_defaults_and_global_flags_after_subcommand() {
        let cli = parse(&["guestlist", "invite", "--email", "alice@example.com", "--json", "--connection", "/tmp/c.json"]);
        assert!(cli.args.json);
        assert_eq!(cli.args.connection, PathBuf::from("/tmp/c.json"));
        assert_eq!(
            cli.command,
            ClientCommand::Invite {
                email: "alice@example.com".into(),
                redirect_url: "https://myapps.microsoft.com".into(),
                display_name: None,
                send_message: false,
                message: None,
                cc: None,
                language: None,
                member: false
            }
        );
    }

    #[test]
    fn reset_and_user_commands_parse() {
        let cli =
            parse(&["guestlist", "reset-redemption", "--user", "a_b.com#EXT#@t.onmicrosoft.com", "--email", "a@c.com", "--send-message"]);
        assert!(
            matches!(cli.command, ClientCommand::ResetRedemption { send_message: true, ref user, .. } if user == "a_b.com#EXT#@t.onmicrosoft.com")
        );
        let cli = parse(&["guestlist", "user", "get", "abc", "--select", "id,mail"]);
        assert_eq!(cli.command, ClientCommand::User(UserCommand::Get { id_or_upn: "abc".into(), select: Some("id,mail".into()) }));
        let cli = parse(&["guestlist", "--json", "user", "list", "--filter", "userType eq 'Guest'", "--top", "5"]);
        assert!(cli.args.json);
        assert_eq!(
            cli.command,
            ClientCommand::User(UserCommand::List { filter: Some("userType eq 'Guest'".into()), select: None, top: Some(5) })
        );
    }

    #[test]
    fn invite_requires_email() {
        let err = ClientCli::try_parse_from(["guestlist", "invite"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[tokio::test]
    async fn missing_connection_file_is_a_config_error_with_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let args = ClientArgs { connection: dir.path().join("connection.json"), ..Default::default() };
        let err = execute(&args, ClientCommand::User(UserCommand::List { filter: None, select: None, top: None })).await.unwrap_err();
        let report = ErrorReport::from_error(&err);
        assert_eq!(report.exit_code, 2);
        assert!(report.message.contains("connection.json"), "{}", report.message);
        assert!(report.message.contains("guestlist serve"), "{}", report.message);
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connection_failure_with_exit_1() {
        // Port 9 (discard) on loopback is closed on any sane test machine.
        let args = ClientArgs {
            connection: PathBuf::from("/nonexistent/connection.json"),
            graph_url: Some("http://127.0.0.1:9".into()),
            tenant: Some("t".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..Default::default()
        };
        let err = execute(&args, ClientCommand::User(UserCommand::Get { id_or_upn: "x".into(), select: None })).await.unwrap_err();
        let report = ErrorReport::from_error(&err);
        assert_eq!((report.code.as_str(), report.exit_code), ("ConnectionFailed", 1), "{}", report.message);
        assert!(report.message.contains("http://127.0.0.1:9/t/oauth2/v2.0/token"), "{}", report.message);
    }
}

/// The embedding the `guestlist` binary uses: client options flattened at the top, commands flattened
/// next to the binary's own, which may reuse names like `--json` and `--tenant`.
#[cfg(test)]
mod embedding_tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Bin {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: Cmd,
    }
    #[derive(Subcommand)]
    enum Cmd {
        Serve,
        #[command(subcommand)]
        App(AppCmd),
        #[command(flatten)]
        Client(ClientCommand),
    }
    #[derive(Subcommand)]
    enum AppCmd {
        Add {
            #[arg(long)]
            tenant: Option<String>,
            #[arg(long)]
            json: bool,
        },
    }

    #[test]
    fn parses_client_and_own_commands() {
        Bin::command().debug_assert();
        let b = Bin::try_parse_from(["guestlist", "user", "list", "--json", "--tenant", "contoso.onmicrosoft.com"]).unwrap();
        assert!(b.client.json);
        assert_eq!(b.client.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
        assert!(matches!(b.command, Cmd::Client(ClientCommand::User(UserCommand::List { .. }))));
        let b = Bin::try_parse_from(["guestlist", "app", "add", "--json", "--tenant", "x"]).unwrap();
        assert!(matches!(b.command, Cmd::App(AppCmd::Add { json: true, tenant: Some(ref t) }) if t == "x"));
        assert!(matches!(Bin::try_parse_from(["guestlist", "serve"]).unwrap().command, Cmd::Serve));
    }
}
