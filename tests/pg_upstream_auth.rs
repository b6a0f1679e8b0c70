//! End-to-end: tollgate logs in to a real PostgreSQL 15 with stored credentials that need
//! SASLprep (non-ASCII spaces, compatibility characters), as libpq and psql do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;

/// Sets the target role's password through psql with SCRAM verifiers (the server applies
/// SASLprep when it builds the verifier) and stores the same text as the credential.
fn set_stored_password(g: &PgGateway, password: &str) {
    g.direct(&format!(
        "set password_encryption = 'scram-sha-256'; alter role {} password '{}'",
        g.role,
        password.replace('\'', "''")
    ));
    let verifier = g.direct(&format!(
        "select left(rolpassword, 14) from pg_authid where rolname = '{}'",
        g.role
    ));
    assert_eq!(
        verifier, "SCRAM-SHA-256$",
        "the role must have a SCRAM verifier"
    );
    std::fs::write(&g.password_file, password).unwrap();
}

#[test]
fn a_stored_password_that_needs_saslprep_logs_in_over_scram() {
    let g = PgGateway::start("saslprep");
    let t = g.token("ci-job", "ci", "10m");
    // Each of these differs from its SASLprep form: a no-break space (mapped to a space),
    // a soft hyphen (mapped to nothing), full-width letters and a ligature (NFKC).
    for (i, password) in [
        "Stored\u{a0}pass\u{a0}1",
        "so\u{ad}ft-hyphen-2",
        "\u{ff33}tored-\u{fb01}-3",
    ]
    .iter()
    .enumerate()
    {
        set_stored_password(&g, password);
        let (ok, out, err) = g.psql(&t, &format!("select current_user, {i}"));
        assert!(ok, "{password:?}: {err}\n{}", g.gw.log_text());
        assert_eq!(out, format!("{}|{i}", g.role));
    }
    let opened = g.gw.log_events("session opened");
    assert!(
        opened.iter().all(|e| e["upstream_auth"] == "scram-sha-256"),
        "{opened:?}"
    );
}
