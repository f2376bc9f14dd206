use chrono::SecondsFormat;
use guestlist_domain::filter::{CompareOp, IdentityField, Literal, StringPredicate, UserFilter};

/// Prints a filter as `$filter` text that `parse_user_filter` reads back into the same tree
/// (for `guestlist-client` and for `@odata.nextLink`). Every `and`/`or` operand is parenthesised;
/// the recursion follows the tree's nesting, which `and`/`or` keep flat.
pub fn format_user_filter(filter: &UserFilter) -> String {
    let mut out = String::new();
    write_filter(&mut out, filter);
    out
}

fn write_filter(out: &mut String, filter: &UserFilter) {
    match filter {
        UserFilter::And(items) | UserFilter::Or(items) => {
            let word = if matches!(filter, UserFilter::And(..)) { " and " } else { " or " };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(word);
                }
                out.push('(');
                write_filter(out, item);
                out.push(')');
            }
        }
        UserFilter::Not(inner) => {
            out.push_str("not(");
            write_filter(out, inner);
            out.push(')');
        }
        UserFilter::Compare { field, op, value } => {
            out.push_str(&format!("{} {} ", field.graph_name(), op_text(*op)));
            write_literal(out, value);
        }
        UserFilter::In { field, values } => {
            out.push_str(field.graph_name());
            out.push_str(" in (");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_literal(out, value);
            }
            out.push(')');
        }
        UserFilter::StartsWith { field, prefix } => out.push_str(&format!("startsWith({},{})", field.graph_name(), quote(prefix))),
        UserFilter::EndsWith { field, suffix } => out.push_str(&format!("endsWith({},{})", field.graph_name(), quote(suffix))),
        UserFilter::AnyString { collection, predicate } => {
            out.push_str(collection.graph_name());
            out.push_str("/any(x:");
            match predicate {
                StringPredicate::Compare(op, value) => out.push_str(&format!("x {} {}", op_text(*op), quote(value))),
                StringPredicate::StartsWith(value) => out.push_str(&format!("startsWith(x,{})", quote(value))),
                StringPredicate::EndsWith(value) => out.push_str(&format!("endsWith(x,{})", quote(value))),
                StringPredicate::In(values) => {
                    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
                    out.push_str(&format!("x in ({})", list.join(",")));
                }
            }
            out.push(')');
        }
        UserFilter::AnyIdentity(predicate) => {
            let clauses: Vec<String> =
                predicate.equals.iter().map(|(field, value)| format!("c/{} eq {}", identity_field_name(*field), quote(value))).collect();
            out.push_str(&format!("identities/any(c:{})", clauses.join(" and ")));
        }
        // Not expressible in `$filter`; printed in `$search`'s own clause syntax.
        UserFilter::Search { field, term } => out.push_str(&format!("\"{}:{}\"", field.graph_name(), term)),
        UserFilter::CollectionCount { collection, op, count } => {
            out.push_str(&format!("{}/$count {} {count}", collection.graph_name(), op_text(*op)));
        }
    }
}

fn write_literal(out: &mut String, value: &Literal) {
    match value {
        Literal::String(s) => out.push_str(&quote(s)),
        Literal::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::DateTime(d) => out.push_str(&d.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        Literal::Null => out.push_str("null"),
    }
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn op_text(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Ge => "ge",
        CompareOp::Le => "le",
        CompareOp::Gt => "gt",
        CompareOp::Lt => "lt",
    }
}

fn identity_field_name(field: IdentityField) -> &'static str {
    match field {
        IdentityField::SignInType => "signInType",
        IdentityField::Issuer => "issuer",
        IdentityField::IssuerAssignedId => "issuerAssignedId",
    }
}
