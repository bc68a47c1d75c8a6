//! Every problem of a configuration in one run. Pure.
//!
//! serde stops at the first value it cannot read. When the configuration does not load, this
//! reads it again strictly, value by value, from its merged tree (file + environment): each
//! problem is noted with its key, the file's line where one is known and plain words, the value
//! is taken out (or a stand-in put in for a missing one), and reading goes on, until everything
//! reads. The cross-field checks then run on what was read, so one `supportd check` lists type
//! errors, unknown keys (with "did you mean" for near misses), missing keys and bad values
//! together.
//!
//! The configuration crate is lenient where this pass is strict (environment values are text;
//! `"25"` is read as a number, `12345` as a password): such values are converted the same way
//! here and are not problems.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// At most this many problems are collected (a file that is not a configuration at all).
const MAX_PROBLEMS: usize = 50;

/// One problem: the key (dotted, `agents.1.role`), the line in the file when known, and what is
/// wrong in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} (line {l}): {}", self.key, self.what),
            None => write!(f, "{}: {}", self.key, self.what),
        }
    }
}

/// Reads `tree` as `T` strictly, noting every problem (see the module). Returns what could be
/// read (with stand-ins for what could not) and the problems. `text`: the TOML file, for lines.
pub fn read_all<T: DeserializeOwned>(
    mut tree: Value,
    text: Option<&str>,
) -> (Option<T>, Vec<Problem>) {
    let lines = text.map(key_lines).unwrap_or_default();
    let mut problems: Vec<Problem> = Vec::new();
    for _ in 0..MAX_PROBLEMS * 4 {
        let err = match serde_path_to_error::deserialize::<_, T>(&tree) {
            Ok(v) => return (Some(v), in_file_order(problems)),
            Err(e) => e,
        };
        let path = path_of(err.path());
        let message = err.inner().to_string();
        // What the configuration crate accepts, converted as it would.
        if let Some(fixed) = lenient(&tree, &path, &message) {
            set(&mut tree, &path, fixed);
            continue;
        }
        let (key, what, fix) = explain(&path, &message);
        if problems.len() < MAX_PROBLEMS && !problems.iter().any(|p| p.key == key) {
            problems.push(Problem {
                line: line_of(&lines, &key),
                key: key.clone(),
                what,
            });
        }
        let progressed = match fix {
            Fix::Remove => remove(&mut tree, &path_of_key(&key)),
            Fix::StandIn => stand_in::<T>(&mut tree, &path_of_key(&key)),
            Fix::Replace(v) => {
                set(&mut tree, &path_of_key(&key), v);
                true
            }
        };
        if !progressed {
            break;
        }
    }
    (None, in_file_order(problems))
}

/// Problems by line (those without one last), as a reader goes through the file.
fn in_file_order(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    problems
}

enum Fix {
    /// Take the value out (a default or an Option takes its place, or a missing-key problem
    /// follows).
    Remove,
    /// A required key is missing: put in a stand-in of the type that reads.
    StandIn,
    /// Put this in instead (an enum's first variant for one it does not have).
    Replace(Value),
}

fn path_of(p: &serde_path_to_error::Path) -> Vec<String> {
    p.iter()
        .map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => "?".into(),
        })
        .filter(|s| s != "?")
        .collect()
}

fn path_of_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_string).collect()
}

