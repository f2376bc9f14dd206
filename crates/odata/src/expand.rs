//! `$expand` as a list of navigation property names. Directory objects expand one level only
//! (Graph's query parameter limitations), and each property at most once, so one request's
//! expansion work is bounded by the number of navigation properties a type has.

use crate::ODataError;

/// The names `$expand` lists (already percent-decoded), in request order, without their options
/// (`sponsors($select=id,displayName)` names `sponsors`). Refuses an `$expand` inside an item's
/// options (a second level), a name listed twice, and unbalanced parentheses.
pub fn parse_expand(text: &str) -> Result<Vec<&str>, ODataError> {
    let mut names: Vec<&str> = Vec::new();
    for item in top_level_items(text)? {
        let (name, options) = match item.split_once('(') {
            Some((name, options)) => (name.trim(), options),
            None => (item.trim(), ""),
        };
        if name.is_empty() {
            continue;
        }
        if options.to_ascii_lowercase().contains("expand") {
            return Err(ODataError::UnsupportedQuery(format!(
                "Only one level of $expand is supported on directory objects; '{name}' asks for a nested $expand."
            )));
        }
        if names.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            return Err(ODataError::BadRequest(format!(
                "'{name}' appears more than once in $expand; each navigation property may be expanded once."
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Splits at commas outside parentheses, counting depth instead of recursing.
fn top_level_items(text: &str) -> Result<Vec<&str>, ODataError> {
    let unbalanced = || ODataError::BadRequest(format!("Invalid $expand '{text}': the parentheses are not balanced."));
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or_else(unbalanced)?,
            ',' if depth == 0 => {
                items.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(unbalanced());
    }
    items.push(&text[start..]);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_their_options() {
        assert_eq!(parse_expand("memberOf, sponsors($select=id,displayName)").unwrap(), ["memberOf", "sponsors"]);
        assert_eq!(parse_expand("members").unwrap(), ["members"]);
        assert!(parse_expand(" , ").unwrap().is_empty());
    }

    #[test]
    fn one_level_only() {
        let error = parse_expand("memberOf($expand=members)").unwrap_err();
        assert_eq!(error.code(), "Request_UnsupportedQuery");
        assert!(error.message().contains("one level"), "{error}");
        // Deep nesting is refused at the first level, by counting, without recursion.
        let deep = format!("{}{}", "members($expand=".repeat(100_000), ")".repeat(100_000));
        assert_eq!(parse_expand(&deep).unwrap_err().code(), "Request_UnsupportedQuery");
    }

    #[test]
    fn each_property_once() {
        let error = parse_expand("memberOf,sponsors,MEMBEROF").unwrap_err();
        assert_eq!(error.code(), "BadRequest");
        assert!(error.message().contains("more than once"), "{error}");
        let many = vec!["memberOf"; 10_000].join(",");
        assert_eq!(parse_expand(&many).unwrap_err().code(), "BadRequest");
    }

    #[test]
    fn unbalanced_parentheses_are_refused() {
        for text in ["members(", "members)", "members($select=id))("] {
            assert_eq!(parse_expand(text).unwrap_err().code(), "BadRequest", "{text}");
        }
    }
}
