//! The renderer for the subset of Go templates the chart keeps to.

use super::*;

pub(crate) enum Node {
    Text(String),
    Expr(String),
    If(String, Vec<Node>, Vec<Node>),
}

pub(crate) fn lex(src: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let (mut rest, mut trim_next) = (src, false);
    while let Some(open) = rest.find("{{") {
        let mut before = rest[..open].to_owned();
        let close = rest[open..].find("}}").expect("unclosed {{") + open;
        let mut action = &rest[open + 2..close];
        if trim_next {
            before = before.trim_start().to_owned();
        }
        if let Some(a) = action.strip_prefix("- ") {
            before = before.trim_end().to_owned();
            action = a;
        }
        trim_next = action.ends_with(" -");
        action = action.strip_suffix(" -").unwrap_or(action).trim();
        out.push((false, before));
        if !action.starts_with("/*") {
            out.push((true, action.to_owned()));
        }
        rest = &rest[close + 2..];
    }
    out.push((
        false,
        if trim_next { rest.trim_start() } else { rest }.to_owned(),
    ));
    out
}

pub(crate) fn parse(toks: &mut std::vec::IntoIter<(bool, String)>) -> (Vec<Node>, Option<String>) {
    let mut nodes = Vec::new();
    while let Some((action, t)) = toks.next() {
        if !action {
            nodes.push(Node::Text(t));
        } else if let Some(cond) = t.strip_prefix("if ") {
            let (then, end) = parse(toks);
            let els = match end.as_deref() {
                Some("else") => parse(toks).0,
                Some("end") => Vec::new(),
                other => panic!("`if {cond}` closed by {other:?}"),
            };
            nodes.push(Node::If(cond.to_owned(), then, els));
        } else if t == "end" || t == "else" {
            return (nodes, Some(t));
        } else {
            let word = t.split_whitespace().next().unwrap_or("");
            assert!(
                !matches!(
                    word,
                    "range" | "with" | "define" | "include" | "template" | "tpl" | "else if"
                ),
                "`{{{{ {t} }}}}`: outside the template subset this test renders"
            );
            nodes.push(Node::Expr(t));
        }
    }
    (nodes, None)
}

pub(crate) struct Ctx<'a> {
    pub(crate) values: &'a Value,
    pub(crate) chart: &'a Value,
    pub(crate) release: &'a str,
}

pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

impl Ctx<'_> {
    pub(crate) fn term(&self, t: &str) -> Value {
        if let Some(p) = t.strip_prefix(".Values.") {
            return get(self.values, p)
                .unwrap_or_else(|| panic!("values.yaml has no {p}"))
                .clone();
        }
        if let Some(k) = t.strip_prefix(".Chart.") {
            let key = k[..1].to_lowercase() + &k[1..];
            return get(self.chart, &key)
                .unwrap_or_else(|| panic!("Chart.yaml has no {key}"))
                .clone();
        }
        match t {
            ".Release.Name" => Value::from(self.release),
            ".Release.Namespace" => Value::from("default"),
            _ if t.starts_with('"') => Value::from(t.trim_matches('"')),
            _ => t
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| panic!("unknown term {t}")),
        }
    }

    pub(crate) fn eval(&self, pipeline: &str) -> Value {
        let mut acc: Option<Value> = None;
        for stage in pipeline.split('|') {
            let words: Vec<&str> = stage.split_whitespace().collect();
            let mut args: Vec<Value> = words[1..].iter().map(|w| self.term(w)).collect();
            args.extend(acc.take());
            let one = |args: &[Value]| args.last().cloned().expect("argument");
            acc = Some(match words[0] {
                "quote" => Value::from(serde_json::to_string(&scalar(&one(&args))).expect("json")),
                "toYaml" => {
                    Value::from(serde_yaml::to_string(&one(&args)).expect("yaml").trim_end())
                }
                "nindent" | "indent" => {
                    let n = args[0].as_u64().expect("indent width") as usize;
                    let body = scalar(&args[1]);
                    let pad = " ".repeat(n);
                    let lines: Vec<String> = body.lines().map(|l| format!("{pad}{l}")).collect();
                    let nl = if words[0] == "nindent" { "\n" } else { "" };
                    Value::from(format!("{nl}{}", lines.join("\n")))
                }
                "default" => {
                    let v = args.get(1).cloned().unwrap_or(Value::Null);
                    if truthy(&v) {
                        v
                    } else {
                        args[0].clone()
                    }
                }
                "not" => Value::from(!truthy(&one(&args))),
                t if t.starts_with('.') || t.starts_with('"') => {
                    assert!(words.len() == 1, "`{stage}`: unknown function");
                    self.term(t)
                }
                f => panic!("`{pipeline}`: function {f} is outside the renderer's subset"),
            });
        }
        acc.expect("empty action")
    }

    pub(crate) fn render(&self, nodes: &[Node], out: &mut String) {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Expr(e) => out.push_str(&scalar(&self.eval(e))),
                Node::If(c, then, els) => {
                    self.render(if truthy(&self.eval(c)) { then } else { els }, out)
                }
            }
        }
    }
}

pub(crate) fn scalar(v: &Value) -> String {
    text(v).unwrap_or_else(|| panic!("{v:?} is not a scalar (pipe it through toYaml)"))
}

pub(crate) fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The chart's manifests with `values.yaml` merged with `overrides`.
pub(crate) fn render_chart(overrides: &str) -> Vec<Value> {
    let chart = yaml("Chart.yaml", &read(&format!("{CHART}/Chart.yaml")));
    let mut values = yaml("values.yaml", &read(&format!("{CHART}/values.yaml")));
    merge(&mut values, &yaml("overrides", overrides));
    let ctx = Ctx {
        values: &values,
        chart: &chart,
        release: "agentops",
    };
    let dir = root().join(CHART).join("templates");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("templates/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "NOTES.txt" {
            continue;
        }
        assert!(
            name.ends_with(".yaml"),
            "{name}: only .yaml templates are rendered here"
        );
        let src = std::fs::read_to_string(&file).expect("template");
        let (nodes, end) = parse(&mut lex(&src).into_iter());
        assert!(end.is_none(), "{name}: stray {end:?}");
        let mut out = String::new();
        ctx.render(&nodes, &mut out);
        docs.extend(manifests(&name, &out));
    }
    docs
}
