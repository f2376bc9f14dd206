//! The untyped expression tree into `GroupFilter`: what `$filter` on `/groups` serves
//! (`eq`/`ne`/`in`/`startsWith` on text, `endsWith` on mail, `eq` on booleans, `groupTypes/any(c:c eq 'Unified')`).

use guestlist_domain::filter::{CompareOp, FieldKind, GroupField, GroupFilter, Literal};

use super::lower::{lower_into, no_signature, path_name, string_predicate, text_function, typed_value, FilterTree, TextFunction};
use super::syntax::{Expr, Lit, Operand};
use crate::ODataError;

fn unsupported(property: &str) -> ODataError {
    ODataError::UnsupportedQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{property}' of resource 'Group'."
    ))
}

pub(crate) fn lower_group(expr: Expr) -> Result<GroupFilter, ODataError> {
    lower_into(expr)
}

impl FilterTree for GroupFilter {
    fn and(self, other: Self) -> Self {
        GroupFilter::and(self, other)
    }
    fn or(self, other: Self) -> Self {
        GroupFilter::or(self, other)
    }
    fn not(self) -> Self {
        GroupFilter::Not(Box::new(self))
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

fn field(segments: &[String]) -> Result<GroupField, ODataError> {
    match segments {
        [name] => GroupField::from_graph_name(name).ok_or_else(|| unsupported(name)),
        _ => Err(unsupported(&path_name(segments))),
    }
}

fn typed(field: GroupField, op: Option<CompareOp>, lit: Lit) -> Result<Literal, ODataError> {
    typed_value(field.kind(), op, lit, || unsupported(field.graph_name()))
}

fn compare(left: Operand, op: CompareOp, right: Operand) -> Result<GroupFilter, ODataError> {
    let (Operand::Path(segments), Operand::Literal(lit)) = (left, right) else {
        return Err(ODataError::BadRequest(
            "Invalid filter clause: a comparison needs a property on its left and a value on its right.".into(),
        ));
    };
    let field = field(&segments)?;
    Ok(GroupFilter::Compare { field, op, value: typed(field, Some(op), lit)? })
}

fn in_list(left: Operand, values: Vec<Operand>) -> Result<GroupFilter, ODataError> {
    let Operand::Path(segments) = left else {
        return Err(ODataError::BadRequest("Invalid filter clause: 'in' needs a property on its left.".to_string()));
    };
    let field = field(&segments)?;
    let values = values
        .into_iter()
        .map(|value| match value {
            Operand::Literal(lit) => typed(field, None, lit),
            Operand::Path(_) => Err(unsupported(field.graph_name())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GroupFilter::In { field, values })
}

/// `startsWith(prop,'x')` on text; `endsWith` on `mail` and `mailNickname` (an advanced query).
fn call(name: &str, args: Vec<Operand>) -> Result<GroupFilter, ODataError> {
    let function = text_function(name)?;
    let [Operand::Path(segments), Operand::Literal(Lit::String(prefix))]: [Operand; 2] = args.try_into().map_err(|_| no_signature(name))?
    else {
        return Err(no_signature(name));
    };
    let field = field(&segments)?;
    match function {
        TextFunction::StartsWith if field.kind() == FieldKind::String => Ok(GroupFilter::StartsWith { field, prefix }),
        TextFunction::StartsWith => Err(no_signature(name)),
        TextFunction::EndsWith if matches!(field, GroupField::Mail | GroupField::MailNickname) => {
            Ok(GroupFilter::EndsWith { field, suffix: prefix })
        }
        TextFunction::EndsWith => Err(unsupported(field.graph_name())),
    }
}

fn lambda(collection: Vec<String>, quantifier: &str, body: Option<(String, Box<Expr>)>) -> Result<GroupFilter, ODataError> {
    let name = path_name(&collection);
    match (collection.as_slice(), quantifier.eq_ignore_ascii_case("any"), body) {
        ([single], true, Some((var, body))) if single.eq_ignore_ascii_case("groupTypes") => {
            string_predicate(&var, *body).map(GroupFilter::AnyGroupType).ok_or_else(|| unsupported("groupTypes"))
        }
        _ => Err(unsupported(&name)),
    }
}
