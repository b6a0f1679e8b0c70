//! `[target.mysql]`: the keys only a MySQL/MariaDB target has, and what a
//! mysql target requires of the keys every target shares (the same as a
//! postgres target: token callers, a stored credential, TLS unless the
//! listener may take plaintext).

use serde::Deserialize;

use super::raw::RawTarget;
use super::target::TargetCheck;
use super::{ConfigError, TargetConfig, postgres};

pub(super) const CALLERS_BY_CERTIFICATE: bool = false;

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

pub(super) fn finish(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &mut TargetConfig,
) -> Result<(), ConfigError> {
    let my = validate(&t.name, raw.mysql.take()).map_err(|(field, why)| {
        let key = field.trim_start_matches("mysql.");
        c.err_in(&["mysql", key], field, &why)
    })?;
    postgres::requires(c, t)?;
    t.mysql = Some(my);
    Ok(())
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

    const MY: &str = r#"
[[identity.issuer]]
name = "idp"
issuer = "https://idp.test"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/jwks.json"

[[target]]
name = "orders"
protocol = "mysql"
listen = ["127.0.0.1:3307"]
upstream = "db:3306"
[target.credential]
user = "app"
password_file = "/etc/tollgate/orders.pw"
"#;

    fn parse(s: &str) -> Result<super::super::Config, String> {
        super::super::Config::parse(s, std::path::Path::new("t.toml")).map_err(|e| e.to_string())
    }

    /// The target table of `MY` again, renamed (and routed) as `name`.
    fn another(name: &str, extra: &str) -> String {
        let t = MY.split("[[target]]").nth(1).unwrap();
        format!(
            "[[target]]{}{extra}",
            t.replace("name = \"orders\"", &format!("name = \"{name}\""))
        )
    }

    #[test]
    fn mysql_targets_validate_through_the_config() {
        let c = parse(MY).unwrap();
        let t = &c.targets[0];
        assert_eq!(
            t.mysql.as_ref().map(|m| m.database.as_str()),
            Some("orders")
        );
        assert!(t.allow_plaintext, "loopback listener");
        // Two mysql targets share a listener by database, not by name.
        let two = format!("{MY}{}", another("ledger", ""));
        assert_eq!(parse(&two).unwrap().listeners[0].targets, vec![0, 1]);
        let same = format!(
            "{MY}{}",
            another("x", "[target.mysql]\ndatabase = \"orders\"\n")
        );
        assert!(
            parse(&same)
                .unwrap_err()
                .contains("already routes database")
        );
        // No credential, no issuer, a postgres target with [target.mysql].
        let no_credential = MY.replace(
            "[target.credential]\nuser = \"app\"\npassword_file = \"/etc/tollgate/orders.pw\"\n",
            "",
        );
        let e = parse(&no_credential).unwrap_err();
        assert!(e.contains("mysql target needs [target.credential]"), "{e}");
        let no_issuer = MY.split("[[target]]").nth(1).unwrap();
        let e = parse(&format!("[[target]]{no_issuer}")).unwrap_err();
        assert!(e.contains("mysql callers authenticate with tokens"), "{e}");
        let pg = format!("{MY}[target.mysql]\nlocal_infile = true\n")
            .replace("\"mysql\"", "\"postgres\"");
        assert!(parse(&pg).unwrap_err().contains("[target.mysql] is for"));
        // A non-loopback listener needs TLS.
        let e = parse(&MY.replace("127.0.0.1:3307", "0.0.0.0:3307")).unwrap_err();
        assert!(e.contains("nobody could connect"), "{e}");
    }
}
