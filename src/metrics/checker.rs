//! A small checker for the Prometheus text exposition format, used by tests
//! to prove `/metrics` output would be accepted by a scraper: HELP/TYPE
//! lines, metric and label syntax, escapes, contiguous families, no duplicate
//! series, and histogram buckets that rise monotonically to a `+Inf` bucket
//! equal to `_count`. Returns every series (as written) with its value.

use std::collections::{BTreeMap, HashMap, HashSet};

pub fn check(text: &str) -> Result<HashMap<String, f64>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashMap<String, f64> = HashMap::new();
    // family -> labels without `le` -> (buckets, sum, count)
    type Hist = (Vec<(f64, f64)>, Option<f64>, Option<f64>);
    let mut hists: BTreeMap<(String, String), Hist> = BTreeMap::new();

    let mut enter = |family: &str, current: &mut Option<String>, line: usize| {
        if current.as_deref() == Some(family) {
            return Ok(());
        }
        if closed.contains(family) {
            return Err(format!("line {line}: family {family} is not contiguous"));
        }
        if let Some(prev) = current.take() {
            closed.insert(prev);
        }
        *current = Some(family.to_string());
        Ok(())
    };

    for (n, line) in text.lines().enumerate() {
        let ln = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().unwrap_or("");
            let arg = parts.next().unwrap_or("");
            match kw {
                "HELP" | "TYPE" => {
                    if !valid_metric_name(name) {
                        return Err(format!("line {ln}: bad metric name {name:?}"));
                    }
                    enter(name, &mut current, ln)?;
                    if kw == "TYPE" {
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                            return Err(format!("line {ln}: bad type {arg:?}"));
                        }
                        if types.insert(name.to_string(), arg.to_string()).is_some() {
                            return Err(format!("line {ln}: second TYPE for {name}"));
                        }
                    } else if !helps.insert(name.to_string()) {
                        return Err(format!("line {ln}: second HELP for {name}"));
                    }
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, labels, value, key) =
            parse_sample(line).map_err(|e| format!("line {ln}: {e}"))?;
        let (family, suffix) = family_of(&name, &types)
            .ok_or_else(|| format!("line {ln}: sample {name} has no TYPE"))?;
        enter(&family, &mut current, ln)?;
        if series.insert(key.clone(), value).is_some() {
            return Err(format!("line {ln}: duplicate series {key}"));
        }
        let kind = types.get(&family).map(String::as_str).unwrap_or("");
        if kind == "counter" && value < 0.0 {
            return Err(format!("line {ln}: negative counter"));
        }
        if kind == "histogram" {
            let mut le = None;
            let rest: Vec<String> = labels
                .iter()
                .filter_map(|(k, v)| {
                    if k == "le" {
                        le = Some(v.clone());
                        None
                    } else {
                        Some(format!("{k}={v}"))
                    }
                })
                .collect();
            let entry =
                hists
                    .entry((family.clone(), rest.join(",")))
                    .or_insert((Vec::new(), None, None));
            match suffix.as_str() {
                "_bucket" => {
                    let le = le.ok_or_else(|| format!("line {ln}: bucket without le"))?;
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse::<f64>()
                            .map_err(|_| format!("line {ln}: bad le {le:?}"))?
                    };
                    entry.0.push((bound, value));
                }
                "_sum" => entry.1 = Some(value),
                "_count" => entry.2 = Some(value),
                _ => return Err(format!("line {ln}: histogram sample {name} without suffix")),
            }
        }
    }
    for ((family, labels), (buckets, sum, count)) in &hists {
        let what = format!("{family}{{{labels}}}");
        let count = count.ok_or_else(|| format!("{what}: no _count"))?;
        sum.ok_or_else(|| format!("{what}: no _sum"))?;
        let mut prev = (f64::NEG_INFINITY, 0.0);
        for &(bound, v) in buckets {
            if bound <= prev.0 {
                return Err(format!("{what}: le not increasing at {bound}"));
            }
            if v < prev.1 {
                return Err(format!("{what}: bucket count falls at le={bound}"));
            }
            prev = (bound, v);
        }
        if prev.0 != f64::INFINITY {
            return Err(format!("{what}: no +Inf bucket"));
        }
        if prev.1 != count {
            return Err(format!("{what}: +Inf bucket {} != count {count}", prev.1));
        }
    }
    Ok(series)
}

fn family_of(name: &str, types: &HashMap<String, String>) -> Option<(String, String)> {
    if types.contains_key(name) {
        return Some((name.to_string(), String::new()));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return Some((base.to_string(), suffix.to_string()));
        }
    }
    None
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Name, labels, value, and the series as written (everything before the value).
type Sample = (String, Vec<(String, String)>, f64, String);

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if r[start..].starts_with('}') {
                rest = &r[start + 1..];
                break;
            }
            let eq = r[start..].find('=').ok_or("label without =")? + start;
            let key = &r[start..eq];
            if !valid_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            if labels.iter().any(|(k, _)| k == key) {
                return Err(format!("duplicate label {key}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '"' => break,
                    '\n' => return Err("raw newline in label value".into()),
                    c => value.push(c),
                }
            }
            labels.push((key.to_string(), value));
            match chars.peek().map(|(_, c)| *c) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                _ => return Err("expected , or } after a label".into()),
            }
        }
    }
    let key = line[..line.len() - rest.len()].to_string();
    let rest = rest.strip_prefix(' ').ok_or("no space before value")?;
    let mut parts = rest.split(' ');
    let v = parts.next().ok_or("no value")?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing text".into());
    }
    Ok((name.to_string(), labels, value, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::check;

    #[test]
    fn the_checker_rejects_what_a_scraper_would() {
        let bad = [
            "x 1\n",                                          // no TYPE
            "# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n", // duplicate
            "# TYPE x counter\n# TYPE y counter\ny 1\nx 1\n", // not contiguous
            "# TYPE x counter\nx{1a=\"1\"} 1\n",              // label name
            "# TYPE x counter\nx{a=1} 1\n",                   // unquoted
            "# TYPE x counter\nx{a=\"\\t\"} 1\n",             // bad escape
            "# TYPE x counter\nx one\n",                      // value
            "# TYPE x counter\nx -1\n",                       // negative counter
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", // +Inf != count
            "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE x wibble\n",
        ];
        for b in bad {
            assert!(check(b).is_err(), "accepted: {b}");
        }
        let good = "# HELP h a histogram\n# TYPE h histogram\nh_bucket{s=\"0\",le=\"1\"} 1\n\
                    h_bucket{s=\"0\",le=\"+Inf\"} 3\nh_sum{s=\"0\"} 4.5\nh_count{s=\"0\"} 3\n\
                    # TYPE g gauge\ng{a=\"q\\\"\"} -2 1700000000\n";
        let s = check(good).unwrap();
        assert_eq!(s["h_count{s=\"0\"}"], 3.0);
        assert_eq!(s["g{a=\"q\\\"\"}"], -2.0);
    }
}
