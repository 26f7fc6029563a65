//! The one-statement, read-only gate every query passes before it runs.
//!
//! SQL is parsed with the PostgreSQL dialect of `sqlparser` (as re-exported
//! by DataFusion) so that the decision rests on the statement's structure,
//! never on keyword matching: exactly one statement, and that one a query
//! (`SELECT`, `WITH`, `VALUES`, `TABLE`) without `INTO`, row locks (`FOR
//! UPDATE`/`FOR SHARE`) or data-modifying common table expressions, and
//! calling none of the functions in [`DENIED_FUNCTIONS`]. The
//! Postgres source also runs it in a read-only transaction under a role that
//! can only read, so this gate is the first of two fences, not the only one.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, SetExpr, Statement, visit_expressions, visit_relations,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::QueryError;

/// Functions no query may call. `set_config` could switch the role a query
/// runs as (the role fence checks the session user, which is the service's
/// own); the `query_to_xml` family runs SQL given as text, which this gate
/// cannot see; the sleeps hold a pooled connection doing nothing (the
/// statement timeout would end them, but not before they starve other
/// tenants); the file functions read the server's files and the large
/// object functions objects no tenant owns. Most of these the reader roles
/// could not run anyway; refusing them by name gives a clear error before
/// anything reaches the database.
pub const DENIED_FUNCTIONS: &[&str] = &[
    "set_config",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "lo_import",
    "lo_export",
    "lo_get",
    "lo_open",
    "loread",
];

/// The most operators (`+`, `AND`, `=`, `||`, ...) one statement may hold.
///
/// A long chain such as `1+1+...+1` parses into an expression tree as deep
/// as the chain, and walking or planning it recurses once per level: left
/// unbounded, a statement of a few hundred bytes overflows a thread's stack
/// and takes the whole service down. Counting is done on tokens, which needs
/// no recursion; the gate then walks the tree on a thread with a large stack
/// ([`check_read_only_isolated`]).
pub const MAX_OPERATORS: usize = 256;

/// The longest statement accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 256 * 1024;

/// [`check_read_only`], on a dedicated thread with a 64 MiB stack so that a
/// deep (but allowed) statement cannot overflow the caller's stack.
pub fn check_read_only_isolated(sql: &str) -> Result<(), QueryError> {
    check_size(sql)?;
    let sql = sql.to_string();
    std::thread::Builder::new()
        .name("sql-gate".into())
        .stack_size(64 << 20)
        .spawn(move || check_read_only(&sql))
        .map_err(|e| QueryError::Internal(format!("cannot start the sql gate: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(QueryError::Internal("the sql gate panicked".into())))
}

/// Refuses statements too long, or with too many operators, to plan safely.
fn check_size(sql: &str) -> Result<(), QueryError> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::LimitExceeded(format!(
            "the statement is {} bytes; the limit is {MAX_SQL_BYTES}",
            sql.len()
        )));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| QueryError::InvalidQuery(format!("sql does not parse: {e}")))?;
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Word(w) => {
                let k = w.value.to_ascii_lowercase();
                w.quote_style.is_none() && (k == "and" || k == "or")
            }
            Token::Whitespace(_) | Token::Comma | Token::LParen | Token::RParen => false,
            Token::Number(..) | Token::SingleQuotedString(_) | Token::Placeholder(_) => false,
            Token::Period | Token::SemiColon | Token::DoubleColon => false,
            Token::Mul => true,
            other => other
                .to_string()
                .chars()
                .all(|c| !c.is_alphanumeric() && c != '_'),
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(QueryError::LimitExceeded(format!(
            "the statement has {operators} operators; the limit is {MAX_OPERATORS}"
        )));
    }
    Ok(())
}

/// Checks that `sql` is exactly one read-only query.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| QueryError::InvalidQuery(format!("sql does not parse: {e}")))?;
    let [statement] = statements.as_slice() else {
        return Err(QueryError::Denied(format!(
            "exactly one statement is allowed, got {}",
            statements.len()
        )));
    };
    match statement {
        Statement::Query(query) => {
            check_query(query)?;
            check_functions(statement)
        }
        other => Err(QueryError::Denied(format!(
            "only queries (SELECT, WITH, VALUES) are allowed, not `{}`",
            statement_word(other)
        ))),
    }
}

fn check_query(query: &Query) -> Result<(), QueryError> {
    if !query.locks.is_empty() {
        return Err(QueryError::Denied(
            "row locks (`FOR UPDATE`, `FOR SHARE`) are not allowed".into(),
        ));
    }
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            check_query(&cte.query)?;
        }
    }
    check_body(&query.body)
}

fn check_body(body: &SetExpr) -> Result<(), QueryError> {
    match body {
        SetExpr::Select(select) if select.into.is_some() => Err(QueryError::Denied(
            "`SELECT ... INTO` is not allowed".into(),
        )),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(()),
        SetExpr::Query(query) => check_query(query),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => Err(
            QueryError::Denied("data-modifying statements are not allowed".into()),
        ),
    }
}

fn check_functions(statement: &Statement) -> Result<(), QueryError> {
    let denied = |name: &ObjectName| {
        let text = name.to_string().to_lowercase();
        let last = text
            .rsplit('.')
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        if DENIED_FUNCTIONS.contains(&last.as_str()) {
            ControlFlow::Break(last)
        } else {
            ControlFlow::Continue(())
        }
    };
    let called = visit_expressions(statement, |expr| match expr {
        Expr::Function(function) => denied(&function.name),
        _ => ControlFlow::Continue(()),
    });
    let called = match called {
        ControlFlow::Continue(()) => visit_relations(statement, denied),
        broke => broke,
    };
    match called {
        ControlFlow::Break(name) => {
            Err(QueryError::Denied(format!("queries may not call `{name}`")))
        }
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The statement's leading keywords, for the refusal message (never the
/// whole statement, which may be long).
fn statement_word(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(sql: &str) -> bool {
        matches!(check_read_only(sql), Err(QueryError::Denied(_)))
    }

    #[test]
    fn plain_queries_pass() {
        for sql in [
            "select 1",
            "select * from logs where topic0 = $1 order by 1",
            "with t as (select 1 as x) select x from t",
            "values (1, 'a')",
            "select 1 union all select 2",
        ] {
            check_read_only(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn writes_ddl_copy_locks_and_into_are_denied() {
        for sql in [
            "insert into logs values (1)",
            "update logs set address = 'x'",
            "delete from logs",
            "create table t (x int)",
            "drop table logs",
            "copy logs to stdout",
            "select * from logs for update",
            "select * into t2 from logs",
            "with d as (delete from logs returning *) select * from d",
            "set search_path = public",
            "explain select 1",
            "select set_config('role', 'postgres', true)",
            "select 1 from logs where pg_catalog.SET_CONFIG('a', 'b', true) is null",
            "select * from query_to_xml('select 1', true, true, '')",
            "select (select query_to_xml('select 1', true, true, ''))",
            "select pg_sleep(5)",
            "select 1 where pg_catalog.pg_sleep_for('5 seconds') is null",
            "select pg_read_file('/etc/passwd')",
            "select * from pg_ls_dir('.')",
            "select lo_get(1)",
        ] {
            assert!(denied(sql), "{sql} was not denied");
        }
    }

    #[test]
    fn two_statements_are_denied_and_garbage_is_invalid() {
        assert!(denied("select 1; select 2"));
        assert!(denied(""));
        assert!(matches!(
            check_read_only("selec 1 frm"),
            Err(QueryError::InvalidQuery(_))
        ));
    }
}
