//! `$filter` on `/users`: nom parses the text into an untyped tree (`syntax`), which is then checked against the user's
//! properties and types into `UserFilter` (`lower`). `format_user_filter` prints a tree back as `$filter` text.

mod audit;
mod group;
mod lower;
mod print;
mod syntax;

use guestlist_domain::filter::{GroupFilter, UserFilter};

pub use audit::parse_audit_filter;
pub use lower::MAX_CLAUSES;
pub use print::format_user_filter;
pub use syntax::MAX_NESTING;

use crate::ODataError;

/// Parses Graph's `$filter` grammar for users (already percent-decoded) into the typed filter tree.
pub fn parse_user_filter(text: &str) -> Result<UserFilter, ODataError> {
    let expr = syntax::parse(text).map_err(|(offset, reason)| syntax_error(text, offset, reason))?;
    lower::lower(expr)
}

/// Parses `$filter` on `/groups` (already percent-decoded) into the typed group filter tree.
pub fn parse_group_filter(text: &str) -> Result<GroupFilter, ODataError> {
    let expr = syntax::parse(text).map_err(|(offset, reason)| syntax_error(text, offset, reason))?;
    group::lower_group(expr)
}

/// Graph passes ODataLib's lexer message through: `Syntax error at position 11 in 'userType eq'.` (positions count characters).
fn syntax_error(text: &str, offset: usize, reason: Option<&'static str>) -> ODataError {
    let position = text[..offset].chars().count();
    let message = match (reason, text[offset..].chars().next()) {
        (Some(reason), _) => format!("Invalid filter clause: {reason} at position {position} in '{text}'."),
        (None, None) => format!("Invalid filter clause: Syntax error at position {position} in '{text}'."),
        (None, Some(c)) => format!("Invalid filter clause: Syntax error: character '{c}' is not valid at position {position} in '{text}'."),
    };
    ODataError::BadRequest(message)
}

#[cfg(test)]
mod tests;
