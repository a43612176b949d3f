//! The model price table (USD per million tokens) and the cost formula.

use std::collections::HashMap;

use agentops_schemas::AgentEvent;
use serde::Deserialize;

/// The table bundled with the repository (`processors/prices.toml`).
pub const BUNDLED: &str = include_str!("../prices.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct ModelPrice {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub reasoning: Option<f64>,
}

#[derive(Deserialize)]
struct File {
    model: Vec<ModelPrice>,
}

/// What pricing concluded for one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Priced {
    /// The client supplied a cost; kept as is.
    Client,
    /// Computed from the table.
    Computed(f64),
    /// Tokens but no known price: cost stays null.
    UnknownModel,
    /// Nothing to price (no tokens).
    NotApplicable,
}

#[derive(Debug, Clone)]
pub struct PriceTable {
    by_name: HashMap<String, usize>,
    models: Vec<ModelPrice>,
}

impl PriceTable {
    pub fn parse(toml_text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let mut by_name = HashMap::new();
        for (i, m) in file.model.iter().enumerate() {
            for name in std::iter::once(&m.model).chain(&m.aliases) {
                if by_name.insert(name.to_ascii_lowercase(), i).is_some() {
                    return Err(format!("model name {name} listed twice"));
                }
            }
        }
        Ok(Self {
            by_name,
            models: file.model,
        })
    }

    pub fn bundled() -> Self {
        Self::parse(BUNDLED).expect("bundled price table parses")
    }

    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        let model = model.to_ascii_lowercase();
        let model = model.rsplit('/').next().unwrap_or(&model); // "openai/gpt-4o"
        if let Some(i) = self.by_name.get(model) {
            return Some(&self.models[*i]);
        }
        // Longest listed name that prefixes the model at a version boundary.
        self.by_name
            .iter()
            .filter(|(name, _)| {
                model.len() > name.len()
                    && model.starts_with(name.as_str())
                    && matches!(model.as_bytes()[name.len()], b'-' | b'@' | b':')
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, i)| &self.models[*i])
    }

    /// Price an event (does not modify it).
    pub fn price(&self, e: &AgentEvent) -> Priced {
        if e.cost_usd.is_some() {
            return Priced::Client;
        }
        let tokens = [
            e.input_tokens,
            e.output_tokens,
            e.cache_read_tokens,
            e.cache_write_tokens,
            e.reasoning_tokens,
        ];
        if tokens.iter().all(|t| t.unwrap_or(0) == 0) {
            return Priced::NotApplicable;
        }
        let Some(p) = e.model.as_deref().and_then(|m| self.lookup(m)) else {
            return Priced::UnknownModel;
        };
        let t = |v: Option<i64>| v.unwrap_or(0) as f64;
        let micro_usd = t(e.input_tokens) * p.input
            + t(e.output_tokens) * p.output
            + t(e.cache_read_tokens) * p.cache_read.unwrap_or(p.input)
            + t(e.cache_write_tokens) * p.cache_write.unwrap_or(p.input)
            + t(e.reasoning_tokens) * p.reasoning.unwrap_or(p.output);
        Priced::Computed(micro_usd / 1_000_000.0)
    }

    /// Fill `cost_usd` / `cost_source`; returns what was decided.
    pub fn enrich(&self, e: &mut AgentEvent) -> Priced {
        let priced = self.price(e);
        match priced {
            Priced::Client => e.cost_source = Some("client".into()),
            Priced::Computed(c) => {
                e.cost_usd = Some(c);
                e.cost_source = Some("computed".into());
            }
            Priced::UnknownModel | Priced::NotApplicable => e.cost_source = None,
        }
        priced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(model: &str, input: i64, output: i64, cr: i64, cw: i64, rs: i64) -> AgentEvent {
        AgentEvent {
            event_type: "llm_call".into(),
            model: Some(model.into()),
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_read_tokens: Some(cr),
            cache_write_tokens: Some(cw),
            reasoning_tokens: Some(rs),
            ..Default::default()
        }
    }

    fn cost(t: &PriceTable, e: &AgentEvent) -> f64 {
        match t.price(e) {
            Priced::Computed(c) => c,
            other => panic!("not computed: {other:?}"),
        }
    }

    #[test]
    fn exact_amounts_per_provider() {
        let t = PriceTable::bundled();
        let cases = [
            // (model, input, output, cache_read, cache_write, reasoning, expected USD)
            (call("gpt-4o", 1_000_000, 0, 0, 0, 0), 2.50),
            (
                call("gpt-4o", 1000, 500, 2000, 0, 0),
                0.0025 + 0.005 + 0.0025,
            ),
            (
                call("gpt-4o-2024-08-06", 1_000_000, 1_000_000, 0, 0, 0),
                12.50,
            ),
            (call("gpt-4o-mini", 1_000_000, 1_000_000, 0, 0, 0), 0.75),
            (call("o3", 1000, 1000, 0, 0, 4000), 0.002 + 0.008 + 0.032),
            (
                call("claude-sonnet-4-5", 10_000, 2_000, 50_000, 8_000, 0),
                0.03 + 0.03 + 0.015 + 0.03,
            ),
            (
                call("claude-opus-4-20250514", 1_000_000, 0, 0, 1_000_000, 0),
                15.0 + 18.75,
            ),
            (
                call("gemini-2.5-flash", 2_000_000, 1_000_000, 0, 0, 0),
                0.60 + 2.50,
            ),
            (call("openai/gpt-4.1", 1_000_000, 0, 0, 0, 0), 2.00),
        ];
        for (e, want) in cases {
            let got = cost(&t, &e);
            assert!(
                (got - want).abs() < 1e-12,
                "{:?}: got {got}, want {want}",
                e.model
            );
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::bundled();
        assert_eq!(
            t.lookup("gpt-4o-mini-2024-07-18").unwrap().model,
            "gpt-4o-mini"
        );
        assert_eq!(t.lookup("gpt-4o-2024-11-20").unwrap().model, "gpt-4o");
        assert!(t.lookup("gpt-4orca").is_none());
    }

    #[test]
    fn unknown_model_is_null_not_zero() {
        let t = PriceTable::bundled();
        let mut e = call("llama-99-secret", 10, 10, 0, 0, 0);
        assert_eq!(t.enrich(&mut e), Priced::UnknownModel);
        assert_eq!(e.cost_usd, None);
    }

    #[test]
    fn client_cost_is_kept() {
        let t = PriceTable::bundled();
        let mut e = call("gpt-4o", 1_000_000, 0, 0, 0, 0);
        e.cost_usd = Some(0.42);
        assert_eq!(t.enrich(&mut e), Priced::Client);
        assert_eq!(e.cost_usd, Some(0.42));
        assert_eq!(e.cost_source.as_deref(), Some("client"));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = "[[model]]\nprovider='a'\nmodel='x'\ninput=1\noutput=1\n[[model]]\nprovider='b'\nmodel='X'\ninput=1\noutput=1\n";
        assert!(PriceTable::parse(text).unwrap_err().contains("twice"));
    }
}
