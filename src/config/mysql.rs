//! `[target.mysql]`: what a `protocol = "mysql"` target has of its own.
//! The common target keys (listen, upstream, credential, tls, access,
//! policy, masking) are read by `config::mod` as for every protocol; this
//! file reads and checks the rest, so the MySQL adapter's settings live in
//! one place.

use serde::Deserialize;

/// `[target.mysql]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMysql {
    /// The database name callers give in their login packet (the routing
    /// key); default: the target's name.
    database: Option<String>,
    /// The database the gateway logs in to upstream; default: `database`.
    upstream_database: Option<String>,
    /// Let `LOAD DATA LOCAL INFILE` through (the file's content passes the
    /// recorder); default: refused.
    #[serde(default)]
    local_infile: bool,
}

/// A validated `[target.mysql]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTarget {
    pub database: String,
    pub upstream_database: String,
    pub local_infile: bool,
}

/// MySQL's limit on a database name (64 characters; bytes here).
const MAX_DATABASE: usize = 64;

fn valid_database(d: &str) -> bool {
    !d.is_empty() && d.len() <= MAX_DATABASE && !d.contains('\0')
}

/// Checks `[target.mysql]` of target `name`; the error names the field.
pub(super) fn validate(
    name: &str,
    raw: Option<RawMysql>,
) -> Result<MysqlTarget, (&'static str, String)> {
    let raw = raw.unwrap_or_default();
    let database = raw.database.unwrap_or_else(|| name.to_string());
    if !valid_database(&database) {
        return Err((
            "mysql.database",
            format!("must be 1-{MAX_DATABASE} bytes without NUL"),
        ));
    }
    let upstream_database = raw.upstream_database.unwrap_or_else(|| database.clone());
    if !valid_database(&upstream_database) {
        return Err((
            "mysql.upstream_database",
            format!("must be 1-{MAX_DATABASE} bytes without NUL"),
        ));
    }
    Ok(MysqlTarget {
        database,
        upstream_database,
        local_infile: raw.local_infile,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_follow_the_target_name_and_refuse_local_infile() {
        let t = validate("app", None).unwrap();
        assert_eq!(t.database, "app");
        assert_eq!(t.upstream_database, "app");
        assert!(!t.local_infile);
        let raw: RawMysql = toml::from_str("database = \"x\"\nlocal_infile = true").unwrap();
        let t = validate("app", Some(raw)).unwrap();
        assert_eq!(
            (t.database.as_str(), t.upstream_database.as_str()),
            ("x", "x")
        );
        assert!(t.local_infile);
        let raw: RawMysql = toml::from_str("upstream_database = \"\"").unwrap();
        assert_eq!(
            validate("app", Some(raw)).unwrap_err().0,
            "mysql.upstream_database"
        );
        assert!(toml::from_str::<RawMysql>("bogus = 1").is_err());
    }
}
