//! guestlist's Graph client: reads the server's `connection.json`, gets app-only tokens, and drives
//! invitations and users over Microsoft Graph v1.0. The `guestlist` binary embeds [`cli`]; the server's
//! integration tests build a [`GraphClient`] from a [`Connection`] value.
//!
//! Layout: [`connection`] (the file and its overrides) → [`urls`] (encoding, paging) → [`graph`] (HTTP calls)
//! → [`output`] (what the CLI prints) → [`cli`] (clap commands). Errors live in [`error`].

pub mod cli;
pub mod connection;
pub mod error;
pub mod graph;
pub mod login;
pub mod output;
pub mod urls;

pub use cli::{run, ClientArgs, ClientCli, ClientCommand, UserCommand};
pub use connection::{ConfigError, Connection, ConnectionOverrides, DEFAULT_CONNECTION_PATH};
pub use error::{ConnectionError, GraphError, InvalidResponse, TokenError};
pub use graph::{GraphClient, InviteParams, DEFAULT_REDIRECT_URL, GRAPH_SCOPE};
pub use output::ErrorReport;
