//! The untyped expression tree into `GroupFilter`: what `$filter` on `/groups` serves
//! (`eq`/`ne`/`in`/`startsWith` on text, `endsWith` on mail, `eq` on booleans, `groupTypes/any(c:c eq 'Unified')`).

use guestlist_domain::filter::{CompareOp, FieldKind, GroupField, GroupFilter, Literal};

use super::lower::{no_signature, path_name, string_predicate, text_function, typed_value, TextFunction, MAX_CLAUSES};
use super::syntax::{Expr, Lit, Operand};
use crate::ODataError;

fn unsupported(property: &str) -> ODataError {
    ODataError::UnsupportedQuery(format!(
        "Unsupported or invalid query filter clause specified for property '{property}' of resource 'Group'."
    ))
}

pub(crate) fn lower_group(expr: Expr) -> Result<GroupFilter, ODataError> {
    GroupLowering { clauses: 0 }.expr(expr)
}

struct GroupLowering {
    clauses: usize,
}

impl GroupLowering {
    fn expr(&mut self, expr: Expr) -> Result<GroupFilter, ODataError> {
        match expr {
            Expr::Or(items) => self.chain(items, GroupFilter::or),
            Expr::And(items) => self.chain(items, GroupFilter::and),
            Expr::Not(inner) => Ok(GroupFilter::Not(Box::new(self.expr(*inner)?))),
            Expr::Compare { left, op, right } => self.clause().and_then(|()| compare(left, op, right)),
            Expr::In { left, values } => self.clause().and_then(|()| in_list(left, values)),
            Expr::Call { name, args } => self.clause().and_then(|()| call(&name, args)),
            Expr::Lambda { collection, quantifier, body } => self.clause().and_then(|()| lambda(collection, &quantifier, body)),
        }
    }

    fn clause(&mut self) -> Result<(), ODataError> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(ODataError::BadRequest(format!("Invalid filter clause: The filter has more than {MAX_CLAUSES} clauses.")));
        }
        Ok(())
    }

    fn chain(&mut self, items: Vec<Expr>, join: fn(GroupFilter, GroupFilter) -> GroupFilter) -> Result<GroupFilter, ODataError> {
        let mut lowered: Option<GroupFilter> = None;
        for item in items {
            let next = self.expr(item)?;
            lowered = Some(match lowered {
                None => next,
                Some(acc) => join(acc, next),
            });
        }
        lowered.ok_or_else(|| ODataError::BadRequest("Invalid filter clause: empty expression.".to_string()))
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
