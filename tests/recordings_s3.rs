//! Recordings in object storage, end to end: real gateways recording real
//! psql sessions, uploading to a real Garage; `recordings ... --from s3://`
//! reading them back; crashes, an outage, three hosts under one prefix, and
//! tampering in the bucket named by `verify --from`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::pggw::PgGateway;
use common::s3fleet::{
    S3Fleet as Fleet, admin_get, local_segments, metric, restart, sessions, stop, wait_for_roll,
};
use common::tollgate_bin;

fn export_all(fleet: &Fleet, cache: &Path) -> String {
    let out = fleet.recordings(&["export", "--all"], cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sessions_are_uploaded_and_local_copies_go_only_once_confirmed() {
    let fleet = Fleet::new("fleet");
    let mut gw = fleet.gateway("s3_basic", "gw-basic");
    let mut markers = Vec::new();
    for round in 0..3 {
        markers.extend(sessions(&gw, &format!("r{round}"), 3));
        wait_for_roll(&gw);
    }
    assert_eventually!(
        fleet.segment_keys("gw-basic").len() >= 2 && fleet.manifest_versions("gw-basic") >= 1,
        Duration::from_secs(30),
        "nothing uploaded; log:\n{}",
        gw.gw.log_text()
    );
    // A deleted local segment is always one the bucket's manifests list:
    // the uploader marks only after the read-back and the manifest PUT.
    assert_eventually!(
        {
            let local: Vec<String> = local_segments(&gw)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            let uploaded = fleet.segment_keys("gw-basic");
            let gone: Vec<&String> = uploaded
                .iter()
                .filter(|k| !local.iter().any(|l| k.ends_with(l.as_str())))
                .collect();
            !gone.is_empty()
        },
        Duration::from_secs(30),
        "no uploaded segment was deleted locally; log:\n{}",
        gw.gw.log_text()
    );
    assert!(metric(&gw, "tollgate_recording_uploaded_segments_total").unwrap_or(0.0) >= 1.0);
    let ready = admin_get(&gw, "/readyz");
    assert!(
        ready.contains("\"upload\"") && !ready.contains("degraded"),
        "{ready}"
    );
    stop(&mut gw);
    // What stayed local still verifies (deletions are checkpointed retention).
    let local = Command::new(tollgate_bin())
        .args(["recordings", "verify", "--key"])
        .arg(fleet.public_key())
        .arg("--dir")
        .arg(&gw.gw.recordings)
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stdout)
    );

    let cache = tempfile::tempdir().unwrap();
    let state = cache.path().join("heads.json");
    let (ok, text) = fleet.verify(cache.path(), &state);
    assert!(ok, "{text}");
    assert!(text.contains("host gw-basic: manifest version"), "{text}");
    // Every session is readable from the bucket, and nothing holds the
    // stored target password (decoded records, nor raw objects).
    let export = export_all(&fleet, cache.path());
    for m in &markers {
        assert!(
            export.contains(m.as_str()),
            "{m} missing from the bucket's export"
        );
    }
    assert!(!export.contains(&gw.password));
    for (key, _) in fleet.objects("gw-basic") {
        let data = fleet.garage.auditor().get(&key, 1 << 30).unwrap();
        assert!(
            !String::from_utf8_lossy(&data).contains(&gw.password),
            "{key} holds the stored credential"
        );
    }
    let list = fleet.recordings(&["list"], cache.path());
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("gw-basic") && list.contains("svc-upload"),
        "{list}"
    );
}

#[test]
fn the_auditor_key_reads_but_cannot_write_or_delete() {
    let fleet = Fleet::new("acl");
    let auditor = fleet.garage.auditor();
    let err = auditor
        .put("acl/gw-x/shard-0/00000000000000000000.seg", b"forged")
        .unwrap_err();
    assert!(
        matches!(err, tollgate::objstore::S3Error::Status { status: 403, .. }),
        "{err}"
    );
    fleet.garage.writer().put("acl/probe", b"x").unwrap();
    assert_eq!(auditor.get("acl/probe", 10).unwrap(), b"x");
    let err = auditor.delete("acl/probe").unwrap_err();
    assert!(
        matches!(err, tollgate::objstore::S3Error::Status { status: 403, .. }),
        "{err}"
    );
    assert_eq!(fleet.garage.writer().head("acl/probe").unwrap(), Some(1));
}

