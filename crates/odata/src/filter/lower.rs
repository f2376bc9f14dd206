//! The untyped expression tree into guestlist's `UserFilter`, with Graph's type and shape checks.

use guestlist_domain::filter::{
    CompareOp, FieldKind, IdentityField, IdentityPredicate, Literal, StringCollection, StringPredicate, UserField, UserFilter,
};

use super::syntax::{Expr, Lit, Operand};
use crate::ODataError;

pub(crate) fn lower(expr: Expr) -> Result<UserFilter, ODataError> {
    lower_into(expr)
}

/// What a typed filter tree supplies so that one walk lowers `$filter` syntax into it: its
/// connectives, and how each kind of leaf lowers.
pub(crate) trait FilterTree: Sized {
    fn and(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    fn not(self) -> Self;
    fn compare(left: Operand, op: CompareOp, right: Operand) -> Result<Self, ODataError>;
    fn in_list(left: Operand, values: Vec<Operand>) -> Result<Self, ODataError>;
    fn call(name: &str, args: Vec<Operand>) -> Result<Self, ODataError>;
    fn lambda(collection: Vec<String>, quantifier: &str, body: Option<(String, Box<Expr>)>) -> Result<Self, ODataError>;
}

impl FilterTree for UserFilter {
    fn and(self, other: Self) -> Self {
        UserFilter::and(self, other)
    }
    fn or(self, other: Self) -> Self {
        UserFilter::or(self, other)
    }
    fn not(self) -> Self {
        UserFilter::Not(Box::new(self))
    }
    fn compare(left: Operand, op: CompareOp, right: Operand) -> Result<Self, ODataError> {
        compare(left, op, right)
    }
    fn in_list(left: Operand, values: Vec<Operand>) -> Result<Self, ODataError> {
        in_list(left, values)
    }
    fn call(name: &str, args: Vec<Operand>) -> Result<Self, ODataError> {
        call(name, args)
    }
    fn lambda(collection: Vec<String>, quantifier: &str, body: Option<(String, Box<Expr>)>) -> Result<Self, ODataError> {
        lambda(collection, quantifier, body)
    }
}

/// Lowers `expr` into any filter tree. Its size was checked before (`check_size`), and its
/// nesting while parsing, so this walk's depth is bounded.
pub(crate) fn lower_into<T: FilterTree>(expr: Expr) -> Result<T, ODataError> {
    match expr {
        Expr::Or(items) => chain(items, T::or),
        Expr::And(items) => chain(items, T::and),
        Expr::Not(inner) => Ok(lower_into::<T>(*inner)?.not()),
        Expr::Compare { left, op, right } => T::compare(left, op, right),
        Expr::In { left, values } => T::in_list(left, values),
        Expr::Call { name, args } => T::call(&name, args),
        Expr::Lambda { collection, quantifier, body } => T::lambda(collection, &quantifier, body),
    }
}

/// `a or b or c` is `(a or b) or c`, as OData's left-associative operators read.
fn chain<T: FilterTree>(items: Vec<Expr>, join: fn(T, T) -> T) -> Result<T, ODataError> {
    let mut lowered: Option<T> = None;
    for item in items {
        let next = lower_into(item)?;
        lowered = Some(match lowered {
            None => next,
            Some(acc) => join(acc, next),
        });
    }
    lowered.ok_or_else(|| ODataError::BadRequest("Invalid filter clause: empty expression.".to_string()))
}

/// What a property path on the user names.
enum Target {
    Field(UserField),
    Count(StringCollection),
}

pub(super) fn path_name(segments: &[String]) -> String {
    segments.join("/")
}

fn resolve(segments: &[String]) -> Result<Target, ODataError> {
    match segments {
        [name] => UserField::from_graph_name(name).map(Target::Field).ok_or_else(|| ODataError::unsupported_property(name)),
        [name, count] if count == "$count" => {
            StringCollection::from_graph_name(name).map(Target::Count).ok_or_else(|| ODataError::unsupported_property(name))
        }
        _ => Err(ODataError::unsupported_property(&segments[0])),
    }
}

fn operator_kind(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "Equal",
        CompareOp::Ne => "NotEqual",
        CompareOp::Ge => "GreaterThanOrEqual",
        CompareOp::Le => "LessThanOrEqual",
        CompareOp::Gt => "GreaterThan",
        CompareOp::Lt => "LessThan",
    }
}

fn edm_type(kind: FieldKind) -> &'static str {
    match kind {
        // `id` is Edm.String in Graph's CSDL, GUID-shaped by convention.
        FieldKind::String | FieldKind::Guid => "Edm.String",
        FieldKind::Boolean => "Edm.Boolean",
        FieldKind::DateTime => "Edm.DateTimeOffset",
    }
}

