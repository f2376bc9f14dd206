//! Pure domain rules of guestlist: the B2B guest lifecycle as Microsoft Graph defines it.
//!
//! Nothing in this crate performs I/O. Storage, services and HTTP build on these types;
//! nothing here depends on them.

pub mod audit;
pub mod audit_query;
pub mod authorization;
pub mod bulk_invite;
pub mod email;
pub mod error;
pub mod filter;
pub mod group;
pub mod ids;
pub mod invitation;
pub mod mail;
pub mod permissions;
pub mod policy;
pub mod redemption;
pub mod roles;
pub mod signin;
pub mod tenant;
pub mod ticket;
pub mod upn;
pub mod user;

pub use email::EmailAddress;
pub use error::DomainError;
pub use group::Group;
pub use ids::ObjectId;
pub use tenant::Tenant;
pub use upn::Upn;
pub use user::User;
