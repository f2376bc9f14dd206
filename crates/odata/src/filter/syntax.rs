//! `$filter` text into an untyped expression tree, with nom. Types and property names are checked later (`lower`).

use chrono::{DateTime, Utc};
use guestlist_domain::filter::CompareOp;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, digit1, multispace0, satisfy};
use nom::combinator::{cut, not, opt, peek, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::sequence::{pair, preceded, tuple};
use nom::{Err, IResult};

use crate::limits::MAX_FILTER_NESTING as MAX_NESTING;

/// Why a too deeply nested filter is refused; it names [`MAX_NESTING`] (a test keeps them equal).
pub(crate) const NESTED_TOO_DEEPLY: &str = "The filter is nested more than 50 levels deep";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    In {
        left: Operand,
        values: Vec<Operand>,
    },
    Call {
        name: String,
        args: Vec<Operand>,
    },
    /// `path/any(var: body)`; `body` is `None` for the argument-less `any()`.
    Lambda {
        collection: Vec<String>,
        quantifier: String,
        body: Option<(String, Box<Expr>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Path(Vec<String>),
    Literal(Lit),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    String(String),
    Boolean(bool),
    Null,
    DateTime(DateTime<Utc>),
    Integer(u64),
}

/// Where parsing stopped: the rest of the input at the furthest failure, and why when we know better than "syntax error".
#[derive(Debug)]
pub(crate) struct SyntaxError<'a> {
    pub at: &'a str,
    pub reason: Option<&'static str>,
}

impl<'a> ParseError<&'a str> for SyntaxError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        SyntaxError { at: input, reason: None }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Of two failed alternatives, report the one that got further.
    fn or(self, other: Self) -> Self {
        if other.at.len() <= self.at.len() {
            other
        } else {
            self
        }
    }
}

type Res<'a, T> = IResult<&'a str, T, SyntaxError<'a>>;

fn fail<'a, T>(at: &'a str, reason: &'static str) -> Res<'a, T> {
    Err(Err::Failure(SyntaxError { at, reason: Some(reason) }))
}

/// Parses a whole `$filter` value; on failure returns the byte offset and the reason.
pub(crate) fn parse(text: &str) -> Result<Expr, (usize, Option<&'static str>)> {
    let offset = |rest: &str| text.len() - rest.len();
    match tuple((multispace0, |i| or_expr(i, 0), multispace0))(text) {
        Ok(("", (_, expr, _))) => Ok(expr),
        Ok((rest, _)) => Err((offset(rest), None)),
        Err(Err::Error(e) | Err::Failure(e)) => Err((offset(e.at), e.reason)),
        Err(Err::Incomplete(_)) => Err((text.len(), None)),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A keyword or operator, matched case-insensitively and not as the prefix of a longer name.
fn keyword<'a>(word: &'static str) -> impl FnMut(&'a str) -> Res<'a, &'a str> {
    move |i| {
        let (rest, matched) = tag_no_case(word)(i)?;
        let (rest, _) = not(peek(satisfy(is_ident_char)))(rest)?;
        Ok((rest, matched))
    }
}

fn identifier(i: &str) -> Res<'_, &str> {
    recognize(pair(satisfy(|c| c.is_ascii_alphabetic() || c == '_'), take_while(is_ident_char)))(i)
}

fn or_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    binary_chain(i, depth, "or", and_expr, Expr::Or)
}

fn and_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    binary_chain(i, depth, "and", unary, Expr::And)
}

/// `operand (word operand)*`, kept flat so that long chains never build deep trees here.
fn binary_chain<'a>(
    i: &'a str,
    depth: usize,
    word: &'static str,
    operand: fn(&'a str, usize) -> Res<'a, Expr>,
    wrap: fn(Vec<Expr>) -> Expr,
) -> Res<'a, Expr> {
    let (mut rest, first) = operand(i, depth)?;
    let mut items = vec![first];
    while let Ok((after, _)) = preceded(multispace0, keyword(word))(rest) {
        let (after, _) = multispace0(after)?;
        let (after, next) = cut(|i| operand(i, depth))(after)?;
        items.push(next);
        rest = after;
    }
    Ok((rest, if items.len() == 1 { items.pop().expect("one item") } else { wrap(items) }))
}

