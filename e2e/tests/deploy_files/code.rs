//! What the code accepts.

use super::*;

pub(crate) type Structs = BTreeMap<String, Vec<(String, String)>>;

/// The serde-deserializable named-field structs of a Rust source:
/// name -> [(field, type)].
pub(crate) fn structs(src: &str, file: &str) -> Structs {
    let mut out = Structs::new();
    let mut attrs: Vec<&str> = Vec::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|r| r.strip_suffix(" {"))
        else {
            if line.starts_with("#[") {
                attrs.push(line);
            } else if !line.starts_with("//") {
                attrs.clear();
            }
            continue;
        };
        let serde = attrs
            .iter()
            .any(|a| a.starts_with("#[derive") && a.contains("Deserialize"));
        let mut fields = Vec::new();
        for l in lines.by_ref() {
            let l = l.trim();
            if l == "}" {
                break;
            }
            attrs.push(l);
            if l.is_empty() || l.starts_with("//") || l.starts_with('#') {
                continue;
            }
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            if let Some((f, ty)) = l.split_once(':') {
                if f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    fields.push((f.to_owned(), ty.trim().trim_end_matches(',').to_owned()));
                }
            }
        }
        if serde {
            let odd = attrs.iter().find(|a| {
                a.starts_with("#[serde") && (a.contains("rename") || a.contains("flatten"))
            });
            assert!(
                odd.is_none(),
                "{file}: {name}: {odd:?} changes config keys; teach this test"
            );
            out.insert(name.to_owned(), fields);
        }
        attrs.clear();
    }
    out
}

/// `field: "literal".into()` lines of `impl Default for <ty>`.
pub(crate) fn string_defaults(src: &str, ty: &str) -> BTreeMap<String, String> {
    let start = src
        .find(&format!("impl Default for {ty} {{"))
        .unwrap_or_else(|| panic!("no `impl Default for {ty}`"));
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    body.lines()
        .filter_map(|l| {
            let (f, rest) = l.trim().split_once(": \"")?;
            let (lit, _) = rest.split_once('"')?;
            Some((f.to_owned(), lit.to_owned()))
        })
        .collect()
}

/// `AGENTOPS_*` names the code reads itself: `env::var("...")`, clap `env = "..."`.
pub(crate) fn read_vars(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            read_vars(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&path).expect("source");
            for marker in ["env::var(\"AGENTOPS_", "env = \"AGENTOPS_"] {
                for (i, _) in src.match_indices(marker) {
                    let name = &src[i + marker.len() - "AGENTOPS_".len()..];
                    let end = name.find('"').expect("closing quote");
                    out.insert(name[..end].to_owned());
                }
            }
        }
    }
}

/// Per binary: the environment variables it understands and its string defaults.
pub(crate) struct Code {
    pub(crate) vars: BTreeMap<&'static str, BTreeSet<String>>,
    pub(crate) defaults: BTreeMap<&'static str, BTreeMap<String, String>>,
    pub(crate) kafka_defaults: BTreeMap<String, String>,
}

impl Code {
    pub(crate) fn load() -> Code {
        let runtime_src = root().join("runtime/src");
        let mut runtime = Structs::new();
        let mut stack = vec![runtime_src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("runtime/src") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let src = std::fs::read_to_string(&path).expect("source");
                    for (name, fields) in structs(&src, &path.display().to_string()) {
                        let dup = runtime.insert(name.clone(), fields);
                        assert!(dup.is_none(), "two runtime structs named {name}");
                    }
                }
            }
        }
        let mut common = BTreeSet::new();
        read_vars(&runtime_src, &mut common);
        assert!(
            common.contains("AGENTOPS_LOG_FORMAT"),
            "runtime no longer reads AGENTOPS_LOG_FORMAT?"
        );
        let mut vars = BTreeMap::new();
        let mut defaults = BTreeMap::new();
        for (bin, dir) in STAGES {
            let file = format!("{dir}/src/config.rs");
            let src = read(&file);
            let mut known = runtime.clone();
            known.extend(structs(&src, &file));
            let config = known
                .remove("Config")
                .unwrap_or_else(|| panic!("{file}: no Config"));
            let mut set = common.clone();
            config_keys(&config, &known, "AGENTOPS_", &mut set);
            read_vars(&root().join(dir).join("src"), &mut set);
            for key in ["AGENTOPS_LISTEN", "AGENTOPS_DATABASE__STORAGE__MODE"] {
                assert!(set.contains(key), "{file}: no {key}? parser out of date");
            }
            vars.insert(bin, set);
            defaults.insert(bin, string_defaults(&src, "Config"));
        }
        let mut loadgen = common;
        read_vars(&root().join("loadgen/src"), &mut loadgen);
        vars.insert(LOADGEN, loadgen);
        let kafka_defaults = string_defaults(&read("runtime/src/config.rs"), "KafkaConfig");
        Code {
            vars,
            defaults,
            kafka_defaults,
        }
    }

    /// The value a stage runs with: its environment, else the code's default.
    pub(crate) fn effective(&self, bin: &str, env: &BTreeMap<String, String>, key: &str) -> String {
        if let Some(v) = env.get(&format!("AGENTOPS_{}", key.to_uppercase())) {
            return v.clone();
        }
        let d = match key.strip_prefix("kafka__") {
            Some(k) => self.kafka_defaults.get(k),
            None => self.defaults[bin].get(key),
        };
        d.unwrap_or_else(|| panic!("{bin}: no default for {key}"))
            .clone()
    }

    /// Unknown variables of one component, as messages.
    pub(crate) fn unknown(
        &self,
        what: &str,
        bin: &str,
        env: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let allowed = &self.vars[bin];
        env.keys()
            .filter(|k| k.starts_with("AGENTOPS_") && !allowed.contains(*k))
            .map(|k| format!("{what} ({bin}): {k} is not a config key or variable it reads"))
            .collect()
    }
}

pub(crate) fn config_keys(
    fields: &[(String, String)],
    known: &Structs,
    prefix: &str,
    out: &mut BTreeSet<String>,
) {
    for (field, ty) in fields {
        let key = format!("{prefix}{}", field.to_uppercase());
        let last = ty.rsplit("::").next().unwrap_or(ty);
        match known.get(last) {
            Some(nested) => config_keys(nested, known, &format!("{key}__"), out),
            None => {
                out.insert(key);
            }
        }
    }
}

/// `0.0.0.0:8080` -> 8080, for a listen address every interface can reach.
pub(crate) fn listen_port(what: &str, listen: &str) -> Result<u16, String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or(format!("{what}: listen {listen:?} has no port"))?;
    if !matches!(host, "0.0.0.0" | "[::]") {
        return Err(format!(
            "{what}: listen {listen:?} is not reachable from outside the container"
        ));
    }
    port.parse()
        .map_err(|_| format!("{what}: listen {listen:?}: bad port"))
}
