//! guestlist: a self-hostable directory server for the Microsoft Entra ID B2B guest lifecycle,
//! speaking Microsoft Graph.
//!
//! Layers, each depending only on those before it: `guestlist-domain` (pure rules) ←
//! `guestlist-store` (one trait, SQLite and PostgreSQL) ← [`services`] (invite, reset, users,
//! tokens) ← [`http`] (Graph API, OAuth endpoints) and the CLI.

pub mod admin;
pub mod config;
pub mod connection;
pub mod http;
pub mod key_encryption;
pub mod mail;
pub mod secret_files;
pub mod services;
pub mod tls;
