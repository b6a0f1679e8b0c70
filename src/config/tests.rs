//! Configuration parsing and validation, file by file.

use super::*;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(s, Path::new("t.toml"))
}

const OK: &str = r#"
[engine]
shards = 2
max_connections = 10

[[target]]
name = "echo"
protocol = "tcp"
listen = ["127.0.0.1:7000"]
upstream = "127.0.0.1:7001"
unauthenticated = true
idle_timeout = "5m"
"#;

fn err(s: &str) -> String {
    match parse(s) {
        Ok(_) => panic!("expected an error for:\n{s}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn valid_config_parses_with_defaults() {
    let c = parse(OK).unwrap();
    assert_eq!(c.engine.shards, 2);
    assert_eq!(c.engine.max_connections, 10);
    assert_eq!(c.engine.max_connections_per_shard, 10);
    assert_eq!(c.engine.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    let t = &c.targets[0];
    assert_eq!(t.listen, vec!["127.0.0.1:7000".parse().unwrap()]);
    assert_eq!(t.idle_timeout, Duration::from_secs(300));
    assert_eq!(t.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert!(c.summary().contains("echo (tcp) listen 127.0.0.1:7000"));
}

#[test]
fn zero_shards_means_every_allowed_cpu() {
    let c = parse(&OK.replace("shards = 2", "shards = 0")).unwrap();
    assert_eq!(c.engine.shards, allowed_cpus().len());
}

#[test]
fn unknown_field_is_rejected_with_its_line() {
    let e = err(&OK.replace("idle_timeout", "idle_timout"));
    assert!(e.contains("t.toml"), "{e}");
    assert!(e.contains("idle_timout"), "{e}");
    assert!(e.contains("line 12"), "{e}");
}

#[test]
fn unknown_engine_field_is_rejected() {
    let e = err(&OK.replace("max_connections = 10", "max_conections = 10"));
    assert!(e.contains("max_conections"), "{e}");
}

#[test]
fn syntax_error_names_the_line() {
    let e = err(&OK.replace("shards = 2", "shards = = 2"));
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn no_targets_is_valid_with_a_warning() {
    let c = parse("[engine]\nshards = 1\n").unwrap();
    assert!(c.targets.is_empty() && c.listeners.is_empty());
    assert_eq!(c.warnings(), vec![NO_TARGETS_WARNING.to_string()]);
    assert!(parse(OK).unwrap().warnings().is_empty());
}

#[test]
fn too_many_shards() {
    let e = err(&OK.replace("shards = 2", "shards = 5000"));
    assert!(e.contains("t.toml:3: engine.shards: at most 256"), "{e}");
}

#[test]
fn zero_caps() {
    let e = err(&OK.replace("max_connections = 10", "max_connections = 0"));
    assert!(e.contains("engine.max_connections"), "{e}");
    let e = err(&OK.replace(
        "max_connections = 10",
        "max_connections = 10\nmax_connections_per_shard = 0",
    ));
    assert!(e.contains("engine.max_connections_per_shard"), "{e}");
    let e = err(&OK.replace("shards = 2", "shards = 2\nlisten_backlog = 0"));
    assert!(e.contains("engine.listen_backlog"), "{e}");
}

#[test]
fn buffer_size_bounds() {
    let e = err(&OK.replace("shards = 2", "shards = 2\nbuffer_size = 10"));
    assert!(e.contains("engine.buffer_size"), "{e}");
}

#[test]
fn bad_duration() {
    let e = err(&OK.replace("\"5m\"", "\"5 parsecs\""));
    assert!(e.contains("idle_timeout"), "{e}");
    let e = err(&OK.replace("\"5m\"", "\"0s\""));
    assert!(e.contains("t.toml:12: target[0].idle_timeout"), "{e}");
    let e = err(&OK.replace("idle_timeout = \"5m\"", "connect_timeout = \"0s\""));
    assert!(e.contains("target[0].connect_timeout"), "{e}");
}

#[test]
fn bad_name() {
    let e = err(&OK.replace("\"echo\"", "\"has space\""));
    assert!(e.contains("t.toml:7: target[0].name"), "{e}");
    let e = err(&OK.replace("\"echo\"", "\"\""));
    assert!(e.contains("target[0].name"), "{e}");
}

#[test]
fn duplicate_names_and_listeners() {
    let second = OK.split("[[target]]").nth(1).unwrap();
    let dup = format!("{OK}\n[[target]]{}", second.replace("7000", "7100"));
    assert!(err(&dup).contains("duplicate target name"));
    let clash = format!("{OK}\n[[target]]{}", second.replace("\"echo\"", "\"two\""));
    let e = err(&clash);
    assert!(e.contains("target[1].listen"), "{e}");
    assert!(e.contains("already the listener of target \"echo\""), "{e}");
}

#[test]
fn bad_listen() {
    let e = err(&OK.replace("\"127.0.0.1:7000\"", "\"localhost:7000\""));
    assert!(e.contains("t.toml:9: target[0].listen"), "{e}");
    assert!(parse(&OK.replace("127.0.0.1:7000", "127.0.0.1:0")).is_ok());
    let e = err(&OK.replace("[\"127.0.0.1:7000\"]", "[]"));
    assert!(e.contains("at least one listen"), "{e}");
    let e = err(&OK.replace(
        "[\"127.0.0.1:7000\"]",
        "[\"127.0.0.1:7000\", \"127.0.0.1:7000\"]",
    ));
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn bad_upstream() {
    for bad in ["127.0.0.1", ":5432", "db:notaport", "db:0"] {
        let e = err(&OK.replace("127.0.0.1:7001", bad));
        assert!(e.contains("target[0].upstream"), "{bad}: {e}");
    }
    assert!(parse(&OK.replace("127.0.0.1:7001", "db.internal:5432")).is_ok());
}

#[test]
fn unknown_protocol() {
    let e = err(&OK.replace("\"tcp\"", "\"gopher\""));
    assert!(e.contains("gopher"), "{e}");
}

#[test]
fn tcp_requires_explicit_unauthenticated() {
    let e = err(&OK.replace("unauthenticated = true\n", ""));
    assert!(e.contains("target[0].unauthenticated"), "{e}");
    assert!(e.contains("t.toml:8"), "{e}");
}

#[test]
fn unauthenticated_only_on_loopback() {
    let e = err(&OK.replace("127.0.0.1:7000", "0.0.0.0:7000"));
    assert!(
        e.contains("only listen on loopback, not 0.0.0.0:7000"),
        "{e}"
    );
    assert!(parse(&OK.replace("127.0.0.1:7000", "[::1]:7000")).is_ok());
}

const PG: &str = r#"
[[identity.issuer]]
name = "dev"
issuer = "https://dev.example"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/jwks.json"

[[target]]
name = "payments"
protocol = "postgres"
listen = ["127.0.0.1:6432"]
upstream = "127.0.0.1:5432"
[target.credential]
user = "app"
password_file = "/etc/tollgate/payments.pw"
"#;

#[test]
fn postgres_target_defaults() {
    let c = parse(PG).unwrap();
    let t = &c.targets[0];
    assert_eq!(
        t.postgres,
        Some(PostgresTarget {
            database: "payments".into(),
            upstream_database: "payments".into(),
            pool: None,
        })
    );
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert!(
        t.allow_plaintext,
        "loopback listeners accept plaintext by default"
    );
    assert_eq!(
        t.credential,
        Some(Credential {
            user: "app".into(),
            source: SecretSource::File("/etc/tollgate/payments.pw".into())
        })
    );
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn postgres_targets_share_a_listener_by_database() {
    let target = format!("[[target]]{}", PG.split("[[target]]").nth(1).unwrap());
    let two = format!(
        "{PG}{}",
        target.replace("\"payments\"\nprotocol", "\"ledger\"\nprotocol")
    );
    let c = parse(&two).unwrap();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].targets, vec![0, 1]);
    let same_db = format!(
        "{PG}{}",
        target.replace("name = \"payments\"", "name = \"other\"")
            + "[target.postgres]\ndatabase = \"payments\"\n"
    );
    let e = err(&same_db);
    assert!(e.contains("already routes database \"payments\""), "{e}");
}

#[test]
fn postgres_needs_a_credential_with_one_source() {
    let e = err(&PG.replace(
        "[target.credential]\nuser = \"app\"\npassword_file = \"/etc/tollgate/payments.pw\"\n",
        "",
    ));
    assert!(e.contains("target[0].credential"), "{e}");
    let e = err(&PG.replace(
        "password_file = \"/etc/tollgate/payments.pw\"",
        "password_file = \"/x\"\npassword_env = \"PW\"",
    ));
    assert!(
        e.contains("exactly one of password_file or password_env"),
        "{e}"
    );
    let e = err(&PG.replace("user = \"app\"", "user = \"\""));
    assert!(e.contains("credential.user"), "{e}");
}

#[test]
fn postgres_needs_an_issuer() {
    let target = format!("[[target]]{}", PG.split("[[target]]").nth(1).unwrap());
    let e = err(&target);
    assert!(e.contains("[[identity.issuer]]"), "{e}");
}

#[test]
fn access_and_masking_are_validated() {
    let e = err(&format!("{PG}[target.access]\nsubjects = [\"\"]\n"));
    assert!(e.contains("target[0].access"), "{e}");
    let e = err(&format!("{PG}[target.access]\nsubject = [\"ci\"]\n"));
    assert!(e.contains("subject"), "{e}");
    let e = err(&format!(
        "{PG}[[target.masking.rules]]\nname = \"x\"\ncolumns = [\"ssn\"]\nstyle = \"hash\"\n"
    ));
    assert!(e.contains("target[0].masking"), "{e}");
    // JSON pointers mask HTTP bodies; on a database target they would
    // mask nothing, so they are refused there.
    let e = err(&format!(
        "{PG}[[target.masking.rules]]\nname = \"x\"\njson_paths = [\"/a/*\"]\nstyle = \"null\"\n"
    ));
    assert!(e.contains("json_paths apply to HTTP targets"), "{e}");
}

#[test]
fn postgres_off_loopback_needs_tls() {
    let e = err(&PG.replace("127.0.0.1:6432", "0.0.0.0:6432"));
    assert!(e.contains("target[0].tls"), "{e}");
    let ok = PG.replace("127.0.0.1:6432", "0.0.0.0:6432")
        + "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
    let c = parse(&ok).unwrap();
    assert!(!c.targets[0].allow_plaintext);
    let e = err(&PG.replace("upstream = ", "unauthenticated = true\nupstream = "));
    assert!(e.contains("always authenticate"), "{e}");
}

#[test]
fn tcp_with_tls_requires_mtls_and_no_unauthenticated() {
    let tls = "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
    let with_tls = format!("{}{tls}", OK.replace("unauthenticated = true\n", ""));
    let e = err(&with_tls);
    assert!(e.contains("[identity.mtls] ca_file"), "{e}");
    let mtls = "[identity.mtls]\nca_file = \"/ca.pem\"\n";
    let ok = format!(
        "{mtls}{}",
        with_tls.replace("127.0.0.1:7000", "0.0.0.0:7000")
    );
    let c = parse(&ok).unwrap();
    assert!(!c.targets[0].unauthenticated);
    let e = err(&format!("{mtls}{}{tls}", OK));
    assert!(e.contains("remove `unauthenticated`"), "{e}");
}

#[test]
fn recorder_section() {
    let c = parse(OK).unwrap();
    assert_eq!(
        c.recorder.as_ref().unwrap().dir,
        Path::new(DEFAULT_RECORDING_DIR)
    );
    let c = parse(&format!("[recorder]\nenabled = false\n{OK}")).unwrap();
    assert!(c.recorder.is_none());
    let c = parse(&format!(
        "[recorder]\ndir = \"/r\"\ndurability = \"interval\"\ndurability_interval = \"50ms\"\nzstd_level = 3\n{OK}"
    ))
    .unwrap();
    let r = c.recorder.unwrap();
    assert_eq!(r.zstd_level, 3);
    assert_eq!(
        r.durability,
        tollgate_recorder::Durability::Interval(Duration::from_millis(50))
    );
    let e = err(&format!("[recorder]\ndurability = \"sometimes\"\n{OK}"));
    assert!(e.contains("t.toml:2: recorder.durability"), "{e}");
    let e = err(&format!("[recorder]\nblock_size = 0\n{OK}"));
    assert!(e.contains("recorder.block_size"), "{e}");
    let r = parse(&format!(
        "[recorder]\ndurability = \"before_forward\"\ncheckpoint_interval = \"2s\"\n{OK}"
    ))
    .unwrap()
    .recorder
    .unwrap();
    assert!(r.durability.waits_before_forward());
    assert_eq!(r.checkpoint_interval, Duration::from_secs(2));
    let e = err(&format!("[recorder]\ncheckpoint_interval = \"0s\"\n{OK}"));
    assert!(e.contains("recorder.checkpoint_interval"), "{e}");
}

#[test]
fn policy_is_validated_in_place() {
    let c = parse(PG).unwrap();
    assert_eq!(
        c.targets[0].policy,
        crate::policy::rules::PolicyConfig::default()
    );
    let e = err(&format!(
        "{PG}[[target.policy.rules]]\nname = \"x\"\naction = \"block\"\nclasses = [\"no_such_class\"]\n"
    ));
    assert!(e.contains("target[0].policy"), "{e}");
    assert!(e.contains("no_such_class"), "{e}");
}

#[test]
fn admin_section_off_loopback_needs_tls() {
    let e = err(&format!("[admin]\nlisten = \"0.0.0.0:9090\"\n{OK}"));
    assert!(e.contains("admin."), "{e}");
}

#[test]
fn cpu_list_parsing() {
    assert_eq!(parse_cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
    assert_eq!(parse_cpu_list("1"), vec![1]);
    assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
    assert_eq!(parse_cpu_list("x,2"), vec![2]);
}

#[test]
fn postgres_keys_in_their_sub_table() {
    let c = parse(&format!(
        "{PG}[target.postgres]\ndatabase = \"pay\"\nupstream_database = \"payments_prod\"\n"
    ))
    .unwrap();
    let pg = c.targets[0].postgres.as_ref().unwrap();
    assert_eq!(pg.database, "pay");
    assert_eq!(pg.upstream_database, "payments_prod");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let e = err(&format!("{PG}[target.postgres]\ndatabse = \"pay\"\n"));
    assert!(e.contains("databse"), "{e}");
    let e = err(&format!("{PG}[target.postgres]\ndatabase = \"\"\n"));
    assert!(e.contains("t.toml:17: target[0].postgres.database"), "{e}");
    let long = "p".repeat(64);
    let e = err(&PG.replace("\"payments\"", &format!("{long:?}")));
    assert!(e.contains("target[0].postgres.database"), "{e}");
    assert!(e.contains("the target's name"), "{e}");
}

/// Files written before `[target.postgres]` keep working: the keys are read
/// from `[target]`, and each gets a warning naming its new place.
#[test]
fn postgres_keys_in_the_old_place_still_work_with_a_warning() {
    let old = PG.replace(
        "upstream = \"127.0.0.1:5432\"\n",
        "upstream = \"127.0.0.1:5432\"\ndatabase = \"pay\"\nupstream_database = \"payments_prod\"\n",
    );
    let c = parse(&old).unwrap();
    let pg = c.targets[0].postgres.as_ref().unwrap();
    assert_eq!(pg.database, "pay");
    assert_eq!(pg.upstream_database, "payments_prod");
    let w = c.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("t.toml:13: target[0].database (target \"payments\")")
            && w[0].ends_with("move it to [target.postgres] database"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("t.toml:14: target[0].upstream_database")
            && w[1].ends_with("move it to [target.postgres] upstream_database"),
        "{w:?}"
    );
    assert_eq!(c.deprecations, w);
    // Both places: which one wins would be a guess.
    let e = err(&format!("{old}[target.postgres]\ndatabase = \"pay\"\n"));
    assert!(e.contains("t.toml:13: target[0].database"), "{e}");
    assert!(e.contains("keep only [target.postgres] database"), "{e}");
}

/// A tcp target has no database: a 64-character name (the longest) is
/// accepted, where it once failed the database check it had no use for.
#[test]
fn a_tcp_target_name_is_not_a_database_name() {
    let long = format!("{:?}", "e".repeat(64));
    let c = parse(&OK.replace("\"echo\"", &long)).unwrap();
    assert_eq!(c.targets[0].name.len(), 64);
}

#[test]
fn postgres_keys_on_a_tcp_target() {
    let e = err(&format!("{OK}[target.postgres]\ndatabase = \"x\"\n"));
    assert!(e.contains("target[0].postgres"), "{e}");
    assert!(e.contains("this one is tcp"), "{e}");
    // The old top-level key never did anything there: still accepted, with a warning.
    let c = parse(&OK.replace("idle_timeout", "database = \"x\"\nidle_timeout")).unwrap();
    assert!(c.targets[0].postgres.is_none());
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("target[0].database"), "{w:?}");
    assert!(w[0].contains("does nothing on a tcp target"), "{w:?}");
}

#[test]
fn postgres_pool_defaults_and_refusals() {
    let c = parse(&format!("{PG}[target.postgres.pool]\nsize = 10\n")).unwrap();
    let pool = c.targets[0]
        .postgres
        .as_ref()
        .unwrap()
        .pool
        .clone()
        .unwrap();
    assert_eq!(pool.mode, crate::config::PoolMode::Session);
    assert_eq!(pool.size, 10);
    assert_eq!(pool.reset_query, "DISCARD ALL");
    assert_eq!(pool.max_lifetime, std::time::Duration::from_secs(3600));
    let c = parse(&format!(
        "{PG}[target.postgres.pool]\nmax_lifetime = \"5m\"\nidle_timeout = \"30s\"\nreset_query = \"RESET ALL\"\n"
    ))
    .unwrap();
    let pool = c.targets[0]
        .postgres
        .as_ref()
        .unwrap()
        .pool
        .clone()
        .unwrap();
    assert_eq!(pool.idle_timeout, std::time::Duration::from_secs(30));
    assert_eq!(pool.reset_query, "RESET ALL");
    let c = parse(&format!(
        "{PG}[target.postgres.pool]\nmode = \"transaction\"\n"
    ))
    .unwrap();
    let pool = c.targets[0]
        .postgres
        .as_ref()
        .unwrap()
        .pool
        .clone()
        .unwrap();
    assert_eq!(pool.mode, crate::config::PoolMode::Transaction);
    // The release check is on by default; "" turns it off.
    assert_eq!(
        pool.server_check_query.as_deref(),
        Some(crate::config::pool::DEFAULT_SERVER_CHECK)
    );
    let c = parse(&format!(
        "{PG}[target.postgres.pool]\nmode = \"transaction\"\nserver_check_query = \"\"\n"
    ))
    .unwrap();
    let pool = c.targets[0]
        .postgres
        .as_ref()
        .unwrap()
        .pool
        .clone()
        .unwrap();
    assert_eq!(pool.server_check_query, None);
    for (bad, needle) in [
        ("mode = \"statement\"", "is not supported"),
        ("size = 0", "postgres.pool.size"),
        ("min_idle = 2", "postgres.pool.min_idle"),
        ("idle_timeout = \"0s\"", "postgres.pool.idle_timeout"),
        ("reset_query = \" \"", "postgres.pool.reset_query"),
        (
            "server_check_query = \"select 1\\u0000\"",
            "postgres.pool.server_check_query",
        ),
        ("sise = 3", "sise"),
    ] {
        let e = err(&format!("{PG}[target.postgres.pool]\n{bad}\n"));
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn http_targets_share_a_listener_by_host() {
    let one = |name: &str, host: Option<&str>, tls: bool| {
        let mut t = format!(
            "[[target]]\nname = \"{name}\"\nprotocol = \"http\"\nlisten = [\"127.0.0.1:8443\"]\n\
             upstream = \"127.0.0.1:8080\"\n[target.access]\ngroups = [\"ci\"]\n"
        );
        if tls {
            t += "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
        }
        t += "[target.http]\n";
        if let Some(h) = host {
            t += &format!("host = \"{h}\"\n");
        }
        t
    };
    let head = PG.split("[[target]]").next().unwrap();
    let c = parse(&format!(
        "{head}{}{}",
        one("a", Some("A.example.com"), true),
        one("b", Some("b.example.com"), true)
    ))
    .unwrap();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(
        c.targets[0].http.as_ref().unwrap().host.as_deref(),
        Some("a.example.com")
    );
    let e = err(&format!(
        "{head}{}{}",
        one("a", Some("a.example.com"), true),
        one("b", Some("a.example.com"), true)
    ));
    assert!(
        e.contains("already routes host/path \"a.example.com/\""),
        "{e}"
    );
    let e = err(&format!(
        "{head}{}{}",
        one("a", None, false),
        one("b", Some("b.test"), false)
    ));
    assert!(e.contains("already the listener of target \"a\""), "{e}");
    let e = err(&format!(
        "{head}{}{}",
        one("a", Some("a.test"), true),
        one("b", Some("b.test"), false)
    ));
    assert!(e.contains("all have [target.tls] or none has"), "{e}");
    let e = err(&format!("{head}{}", one("a", Some("a.test:443"), false)));
    assert!(e.contains("must be a DNS name"), "{e}");
}

#[test]
fn an_upstream_client_certificate_needs_its_key_and_verification() {
    let with = |extra: &str| format!("{PG}[target.upstream_tls]\nmode = \"verify-full\"\n{extra}");
    let c = parse(&with("cert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n")).unwrap();
    let u = c.targets[0].upstream_tls.as_ref().unwrap();
    assert_eq!(
        u.client_cert,
        Some(TlsFiles {
            cert_file: "/c.pem".into(),
            key_file: "/k.pem".into()
        })
    );
    let e = err(&with("cert_file = \"/c.pem\"\n"));
    assert!(e.contains("cert_file and key_file go together"), "{e}");
    let e = err(&format!(
        "{PG}[target.upstream_tls]\nmode = \"disable\"\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n"
    ));
    assert!(e.contains("only with mode = \"verify-full\""), "{e}");
}

#[test]
fn http_mtls_callers_need_tls_and_the_mtls_ca() {
    let head = PG.split("[[target]]").next().unwrap();
    let target = |tls: bool| {
        let mut t =
            "[[target]]\nname = \"api\"\nprotocol = \"http\"\nlisten = [\"127.0.0.1:8443\"]\n\
             upstream = \"127.0.0.1:8080\"\n[target.access]\ngroups = [\"ci\"]\n"
                .to_string();
        if tls {
            t += "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
        }
        t + "[target.http]\nidentity = \"mtls\"\n"
    };
    let e = err(&format!("{head}{}", target(false)));
    assert!(e.contains("configure [target.tls]"), "{e}");
    let e = err(&format!("{head}{}", target(true)));
    assert!(e.contains("needs [identity.mtls] ca_file"), "{e}");
    let c = parse(&format!(
        "{head}[identity.mtls]\nca_file = \"/ca.pem\"\n{}",
        target(true)
    ))
    .unwrap();
    assert!(c.targets[0].callers_by_certificate());
}

#[test]
fn http2_needs_tls_and_caps_in_range() {
    let head = PG.split("[[target]]").next().unwrap();
    let target = |tls: bool, http: &str| {
        let mut t =
            "[[target]]\nname = \"api\"\nprotocol = \"http\"\nlisten = [\"127.0.0.1:8443\"]\n\
             upstream = \"127.0.0.1:8080\"\n[target.access]\ngroups = [\"ci\"]\n"
                .to_string();
        if tls {
            t += "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
        }
        t + "[target.http]\n" + http
    };
    // HTTP/2 is agreed in the TLS handshake: no h2c.
    let e = err(&format!("{head}{}", target(false, "http2 = true\n")));
    assert!(e.contains("no h2c"), "{e}");
    let e = err(&format!(
        "{head}{}",
        target(true, "http2 = true\nhttp2_max_frame_size = 1000\n")
    ));
    assert!(e.contains("http2_max_frame_size"), "{e}");
    let e = err(&format!(
        "{head}{}",
        target(true, "http2 = true\nhttp2_max_concurrent_streams = 0\n")
    ));
    assert!(e.contains("http2_max_concurrent_streams"), "{e}");
    let c = parse(&format!("{head}{}", target(true, "http2 = true\n"))).unwrap();
    let limits = c.targets[0].http.as_ref().unwrap().http2.unwrap();
    assert_eq!(
        (
            limits.max_concurrent_streams,
            limits.max_header_list_size,
            limits.max_frame_size
        ),
        (100, 32 << 10, 16 << 10)
    );
    let c = parse(&format!("{head}{}", target(true, ""))).unwrap();
    assert!(c.targets[0].http.as_ref().unwrap().http2.is_none());
}

#[test]
fn recorder_upload_section() {
    let up = "[recorder.upload]\nurl = \"s3://rec/fleet\"\nendpoint = \"http://127.0.0.1:3900\"\nhost_id = \"gw-1\"\n";
    let c = parse(&format!("[recorder]\nsigning_key = \"/k\"\n{up}{OK}")).unwrap();
    let u = c.upload.unwrap();
    assert_eq!(
        (u.store.url.bucket.as_str(), u.store.url.prefix.as_str()),
        ("rec", "fleet/")
    );
    let rec = c.recorder.unwrap();
    assert!(
        rec.delete_uploaded,
        "delete_local_after_upload defaults to true"
    );
    assert!(
        rec.keep_until_uploaded,
        "with uploads, retention never deletes a segment not yet uploaded"
    );
    // The manifest is signed: no key, no upload.
    let e = err(&format!("[recorder]\n{up}{OK}"));
    assert!(
        e.contains("recorder.upload") && e.contains("signing_key"),
        "{e}"
    );
    let e = err(&format!(
        "[recorder]\nsigning_key = \"/k\"\n{up}secret_access_key = \"x\"\n{OK}"
    ));
    assert!(
        e.contains("secret_access_key"),
        "a secret is never inline: {e}"
    );
    let e = err(&format!(
        "[recorder]\nsigning_key = \"/k\"\n[recorder.upload]\nurl = \"s3://rec\"\nhost_id = \"a/b\"\n{OK}"
    ));
    assert!(e.contains("recorder.upload.host_id"), "{e}");
    let e = err(&format!("[recorder]\nenabled = false\n{up}{OK}"));
    assert!(e.contains("recording is disabled"), "{e}");
}