fn unary(i: &str, depth: usize) -> Res<'_, Expr> {
    if depth >= MAX_NESTING {
        return fail(i, NESTED_TOO_DEEPLY);
    }
    if let Ok((rest, _)) = keyword("not")(i) {
        let (rest, _) = multispace0(rest)?;
        let (rest, inner) = cut(|i| unary(i, depth + 1))(rest)?;
        return Ok((rest, Expr::Not(Box::new(inner))));
    }
    primary(i, depth)
}

fn primary(i: &str, depth: usize) -> Res<'_, Expr> {
    if let Ok((rest, _)) = char::<_, SyntaxError>('(')(i) {
        let (rest, _) = multispace0(rest)?;
        let (rest, inner) = cut(|i| or_expr(i, depth + 1))(rest)?;
        let (rest, _) = cut(preceded(multispace0, char(')')))(rest)?;
        return Ok((rest, inner));
    }
    if let Ok((rest, name)) = identifier(i) {
        if let Ok((rest, _)) = preceded(multispace0, char::<_, SyntaxError>('('))(rest) {
            return call(rest, name);
        }
    }
    let (rest, left) = operand(i)?;
    if let Operand::Path(segments) = &left {
        let quantifier = segments.last().filter(|s| s.eq_ignore_ascii_case("any") || s.eq_ignore_ascii_case("all"));
        if let (Some(quantifier), true) = (quantifier, segments.len() > 1) {
            if let Ok((rest, _)) = char::<_, SyntaxError>('(')(rest) {
                let collection = segments[..segments.len() - 1].to_vec();
                return lambda(rest, depth, collection, quantifier.clone());
            }
        }
    }
    let (rest, _) = multispace0(rest)?;
    if let Ok((rest, _)) = keyword("in")(rest) {
        let (rest, values) = cut(literal_list)(rest)?;
        return Ok((rest, Expr::In { left, values }));
    }
    let (rest, op) = compare_op(rest)?;
    let (rest, _) = multispace0(rest)?;
    let (rest, right) = cut(operand)(rest)?;
    Ok((rest, Expr::Compare { left, op, right }))
}

fn compare_op(i: &str) -> Res<'_, CompareOp> {
    alt((
        |i| keyword("eq")(i).map(|(r, _)| (r, CompareOp::Eq)),
        |i| keyword("ne")(i).map(|(r, _)| (r, CompareOp::Ne)),
        |i| keyword("ge")(i).map(|(r, _)| (r, CompareOp::Ge)),
        |i| keyword("le")(i).map(|(r, _)| (r, CompareOp::Le)),
        |i| keyword("gt")(i).map(|(r, _)| (r, CompareOp::Gt)),
        |i| keyword("lt")(i).map(|(r, _)| (r, CompareOp::Lt)),
    ))(i)
}

/// After `name(`: comma-separated operands and `)`.
fn call<'a>(i: &'a str, name: &str) -> Res<'a, Expr> {
    let (mut rest, _) = multispace0(i)?;
    let mut args = Vec::new();
    if let Ok((after, _)) = char::<_, SyntaxError>(')')(rest) {
        return Ok((after, Expr::Call { name: name.to_string(), args }));
    }
    loop {
        let (after, arg) = cut(operand)(rest)?;
        args.push(arg);
        let (after, _) = multispace0(after)?;
        if let Ok((after, _)) = char::<_, SyntaxError>(',')(after) {
            let (after, _) = multispace0(after)?;
            rest = after;
            continue;
        }
        let (after, _) = cut(char(')'))(after)?;
        return Ok((after, Expr::Call { name: name.to_string(), args }));
    }
}

/// After `collection/any(`: `var: body)` or `)`.
fn lambda(i: &str, depth: usize, collection: Vec<String>, quantifier: String) -> Res<'_, Expr> {
    if depth + 1 >= MAX_NESTING {
        return fail(i, NESTED_TOO_DEEPLY);
    }
    let (rest, _) = multispace0(i)?;
    if let Ok((rest, _)) = char::<_, SyntaxError>(')')(rest) {
        return Ok((rest, Expr::Lambda { collection, quantifier, body: None }));
    }
    let (rest, (var, _, _, _, body, _, _)) =
        cut(tuple((identifier, multispace0, char(':'), multispace0, |i| or_expr(i, depth + 1), multispace0, char(')'))))(rest)?;
    Ok((rest, Expr::Lambda { collection, quantifier, body: Some((var.to_string(), Box::new(body))) }))
}

