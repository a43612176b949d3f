//! Reading a process's memory and CPU use from `/proc` (Linux).

use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;

/// A `/proc/PID/status` field in KiB (`VmHWM`, `VmRSS`, ...).
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// User + system CPU time of a process (`None` = this process), in clock ticks.
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`, which may contain spaces: state is [0], utime [11], stime [12].
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy and total jiffies of the whole machine (`/proc/stat`, all CPUs summed).
fn system_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// Linux reports CPU times in USER_HZ ticks, 100 a second on every mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU use of a few processes between `start` and `cores`.
pub(crate) struct CpuMark {
    at: Instant,
    system: Option<(u64, u64)>,
    ticks: Vec<Option<u64>>,
    pids: Vec<Option<u32>>,
}

impl CpuMark {
    /// `pids`: `None` means this process.
    pub(crate) fn start(pids: &[Option<u32>]) -> Self {
        Self {
            at: Instant::now(),
            system: system_ticks(),
            ticks: pids.iter().map(|p| cpu_ticks(*p)).collect(),
            pids: pids.to_vec(),
        }
    }

    /// Cores busy machine-wide since `start`, and the machine's core count.
    pub(crate) fn system(&self) -> Option<(f64, f64)> {
        let (busy0, total0) = self.system?;
        let (busy1, total1) = system_ticks()?;
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let cores = (total1 - total0) as f64 / TICKS_PER_SEC / secs;
        Some(((busy1 - busy0) as f64 / TICKS_PER_SEC / secs, cores.round()))
    }

    /// Average cores busy per process since `start` (`None` if unreadable).
    pub(crate) fn cores(&self) -> Vec<Option<f64>> {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        self.pids
            .iter()
            .zip(&self.ticks)
            .map(|(p, before)| {
                let after = cpu_ticks(*p)?;
                Some(after.saturating_sub((*before)?) as f64 / TICKS_PER_SEC / secs)
            })
            .collect()
    }
}

/// Sample VmRSS of `pid` every `every` until `stop`; returns the largest value seen (KiB).
pub(crate) async fn max_rss(pid: u32, every: Duration, stop: CancellationToken) -> u64 {
    let mut max = 0;
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    max = max.max(kib);
                }
            }
        }
    }
    max.max(status_kib(pid, "VmRSS").unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
        assert!(status_kib(pid, "VmHWM").unwrap() >= status_kib(pid, "VmRSS").unwrap() / 2);
        let mark = CpuMark::start(&[None, Some(pid)]);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let cores = mark.cores();
        assert!(cores[0].is_some() && cores[1].is_some());
    }
}
