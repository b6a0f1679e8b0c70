//! The catalog of uploaded recording segments in the fleet's control
//! database, end to end: real tollgate processes recording real psql
//! sessions, uploading to a real Garage and cataloging in a real
//! PostgreSQL (`[cluster]` over verified TLS). Every host's segments are
//! listed (CLI and admin API), the cross-check against the bucket names
//! what disagrees, and neither a control-database outage nor a kill -9
//! leaves the catalog short or doubled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::control::{CTL_ROLE, ControlDb, control};
use common::pg::Cluster;
use common::pggw::PgGateway;
use common::s3fleet::{S3Fleet, admin_get, restart, sessions, stop, wait_for_roll};
use common::tollgate_bin;
use serde_json::Value;

/// A host of the fleet: a gateway uploading as `host` and cataloging in `ctl`.
fn host(s3: &S3Fleet, ctl: &ControlDb, name: &str, host: &str) -> PgGateway {
    s3.gateway_with(name, host, &ctl.section(host, CTL_ROLE, "1s"))
}

/// `tollgate recordings catalog --json` with the config of `gw`, as rows.
fn catalog_cli(gw: &PgGateway, args: &[&str]) -> Vec<Value> {
    let out = Command::new(tollgate_bin())
        .args(["recordings", "catalog", "--json", "--config"])
        .arg(&gw.gw.config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn keys_of(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["object_key"].as_str().unwrap().to_string())
        .collect()
}

/// The segment objects in the bucket under `host`.
fn bucket_keys(s3: &S3Fleet, host: &str) -> BTreeSet<String> {
    s3.segment_keys(host).into_iter().collect()
}

/// The catalog's rows of `host` straight from the database.
fn db_keys(ctl: &ControlDb, host: &str) -> BTreeSet<String> {
    ctl.sql(&format!(
        "select object_key from tollgate_segments where host_id = '{host}' order by 1"
    ))
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

/// The catalog lists exactly the bucket's segments of `host`, once each,
/// and every manifest version (without a gap up to the position).
fn assert_complete(s3: &S3Fleet, ctl: &ControlDb, host: &str) {
    let bucket = bucket_keys(s3, host);
    assert!(!bucket.is_empty(), "{host} uploaded nothing");
    assert_eq!(db_keys(ctl, host), bucket, "catalog of {host}");
    let versions = s3.manifest_versions(host);
    assert_eq!(
        ctl.sql(&format!(
            "select count(*) || ' ' || max(version) from tollgate_catalog_manifests where host_id = '{host}'"
        )),
        format!("{versions} {versions}"),
        "manifest versions of {host}"
    );
    assert_eq!(
        ctl.sql(&format!(
            "select complete_through from tollgate_catalog_hosts where host_id = '{host}'"
        )),
        versions.to_string()
    );
}

/// `verify --from ... --catalog <config of gw>`: (passed, output).
fn verify_with_catalog(s3: &S3Fleet, gw: &PgGateway, cache: &Path) -> (bool, String) {
    let key = s3.public_key();
    let state = cache.join("heads.json");
    let cfg = gw.gw.config.display().to_string();
    let out = s3.recordings(
        &[
            "verify",
            "--key",
            key.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--catalog",
            &cfg,
        ],
        cache,
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn three_hosts_are_cataloged_and_the_cross_check_names_each_disagreement() {
    let s3 = S3Fleet::new("cat3");
    let dir = tempfile::tempdir().unwrap();
    let ctl = ControlDb::new(control(), "cat3", dir.path());
    let hosts = ["gw-a", "gw-b", "gw-c"];
    let mut gws: Vec<PgGateway> = hosts
        .iter()
        .map(|h| host(&s3, &ctl, &format!("cat_{}", h.replace('-', "_")), h))
        .collect();
    for round in 0..2 {
        for (gw, h) in gws.iter().zip(hosts) {
            sessions(gw, &format!("{h}_{round}"), 2);
        }
        for gw in &gws {
            wait_for_roll(gw);
        }
    }
    // While they run: the admin API of any host lists every host's
    // segments, and uploaded copies deleted locally are marked so.
    assert_eventually!(
        hosts.iter().all(|h| !db_keys(&ctl, h).is_empty()),
        Duration::from_secs(30),
        "not every host reached the catalog: {}",
        ctl.sql("select host_id, object_key from tollgate_segments")
    );
    let api: Value = serde_json::from_str(&admin_get(&gws[2], "/v1/recordings/catalog")).unwrap();
    let listed: BTreeSet<&str> = api["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from(hosts), "{api}");
    let only_a: Value = serde_json::from_str(&admin_get(
        &gws[1],
        "/v1/recordings/catalog?host=gw-a&since=1h",
    ))
    .unwrap();
    let rows = only_a["segments"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["host"] == "gw-a"),
        "{only_a}"
    );
    let bad = admin_get(&gws[1], "/v1/recordings/catalog?host=../x");
    assert!(bad.contains("not a host id"), "{bad}");
    assert_eventually!(
        ctl.sql("select count(*) from tollgate_segments where local_deleted_ms is not null") != "0",
        Duration::from_secs(30),
        "no deleted local copy reached the catalog"
    );
    for gw in &mut gws {
        stop(gw);
    }
    // After a clean stop the last uploads are cataloged too.
    for h in hosts {
        assert_complete(&s3, &ctl, h);
    }
    // The CLI: per host, newest upload first; --host narrows.
    let rows = catalog_cli(&gws[0], &[]);
    assert_eq!(
        rows.len(),
        hosts
            .iter()
            .map(|h| bucket_keys(&s3, h).len())
            .sum::<usize>()
    );
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a["host"].as_str() < b["host"].as_str()
                || (a["host"] == b["host"]
                    && a["uploaded_ms"].as_u64() >= b["uploaded_ms"].as_u64()),
            "not per host, newest first: {a} then {b}"
        );
        assert!(a["size"].as_u64().unwrap() > 0 && a["sha256"].as_str().unwrap().len() == 64);
    }
    let b_rows = catalog_cli(&gws[0], &["--host", "gw-b"]);
    assert_eq!(keys_of(&b_rows), bucket_keys(&s3, "gw-b"));
    assert!(b_rows.iter().any(|r| r["opened_ms"].as_u64().is_some()));

    // The catalog agrees with the bucket and the manifests ...
    let cache = tempfile::tempdir().unwrap();
    let (ok, text) = verify_with_catalog(&s3, &gws[0], cache.path());
    assert!(ok, "{text}");
    assert!(
        text.contains("segment rows of the control database cross-checked"),
        "{text}"
    );
    // ... and each disagreement is named: an object the bucket lost,
    let w = s3.garage.writer();
    let gone = s3.segment_keys("gw-a")[0].clone();
    let saved = w.get(&gone, 1 << 30).unwrap();
    w.delete(&gone).unwrap();
    let rel = gone.trim_start_matches("cat3/");
    let (ok, text) = verify_with_catalog(&s3, &gws[0], cache.path());
    assert!(
        !ok && text.contains(&format!(
            "catalog: {rel}: in the catalog (host gw-a, manifest version"
        )) && text.contains("but not in the bucket"),
        "{text}"
    );
    w.put(&gone, &saved).unwrap();
    // a row the catalog lost,
    let unlisted = s3.segment_keys("gw-b")[0].clone();
    ctl.sql(&format!(
        "delete from tollgate_segments where object_key = '{unlisted}'"
    ));
    let rel_b = unlisted.trim_start_matches("cat3/");
    // and a size the catalog has wrong.
    let wrong = s3.segment_keys("gw-c")[0].clone();
    ctl.sql(&format!(
        "update tollgate_segments set size = size + 1 where object_key = '{wrong}'"
    ));
    let rel_c = wrong.trim_start_matches("cat3/");
    let (ok, text) = verify_with_catalog(&s3, &gws[0], cache.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "catalog: {rel_b}: in the bucket but not in the catalog"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("catalog: {rel_c}: the catalog says")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("catalog: {rel}:")),
        "restored: {text}"
    );
}

#[test]
fn the_control_database_down_during_uploads_loses_and_doubles_nothing() {
    // A server of its own: this test stops it.
    let server: &'static Cluster = Box::leak(Box::new(Cluster::extra("catdown")));
    let s3 = S3Fleet::new("catdown");
    let dir = tempfile::tempdir().unwrap();
    let ctl = ControlDb::new(server, "catdown", dir.path());
    let mut gw = host(&s3, &ctl, "catdown", "gw-down");
    sessions(&gw, "up", 2);
    wait_for_roll(&gw);
    assert_eventually!(
        !db_keys(&ctl, "gw-down").is_empty(),
        Duration::from_secs(30),
        "nothing cataloged while the database is up"
    );
    server.stop();
    let before = s3.manifest_versions("gw-down");
    let mut markers = Vec::new();
    for i in 0..3 {
        markers.extend(sessions(&gw, &format!("down{i}"), 2));
        wait_for_roll(&gw);
    }
    // Uploads go on without the control database.
    assert_eventually!(
        s3.manifest_versions("gw-down") >= before + 2,
        Duration::from_secs(30),
        "uploads stopped with the control database; log:\n{}",
        gw.gw.log_text()
    );
    server.start_again();
    // Rows written on reconnect, while the host keeps running.
    assert_eventually!(
        db_keys(&ctl, "gw-down") == bucket_keys(&s3, "gw-down"),
        Duration::from_secs(30),
        "the catalog never caught up: {:?} vs {:?}; log:\n{}",
        db_keys(&ctl, "gw-down"),
        bucket_keys(&s3, "gw-down"),
        gw.gw.log_text()
    );
    stop(&mut gw);
    assert_complete(&s3, &ctl, "gw-down");
    let cache = tempfile::tempdir().unwrap();
    let (ok, text) = verify_with_catalog(&s3, &gw, cache.path());
    assert!(ok, "{text}");
}

#[test]
fn kill_9_mid_upload_then_restart_and_the_catalog_is_complete() {
    let s3 = S3Fleet::new("catcrash");
    let dir = tempfile::tempdir().unwrap();
    let ctl = ControlDb::new(control(), "catcrash", dir.path());
    let mut gw = host(&s3, &ctl, "catcrash", "gw-crash");
    for i in 0..3 {
        sessions(&gw, &format!("before{i}"), 2);
        wait_for_roll(&gw);
    }
    assert_eventually!(
        s3.manifest_versions("gw-crash") >= 2 && !db_keys(&ctl, "gw-crash").is_empty(),
        Duration::from_secs(30),
        "nothing uploaded and cataloged; log:\n{}",
        gw.gw.log_text()
    );
    sessions(&gw, "last", 2);
    wait_for_roll(&gw);
    gw.gw.signal("KILL");
    gw.gw.wait_exit(Duration::from_secs(10)).unwrap();
    // The worst moment to die: manifest versions in the bucket that the
    // agent had not written yet (their rows, and the position past them,
    // never reached the database), and no local journal or marks either.
    let newest = s3.manifest_versions("gw-crash");
    ctl.sql(&format!(
        "delete from tollgate_segments where host_id = 'gw-crash' and manifest_version >= {newest} - 1;
         delete from tollgate_catalog_manifests where host_id = 'gw-crash' and version >= {newest} - 1;
         update tollgate_catalog_hosts set complete_through = least(complete_through, {newest} - 2)
           where host_id = 'gw-crash'"
    ));
    let rec = gw.gw.recordings.clone();
    let _ = std::fs::remove_file(rec.join("upload-journal.json"));
    for p in std::fs::read_dir(rec.join("shard-0")).unwrap() {
        let p = p.unwrap().path();
        if p.to_string_lossy().ends_with(".uploaded") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // The dead instance's host id is free once its heartbeat is stale.
    assert_eventually!(
        ctl.sql(
            "select count(*) from tollgate_hosts where host_id = 'gw-crash' \
             and heartbeat_at > now() - interval '2500 ms'"
        ) == "0",
        Duration::from_secs(20),
        "the killed host's heartbeat never went stale"
    );
    restart(&mut gw);
    sessions(&gw, "after", 2);
    assert_eventually!(
        db_keys(&ctl, "gw-crash") == bucket_keys(&s3, "gw-crash"),
        Duration::from_secs(30),
        "the catalog is not complete after the restart: {:?} vs {:?}; log:\n{}",
        db_keys(&ctl, "gw-crash"),
        bucket_keys(&s3, "gw-crash"),
        gw.gw.log_text()
    );
    stop(&mut gw);
    assert_complete(&s3, &ctl, "gw-crash");
    let cache = tempfile::tempdir().unwrap();
    let (ok, text) = verify_with_catalog(&s3, &gw, cache.path());
    assert!(ok, "{text}");
}
