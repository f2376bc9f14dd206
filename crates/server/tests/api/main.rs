//! All integration tests in one binary (linking many is slow on 2 cores). Each starts the real
//! server in-process on port 0 and drives it over HTTPS; every storage case runs on SQLite and
//! on PostgreSQL (from `GUESTLIST_TEST_DATABASE_URL`; skipped with a message when unset).

mod browser;
mod harness;

mod audit;
mod auth;
mod cli;
mod console;
mod deletion;
mod errors;
mod gates;
mod group_queries;
mod groups;
mod guest_access;
mod invitations;
mod mail;
mod policies;
mod queries;
mod query_limits;
mod redemption;
mod reset;
mod robustness;
mod roles;
mod schema;
mod secrets;
mod server;
mod signin;
mod signin_limits;
mod sponsors;
mod users;
