//! `$search` on users: `"displayName:wa"` clauses joined by `AND`/`OR`, parsed into the domain's
//! filter tree as [`UserFilter::Search`] nodes (Graph's advanced-query search, contract §6.4).

use guestlist_domain::filter::{UserField, UserFilter};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::{char, multispace0, multispace1};
use nom::combinator::all_consuming;
use nom::multi::many0;
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::IResult;

use crate::ODataError;

/// User properties Graph's `$search` tokenizes.
const SEARCHABLE: [UserField; 5] =
    [UserField::DisplayName, UserField::GivenName, UserField::Surname, UserField::Mail, UserField::UserPrincipalName];

#[derive(Clone, Copy)]
enum Joiner {
    And,
    Or,
}

/// A quoted clause: `"property:term"`.
fn clause(input: &str) -> IResult<&str, &str> {
    delimited(char('"'), take_while1(|c| c != '"'), char('"'))(input)
}

fn joiner(input: &str) -> IResult<&str, Joiner> {
    delimited(
        multispace1,
        alt((nom::combinator::value(Joiner::And, tag_no_case("AND")), nom::combinator::value(Joiner::Or, tag_no_case("OR")))),
        multispace1,
    )(input)
}

/// The first clause, then each further one with the word joining it.
type Clauses<'a> = (&'a str, Vec<(Joiner, &'a str)>);

fn expression(input: &str) -> IResult<&str, Clauses<'_>> {
    all_consuming(terminated(preceded(multispace0, pair(clause, many0(pair(joiner, clause)))), multispace0))(input)
}

/// One clause becomes one Search node per word of its term, all required (Graph matches every token).
fn clause_filter(text: &str) -> Result<UserFilter, ODataError> {
    let (property, term) = text.split_once(':').ok_or_else(|| {
        ODataError::BadRequest(format!("Invalid $search clause '\"{text}\"': use \"property:term\", e.g. \"displayName:alice\"."))
    })?;
    let field = UserField::from_graph_name(property.trim())
        .filter(|f| SEARCHABLE.contains(f))
        .ok_or_else(|| ODataError::UnsupportedQuery(format!("Search on property '{}' is not supported.", property.trim())))?;
    let mut words = term.split_whitespace().map(|word| UserFilter::Search { field, term: word.to_string() });
    let first =
        words.next().ok_or_else(|| ODataError::BadRequest(format!("Invalid $search clause '\"{text}\"': the search term is empty.")))?;
    Ok(words.fold(first, UserFilter::and))
}

/// Parses the (already percent-decoded) value of `$search`. `AND` binds tighter than `OR`.
pub fn parse_user_search(text: &str) -> Result<UserFilter, ODataError> {
    let (_, (first, rest)) = expression(text).map_err(|_| {
        ODataError::BadRequest(format!("Syntax error in $search '{text}': expected quoted \"property:term\" clauses joined by AND or OR."))
    })?;
    // Fold AND runs first, then OR them together.
    let mut disjuncts = vec![clause_filter(first)?];
    for (joiner, text) in rest {
        let next = clause_filter(text)?;
        match joiner {
            Joiner::And => {
                let last = disjuncts.pop().expect("disjuncts starts non-empty");
                disjuncts.push(last.and(next));
            }
            Joiner::Or => disjuncts.push(next),
        }
    }
    let mut iter = disjuncts.into_iter();
    let first = iter.next().expect("at least one clause");
    Ok(iter.fold(first, UserFilter::or))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(field: UserField, term: &str) -> UserFilter {
        UserFilter::Search { field, term: term.into() }
    }

    #[test]
    fn single_clause() {
        assert_eq!(parse_user_search("\"displayName:wa\"").unwrap(), search(UserField::DisplayName, "wa"));
        assert_eq!(parse_user_search("  \"MAIL:anna@\" ").unwrap(), search(UserField::Mail, "anna@"));
    }

    #[test]
    fn words_of_a_term_are_all_required() {
        assert_eq!(
            parse_user_search("\"displayName:anna lee\"").unwrap(),
            search(UserField::DisplayName, "anna").and(search(UserField::DisplayName, "lee"))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let parsed = parse_user_search("\"displayName:a\" OR \"mail:b\" and \"surname:c\"").unwrap();
        let expected = search(UserField::DisplayName, "a").or(search(UserField::Mail, "b").and(search(UserField::Surname, "c")));
        assert_eq!(parsed, expected);
    }

    #[test]
    fn refusals_carry_graphs_codes() {
        for (text, code) in [
            ("displayName:wa", "BadRequest"),
            ("\"displayName:wa", "BadRequest"),
            ("\"wa\"", "BadRequest"),
            ("\"displayName:\"", "BadRequest"),
            ("\"city:paris\"", "Request_UnsupportedQuery"),
            ("\"displayName:a\" XOR \"mail:b\"", "BadRequest"),
            ("", "BadRequest"),
        ] {
            assert_eq!(parse_user_search(text).unwrap_err().code(), code, "{text}");
        }
    }
}
