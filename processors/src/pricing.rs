//! The versioned model price table (USD per million tokens) and the cost formula.
//!
//! A price row names a provider, a model (plus aliases), the UTC date it takes
//! effect, and five rates. Rows are global (`org_id` NULL) or belong to one org,
//! whose rows override the global ones. An event is priced with the row of
//! the latest `effective_from` on or before the event's UTC date.
//!
//! Name matching, in order: an exact name or alias of the org's rows, of the
//! global rows, then the longest name of the org's rows that prefixes the model
//! at a version boundary (`-`, `@`, `:`; e.g. `gpt-4o-2024-08-06`), then the
//! same over the global rows. A `provider/` prefix (`openai/gpt-4o`) is ignored.
//!
//! The table lives in Postgres (`model_prices`, see [`crate::price_store`]);
//! the bundled `prices.toml` only seeds an empty global table.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use agentops_schemas::AgentEvent;
use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

/// The table bundled with the repository (`processors/prices.toml`).
pub const BUNDLED: &str = include_str!("../prices.toml");

/// `effective_from` of a row that has always applied.
pub fn since_always() -> NaiveDate {
    chrono::DateTime::UNIX_EPOCH.date_naive()
}

/// One version of one model's prices (USD per million tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// `None`: the global table; `Some(org)`: that org's override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default = "since_always")]
    pub effective_from: NaiveDate,
    pub input: f64,
    pub output: f64,
    /// Default: the input rate.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Default: the input rate.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Default: the output rate.
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

/// Lowercase name → versions `(effective_from, row)`, oldest first.
type Names = HashMap<String, Vec<(NaiveDate, usize)>>;

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    global: Names,
    orgs: HashMap<String, Names>,
    rows: Vec<ModelPrice>,
}

impl PriceTable {
    /// Parse a price file (every row global). Duplicate names are an error.
    pub fn parse(toml_text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let rows = file
            .model
            .into_iter()
            .map(|m| ModelPrice { org_id: None, ..m })
            .collect();
        let (table, conflicts) = Self::build(rows);
        match conflicts.into_iter().next() {
            Some(c) => Err(c),
            None => Ok(table),
        }
    }

    /// The bundled file.
    #[allow(
        clippy::expect_used,
        reason = "the bundled table is a compile-time constant, parsed by its unit test"
    )]
    pub fn bundled() -> Self {
        Self::parse(BUNDLED).expect("bundled price table parses")
    }

    /// Index `rows`; a name listed twice for the same scope and date keeps the
    /// first row and is reported in the returned list.
    pub fn build(rows: Vec<ModelPrice>) -> (Self, Vec<String>) {
        let mut t = PriceTable::default();
        let mut conflicts = Vec::new();
        for (i, m) in rows.iter().enumerate() {
            let names = match &m.org_id {
                None => &mut t.global,
                Some(org) => t.orgs.entry(org.clone()).or_default(),
            };
            let mut mine: Vec<String> = std::iter::once(&m.model)
                .chain(&m.aliases)
                .map(|n| n.to_ascii_lowercase())
                .collect();
            mine.sort();
            mine.dedup();
            for name in mine {
                let versions = names.entry(name.clone()).or_default();
                if versions.iter().any(|(d, _)| *d == m.effective_from) {
                    conflicts.push(format!(
                        "model name {name} listed twice for {} (scope {})",
                        m.effective_from,
                        m.org_id.as_deref().unwrap_or("global")
                    ));
                    continue;
                }
                versions.push((m.effective_from, i));
                versions.sort_by_key(|(d, _)| *d);
            }
        }
        t.rows = rows;
        (t, conflicts)
    }

    /// Every row, in the order given.
    pub fn rows(&self) -> &[ModelPrice] {
        &self.rows
    }

    fn version(&self, versions: Option<&Vec<(NaiveDate, usize)>>, day: NaiveDate) -> Option<usize> {
        versions?
            .iter()
            .rev()
            .find(|(d, _)| *d <= day)
            .map(|(_, i)| *i)
    }

    /// The longest name that is `model` up to a `-`, `@` or `:` (a dated
    /// or tagged version: `gpt-4o` for `gpt-4o-2024-08-06`) with a row on
    /// `day`: one lookup per separator of `model`, longest first.
    fn by_prefix(&self, names: &Names, model: &str, day: NaiveDate) -> Option<usize> {
        model
            .bytes()
            .enumerate()
            .rev()
            .filter(|(_, b)| matches!(b, b'-' | b'@' | b':'))
            .find_map(|(i, _)| self.version(names.get(&model[..i]), day))
    }

    /// The row pricing `model` for `org` on `day` (UTC).
    pub fn lookup(&self, org: Option<&str>, model: &str, day: NaiveDate) -> Option<&ModelPrice> {
        let model = model.to_ascii_lowercase();
        let model = model.rsplit('/').next().unwrap_or(&model); // "openai/gpt-4o"
        let own = org.and_then(|o| self.orgs.get(o));
        let found = own
            .and_then(|n| self.version(n.get(model), day))
            .or_else(|| self.version(self.global.get(model), day))
            .or_else(|| own.and_then(|n| self.by_prefix(n, model, day)))
            .or_else(|| self.by_prefix(&self.global, model, day));
        found.map(|i| &self.rows[i])
    }

    /// The cost of `e`'s tokens at `p`'s rates (USD).
    pub fn cost(p: &ModelPrice, e: &AgentEvent) -> f64 {
        let t = |v: Option<i64>| v.unwrap_or(0) as f64;
        let micro_usd = t(e.input_tokens) * p.input
            + t(e.output_tokens) * p.output
            + t(e.cache_read_tokens) * p.cache_read.unwrap_or(p.input)
            + t(e.cache_write_tokens) * p.cache_write.unwrap_or(p.input)
            + t(e.reasoning_tokens) * p.reasoning.unwrap_or(p.output);
        micro_usd / 1_000_000.0
    }

    /// Price an event from its tokens, ignoring any cost it carries.
    pub fn price_tokens(&self, e: &AgentEvent) -> Priced {
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
        let day = DateTime::from_timestamp_micros(e.timestamp)
            .unwrap_or_default()
            .date_naive();
        let org = (!e.org_id.is_empty()).then_some(e.org_id.as_str());
        match e.model.as_deref().and_then(|m| self.lookup(org, m, day)) {
            Some(p) => Priced::Computed(Self::cost(p, e)),
            None => Priced::UnknownModel,
        }
    }

    /// Price an event (does not modify it): a client-supplied cost wins.
    pub fn price(&self, e: &AgentEvent) -> Priced {
        if e.cost_usd.is_some() {
            return Priced::Client;
        }
        self.price_tokens(e)
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

/// A cheap, cloneable handle on the current table; a reload task swaps it.
#[derive(Clone, Debug)]
pub struct Prices(Arc<RwLock<Arc<PriceTable>>>);

impl Prices {
    pub fn new(table: PriceTable) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(table))))
    }

    /// The table in force now (readers keep it for a whole batch).
    pub fn current(&self) -> Arc<PriceTable> {
        match self.0.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, table: PriceTable) {
        let table = Arc::new(table);
        match self.0.write() {
            Ok(mut t) => *t = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

#[cfg(test)]
mod tests;
