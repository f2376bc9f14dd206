//! `$filter` on `/users`: nom parses the text into an untyped tree (`syntax`), which is then checked against the user's
//! properties and types into `UserFilter` (`lower`). `format_user_filter` prints a tree back as `$filter` text.

mod audit;
mod group;
mod lower;
mod print;
mod syntax;

use guestlist_domain::filter::{GroupFilter, UserFilter};

pub use audit::parse_audit_filter;
pub use print::format_user_filter;

use crate::limits::{too_many_clauses, too_many_in_values, MAX_FILTER_CLAUSES, MAX_IN_VALUES};
use crate::ODataError;
use syntax::Expr;

/// Parses Graph's `$filter` grammar for users (already percent-decoded) into the typed filter tree.
pub fn parse_user_filter(text: &str) -> Result<UserFilter, ODataError> {
    lower::lower(parse_syntax(text)?)
}

/// Parses `$filter` on `/groups` (already percent-decoded) into the typed group filter tree.
pub fn parse_group_filter(text: &str) -> Result<GroupFilter, ODataError> {
    group::lower_group(parse_syntax(text)?)
}

/// The one way into a `$filter` of any resource: the syntax tree, refused when it is larger than
/// the limits allow (nesting is bounded by the parser itself).
fn parse_syntax(text: &str) -> Result<Expr, ODataError> {
    let expr = syntax::parse(text).map_err(|(offset, reason)| syntax_error(text, offset, reason))?;
    check_size(&expr)?;
    Ok(expr)
}

/// Counts clauses and `in` values with an explicit stack, so a huge tree costs no recursion.
fn check_size(expr: &Expr) -> Result<(), ODataError> {
    let mut clauses = 0usize;
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Or(items) | Expr::And(items) => pending.extend(items),
            Expr::Not(inner) => pending.push(inner),
            Expr::Lambda { body: Some((_, body)), .. } => pending.push(body),
            leaf => {
                if let Expr::In { values, .. } = leaf {
                    if values.len() > MAX_IN_VALUES {
                        return Err(too_many_in_values(values.len()));
                    }
                }
                clauses += 1;
                if clauses > MAX_FILTER_CLAUSES {
                    return Err(too_many_clauses());
                }
            }
        }
    }
    Ok(())
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
