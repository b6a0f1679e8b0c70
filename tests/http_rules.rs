//! HTTP rules beyond method and path, end to end with nginx and curl:
//! Kubernetes-aware conditions (verb, resource/subresource, namespace)
//! with the caller's groups, query parameters as the upstream decodes
//! them, header values; and a query the rules cannot read one way is
//! refused before it reaches nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::httpgw::HttpGateway;
use common::python;

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

const K8S_RULES: &str = r#"
[[target.http.rules]]
name = "oncall-may-exec-in-prod"
groups = ["oncall"]
k8s = { verbs = ["create"], resources = ["pods/exec"], namespaces = ["prod"] }
action = "allow"
[[target.http.rules]]
name = "no-exec-in-prod"
k8s = { resources = ["pods/exec", "pods/attach"], namespaces = ["prod"] }
action = "block"
[[target.http.rules]]
name = "no-namespace-delete"
k8s = { verbs = ["delete", "deletecollection"], resources = ["namespaces"] }
action = "block"
[[target.http.rules]]
name = "no-forced-deploy"
methods = ["POST"]
path = "/items/deploy"
query = { force = "true" }
action = "block"
[[target.http.rules]]
name = "text-puts-audited"
methods = ["PUT"]
headers = { "Content-Type" = "text/*" }
action = "audit"
"#;

