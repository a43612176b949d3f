//! Benchmark figures: per-phase results and the printed summary (human lines
//! on stdout, then one JSON line with the same figures for scripts).

use std::time::Duration;

use serde_json::json;

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
    pub(crate) elapsed: Duration,
    /// Average cores busy during the phase: [loadgen, gateway, broker].
    pub(crate) cpu: Vec<Option<f64>>,
    /// Machine-wide (busy cores, cores) during the phase.
    pub(crate) system_cpu: Option<(f64, f64)>,
}

impl Phase {
    pub(crate) fn merge(&mut self, other: Phase) {
        self.events_ok += other.events_ok;
        self.failed_batches += other.failed_batches;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// Events per second: all N events over the elapsed time.
    pub(crate) fn eps(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency quantile in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_unstable();
        let idx = ((v.len() - 1) as f64 * q).round() as usize;
        v[idx] as f64 / 1000.0
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
    pub(crate) events: usize,
    pub(crate) warmup: usize,
    pub(crate) batch: usize,
    pub(crate) concurrency: usize,
    pub(crate) json_bytes_per_event: f64,
    pub(crate) avro_bytes_per_event: f64,
    pub(crate) raw: Phase,
    pub(crate) gateway: Phase,
    pub(crate) rss_before_kib: Option<u64>,
    pub(crate) rss_max_kib: Option<u64>,
    pub(crate) hwm_kib: Option<u64>,
    /// Single-thread µs/event of JSON parse, validation, Avro encode.
    pub(crate) step_us: [f64; 3],
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
        self.raw.failed_batches == 0
            && self.gateway.failed_batches == 0
            && self.raw.events_ok == self.events
            && self.gateway.events_ok == self.events
    }

    /// VmHWM is the kernel's lifetime peak but is updated lazily; never report below a sample.
    fn peak_mib(&self) -> Option<f64> {
        let peak = match (self.hwm_kib, self.rss_max_kib) {
            (Some(h), Some(m)) => Some(h.max(m)),
            (h, m) => h.or(m),
        };
        mib(peak)
    }

    fn ratio(&self) -> f64 {
        self.gateway.eps() / self.raw.eps().max(1e-9)
    }

    pub(crate) fn print(&self) {
        let (raw, gw) = (&self.raw, &self.gateway);
        println!();
        println!(
            "bench: {} events per phase (+{} warm-up, not counted), batch {}, concurrency {}; order: raw producer, then gateway",
            thousands(self.events as f64),
            thousands(self.warmup as f64),
            self.batch,
            self.concurrency
        );
        println!(
            "payload: {:.0} B/event as gateway JSON, {:.0} B/event as Avro record value",
            self.json_bytes_per_event, self.avro_bytes_per_event
        );
        println!(
            "raw producer: {} events/s  ({:.2} s; batch p50 {:.1} ms, p99 {:.1} ms; {} failed batches)",
            thousands(raw.eps()),
            raw.elapsed.as_secs_f64(),
            raw.quantile_ms(0.5),
            raw.quantile_ms(0.99),
            raw.failed_batches
        );
        println!(
            "gateway: {} events/s  ({:.2} s; request p50 {:.1} ms, p99 {:.1} ms; {} failed requests)",
            thousands(gw.eps()),
            gw.elapsed.as_secs_f64(),
            gw.quantile_ms(0.5),
            gw.quantile_ms(0.99),
            gw.failed_batches
        );
        println!("ratio gateway/raw: {:.2}", self.ratio());
        match (mib(self.hwm_kib), mib(self.rss_max_kib)) {
            (Some(h), Some(m)) => println!(
                "gateway peak RSS: {:.1} MiB (VmHWM {h:.1} MiB; max VmRSS sampled every 50 ms during the measured phase {m:.1} MiB, {:.1} MiB before it)",
                self.peak_mib().unwrap_or(0.0),
                mib(self.rss_before_kib).unwrap_or(0.0)
            ),
            _ => println!("gateway peak RSS: n/a (no --gateway-pid)"),
        }
        println!("cpu cores busy, raw phase: {}", raw.cpu_line());
        println!("cpu cores busy, gateway phase: {}", gw.cpu_line());
        let [parse, validate, encode] = self.step_us;
        println!(
            "cpu per event, one thread, no I/O: JSON parse {parse:.2} µs, validation {validate:.2} µs, Avro encode {encode:.2} µs (the raw path does only the encode)"
        );
        let per_event = |p: &Phase, i: usize| p.cores(i).map(|c| c * 1e6 / p.eps().max(1e-9));
        if let (Some(g), Some(l)) = (per_event(gw, 1), per_event(raw, 0)) {
            println!("cpu per event, measured: gateway process {g:.1} µs; raw producer process {l:.1} µs");
        }
        for (name, p) in [("raw producer", raw), ("gateway", gw)] {
            if let Some(e) = &p.first_error {
                println!("{name}: first error: {e}");
            }
        }
        if !self.valid() {
            println!("INVALID RUN: some batches failed (see above)");
        }
        let line = json!({
            "bench": "gateway_vs_raw",
            "valid": self.valid(),
            "order": ["raw", "gateway"],
            "events": self.events,
            "warmup_events": self.warmup,
            "batch": self.batch,
            "concurrency": self.concurrency,
            "json_bytes_per_event": self.json_bytes_per_event.round(),
            "avro_bytes_per_event": self.avro_bytes_per_event.round(),
            "raw_eps": raw.eps().round(),
            "gateway_eps": gw.eps().round(),
            "ratio": round3(self.ratio()),
            "gateway_peak_rss_mib": self.peak_mib(),
            "gateway_vmhwm_mib": mib(self.hwm_kib),
            "gateway_max_sampled_rss_mib": mib(self.rss_max_kib),
            "gateway_rss_before_mib": mib(self.rss_before_kib),
            "step_us_per_event": {"json_parse": round3(parse), "validate": round3(validate), "avro_encode": round3(encode)},
            "raw": raw.json(),
            "gateway": gw.json(),
        });
        println!("{line}");
    }
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
}