#[test]
fn kill_9_mid_upload_then_restart_resumes_and_nothing_is_lost() {
    let fleet = Fleet::new("crash");
    let mut gw = fleet.gateway("s3_crash", "gw-crash");
    let mut markers = sessions(&gw, "before", 3);
    wait_for_roll(&gw);
    markers.extend(sessions(&gw, "before2", 3));
    assert_eventually!(
        fleet.manifest_versions("gw-crash") >= 1,
        Duration::from_secs(30),
        "no manifest; log:\n{}",
        gw.gw.log_text()
    );
    // More sealed segments, and a kill while the uploader is at them.
    for i in 0..3 {
        markers.extend(sessions(&gw, &format!("during{i}"), 2));
        wait_for_roll(&gw);
    }
    gw.gw.signal("KILL");
    gw.gw.wait_exit(Duration::from_secs(10)).unwrap();
    // The worst moment to die: manifest versions in the bucket, but no mark
    // and no journal entry for them yet. The restart must adopt those
    // versions (not list their segments twice) and upload the rest.
    let rec = gw.gw.recordings.clone();
    let _ = std::fs::remove_file(rec.join("upload-journal.json"));
    for p in std::fs::read_dir(rec.join("shard-0")).unwrap() {
        let p = p.unwrap().path();
        if p.to_string_lossy().ends_with(".uploaded") {
            std::fs::remove_file(p).unwrap();
        }
    }
    restart(&mut gw);
    markers.extend(sessions(&gw, "after", 2));
    stop(&mut gw);
    assert!(
        gw.gw
            .log_text()
            .contains("adopted a manifest version written before a restart"),
        "the restart did not adopt the bucket's manifest versions"
    );
    // After the clean stop every sealed segment is in the bucket.
    let cache = tempfile::tempdir().unwrap();
    let state = cache.path().join("heads.json");
    let (ok, text) = fleet.verify(cache.path(), &state);
    assert!(ok, "{text}\nlog:\n{}", gw.gw.log_text());
    let export = export_all(&fleet, cache.path());
    for m in &markers {
        assert!(export.contains(m.as_str()), "{m} lost across kill -9");
    }
    assert!(
        local_segments(&gw)
            .iter()
            .all(|p| tollgate_recorder::uploaded_mark_path(p).exists()
                || p == local_segments(&gw).last().unwrap()),
        "a sealed segment was left unuploaded"
    );
}

#[test]
fn a_store_outage_builds_a_backlog_that_drains_when_it_returns() {
    let mut fleet = Fleet::new("outage");
    let mut gw = fleet.gateway("s3_outage", "gw-outage");
    sessions(&gw, "up", 2);
    assert_eventually!(
        metric(&gw, "tollgate_recording_upload_store_up") == Some(1.0),
        Duration::from_secs(20),
        "store never up"
    );
    fleet.garage.stop();
    let mut markers = Vec::new();
    for i in 0..3 {
        markers.extend(sessions(&gw, &format!("down{i}"), 2));
        wait_for_roll(&gw);
    }
    assert_eventually!(
        metric(&gw, "tollgate_recording_upload_backlog_segments").unwrap_or(0.0) >= 2.0
            && metric(&gw, "tollgate_recording_upload_store_up") == Some(0.0),
        Duration::from_secs(30),
        "no backlog while the store is down: {}",
        admin_get(&gw, "/metrics")
    );
    let ready = admin_get(&gw, "/readyz");
    assert!(ready.contains("degraded"), "{ready}");
    assert!(
        ready.contains("\"ready\":true"),
        "the host stays ready: {ready}"
    );
    // Sessions still work (recorded to disk) while the store is down.
    fleet.garage.restart();
    assert_eventually!(
        metric(&gw, "tollgate_recording_upload_backlog_segments") == Some(0.0)
            && metric(&gw, "tollgate_recording_upload_store_up") == Some(1.0),
        Duration::from_secs(30),
        "backlog never drained: {}",
        admin_get(&gw, "/metrics")
    );
    stop(&mut gw);
    let cache = tempfile::tempdir().unwrap();
    let (ok, text) = fleet.verify(cache.path(), &cache.path().join("heads.json"));
    assert!(ok, "{text}");
    let export = export_all(&fleet, cache.path());
    for m in &markers {
        assert!(export.contains(m.as_str()), "{m} lost in the outage");
    }
}