fn literal_edm_type(lit: &Lit) -> &'static str {
    match lit {
        Lit::String(_) => "Edm.String",
        Lit::Boolean(_) => "Edm.Boolean",
        Lit::Null => "null",
        Lit::DateTime(_) => "Edm.DateTimeOffset",
        Lit::Integer(n) if *n <= i32::MAX as u64 => "Edm.Int32",
        Lit::Integer(_) => "Edm.Int64",
    }
}

/// ODataLib's wording, which Graph passes through behind `Invalid filter clause:`.
fn incompatible(left: &'static str, right: &'static str, operator: &str) -> ODataError {
    ODataError::BadRequest(format!(
        "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' for operator kind '{operator}'."
    ))
}

fn invalid_object_id(text: &str) -> ODataError {
    ODataError::DirectoryBadRequest(format!("Invalid object identifier '{text}'."))
}

fn is_guid(text: &str) -> bool {
    text.len() == 36 && text.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn is_equality(op: CompareOp) -> bool {
    matches!(op, CompareOp::Eq | CompareOp::Ne)
}

/// Checks one literal against a field under `op` (`None` for `in`) and returns the typed value.
fn typed_literal(field: UserField, op: Option<CompareOp>, lit: Lit) -> Result<Literal, ODataError> {
    typed_value(field.kind(), op, lit, || ODataError::unsupported_property(field.graph_name()))
}

/// [`typed_literal`] for a property of any resource: `unsupported` names the property when Graph refuses the shape.
pub(super) fn typed_value(
    kind: FieldKind,
    op: Option<CompareOp>,
    lit: Lit,
    unsupported: impl Fn() -> ODataError,
) -> Result<Literal, ODataError> {
    let operator = op.map(operator_kind).unwrap_or("In");
    let equality = op.is_none_or(is_equality);
    match (kind, lit) {
        (FieldKind::String, Lit::String(s)) => Ok(Literal::String(s)),
        (FieldKind::Guid, Lit::String(s)) if equality => {
            if is_guid(&s) {
                Ok(Literal::String(s))
            } else {
                Err(invalid_object_id(&s))
            }
        }
        (FieldKind::Boolean, Lit::Boolean(b)) if equality => Ok(Literal::Boolean(b)),
        (FieldKind::DateTime, Lit::DateTime(d)) => Ok(Literal::DateTime(d)),
        (FieldKind::String | FieldKind::DateTime, Lit::Null) if op.is_some() && equality => Ok(Literal::Null),
        (FieldKind::Guid, Lit::String(_)) | (FieldKind::Boolean, Lit::Boolean(_)) | (_, Lit::Null) => Err(unsupported()),
        (kind, lit) => Err(incompatible(edm_type(kind), literal_edm_type(&lit), operator)),
    }
}

fn compare(left: Operand, op: CompareOp, right: Operand) -> Result<UserFilter, ODataError> {
    let segments = match (left, &right) {
        (Operand::Path(segments), _) => segments,
        // Graph wants the property on the left: `'Guest' eq userType` is refused.
        (Operand::Literal(_), Operand::Path(segments)) => return Err(ODataError::unsupported_property(&path_name(segments))),
        (Operand::Literal(_), Operand::Literal(_)) => {
            return Err(ODataError::BadRequest("Invalid filter clause: a comparison needs a property on its left.".to_string()));
        }
    };
    let target = resolve(&segments)?;
    let Operand::Literal(lit) = right else {
        return Err(ODataError::unsupported_property(&path_name(&segments)));
    };
    match target {
        Target::Field(field) => Ok(UserFilter::Compare { field, op, value: typed_literal(field, Some(op), lit)? }),
        Target::Count(collection) => match lit {
            Lit::Integer(n) => match u32::try_from(n) {
                Ok(count) => Ok(UserFilter::CollectionCount { collection, op, count }),
                Err(_) => Err(incompatible("Edm.Int32", "Edm.Int64", operator_kind(op))),
            },
            Lit::Null => Err(ODataError::unsupported_property(collection.graph_name())),
            other => Err(incompatible("Edm.Int32", literal_edm_type(&other), operator_kind(op))),
        },
    }
}

fn in_list(left: Operand, values: Vec<Operand>) -> Result<UserFilter, ODataError> {
    let Operand::Path(segments) = left else {
        return Err(ODataError::BadRequest("Invalid filter clause: 'in' needs a property on its left.".to_string()));
    };
    let Target::Field(field) = resolve(&segments)? else {
        return Err(ODataError::unsupported_property(&path_name(&segments)));
    };
    let values = values
        .into_iter()
        .map(|value| match value {
            Operand::Literal(lit) => typed_literal(field, None, lit),
            Operand::Path(_) => Err(ODataError::unsupported_property(field.graph_name())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserFilter::In { field, values })
}

pub(super) enum TextFunction {
    StartsWith,
    EndsWith,
}

pub(super) fn text_function(name: &str) -> Result<TextFunction, ODataError> {
    if name.eq_ignore_ascii_case("startswith") {
        Ok(TextFunction::StartsWith)
    } else if name.eq_ignore_ascii_case("endswith") {
        Ok(TextFunction::EndsWith)
    } else if BUILT_IN_FUNCTIONS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        Err(ODataError::UnsupportedQuery(format!("Unsupported query function '{name}'.")))
    } else {
        Err(ODataError::BadRequest(format!("Invalid filter clause: An unknown function with name '{name}' was found.")))
    }
}

/// OData's canonical functions the directory doesn't serve (known to ODataLib, so not a syntax error in Graph).
const BUILT_IN_FUNCTIONS: &[&str] = &[
    "contains",
    "tolower",
    "toupper",
    "trim",
    "length",
    "indexof",
    "substring",
    "concat",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "date",
    "time",
    "now",
    "round",
    "floor",
    "ceiling",
    "cast",
    "isof",
    "matchespattern",
];

pub(super) fn no_signature(name: &str) -> ODataError {
    ODataError::BadRequest(format!(
        "Invalid filter clause: No function signature for the function with name '{name}' matches the specified arguments. The function signatures considered are: {name}(Edm.String Nullable=true, Edm.String Nullable=true)."
    ))
}

/// `startsWith(prop,'x')` / `endsWith(prop,'x')` on the user.
fn call(name: &str, args: Vec<Operand>) -> Result<UserFilter, ODataError> {
    let function = text_function(name)?;
    let [Operand::Path(segments), Operand::Literal(lit)]: [Operand; 2] = args.try_into().map_err(|_| no_signature(name))? else {
        return Err(no_signature(name));
    };
    let Target::Field(field) = resolve(&segments)? else {
        return Err(ODataError::unsupported_property(&path_name(&segments)));
    };
    if field.kind() != FieldKind::String {
        return Err(no_signature(name));
    }
    let Lit::String(text) = lit else {
        return Err(no_signature(name));
    };
    Ok(match function {
        TextFunction::StartsWith => UserFilter::StartsWith { field, prefix: text },
        TextFunction::EndsWith => UserFilter::EndsWith { field, suffix: text },
    })
}

fn lambda(collection: Vec<String>, quantifier: &str, body: Option<(String, Box<Expr>)>) -> Result<UserFilter, ODataError> {
    let name = path_name(&collection);
    let (var, body) = match (quantifier.eq_ignore_ascii_case("any"), body) {
        (true, Some(body)) => body,
        _ => return Err(ODataError::unsupported_property(&name)),
    };
    if let [single] = collection.as_slice() {
        if let Some(strings) = StringCollection::from_graph_name(single) {
            let predicate = string_predicate(&var, *body).ok_or_else(|| ODataError::unsupported_property(strings.graph_name()))?;
            return Ok(UserFilter::AnyString { collection: strings, predicate });
        }
        if single.eq_ignore_ascii_case("identities") {
            let mut equals = Vec::new();
            identity_equalities(&var, *body, &mut equals).ok_or_else(|| ODataError::unsupported_property("identities"))?;
            return Ok(UserFilter::AnyIdentity(IdentityPredicate { equals }));
        }
    }
    Err(ODataError::unsupported_property(&name))
}

fn is_var(operand: &Operand, var: &str) -> bool {
    matches!(operand, Operand::Path(segments) if segments.len() == 1 && segments[0] == var)
}

/// The body of `otherMails/any(x: ...)`: one predicate on `x`.
pub(super) fn string_predicate(var: &str, body: Expr) -> Option<StringPredicate> {
    match body {
        Expr::Compare { left, op, right: Operand::Literal(Lit::String(s)) } if is_var(&left, var) => Some(StringPredicate::Compare(op, s)),
        Expr::In { left, values } if is_var(&left, var) => values
            .into_iter()
            .map(|v| match v {
                Operand::Literal(Lit::String(s)) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(StringPredicate::In),
        Expr::Call { name, args } => {
            let function = text_function(&name).ok()?;
            let [left, Operand::Literal(Lit::String(s))]: [Operand; 2] = args.try_into().ok()? else {
                return None;
            };
            if !is_var(&left, var) {
                return None;
            }
            Some(match function {
                TextFunction::StartsWith => StringPredicate::StartsWith(s),
                TextFunction::EndsWith => StringPredicate::EndsWith(s),
            })
        }
        _ => None,
    }
}

/// The body of `identities/any(c: ...)`: `c/<field> eq '...'` joined by `and` (Graph allows nothing else).
fn identity_equalities(var: &str, body: Expr, equals: &mut Vec<(IdentityField, String)>) -> Option<()> {
    match body {
        Expr::And(items) => items.into_iter().try_for_each(|item| identity_equalities(var, item, equals)),
        Expr::Compare { left: Operand::Path(segments), op: CompareOp::Eq, right: Operand::Literal(Lit::String(s)) } => {
            let [head, field] = segments.as_slice() else {
                return None;
            };
            if head != var {
                return None;
            }
            equals.push((IdentityField::from_graph_name(field)?, s));
            Some(())
        }
        _ => None,
    }
}