/// `( operand , operand ... )` after `in`.
fn literal_list(i: &str) -> Res<'_, Vec<Operand>> {
    let (mut rest, _) = tuple((multispace0, char('('), multispace0))(i)?;
    let mut values = Vec::new();
    loop {
        let (after, value) = operand(rest)?;
        values.push(value);
        let (after, _) = multispace0(after)?;
        if let Ok((after, _)) = char::<_, SyntaxError>(',')(after) {
            let (after, _) = multispace0(after)?;
            rest = after;
            continue;
        }
        let (after, _) = char(')')(after)?;
        return Ok((after, values));
    }
}

fn operand(i: &str) -> Res<'_, Operand> {
    alt((
        |i| string_literal(i).map(|(r, s)| (r, Operand::Literal(Lit::String(s)))),
        |i| datetime_literal(i).map(|(r, d)| (r, Operand::Literal(Lit::DateTime(d)))),
        |i| integer_literal(i).map(|(r, n)| (r, Operand::Literal(Lit::Integer(n)))),
        |i| keyword("true")(i).map(|(r, _)| (r, Operand::Literal(Lit::Boolean(true)))),
        |i| keyword("false")(i).map(|(r, _)| (r, Operand::Literal(Lit::Boolean(false)))),
        |i| keyword("null")(i).map(|(r, _)| (r, Operand::Literal(Lit::Null))),
        |i| path(i).map(|(r, p)| (r, Operand::Path(p))),
    ))(i)
}

/// `'...'` with `''` standing for one quote (OData ABNF `SQUOTE-in-string`).
fn string_literal(i: &str) -> Res<'_, String> {
    let (mut rest, _) = char('\'')(i)?;
    let mut value = String::new();
    loop {
        let (after, chunk) = take_while(|c| c != '\'')(rest)?;
        value.push_str(chunk);
        let (after, _) = cut(char('\''))(after)?;
        if let Ok((after, _)) = char::<_, SyntaxError>('\'')(after) {
            value.push('\'');
            rest = after;
        } else {
            return Ok((after, value));
        }
    }
}

/// Unquoted DateTimeOffset, e.g. `2024-01-01T00:00:00Z` or `2024-01-01T00:00:00.5+02:00`.
fn datetime_literal(i: &str) -> Res<'_, DateTime<Utc>> {
    let digits = |n| take_while_m_n(n, n, |c: char| c.is_ascii_digit());
    let (rest, text) = recognize(tuple((
        digits(4),
        char('-'),
        digits(2),
        char('-'),
        digits(2),
        satisfy(|c| c == 'T' || c == 't'),
        take_while1(|c: char| c.is_ascii_digit() || c == ':' || c == '.'),
        opt(alt((tag("Z"), tag("z"), recognize(tuple((satisfy(|c| c == '+' || c == '-'), digits(2), char(':'), digits(2))))))),
    )))(i)?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(value) => Ok((rest, value.with_timezone(&Utc))),
        Err(_) => fail(i, "Invalid DateTimeOffset literal"),
    }
}

fn integer_literal(i: &str) -> Res<'_, u64> {
    let (rest, text) = digit1(i)?;
    let (rest, _) = not(peek(satisfy(|c| is_ident_char(c) || c == '-' || c == '.')))(rest)?;
    match text.parse() {
        Ok(value) => Ok((rest, value)),
        Err(_) => fail(i, "Integer literal out of range"),
    }
}

/// `name(/name|/$count)*`.
fn path(i: &str) -> Res<'_, Vec<String>> {
    let (mut rest, first) = identifier(i)?;
    let mut segments = vec![first.to_string()];
    while let Ok((after, segment)) = preceded(char::<_, SyntaxError>('/'), alt((identifier, tag("$count"))))(rest) {
        segments.push(segment.to_string());
        rest = after;
    }
    Ok((rest, segments))
}