#[test]
fn three_hosts_verify_together_and_tampering_is_named() {
    let fleet = Fleet::new("three");
    let hosts = ["gw-a", "gw-b", "gw-c"];
    let mut gws: Vec<PgGateway> = hosts
        .iter()
        .map(|h| fleet.gateway(&format!("s3_{}", h.replace('-', "_")), h))
        .collect();
    for round in 0..2 {
        for (gw, h) in gws.iter().zip(hosts) {
            sessions(gw, &format!("{h}_{round}"), 2);
        }
        for gw in &gws {
            wait_for_roll(gw);
        }
    }
    for gw in &mut gws {
        stop(gw);
    }
    let cache = tempfile::tempdir().unwrap();
    let state = cache.path().join("heads.json");
    let (ok, text) = fleet.verify(cache.path(), &state);
    assert!(ok, "{text}");
    for h in hosts {
        assert!(
            text.contains(&format!("host {h}: manifest version")),
            "{text}"
        );
    }
    assert!(text.contains("3 hosts"), "{text}");

    let w = fleet.garage.writer();
    // A deleted segment.
    let seg_a = fleet.segment_keys("gw-a")[0].clone();
    let saved_a = w.get(&seg_a, 1 << 30).unwrap();
    w.delete(&seg_a).unwrap();
    let (ok, text) = fleet.verify(cache.path(), &state);
    let name_a = seg_a.trim_start_matches("three/gw-a/");
    assert!(
        !ok && text.contains(&format!(
            "host gw-a: {name_a}: listed in the manifest but missing"
        )),
        "{text}"
    );
    w.put(&seg_a, &saved_a).unwrap();
    // An altered segment (same size, one byte).
    let seg_b = fleet.segment_keys("gw-b")[0].clone();
    let mut altered = w.get(&seg_b, 1 << 30).unwrap();
    altered[100] ^= 0x20;
    w.put(&seg_b, &altered).unwrap();
    let (ok, text) = fleet.verify(cache.path(), &state);
    let name_b = seg_b.trim_start_matches("three/gw-b/");
    assert!(
        !ok && text.contains(&format!("host gw-b: {name_b}: altered")),
        "{text}"
    );
    assert!(
        !text.contains("PROBLEM: host gw-a"),
        "the restored object passes: {text}"
    );
    altered[100] ^= 0x20;
    w.put(&seg_b, &altered).unwrap();
    assert!(fleet.verify(cache.path(), &state).0);
    // A manifest rolled back: the newest version removed, and its segments
    // with it (what a rollback that hides uploads would do).
    let manifests: Vec<String> = fleet
        .objects("gw-c")
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("/manifest/"))
        .collect();
    let newest = manifests.last().unwrap().clone();
    let body = w.get(&newest, 1 << 26).unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    w.delete(&newest).unwrap();
    for e in listed["manifest"]["entries"].as_array().unwrap() {
        w.delete(&format!("three/gw-c/{}", e["key"].as_str().unwrap()))
            .unwrap();
    }
    let (ok, text) = fleet.verify(cache.path(), &state);
    assert!(
        !ok && text.contains("host gw-c: manifest rolled back"),
        "{text}"
    );
}
