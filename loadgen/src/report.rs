//! Benchmark figures: per-phase results and the printed summary (human lines
//! on stdout, then one JSON line with the same figures for scripts).

use std::time::Duration;

use serde_json::json;

use crate::bench::BenchFormat;
use crate::bench_latency::Latency;

/// One measured phase.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    /// Events the phase was given.
    pub(crate) events: usize,
    pub(crate) events_ok: usize,
    pub(crate) failed_batches: usize,
    pub(crate) first_error: Option<String>,
    /// Per batch / request, microseconds.
    pub(crate) latencies_us: Vec<u64>,
    /// Open loop only: how late each request started against its schedule, microseconds.
    pub(crate) start_lag_us: Vec<u64>,
    pub(crate) elapsed: Duration,
    /// Average cores busy during the phase: [loadgen, gateway, broker].
    pub(crate) cpu: Vec<Option<f64>>,
    /// Machine-wide (busy cores, cores) during the phase.
    pub(crate) system_cpu: Option<(f64, f64)>,
}

impl Phase {
    /// Count one batch's outcome (events done, or why it failed).
    pub(crate) fn record(&mut self, outcome: Result<usize, String>) {
        match outcome {
            Ok(k) => self.events_ok += k,
            Err(e) => {
                self.failed_batches += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Phase) {
        self.events_ok += other.events_ok;
        self.failed_batches += other.failed_batches;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.start_lag_us.extend(other.start_lag_us);
    }

    /// Events per second: all N events over the elapsed time.
    pub(crate) fn eps(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency quantile in milliseconds (nearest rank over every sample).
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies_us, q)
    }

    fn cores(&self, i: usize) -> Option<f64> {
        self.cpu
            .get(i)
            .copied()
            .flatten()
            .map(|c| (c * 100.0).round() / 100.0)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "events_per_sec": self.eps().round(),
            "elapsed_secs": round3(self.elapsed.as_secs_f64()),
            "events_ok": self.events_ok,
            "failed_batches": self.failed_batches,
            "first_error": self.first_error,
            "batch_p50_ms": round3(self.quantile_ms(0.5)),
            "batch_p99_ms": round3(self.quantile_ms(0.99)),
            "cpu_cores": {"loadgen": self.cores(0), "gateway": self.cores(1), "broker": self.cores(2),
                          "machine_busy": self.system_cpu.map(|(b, _)| (b * 100.0).round() / 100.0)},
        })
    }

    fn cpu_line(&self) -> String {
        let names = ["loadgen", "gateway", "broker"];
        let parts: Vec<String> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.cores(i).map(|c| format!("{n} {c:.2}")))
            .collect();
        let mut line = if parts.is_empty() {
            "n/a".to_owned()
        } else {
            parts.join(", ")
        };
        if let Some((busy, cores)) = self.system_cpu {
            line.push_str(&format!("; whole machine {busy:.2} of {cores:.0}"));
        }
        line
    }
}

pub(crate) struct Report {
    pub(crate) format: BenchFormat,
    pub(crate) events: usize,
    /// Spans the gateway was sent (OTLP only).
    pub(crate) spans: Option<usize>,
    pub(crate) warmup: usize,
    pub(crate) batch: usize,
    pub(crate) concurrency: usize,
    pub(crate) body_bytes_per_event: f64,
    pub(crate) avro_bytes_per_event: f64,
    pub(crate) raw: Phase,
    pub(crate) gateway: Phase,
    pub(crate) latency: Option<Latency>,
    pub(crate) rss_before_kib: Option<u64>,
    /// Max VmRSS sampled during the gateway's measured throughput phase.
    pub(crate) rss_max_kib: Option<u64>,
    /// Max VmRSS sampled during the gateway's latency phase, and VmRSS after it.
    pub(crate) rss_latency_max_kib: Option<u64>,
    pub(crate) rss_after_latency_kib: Option<u64>,
    pub(crate) hwm_kib: Option<u64>,
    /// Single-thread µs/event of decoding, mapping + validation, Avro encode.
    pub(crate) step_us: [f64; 3],
}