/// Between backticks: `` `a` `` → `a`.
fn quoted(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// The key a problem is about, what is wrong, and how to go on.
fn explain(path: &[String], message: &str) -> (String, String, Fix) {
    let here = path.join(".");
    let under = |name: &str| {
        if path.last().is_some_and(|l| l == name) {
            here.clone()
        } else if here.is_empty() {
            name.to_string()
        } else {
            format!("{here}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let q = quoted(rest);
        let name = q.first().copied().unwrap_or("?");
        let known: Vec<&str> = q.iter().skip(1).copied().collect();
        let what = match nearest(name, &known) {
            Some(n) => format!("unknown key; did you mean `{n}`?"),
            None if known.is_empty() => "unknown key".to_string(),
            None => format!("unknown key (known here: {})", known.join(", ")),
        };
        return (under(name), what, Fix::Remove);
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = quoted(rest).first().copied().unwrap_or("?").to_string();
        return (under(&name), "required, but missing".into(), Fix::StandIn);
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let q = quoted(rest);
        let got = q.first().copied().unwrap_or("?");
        let one_of: Vec<&str> = q.iter().skip(1).copied().collect();
        let first = one_of.first().map(|v| Value::String(v.to_string()));
        return (
            here,
            format!("\"{got}\" is not one of {}", one_of.join(" | ")),
            first.map_or(Fix::Remove, Fix::Replace),
        );
    }
    if message.starts_with("invalid type: ") || message.starts_with("invalid value: ") {
        return (here, plain_type_error(message), Fix::Remove);
    }
    // Our own types' messages ("not a mail address: …") are plain already.
    (here, message.to_string(), Fix::Remove)
}

/// `invalid type: string "thirty", expected u32` → `"thirty" is not a whole number`.
fn plain_type_error(message: &str) -> String {
    let body = message
        .trim_start_matches("invalid type: ")
        .trim_start_matches("invalid value: ");
    let (got, expected) = body.split_once(", expected ").unwrap_or((body, ""));
    let got = got
        .trim_start_matches("string ")
        .trim_start_matches("integer ")
        .trim_start_matches("floating point ")
        .trim_start_matches("boolean ")
        .replace('`', "");
    let expected = match expected.trim() {
        e if e.starts_with('u') && e[1..].chars().all(|c| c.is_ascii_digit()) => {
            "a whole number, 0 or more".to_string()
        }
        e if e.starts_with('i') && e[1..].chars().all(|c| c.is_ascii_digit()) => {
            "a whole number".to_string()
        }
        "f64" | "f32" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "text (in quotes)".into(),
        "a sequence" => "a list ([…])".into(),
        e if e.starts_with("struct ") || e == "a map" => "a table ([…] or { … })".into(),
        e => e.to_string(),
    };
    format!("{got} is not {expected}")
}

/// The known name nearest to `name` (edit distance at most 2, or one contains the other).
fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, k)| *d <= 2 || (name.len() > 3 && (k.contains(name) || name.contains(k))))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The value the configuration crate would have read where the strict pass failed, if any.
fn lenient(tree: &Value, path: &[String], message: &str) -> Option<Value> {
    let v = get(tree, path)?;
    let expected = message.split(", expected ").nth(1).unwrap_or("").trim();
    let wants_number = (expected.starts_with('u') || expected.starts_with('i'))
        && expected[1..].chars().all(|c| c.is_ascii_digit());
    match v {
        // A number or a boolean where text is expected (a password `123456` from the
        // environment).
        Value::Number(_) | Value::Bool(_) if expected == "a string" => {
            Some(Value::String(v.to_string()))
        }
        Value::String(s) if wants_number => s.trim().parse::<i64>().ok().map(Value::from),
        Value::String(s) if expected == "f64" || expected == "f32" => {
            s.trim().parse::<f64>().ok().map(Value::from)
        }
        Value::String(s) if expected == "a boolean" => {
            s.trim().parse::<bool>().ok().map(Value::from)
        }
        _ => None,
    }
}

fn get<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |v, k| match v {
        Value::Object(m) => m.get(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(tree: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(tree, |v, k| match v {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
        _ => None,
    })
}

fn set(tree: &mut Value, path: &[String], value: Value) {
    if let Some(v) = get_mut(tree, path) {
        *v = value;
    }
}

/// Takes the value at `path` out. False when there is nothing to take (no progress possible).
fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match get_mut(tree, parent) {
        Some(Value::Object(m)) => m.remove(last).is_some(),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Puts in a stand-in for a missing key: the first of a few values of different types after
/// which reading gets past this key.
fn stand_in<T: DeserializeOwned>(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let candidates = [
        Value::String("stand-in@example.invalid".into()),
        Value::from(1),
        Value::Bool(false),
        Value::Object(Default::default()),
        Value::Array(Vec::new()),
        Value::from(1.0),
    ];
    let key = path.join(".");
    let mut first = None;
    for c in candidates {
        let mut trial = tree.clone();
        match get_mut(&mut trial, parent) {
            Some(Value::Object(m)) => {
                m.insert(last.clone(), c.clone());
            }
            _ => return false,
        }
        first.get_or_insert_with(|| c.clone());
        match serde_path_to_error::deserialize::<_, T>(&trial) {
            Ok(_) => {
                *tree = trial;
                return true;
            }
            Err(e) if path_of(e.path()).join(".") != key => {
                *tree = trial;
                return true;
            }
            Err(e) => {
                // An enum: its first variant.
                let message = e.inner().to_string();
                if let Some(rest) = message.strip_prefix("unknown variant ") {
                    if let Some(v) = quoted(rest).get(1) {
                        set(&mut trial, path, Value::String(v.to_string()));
                        *tree = trial;
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// The line of each `key = …` and `[table]` in a TOML file, by dotted key (arrays of tables by
/// index: `agents.0.role`).
fn key_lines(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let i = counts.entry(name.clone()).or_insert(0);
            table = format!("{name}.{i}");
            *i += 1;
            out.push((table.clone(), n + 1));
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().replace('"', "");
            out.push((table.clone(), n + 1));
        } else if let Some((k, _)) = t.split_once('=') {
            let k = k.trim().replace('"', "");
            let key = if table.is_empty() {
                k
            } else {
                format!("{table}.{k}")
            };
            out.push((key, n + 1));
        }
    }
    out
}

/// A problem written `key: what` with the key's line in the file added: `key (line 7): what`.
pub fn with_line(problem: &str, text: Option<&str>) -> String {
    let Some(text) = text else {
        return problem.to_string();
    };
    let Some((key, what)) = problem.split_once(": ") else {
        return problem.to_string();
    };
    if key.contains(' ') {
        return problem.to_string();
    }
    match line_of(&key_lines(text), key) {
        Some(l) => format!("{key} (line {l}): {what}"),
        None => problem.to_string(),
    }
}

/// The line of `key`, or of the nearest table above it that the file has.
fn line_of(lines: &[(String, usize)], key: &str) -> Option<usize> {
    let mut k = key.to_string();
    loop {
        if let Some((_, l)) = lines.iter().find(|(x, _)| *x == k) {
            return Some(*l);
        }
        k = k.rsplit_once('.')?.0.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        port: u16,
        host: String,
        tls: Tls,
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Tls {
        None,
        Tls,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        role: Tls,
    }

    #[test]
    fn every_problem_in_one_pass_with_lines_and_plain_words() {
        let text = "prot = 25\nhost = 7\ntls = \"maybe\"\n[[items]]\nrole = \"tls\"\n[[items]]\nrole = \"boss\"\n";
        let tree: Value =
            serde_json::to_value(toml::from_str::<toml::Value>(text).expect("toml")).expect("json");
        let (read, problems) = read_all::<S>(tree, Some(text));
        // Read on with stand-ins, so the cross-field checks can run too.
        assert!(read.is_some());
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "prot (line 1): unknown key; did you mean `port`?",
                "tls (line 3): \"maybe\" is not one of none | tls",
                "items.1.role (line 7): \"boss\" is not one of none | tls",
                "port: required, but missing",
            ],
            "{shown:#?}"
        );
    }

    #[test]
    fn what_the_configuration_crate_accepts_is_no_problem() {
        let tree = serde_json::json!({"port": "25", "host": 12345, "tls": "none"});
        let (read, problems) = read_all::<S>(tree, None);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(read.expect("read").port, 25);
    }
}
