//! The components' processes: spawning, health, kill, terminate, restart,
//! scale out, and their logs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Component, Stack};
use crate::env::{bin_dir, env_or, free_port, log_dir};

impl Stack {
    /// Where one instance's stdout and stderr go.
    fn log_path(&self, c: Component, instance: usize) -> PathBuf {
        log_dir().join(format!("{}-{:?}-{instance}.log", self.name, c))
    }

    /// A command running `c`'s binary with this stack's configuration (for
    /// one-off subcommands such as `agentops-projections rebuild`).
    pub fn command(&self, c: Component) -> Command {
        let mut cmd = Command::new(bin_dir().join(c.binary()));
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(g) = self.group(c) {
            cmd.env("AGENTOPS_GROUP", g);
        }
        cmd
    }

    pub(super) fn spawn(&mut self, c: Component, instance: usize) -> Result<()> {
        let port = self.ports[&c][instance];
        let path = bin_dir().join(c.binary());
        let log = self.log_path(c, instance);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        self.log_from.insert((c, instance), out.metadata()?.len());
        let group = self.group(c);
        let mut cmd = Command::new(&path);
        if let Some(g) = group {
            cmd.env("AGENTOPS_GROUP", g);
        }
        if !self.dynamic_membership {
            // Static membership: a restarted instance takes its own place back.
            cmd.env("AGENTOPS_KAFKA__INSTANCE_ID", format!("{c:?}-{instance}"));
        }
        let child = cmd
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AGENTOPS_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", env_or("AGENTOPS_TEST_LOG", "info"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| {
                format!(
                    "spawn {} (build the workspace binaries first)",
                    path.display()
                )
            })?;
        self.children.push((c, instance, child));
        Ok(())
    }

    /// Wait until a component's `/healthz` answers 200 as that component
    /// (another process that took the port does not count).
    pub async fn wait_healthy(&self, c: Component, instance: usize) -> Result<()> {
        if self
            .healthy_within(c, instance, Duration::from_secs(90))
            .await?
        {
            return Ok(());
        }
        bail!(
            "{c:?}[{instance}] not healthy within 90 s (logs in target/e2e-logs/{}-*)",
            self.name
        )
    }

    /// Whether `/healthz` of this instance answers 200 with its own
    /// component name before `within` passes; false early if the process
    /// has exited.
    async fn healthy_within(
        &self,
        c: Component,
        instance: usize,
        within: Duration,
    ) -> Result<bool> {
        let url = format!("http://127.0.0.1:{}/healthz", self.ports[&c][instance]);
        let name = c.binary().trim_start_matches("agentops-");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    if body["component"] == name {
                        return Ok(true);
                    }
                }
            }
            if self.pid(c, instance).is_some_and(process_gone) {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }

    /// Wait until a just-spawned instance is healthy. Ports are picked free
    /// but handed over, so under parallel tests another process can take
    /// one first: an instance that exits because its port is taken is
    /// started again on a new port (up to three times).
    pub(super) async fn settle(&mut self, c: Component, instance: usize) -> Result<()> {
        for _ in 0..3 {
            if self
                .healthy_within(c, instance, Duration::from_secs(90))
                .await?
            {
                return Ok(());
            }
            let log = std::fs::read(self.log_path(c, instance)).unwrap_or_default();
            let from = self.log_from.get(&(c, instance)).copied().unwrap_or(0) as usize;
            if !port_was_taken(&log, from) {
                break;
            }
            self.children
                .retain(|(cc, i, _)| !(*cc == c && *i == instance));
            let port = free_port();
            self.ports.get_mut(&c).context("component ports")?[instance] = port;
            if instance == 0 && c == Component::Gateway {
                self.gateway_url = format!("http://127.0.0.1:{port}");
            }
            if instance == 0 && c == Component::QueryApi {
                self.query_url = format!("http://127.0.0.1:{port}");
            }
            self.spawn(c, instance)?;
        }
        bail!(
            "{c:?}[{instance}] not healthy within 90 s (logs in target/e2e-logs/{}-*)",
            self.name
        )
    }

    /// The process id of a running component.
    pub fn pid(&self, c: Component, instance: usize) -> Option<u32> {
        self.children
            .iter()
            .find(|(cc, i, _)| *cc == c && *i == instance)
            .map(|(_, _, child)| child.id())
    }

    fn take_child(&mut self, c: Component, instance: usize) -> Result<Child> {
        let pos = self
            .children
            .iter()
            .position(|(cc, i, _)| *cc == c && *i == instance)
            .context("no such running component")?;
        Ok(self.children.remove(pos).2)
    }

    /// SIGKILL one instance of a component (no shutdown hooks run).
    pub fn kill(&mut self, c: Component, instance: usize) -> Result<()> {
        let mut child = self.take_child(c, instance)?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM one instance and wait for it to exit; returns its exit status.
    pub fn terminate(&mut self, c: Component, instance: usize) -> Result<std::process::ExitStatus> {
        let mut child = self.take_child(c, instance)?;
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        Ok(child.wait()?)
    }

    /// Wait up to `within` for one instance to exit on its own; its exit
    /// status (the instance is then no longer running).
    pub async fn exited(
        &mut self,
        c: Component,
        instance: usize,
        within: Duration,
    ) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let pos = self
                .children
                .iter()
                .position(|(cc, i, _)| *cc == c && *i == instance)
                .context("no such running component")?;
            if let Some(status) = self.children[pos].2.try_wait()? {
                self.children.remove(pos);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{c:?}[{instance}] still running after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What one instance has logged so far (stdout and stderr).
    pub fn log(&self, c: Component, instance: usize) -> Result<String> {
        let path = self.log_path(c, instance);
        Ok(std::fs::read_to_string(path)?)
    }

    /// Start one more instance of `c` (scale out) and wait until it is
    /// healthy; returns its instance number.
    pub async fn add_instance(&mut self, c: Component) -> Result<usize> {
        let ports = self.ports.entry(c).or_default();
        ports.push(free_port());
        let instance = ports.len() - 1;
        self.spawn(c, instance)?;
        self.settle(c, instance).await?;
        Ok(instance)
    }

    /// Start an instance again (after `kill`) and wait until it is healthy.
    pub async fn restart(&mut self, c: Component, instance: usize) -> Result<()> {
        self.spawn(c, instance)?;
        self.settle(c, instance).await
    }
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Whether the start whose output begins at `from` in an instance's
/// (appended) log failed because its port was taken. The whole of that
/// start's output is read: the error comes first, then a backtrace longer
/// than any fixed tail.
fn port_was_taken(log: &[u8], from: usize) -> bool {
    String::from_utf8_lossy(log.get(from..).unwrap_or_default()).contains("Address already in use")
}

#[cfg(test)]
mod tests {
    use super::port_was_taken;

    #[test]
    fn a_taken_port_is_seen_past_the_backtrace_and_only_in_this_start() {
        let backtrace: String = (0..200)
            .map(|i| format!("  {i}: some::frame\n             at ./src/main.rs:60:25\n"))
            .collect();
        let taken = format!(
            "Error: task http failed (error): io: Address already in use (os error 98)\n\
             Stack backtrace:\n{backtrace}"
        );
        assert!(backtrace.len() > 4096);
        assert!(port_was_taken(taken.as_bytes(), 0));
        // An earlier start's failure, then this one's other error.
        let log = format!("{taken}Error: database unreachable\n{backtrace}");
        assert!(!port_was_taken(log.as_bytes(), taken.len()));
        assert!(port_was_taken(log.as_bytes(), 0));
    }
}
