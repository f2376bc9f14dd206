//! `$search` on users and groups: `"displayName:wa"` clauses joined by `AND`/`OR`, parsed into the
//! domain's filter trees as [`UserFilter::Search`] / [`GroupFilter::Search`] nodes (Graph's
//! advanced-query search, contract §6.4).

use guestlist_domain::filter::{GroupField, GroupFilter, UserField, UserFilter};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::{char, multispace0, multispace1};
use nom::combinator::all_consuming;
use nom::multi::many0;
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::IResult;

use crate::limits::{too_many_search_words, MAX_SEARCH_WORDS};
use crate::ODataError;

/// User properties Graph's `$search` tokenizes.
const SEARCHABLE: [UserField; 5] =
    [UserField::DisplayName, UserField::GivenName, UserField::Surname, UserField::Mail, UserField::UserPrincipalName];

/// Group properties Graph's `$search` tokenizes.
const SEARCHABLE_GROUP: [GroupField; 3] = [GroupField::DisplayName, GroupField::Description, GroupField::Mail];

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

/// How one resource's filter tree holds a search: the node for one word of a property's term,
/// and the joins.
struct SearchTree<F, T> {
    /// The searchable property of this name (case-insensitive), if any.
    field: fn(&str) -> Option<F>,
    word: fn(F, String) -> T,
    and: fn(T, T) -> T,
    or: fn(T, T) -> T,
}

/// One clause becomes one Search node per word of its term, all required (Graph matches every token).
fn clause_filter<F: Copy, T>(tree: &SearchTree<F, T>, text: &str) -> Result<T, ODataError> {
    let (property, term) = text.split_once(':').ok_or_else(|| {
        ODataError::BadRequest(format!("Invalid $search clause '\"{text}\"': use \"property:term\", e.g. \"displayName:alice\"."))
    })?;
    let field = (tree.field)(property.trim())
        .ok_or_else(|| ODataError::UnsupportedQuery(format!("Search on property '{}' is not supported.", property.trim())))?;
    let mut words = term.split_whitespace().map(|word| (tree.word)(field, word.to_string()));
    let first =
        words.next().ok_or_else(|| ODataError::BadRequest(format!("Invalid $search clause '\"{text}\"': the search term is empty.")))?;
    Ok(words.fold(first, tree.and))
}

/// The words of one clause's term, each of which becomes its own search node.
fn word_count(clause: &str) -> usize {
    clause.split_once(':').map_or(0, |(_, term)| term.split_whitespace().count())
}

/// Parses the (already percent-decoded) value of `$search`. `AND` binds tighter than `OR`.
fn parse_search<F: Copy, T>(tree: &SearchTree<F, T>, text: &str) -> Result<T, ODataError> {
    let (_, (first, rest)) = expression(text).map_err(|_| {
        ODataError::BadRequest(format!("Syntax error in $search '{text}': expected quoted \"property:term\" clauses joined by AND or OR."))
    })?;
    let words: usize = std::iter::once(first).chain(rest.iter().map(|(_, text)| *text)).map(word_count).sum();
    if words > MAX_SEARCH_WORDS {
        return Err(too_many_search_words());
    }
    // Fold AND runs first, then OR them together.
    let mut disjuncts = vec![clause_filter(tree, first)?];
    for (joiner, text) in rest {
        let next = clause_filter(tree, text)?;
        match joiner {
            Joiner::And => {
                let last = disjuncts.pop().expect("disjuncts starts non-empty");
                disjuncts.push((tree.and)(last, next));
            }
            Joiner::Or => disjuncts.push(next),
        }
    }
    let mut iter = disjuncts.into_iter();
    let first = iter.next().expect("at least one clause");
    Ok(iter.fold(first, tree.or))
}

/// `$search` on `/users` (displayName, givenName, surname, mail, userPrincipalName).
pub fn parse_user_search(text: &str) -> Result<UserFilter, ODataError> {
    let tree = SearchTree {
        field: |name| UserField::from_graph_name(name).filter(|f| SEARCHABLE.contains(f)),
        word: |field, term| UserFilter::Search { field, term },
        and: UserFilter::and,
        or: UserFilter::or,
    };
    parse_search(&tree, text)
}

/// `$search` on `/groups` (displayName, description, mail).
pub fn parse_group_search(text: &str) -> Result<GroupFilter, ODataError> {
    let tree = SearchTree {
        field: |name| GroupField::from_graph_name(name).filter(|f| SEARCHABLE_GROUP.contains(f)),
        word: |field, term| GroupFilter::Search { field, term },
        and: GroupFilter::and,
        or: GroupFilter::or,
    };
    parse_search(&tree, text)
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

    #[test]
    fn words_are_bounded_over_all_clauses() {
        let words = |n: usize| format!("\"displayName:{}\"", vec!["a"; n].join(" "));
        assert!(parse_user_search(&words(MAX_SEARCH_WORDS)).is_ok());
        assert!(parse_group_search(&words(MAX_SEARCH_WORDS)).is_ok());
        for text in [words(MAX_SEARCH_WORDS + 1), words(50_000)] {
            for refused in [parse_user_search(&text).unwrap_err(), parse_group_search(&text).unwrap_err()] {
                assert_eq!(refused.code(), "BadRequest");
                assert!(refused.message().contains(&format!("more than {MAX_SEARCH_WORDS} words")), "{refused}");
            }
        }
        // The words of a search are one flat conjunction.
        assert!(matches!(parse_user_search(&words(MAX_SEARCH_WORDS)).unwrap(), UserFilter::And(items) if items.len() == MAX_SEARCH_WORDS));
        // Words count across clauses, whatever joins them.
        let half = MAX_SEARCH_WORDS / 2;
        let two = |second: usize| format!("\"mail:{}\" OR \"displayName:{}\"", vec!["a"; half].join(" "), vec!["b"; second].join(" "));
        assert!(parse_user_search(&two(MAX_SEARCH_WORDS - half)).is_ok());
        assert_eq!(parse_user_search(&two(MAX_SEARCH_WORDS - half + 1)).unwrap_err().code(), "BadRequest");
        let clauses = vec!["\"displayName:a\""; 50_000].join(" AND ");
        assert_eq!(parse_user_search(&clauses).unwrap_err().code(), "BadRequest");
    }

    #[test]
    fn groups_search_display_name_description_and_mail() {
        let word = |field, term: &str| GroupFilter::Search { field, term: term.into() };
        assert_eq!(
            parse_group_search("\"displayName:sales team\" OR \"DESCRIPTION:eu\"").unwrap(),
            word(GroupField::DisplayName, "sales").and(word(GroupField::DisplayName, "team")).or(word(GroupField::Description, "eu"))
        );
        assert_eq!(parse_group_search("\"mail:sales@\"").unwrap(), word(GroupField::Mail, "sales@"));
        assert_eq!(parse_group_search("\"mailNickname:x\"").unwrap_err().code(), "Request_UnsupportedQuery");
        assert_eq!(parse_group_search("\"surname:x\"").unwrap_err().code(), "Request_UnsupportedQuery");
        assert_eq!(parse_group_search("displayName:x").unwrap_err().code(), "BadRequest");
    }
}