#[test]
fn kubernetes_query_and_header_rules_decide_before_the_upstream() {
    let g = HttpGateway::start("", K8S_RULES);
    let ci = g.token("ci-job", "ci");
    let oncall = g.token("pager", "ci,oncall");
    let exec = "/api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true";
    let get = |t: &str, method: &str, path: &str| {
        g.curl(&["-X", method, "-H", &bearer(t), &g.url(path)]).1
    };

    // Exec in prod: the on-call group only, by POST or by the WebSocket GET.
    for method in ["POST", "GET"] {
        let out = get(&ci, method, exec);
        assert!(
            out.starts_with("HTTP/1.1 403") && out.contains("no-exec-in-prod"),
            "{out}"
        );
    }
    let out = get(&oncall, "POST", exec);
    assert!(
        out.starts_with("HTTP/1.1 200")
            && out.contains("k8s POST /api/v1/namespaces/prod/pods/web-1/exec"),
        "{out}"
    );
    // Elsewhere, and reading pods in prod, anyone with access.
    let out = get(
        &ci,
        "POST",
        "/api/v1/namespaces/dev/pods/web-1/exec?command=sh",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let out = get(&ci, "GET", "/api/v1/namespaces/prod/pods?limit=500");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // Deleting a namespace (or all of them) is refused for everyone.
    for path in ["/api/v1/namespaces/prod", "/api/v1/namespaces"] {
        let out = get(&oncall, "DELETE", path);
        assert!(
            out.starts_with("HTTP/1.1 403") && out.contains("no-namespace-delete"),
            "{out}"
        );
    }

    // Query parameters are judged decoded, any of a repeated one's values.
    let out = get(&ci, "POST", "/items/deploy?force=no&force=%74rue");
    assert!(
        out.starts_with("HTTP/1.1 403") && out.contains("no-forced-deploy"),
        "{out}"
    );
    let out = get(&ci, "POST", "/items/deploy?force=false");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // A query servers split differently is refused, not guessed at.
    let out = get(&ci, "POST", "/items/deploy?x=1;force=true");
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let out = get(&ci, "POST", "/items/deploy?force=%zz");
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");

    // A header condition: a text PUT is audited, a JSON one is not.
    let (_, out) = g.curl(&[
        "-X",
        "PUT",
        "-H",
        &bearer(&ci),
        "-H",
        "Content-Type: text/plain",
        "--data",
        "x",
        &g.url("/items/doc"),
    ]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    // What nginx saw: only the allowed requests.
    let access = g.nginx.access_lines(5);
    let seen: Vec<&str> = access
        .lines()
        .map(|l| l.split(" auth=").next().unwrap_or(""))
        .collect();
    assert_eq!(
        seen,
        [
            "POST /api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true",
            "POST /api/v1/namespaces/dev/pods/web-1/exec?command=sh",
            "GET /api/v1/namespaces/prod/pods?limit=500",
            "POST /items/deploy?force=false",
            "PUT /items/doc",
        ],
        "{access}"
    );
    // Log lines are written asynchronously (a refused session's at its
    // end): wait for them.
    assert_eventually!(
        g.gw.log_text().contains("text-puts-audited"),
        Duration::from_secs(10),
        "the audited PUT is not logged: {}",
        g.gw.log_text()
    );
    assert_eventually!(
        g.gw.log_text().contains("request query refused"),
        Duration::from_secs(30),
        "no query refusal logged: {}",
        g.gw.log_text()
    );
    let log = g.gw.log_text();
    assert!(log.contains("statement audited"), "{log}");
    for rule in ["no-exec-in-prod", "no-namespace-delete", "no-forced-deploy"] {
        assert!(log.contains(rule), "{rule} not in the log: {log}");
    }
}

#[test]
fn rules_that_cannot_be_judged_are_refused_at_load() {
    let g = HttpGateway::start("", "");
    let bad = [
        ("k8s = { verbs = [\"destroy\"] }", "k8s verb"),
        (
            "k8s = { resources = [\"pods/exec/x\"] }",
            "resource/subresource",
        ),
        ("headers = { authorization = \"Bearer *\" }", "token header"),
        ("query = { \"\" = \"x\" }", "empty query parameter"),
    ];
    for (line, why) in bad {
        let cfg = std::fs::read_to_string(&g.gw.config).unwrap()
            + &format!("[[target.http.rules]]\nname = \"r\"\n{line}\naction = \"block\"\n");
        let path = g.gw.dir().join("bad.toml");
        std::fs::write(&path, cfg).unwrap();
        let out = g.gw.cli(&["check", "--config", path.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success() && text.contains(why),
            "{line}: {text}"
        );
    }
}

const JSON_RULES: &str = r#"
[[target.http.rules]]
name = "no-prod-deploys"
methods = ["POST"]
path = "/items/**"
json = { env = "prod*" }
action = "block"
[[target.http.rules]]
name = "no-scale-to-zero"
json = { replicas = "0" }
action = "block"
"#;

/// Rules on a JSON body's top-level fields: the body is read before the
/// rules (chunked too, after a 100 Continue when asked) and then relayed
/// unchanged; a body labelled JSON that cannot be read one way (a key
/// twice, not JSON, over json_body_max) is refused; a body with another
/// label is judged when it parses as JSON.
#[test]
fn json_body_fields_decide_and_ambiguous_bodies_are_refused() {
    let g = HttpGateway::start("json_body_max = 1024", JSON_RULES);
    let t = g.token("ci-job", "ci");
    let post = |ctype: &str, body: &str, extra: &[&str]| {
        let mut args = vec!["-X", "POST", "-H", ctype, "--data-binary", body];
        args.extend_from_slice(extra);
        let b = bearer(&t);
        let url = g.url("/items/deploy");
        args.extend_from_slice(&["-H", &b, &url]);
        g.curl(&args).1
    };
    let json = "Content-Type: application/json";

    let out = post(json, r#"{"env":"production","app":"web"}"#, &[]);
    assert!(
        out.starts_with("HTTP/1.1 403") && out.contains("no-prod-deploys"),
        "{out}"
    );
    let out = post(json, r#"{"env":"staging","replicas":0}"#, &[]);
    assert!(
        out.starts_with("HTTP/1.1 403") && out.contains("no-scale-to-zero"),
        "{out}"
    );
    let out = post(
        json,
        r#"{"env":"staging","replicas":3}"#,
        &["-H", "Expect: 100-continue"],
    );
    assert!(
        out.contains("HTTP/1.1 100 Continue") && out.contains("HTTP/1.1 200"),
        "{out}"
    );
    assert_eq!(out.matches("100 Continue").count(), 1, "{out}");
    // Labelled otherwise, still JSON: judged.
    let out = post("Content-Type: text/plain", r#"{"env":"prod"}"#, &[]);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    // Not JSON and not labelled so: no fields, passes.
    let out = post("Content-Type: text/plain", "env=prod", &[]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // Labelled JSON and ambiguous or unreadable: refused.
    for (body, status) in [
        (r#"{"env":"dev","env":"prod"}"#.to_string(), "400"),
        (r#"{"env":"prod",}"#.to_string(), "400"),
        (
            format!(r#"{{"env":"dev","pad":"{}"}}"#, "x".repeat(2000)),
            "413",
        ),
    ] {
        let out = post(json, &body, &[]);
        assert!(out.starts_with(&format!("HTTP/1.1 {status}")), "{out}");
    }
    // Chunked bodies are read whole before the rules, then relayed as sent.
    let out = python(
        "import sys, requests\n\
         h = {'Authorization': 'Bearer ' + sys.argv[2], 'Content-Type': 'application/json'}\n\
         def gen(env):\n    yield b'{\"app\":\"web\",'\n    yield ('\"env\":\"%s\"}' % env).encode()\n\
         a = requests.post(sys.argv[1], data=gen('prod-eu'), headers=h)\n\
         b = requests.post(sys.argv[1], data=gen('dev'), headers=h)\n\
         print(a.status_code, b.status_code)",
        &[&g.url("/items/deploy"), &t],
    );
    assert_eq!(out, "403 200");
    // Only the passed requests reached nginx: the 100-continue one, the
    // text one and the chunked dev one.
    let log = g.nginx.access_lines(3);
    assert_eq!(log.matches("POST /items/deploy").count(), 3, "{log}");
}
