//! Tests of the session-facing API: planning, styles per rule, exemptions.

use super::*;

const KEY: &[u8] = b"0123456789abcdef0123";

fn policy(toml_text: &str) -> MaskPolicy {
    let cfg: MaskingConfig = toml::from_str(toml_text).unwrap();
    MaskPolicy::new(&cfg, Some(KEY)).unwrap()
}

const CONFIG: &str = r#"
key_file = "k"
[[rules]]
name = "ids"
columns = ["ssn", "*_SSN"]
style = "partial"
keep = 4
exempt_groups = ["auditors"]
[[rules]]
name = "emails"
columns = ["email"]
detectors = ["email"]
style = "hash"
[[rules]]
name = "cards"
detectors = ["card", "email"]
style = "redact"
replacement = "[card]"
[[rules]]
name = "secrets"
detectors = ["aws_access_key", "employee_id"]
style = "null"
[[custom]]
name = "employee_id"
regex = "EMP-[0-9]{6}"
anchor = "EMP-"
"#;

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

fn plan(p: &MaskPolicy, cols: &[&str], g: &[&str]) -> ResultPlan {
    let mut plan = ResultPlan::default();
    p.plan_result(cols.iter().map(|c| c.as_bytes()), &groups(g), &mut plan);
    plan
}

#[test]
fn plan_picks_first_matching_rule_and_honours_exemptions() {
    let p = policy(CONFIG);
    let cols = ["id", "SSN", "spouse_ssn", "Email", "notes"];
    let pl = plan(&p, &cols, &[]);
    assert_eq!(pl.column(0), ColumnAction::Scan);
    assert_eq!(pl.column(1), ColumnAction::Whole { rule: 0 });
    assert_eq!(pl.column(2), ColumnAction::Whole { rule: 0 });
    assert_eq!(pl.column(3), ColumnAction::Whole { rule: 1 });
    assert_eq!(
        pl.column(9),
        ColumnAction::Scan,
        "undescribed columns are scanned"
    );
    let audit = plan(&p, &cols, &["auditors"]);
    assert_eq!(
        audit.column(1),
        ColumnAction::Scan,
        "exempt from `ids` only"
    );
    assert!(!pl.is_noop());
}

#[test]
fn noop_plans() {
    let p = policy("[[rules]]\nname='a'\ncolumns=['ssn']\nstyle='null'\nexempt_groups=['ops']\n");
    assert!(plan(&p, &["id", "name"], &[]).is_noop());
    assert!(plan(&p, &["ssn"], &["ops"]).is_noop());
    assert!(!plan(&p, &["ssn"], &[]).is_noop());
    let empty = MaskPolicy::new(&MaskingConfig::default(), None).unwrap();
    assert!(plan(&empty, &["ssn"], &[]).is_noop());
}

#[test]
fn whole_column_styles() {
    let p = policy(CONFIG);
    let pl = plan(&p, &["ssn", "email"], &[]);
    let mut s = MaskScratch::default();
    assert_eq!(
        p.mask_value(&pl, 0, b"123-45-6789", &mut s),
        MaskOutcome::Replaced(b"***-**-6789")
    );
    let MaskOutcome::Replaced(h) = p.mask_value(&pl, 1, b"a@b.io", &mut s) else {
        panic!()
    };
    assert!(h.starts_with(HASH_PREFIX) && h.len() == HASH_PREFIX.len() + HASH_HEX_LEN);
    let h = h.to_vec();
    let MaskOutcome::Replaced(h2) = p.mask_value(&pl, 1, b"a@b.io", &mut s) else {
        panic!()
    };
    assert_eq!(h, h2, "deterministic, so joins work");
    assert_eq!(s.counters.by_column, 3);
}

