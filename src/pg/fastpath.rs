//! Fast-path function calls (the FunctionCall message): which function an
//! OID names, and the SQL a call is judged as.
//!
//! A FunctionCall carries a function OID and arguments, no SQL. libpq uses it
//! for large objects (`lo_import`/`lo_export` in psql, psycopg2's `lobject`,
//! pg_dump and pg_restore). The large-object functions are built-ins with
//! OIDs fixed in PostgreSQL's `pg_proc.dat` (the same in every release that
//! has them; a test checks them against the real server), so the gateway
//! names them without asking the target. A call is judged as the SQL
//! statement it is equivalent to, so rules over functions (`lo_*`), classes
//! and presets apply to it as to the SQL form; `lo_unlink` is judged as a
//! drop of a large object as well. Only a rule that matches lets a call
//! through: a call no rule speaks about, or of a function not in the table,
//! gets the target's `unclassified` action (block by default), because the
//! fast path is a side door most policies were not written for.

/// Built-in functions a client may call through the fast path, by OID.
pub const FAST_PATH_FUNCTIONS: &[(u32, &str)] = &[
    (715, "lo_create"),
    (764, "lo_import"),
    (765, "lo_export"),
    (767, "lo_import"),
    (952, "lo_open"),
    (953, "lo_close"),
    (954, "loread"),
    (955, "lowrite"),
    (956, "lo_lseek"),
    (957, "lo_creat"),
    (958, "lo_tell"),
    (964, "lo_unlink"),
    (1004, "lo_truncate"),
    (3170, "lo_lseek64"),
    (3171, "lo_tell64"),
    (3172, "lo_truncate64"),
    (3457, "lo_from_bytea"),
    (3458, "lo_get"),
    (3459, "lo_get"),
    (3460, "lo_put"),
];

/// The name of the built-in function with this OID, if tollgate knows it.
pub fn function_name(oid: u32) -> Option<&'static str> {
    FAST_PATH_FUNCTIONS
        .binary_search_by_key(&oid, |(o, _)| *o)
        .ok()
        .and_then(|i| FAST_PATH_FUNCTIONS.get(i))
        .map(|(_, name)| *name)
}

/// The SQL statements a call of `name` is judged as (all of them; the
/// strictest verdict wins).
pub fn equivalent_sql(name: &str) -> Vec<String> {
    let mut sql = vec![format!("SELECT pg_catalog.{name}($1)")];
    // libpq calls the server's loread/lowrite lo_read/lo_write: a rule
    // written as `lo_*` means them too.
    match name {
        "loread" => sql.push("SELECT pg_catalog.lo_read($1)".to_string()),
        "lowrite" => sql.push("SELECT pg_catalog.lo_write($1)".to_string()),
        _ => {}
    }
    if name == "lo_unlink" {
        // Removing a large object destroys data: the destructive classes
        // (`drop`, `drop_large_object`) see it as the drop it is.
        sql.push("DROP LARGE OBJECT $1".to_string());
    }
    sql
}

/// What logs and records show for a call.
pub fn shown(oid: u32) -> String {
    match function_name(oid) {
        Some(name) => format!("<fast-path call of {name} (oid {oid})>"),
        None => format!("<fast-path call of function oid {oid}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(FAST_PATH_FUNCTIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(function_name(952), Some("lo_open"));
        assert_eq!(function_name(964), Some("lo_unlink"));
        assert_eq!(function_name(1), None);
    }
}