/// Quantile `q` of microsecond samples, in milliseconds (0 when empty).
fn quantile_ms(samples: &[u64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx] as f64 / 1000.0
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// 41234.4 → "41,234".
pub(crate) fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    pub(crate) fn valid(&self) -> bool {
        let latency_ok = self
            .latency
            .as_ref()
            .is_none_or(|l| l.raw.failed_batches == 0 && l.gateway.failed_batches == 0);
        self.raw.failed_batches == 0
            && self.gateway.failed_batches == 0
            && self.raw.events_ok == self.events
            && self.gateway.events_ok == self.events
            && latency_ok
    }

    /// The gateway's peak over the whole run: VmHWM is the kernel's lifetime
    /// peak but is updated lazily; never report below a sample.
    fn peak_mib(&self) -> Option<f64> {
        let sampled = self.rss_max_kib.max(self.rss_latency_max_kib);
        mib(match (self.hwm_kib, sampled) {
            (Some(h), Some(m)) => Some(h.max(m)),
            (h, m) => h.or(m),
        })
    }

    fn ratio(&self) -> f64 {
        self.gateway.eps() / self.raw.eps().max(1e-9)
    }

    /// Spans per second of a phase that sent all the spans.
    fn sps(&self, p: &Phase) -> Option<f64> {
        self.spans
            .map(|s| s as f64 / p.elapsed.as_secs_f64().max(1e-9))
    }

    /// What a request is called, and the three pure steps measured.
    fn names(&self) -> (&'static str, [&'static str; 3]) {
        match self.format {
            BenchFormat::Json => (
                "POST /v1/events JSON batch",
                ["JSON parse", "validation", "Avro encode"],
            ),
            BenchFormat::Otlp => (
                "POST /v1/traces protobuf request",
                [
                    "protobuf decode",
                    "span mapping + validation",
                    "Avro encode",
                ],
            ),
        }
    }

    pub(crate) fn print(&self) {
        let (raw, gw) = (&self.raw, &self.gateway);
        let (request, steps) = self.names();
        let fmt = self.format.as_str();
        println!();
        println!(
            "bench [{fmt}]: {} events per phase (+{} warm-up, not counted), {} events per {request}, concurrency {}; order: raw producer, then gateway",
            thousands(self.events as f64),
            thousands(self.warmup as f64),
            self.batch,
            self.concurrency
        );
        if let Some(spans) = self.spans {
            println!(
                "spans: {} per phase ({:.2} events per span: invoke_agent spans map to 2 events, chat and execute_tool spans to 1)",
                thousands(spans as f64),
                self.events as f64 / spans.max(1) as f64
            );
        }
        println!(
            "payload: {:.0} B/event as request body ({fmt}), {:.0} B/event as Avro record value",
            self.body_bytes_per_event, self.avro_bytes_per_event
        );
        let spans = |p: &Phase| {
            self.sps(p)
                .map(|s| format!(", {} spans/s", thousands(s)))
                .unwrap_or_default()
        };
        println!(
            "raw producer: {} events/s{}  ({:.2} s; batch p50 {:.1} ms, p99 {:.1} ms; {} failed batches)",
            thousands(raw.eps()),
            spans(raw),
            raw.elapsed.as_secs_f64(),
            raw.quantile_ms(0.5),
            raw.quantile_ms(0.99),
            raw.failed_batches
        );
        println!(
            "gateway: {} events/s{}  ({:.2} s; request p50 {:.1} ms, p99 {:.1} ms; {} failed requests)",
            thousands(gw.eps()),
            spans(gw),
            gw.elapsed.as_secs_f64(),
            gw.quantile_ms(0.5),
            gw.quantile_ms(0.99),
            gw.failed_batches
        );
        println!("ratio gateway/raw: {:.2}", self.ratio());
        if let Some(l) = &self.latency {
            println!(
                "latency at {:.0}% of the gateway's rate, open loop: {} events/s ({:.1} requests/s) for {:.0} s each",
                l.load * 100.0,
                thousands(l.events_per_sec),
                l.requests_per_sec,
                l.secs
            );
            for (name, p) in [("raw producer", &l.raw), ("gateway", &l.gateway)] {
                println!(
                    "  {name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests, {} failed; start lag p99 {:.2} ms)",
                    p.quantile_ms(0.5),
                    p.quantile_ms(0.99),
                    p.quantile_ms(1.0),
                    p.latencies_us.len(),
                    p.failed_batches,
                    quantile_ms(&p.start_lag_us, 0.99)
                );
            }
            println!(
                "  added by the gateway: p50 {:+.2} ms, p99 {:+.2} ms",
                l.gateway.quantile_ms(0.5) - l.raw.quantile_ms(0.5),
                l.gateway.quantile_ms(0.99) - l.raw.quantile_ms(0.99)
            );
        }
        match self.peak_mib() {
            Some(peak) => println!(
                "gateway peak RSS over the run: {peak:.1} MiB (VmHWM {}; max VmRSS sampled every 50 ms: {} in the throughput phase, {} in the latency phase; {} before the throughput phase, {} after the latency phase)",
                show_mib(self.hwm_kib),
                show_mib(self.rss_max_kib),
                show_mib(self.rss_latency_max_kib),
                show_mib(self.rss_before_kib),
                show_mib(self.rss_after_latency_kib),
            ),
            None => println!("gateway peak RSS: n/a (no --gateway-pid)"),
        }
        println!("cpu cores busy, raw phase: {}", raw.cpu_line());
        println!("cpu cores busy, gateway phase: {}", gw.cpu_line());
        let [a, b, c] = self.step_us;
        println!(
            "cpu per event, one thread, no I/O: {} {a:.2} µs, {} {b:.2} µs, {} {c:.2} µs (the raw path does only the encode)",
            steps[0], steps[1], steps[2]
        );
        let per_event = |p: &Phase, i: usize| p.cores(i).map(|c| c * 1e6 / p.eps().max(1e-9));
        if let (Some(g), Some(l)) = (per_event(gw, 1), per_event(raw, 0)) {
            println!("cpu per event, measured: gateway process {g:.1} µs; raw producer process {l:.1} µs");
        }
        let latency = self.latency.as_ref();
        for (name, p) in [
            ("raw producer", Some(raw)),
            ("gateway", Some(gw)),
            ("latency raw producer", latency.map(|l| &l.raw)),
            ("latency gateway", latency.map(|l| &l.gateway)),
        ] {
            if let Some(e) = p.and_then(|p| p.first_error.as_ref()) {
                println!("{name}: first error: {e}");
            }
        }
        if !self.valid() {
            println!("INVALID RUN: some batches failed (see above)");
        }
        println!("{}", self.json());
    }

    fn json(&self) -> serde_json::Value {
        let (raw, gw) = (&self.raw, &self.gateway);
        let [a, b, c] = self.step_us;
        let steps = match self.format {
            BenchFormat::Json => {
                json!({"json_parse": round3(a), "validate": round3(b), "avro_encode": round3(c)})
            }
            BenchFormat::Otlp => {
                json!({"protobuf_decode": round3(a), "map_validate": round3(b), "avro_encode": round3(c)})
            }
        };
        let latency = self.latency.as_ref().map(|l| {
            let side = |p: &Phase| {
                json!({
                    "p50_ms": round3(p.quantile_ms(0.5)),
                    "p99_ms": round3(p.quantile_ms(0.99)),
                    "max_ms": round3(p.quantile_ms(1.0)),
                    "requests": p.latencies_us.len(),
                    "failed": p.failed_batches,
                    "start_lag_p99_ms": round3(quantile_ms(&p.start_lag_us, 0.99)),
                })
            };
            json!({
                "load": l.load,
                "events_per_sec": l.events_per_sec.round(),
                "requests_per_sec": (l.requests_per_sec * 10.0).round() / 10.0,
                "secs": l.secs,
                "raw": side(&l.raw),
                "gateway": side(&l.gateway),
                "added_p50_ms": round3(l.gateway.quantile_ms(0.5) - l.raw.quantile_ms(0.5)),
                "added_p99_ms": round3(l.gateway.quantile_ms(0.99) - l.raw.quantile_ms(0.99)),
            })
        });
        json!({
            "bench": "gateway_vs_raw",
            "format": self.format.as_str(),
            "valid": self.valid(),
            "order": ["raw", "gateway", "latency_raw", "latency_gateway"],
            "events": self.events,
            "spans": self.spans,
            "warmup_events": self.warmup,
            "batch": self.batch,
            "concurrency": self.concurrency,
            "body_bytes_per_event": self.body_bytes_per_event.round(),
            "avro_bytes_per_event": self.avro_bytes_per_event.round(),
            "raw_eps": raw.eps().round(),
            "gateway_eps": gw.eps().round(),
            "ratio": round3(self.ratio()),
            "raw_spans_per_sec": self.sps(raw).map(f64::round),
            "gateway_spans_per_sec": self.sps(gw).map(f64::round),
            "latency": latency,
            "gateway_peak_rss_mib": self.peak_mib(),
            "gateway_vmhwm_mib": mib(self.hwm_kib),
            "gateway_max_sampled_rss_mib": mib(self.rss_max_kib),
            "gateway_max_sampled_rss_latency_mib": mib(self.rss_latency_max_kib),
            "gateway_rss_before_mib": mib(self.rss_before_kib),
            "gateway_rss_after_latency_mib": mib(self.rss_after_latency_kib),
            "step_us_per_event": steps,
            "raw": raw.json(),
            "gateway": gw.json(),
        })
    }
}

fn show_mib(kib: Option<u64>) -> String {
    mib(kib).map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(41234.4), "41,234");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 50.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&v, 1.0), 100.0);
        assert_eq!(quantile_ms(&[7000], 0.99), 7.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
