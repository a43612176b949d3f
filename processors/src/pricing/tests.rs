use super::*;

/// 2026-11-22T12:00:00Z in microseconds.
const NOW_US: i64 = 1_795_348_800_000_000;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> i64 {
    day(s)
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn call(model: &str, input: i64, output: i64, cr: i64, cw: i64, rs: i64) -> AgentEvent {
    AgentEvent {
        org_id: "acme".into(),
        timestamp: NOW_US,
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
        other => panic!("{:?} not computed: {other:?}", e.model),
    }
}

fn row(org: Option<&str>, model: &str, from: &str, input: f64) -> ModelPrice {
    ModelPrice {
        org_id: org.map(Into::into),
        provider: "p".into(),
        model: model.into(),
        aliases: vec![],
        effective_from: day(from),
        input,
        output: 1.0,
        cache_read: None,
        cache_write: None,
        reasoning: None,
    }
}

#[test]
fn exact_amounts_per_provider() {
    let t = PriceTable::bundled();
    // (event, expected USD), each with the arithmetic spelled out.
    let cases = [
        // OpenAI: uncached input, cached input at its own rate, reasoning at the output rate.
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
            call("gpt-5", 100_000, 20_000, 400_000, 0, 50_000),
            0.125 + 0.2 + 0.05 + 0.5,
        ),
        (call("openai/gpt-4.1", 1_000_000, 0, 0, 0, 0), 2.00),
        (
            call("gpt-5-mini-2025-08-07", 1_000_000, 0, 1_000_000, 0, 0),
            0.25 + 0.025,
        ),
        // Anthropic: cache reads and 5-minute cache writes at their own rates.
        (
            call("claude-sonnet-4-5", 10_000, 2_000, 50_000, 8_000, 0),
            0.03 + 0.03 + 0.015 + 0.03,
        ),
        (
            call("claude-opus-4-20250514", 1_000_000, 0, 0, 1_000_000, 0),
            15.0 + 18.75,
        ),
        (
            call(
                "claude-opus-4-5-20251101",
                1_000_000,
                1_000_000,
                1_000_000,
                1_000_000,
                0,
            ),
            5.0 + 25.0 + 0.5 + 6.25,
        ),
        (
            call("claude-haiku-4-5", 200_000, 10_000, 1_000_000, 0, 0),
            0.2 + 0.05 + 0.1,
        ),
        // Google: cached content and thinking tokens (output rate).
        (
            call("gemini-2.5-flash", 2_000_000, 1_000_000, 0, 0, 0),
            0.60 + 2.50,
        ),
        (
            call("gemini-2.5-pro", 100_000, 10_000, 1_000_000, 0, 20_000),
            0.125 + 0.1 + 0.125 + 0.2,
        ),
        // Mistral: no cache rates.
        (
            call("mistral-large-latest", 1_000_000, 1_000_000, 0, 0, 0),
            8.0,
        ),
        // DeepSeek: cache hits; the version in force on the event's day.
        (
            call("deepseek-chat", 1_000_000, 1_000_000, 1_000_000, 0, 0),
            0.28 + 0.42 + 0.028,
        ),
        (
            call("deepseek-reasoner", 0, 100_000, 0, 0, 900_000),
            0.042 + 0.378,
        ),
        // xAI: cached prompt tokens, reasoning at the output rate.
        (
            call(
                "grok-4-fast-reasoning",
                1_000_000,
                100_000,
                2_000_000,
                0,
                400_000,
            ),
            0.2 + 0.05 + 0.1 + 0.2,
        ),
        (call("grok-4-0709", 1_000_000, 0, 0, 0, 0), 3.0),
        // Llama on Groq.
        (
            call("llama-3.3-70b-versatile", 1_000_000, 1_000_000, 0, 0, 0),
            0.59 + 0.79,
        ),
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
fn the_version_in_force_on_the_events_day_prices_it() {
    let t = PriceTable::bundled();
    let mut e = call("deepseek-chat", 1_000_000, 1_000_000, 0, 0, 0);
    for (when, want) in [
        ("2025-01-15", 0.27 + 1.10),
        ("2025-09-04", 0.27 + 1.10),
        ("2025-09-05", 0.56 + 1.68),
        ("2025-09-28", 0.56 + 1.68),
        ("2025-09-29", 0.28 + 0.42),
        ("2026-11-22", 0.28 + 0.42),
    ] {
        e.timestamp = at(when);
        let got = cost(&t, &e);
        assert!((got - want).abs() < 1e-12, "{when}: got {got}, want {want}");
    }
    // Sonnet 5.5: only the cache-read rate changed on 2026-10-07.
    let mut e = call("claude-sonnet-5-5", 0, 0, 1_000_000, 0, 0);
    e.timestamp = at("2026-10-06");
    assert!((cost(&t, &e) - 0.20).abs() < 1e-12);
    e.timestamp = at("2026-10-07");
    assert!((cost(&t, &e) - 0.10).abs() < 1e-12);
}

#[test]
fn org_rows_override_global_rows_from_their_date() {
    let (t, conflicts) = PriceTable::build(vec![
        row(None, "m", "1970-01-01", 1.0),
        row(None, "m", "2026-06-01", 2.0),
        row(Some("acme"), "m", "2026-03-01", 10.0),
        row(Some("other"), "m", "1970-01-01", 99.0),
    ]);
    assert!(conflicts.is_empty());
    let p = |org: Option<&str>, d: &str| t.lookup(org, "m", day(d)).unwrap().input;
    assert_eq!(
        p(Some("acme"), "2026-01-01"),
        1.0,
        "before the org row: global"
    );
    assert_eq!(p(Some("acme"), "2026-03-01"), 10.0, "org row from its day");
    assert_eq!(
        p(Some("acme"), "2026-07-01"),
        10.0,
        "org beats a newer global row"
    );
    assert_eq!(p(None, "2026-07-01"), 2.0);
    assert_eq!(p(Some("nobody"), "2026-07-01"), 2.0);
    assert_eq!(p(Some("other"), "2026-07-01"), 99.0);
    // Before any version: no price.
    let (t, _) = PriceTable::build(vec![row(None, "late", "2026-06-01", 1.0)]);
    assert!(t.lookup(None, "late", day("2026-05-31")).is_none());
    assert!(t.lookup(None, "late", day("2026-06-01")).is_some());
}

#[test]
fn exact_names_beat_prefixes_then_org_prefixes_beat_global_ones() {
    let (t, _) = PriceTable::build(vec![
        row(None, "gpt-x-turbo", "1970-01-01", 1.0),
        row(None, "gpt-x", "1970-01-01", 2.0),
        row(Some("acme"), "gpt-x", "1970-01-01", 3.0),
    ]);
    let p = |org: Option<&str>, m: &str| t.lookup(org, m, day("2026-01-01")).map(|r| r.input);
    assert_eq!(
        p(Some("acme"), "gpt-x-turbo"),
        Some(1.0),
        "global exact beats org prefix"
    );
    assert_eq!(p(Some("acme"), "gpt-x-2026-01-01"), Some(3.0));
    assert_eq!(p(None, "gpt-x-2026-01-01"), Some(2.0));
    assert_eq!(p(None, "gpt-xl"), None);
}

#[test]
fn event_org_and_date_select_the_row() {
    let (t, _) = PriceTable::build(vec![
        row(None, "m", "1970-01-01", 1.0),
        row(Some("acme"), "m", "2026-11-01", 4.0),
    ]);
    let mut e = call("m", 1_000_000, 0, 0, 0, 0);
    assert_eq!(t.price(&e), Priced::Computed(4.0));
    e.timestamp = at("2026-10-31");
    assert_eq!(t.price(&e), Priced::Computed(1.0));
    e.org_id = "someone-else".into();
    e.timestamp = NOW_US;
    assert_eq!(t.price(&e), Priced::Computed(1.0));
}

#[test]
fn longest_prefix_wins() {
    let t = PriceTable::bundled();
    let m = |name: &str| {
        t.lookup(None, name, day("2026-11-22"))
            .map(|r| r.model.as_str())
    };
    assert_eq!(m("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
    assert_eq!(m("gpt-4o-2024-11-20"), Some("gpt-4o"));
    assert_eq!(m("gpt-5-pro-2025-10-06"), Some("gpt-5-pro"));
    assert_eq!(m("gpt-5.4-2026-03-05"), Some("gpt-5.4"));
    assert_eq!(m("grok-4-1-fast-non-reasoning"), Some("grok-4-1-fast"));
    assert_eq!(m("claude-opus-4-1-20250805"), Some("claude-opus-4"));
    assert_eq!(m("gpt-4orca"), None);
    assert_eq!(m("gpt-5x"), None);
}

#[test]
fn unknown_model_is_null_not_zero() {
    let t = PriceTable::bundled();
    let mut e = call("llama-99-secret", 10, 10, 0, 0, 0);
    assert_eq!(t.enrich(&mut e), Priced::UnknownModel);
    assert_eq!(e.cost_usd, None);
    assert_eq!(e.cost_source, None);
    let mut none = call("llama-99-secret", 0, 0, 0, 0, 0);
    assert_eq!(t.enrich(&mut none), Priced::NotApplicable);
}

#[test]
fn client_cost_is_kept() {
    let t = PriceTable::bundled();
    let mut e = call("gpt-4o", 1_000_000, 0, 0, 0, 0);
    e.cost_usd = Some(0.42);
    assert_eq!(t.enrich(&mut e), Priced::Client);
    assert_eq!(e.cost_usd, Some(0.42));
    assert_eq!(e.cost_source.as_deref(), Some("client"));
    // Re-pricing from tokens ignores it (recompute never uses this for client costs).
    assert_eq!(t.price_tokens(&e), Priced::Computed(2.5));
}

#[test]
fn duplicate_names_are_refused_in_a_file_and_reported_from_rows() {
    let text = "[[model]]\nprovider='a'\nmodel='x'\ninput=1\noutput=1\n[[model]]\nprovider='b'\nmodel='X'\ninput=1\noutput=1\n";
    assert!(PriceTable::parse(text).unwrap_err().contains("twice"));
    // Same name on different dates: two versions, fine.
    let text = "[[model]]\nprovider='a'\nmodel='x'\ninput=1\noutput=1\n[[model]]\nprovider='a'\nmodel='x'\neffective_from='2026-01-01'\ninput=2\noutput=1\n";
    let t = PriceTable::parse(text).unwrap();
    assert_eq!(t.lookup(None, "x", day("2026-02-01")).unwrap().input, 2.0);
    // From the database: the first row wins, the conflict is reported.
    let (t, conflicts) = PriceTable::build(vec![
        row(None, "a", "1970-01-01", 1.0),
        ModelPrice {
            aliases: vec!["a".into()],
            ..row(None, "b", "1970-01-01", 2.0)
        },
    ]);
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(t.lookup(None, "a", day("2026-01-01")).unwrap().input, 1.0);
    assert_eq!(t.lookup(None, "b", day("2026-01-01")).unwrap().input, 2.0);
}

#[test]
fn bundled_file_parses_with_every_rate_non_negative() {
    let t = PriceTable::bundled();
    assert!(t.rows().len() >= 40);
    for r in t.rows() {
        for v in [
            Some(r.input),
            Some(r.output),
            r.cache_read,
            r.cache_write,
            r.reasoning,
        ]
        .into_iter()
        .flatten()
        {
            assert!(v.is_finite() && v >= 0.0, "{}: {v}", r.model);
        }
    }
    for provider in [
        "openai",
        "anthropic",
        "google",
        "mistral",
        "deepseek",
        "xai",
    ] {
        assert!(
            t.rows().iter().any(|r| r.provider == provider),
            "{provider}"
        );
    }
}

#[test]
fn handle_swaps_tables() {
    let prices = Prices::new(PriceTable::default());
    let before = prices.current();
    assert!(before.rows().is_empty());
    prices.replace(PriceTable::bundled());
    assert!(!prices.current().rows().is_empty());
    assert!(before.rows().is_empty(), "a reader keeps its table");
}