#[test]
fn content_styles_follow_first_rule_per_detector() {
    let p = policy(CONFIG);
    let pl = plan(&p, &["notes"], &[]);
    let mut s = MaskScratch::default();
    // email: rule "emails" (hash) comes before "cards", so it is hashed.
    let out = p.mask_value(&pl, 0, b"card 4111 1111 1111 1111 mail a@b.io", &mut s);
    let MaskOutcome::Replaced(out) = out else {
        panic!("{out:?}")
    };
    let out = std::str::from_utf8(out).unwrap();
    assert!(out.starts_with("card [card] mail h:"), "{out}");
    assert_eq!(s.counters.by_detector[Builtin::Card.id().index()], 1);
    assert_eq!(s.counters.by_detector[Builtin::Email.id().index()], 1);
    assert_eq!(
        p.mask_value(&pl, 0, b"nothing here 2024-01-01", &mut s),
        MaskOutcome::Unchanged
    );
    assert_eq!(
        p.mask_value(&pl, 0, b"key AKIAIOSFODNN7EXAMPLE", &mut s),
        MaskOutcome::Null
    );
    assert_eq!(
        p.mask_value(&pl, 0, b"who EMP-123456", &mut s),
        MaskOutcome::Null
    );
    let id = DetectorId(Builtin::COUNT as u8);
    assert_eq!(p.detector_name(id), Some("employee_id"));
    assert_eq!(s.counters.by_detector[id.index()], 1);
}

#[test]
fn text_never_returns_null() {
    let p = policy(CONFIG);
    let mut pl = ResultPlan::default();
    p.plan_caller(&[], &mut pl);
    let mut s = MaskScratch::default();
    let out = p.mask_text(&pl, b"1\tAKIAIOSFODNN7EXAMPLE\tx\n", &mut s);
    assert_eq!(out, MaskOutcome::Replaced(b"1\t****\tx\n"));
}

#[test]
fn in_place_when_length_is_kept() {
    let p = policy(
        r#"
[[rules]]
name = "cards"
detectors = ["card"]
style = "partial"
[[rules]]
name = "ssn"
columns = ["ssn"]
style = "redact"
preserve_length = true
[[rules]]
name = "mail"
detectors = ["email"]
style = "redact"
"#,
    );
    let pl = plan(&p, &["notes", "ssn"], &[]);
    let mut s = MaskScratch::default();
    let mut v = b"card 4111-1111-1111-1111!".to_vec();
    assert_eq!(
        p.mask_value_in_place(&pl, 0, &mut v, &mut s),
        InPlaceOutcome::Masked
    );
    assert_eq!(v, b"card ****-****-****-1111!");
    let mut v = b"123-45-6789".to_vec();
    assert_eq!(
        p.mask_value_in_place(&pl, 1, &mut v, &mut s),
        InPlaceOutcome::Masked
    );
    assert_eq!(v, b"***********");
    let mut v = b"a@b.io 4111-1111-1111-1111".to_vec();
    let out = p.mask_value_in_place(&pl, 0, &mut v, &mut s);
    assert_eq!(out, InPlaceOutcome::Replaced(b"**** ****-****-****-1111"));
    let mut v = b"plain".to_vec();
    assert_eq!(
        p.mask_value_in_place(&pl, 0, &mut v, &mut s),
        InPlaceOutcome::Unchanged
    );
}

#[test]
fn non_utf8_values_are_safe() {
    let p = policy(CONFIG);
    let pl = plan(&p, &["notes", "ssn"], &[]);
    let mut s = MaskScratch::default();
    let v = [0xff, 0xfe, b'a', b'@', b'b', b'.', b'i', b'o', 0xc3];
    assert!(matches!(
        p.mask_value(&pl, 0, &v, &mut s),
        MaskOutcome::Replaced(_)
    ));
    assert!(matches!(
        p.mask_value(&pl, 1, &v, &mut s),
        MaskOutcome::Replaced(_)
    ));
    // Every prefix of a value full of candidates: no panic, spans in bounds.
    let text = b"+1 415 555 2671 a@b.io 4111111111111111 DE89370400440532013000 eyJhbGciOiJIUzI1NiJ9.eyJ9.x -----BEGIN PRIVATE KEY----- Bearer abcdefghijklmnop1";
    let mut spans = Vec::new();
    for n in 0..=text.len() {
        p.find(&pl, &text[..n], &mut spans);
        assert!(spans.iter().all(|sp| sp.start < sp.end && sp.end <= n));
        let _ = p.mask_value(&pl, 0, &text[..n], &mut s);
    }
}

#[test]
fn hash_needs_a_key() {
    let cfg: MaskingConfig = toml::from_str(CONFIG).unwrap();
    assert!(matches!(
        MaskPolicy::new(&cfg, None),
        Err(MaskError::MissingKey)
    ));
    assert!(matches!(
        MaskPolicy::new(&cfg, Some(b"short")),
        Err(MaskError::KeyTooShort { .. })
    ));
}

#[test]
fn policy_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<MaskPolicy>();
}
