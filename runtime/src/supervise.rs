//! Supervision of a process's long-lived tasks.
//!
//! Every component runs its tasks under one [`Supervisor`], each by name. A
//! task that returns an error, panics, or stops before shutdown is logged
//! with its name and counted (`agentops_task_failures_total{task,kind}`,
//! `kind` = `error`, `panic` or `stopped`); then, as chosen per task:
//!
//! - [`Supervisor::critical`]: the process goes down. Every other task is
//!   cancelled and drained, and [`Supervisor::wait`] returns the failure, so
//!   `main` exits non-zero and the process supervisor (systemd, Kubernetes)
//!   starts a fresh one. For tasks that own Kafka or database state (a
//!   consumer's assignment and stored offsets, an open transaction, claims,
//!   in-memory spend): starting them again in-process would inherit
//!   whatever the failure left half-done, while a new process starts from
//!   what is committed. The HTTP server is critical too: its error (a port
//!   taken, a listener failing) must not leave a process that answers nothing.
//! - [`Supervisor::restarting`]: the task is started again in-process after a
//!   backoff (1 s doubling to 60 s, back to 1 s after a minute of running;
//!   `agentops_task_restarts_total{task}`). For stateless periodic tasks
//!   (reloads, sweeps, digests) that hold nothing between passes.
//!
//! Shutdown (the token cancelled by SIGTERM, or by a critical failure)
//! drains every task: [`Supervisor::wait`] returns once all have ended.
//!
//! Test hook (debug builds only, compiled out of release builds):
//! `AGENTOPS_TEST_PANIC_TASK=<name>` makes the task of that name panic once,
//! `AGENTOPS_TEST_PANIC_AFTER_MS` (default 0) after it starts. The e2e
//! supervision tests use it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How a task ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// It returned an error.
    Error,
    /// It panicked.
    Panic,
    /// It returned before shutdown was asked for.
    Stopped,
}

impl FailureKind {
    fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Panic => "panic",
            FailureKind::Stopped => "stopped",
        }
    }
}

/// A critical task's failure, which took the process down.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed ({}): {reason}", kind.as_str())]
pub struct TaskFailed {
    pub task: &'static str,
    pub kind: FailureKind,
    pub reason: String,
}

/// The tasks of one process (see the module doc).
pub struct Supervisor {
    shutdown: CancellationToken,
    tasks: JoinSet<Option<TaskFailed>>,
}

impl Supervisor {
    /// Tasks stop when `shutdown` is cancelled; a critical failure cancels it.
    pub fn new(shutdown: CancellationToken) -> Supervisor {
        Supervisor {
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    /// Run `task`; if it fails, panics or stops before shutdown, the process
    /// goes down (every task drained, [`Supervisor::wait`] returns the failure).
    pub fn critical<E, F>(&mut self, name: &'static str, task: F)
    where
        E: std::fmt::Display,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tasks
            .spawn(async move { critical_attempt(name, task, &shutdown).await });
    }

    /// Run the task `make` builds; if it fails, panics or stops before
    /// shutdown, build and run it again after a backoff.
    pub fn restarting<E, F, M>(&mut self, name: &'static str, mut make: M)
    where
        E: std::fmt::Display,
        F: Future<Output = Result<(), E>> + Send + 'static,
        M: FnMut() -> F + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut backoff = BACKOFF_MIN;
            loop {
                let started = Instant::now();
                let failure = attempt(name, make(), &shutdown).await?;
                if started.elapsed() >= BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
                tracing::error!(
                    task = name,
                    kind = failure.kind.as_str(),
                    error = %failure.reason,
                    restart_in_ms = backoff.as_millis() as u64,
                    "task failed; restarting it"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                metrics::counter!("agentops_task_restarts_total", "task" => name).increment(1);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
    }

    /// Wait until every task has ended (after shutdown, or after a critical
    /// failure cancelled it); the first critical failure, if any.
    pub async fn wait(mut self) -> Result<(), TaskFailed> {
        let mut first = None;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Some(failure)) => {
                    first.get_or_insert(failure);
                }
                Ok(None) => {}
                // The supervision futures catch their task's panics; only an
                // abort (the runtime shutting down) lands here.
                Err(e) => tracing::warn!(error = %e, "supervised task aborted"),
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Like [`Supervisor::wait`], running one more critical task on the
    /// caller's task meanwhile (for a future that is not `Send`).
    pub async fn wait_with<E, F>(self, name: &'static str, task: F) -> Result<(), TaskFailed>
    where
        E: std::fmt::Display,
        F: Future<Output = Result<(), E>>,
    {
        let shutdown = self.shutdown.clone();
        let (here, others) = tokio::join!(critical_attempt(name, task, &shutdown), self.wait());
        match (here, others) {
            (_, Err(first)) => Err(first),
            (Some(failure), Ok(())) => Err(failure),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// An attempt of a critical task: a failure is logged and cancels `shutdown`.
async fn critical_attempt<E, F>(
    name: &'static str,
    task: F,
    shutdown: &CancellationToken,
) -> Option<TaskFailed>
where
    E: std::fmt::Display,
    F: Future<Output = Result<(), E>>,
{
    let failure = attempt(name, task, shutdown).await?;
    tracing::error!(
        task = name,
        kind = failure.kind.as_str(),
        error = %failure.reason,
        "critical task failed; stopping the process"
    );
    shutdown.cancel();
    Some(failure)
}

/// Run one attempt of a task; `None` if it ended well (returned after
/// shutdown was asked for), else its failure, logged and counted by the caller.
async fn attempt<E, F>(
    name: &'static str,
    task: F,
    shutdown: &CancellationToken,
) -> Option<TaskFailed>
where
    E: std::fmt::Display,
    F: Future<Output = Result<(), E>>,
{
    let task = async move {
        tokio::select! {
            r = task => r,
            never = test_hook(name) => match never {},
        }
    };
    let (kind, reason) = match AssertUnwindSafe(task).catch_unwind().await {
        Ok(Ok(())) if shutdown.is_cancelled() => {
            tracing::info!(task = name, "task stopped");
            return None;
        }
        Ok(Ok(())) => (FailureKind::Stopped, "returned before shutdown".to_owned()),
        Ok(Err(e)) => (FailureKind::Error, e.to_string()),
        Err(panic) => (FailureKind::Panic, panic_message(&*panic)),
    };
    metrics::counter!("agentops_task_failures_total", "task" => name, "kind" => kind.as_str())
        .increment(1);
    Some(TaskFailed {
        task: name,
        kind,
        reason,
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Never completes, except (debug builds) by panicking the task named in
/// `AGENTOPS_TEST_PANIC_TASK`, once per process.
#[cfg(debug_assertions)]
async fn test_hook(name: &str) -> std::convert::Infallible {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    if std::env::var("AGENTOPS_TEST_PANIC_TASK").is_ok_and(|t| t == name) {
        let after = std::env::var("AGENTOPS_TEST_PANIC_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(after)).await;
        if !FIRED.swap(true, Ordering::SeqCst) {
            panic!("test hook: AGENTOPS_TEST_PANIC_TASK={name}");
        }
    }
    std::future::pending().await
}

#[cfg(not(debug_assertions))]
async fn test_hook(_name: &str) -> std::convert::Infallible {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_critical_failure_drains_the_others_and_is_returned() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::new(shutdown.clone());
        let drained = Arc::new(AtomicUsize::new(0));
        let d = drained.clone();
        let s = shutdown.clone();
        sup.critical("waiter", async move {
            s.cancelled().await;
            d.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        });
        sup.critical("broken", async { Err::<(), _>("boom".to_owned()) });
        let failed = sup.wait().await.expect_err("a critical task failed");
        assert_eq!(failed.task, "broken");
        assert_eq!(failed.kind, FailureKind::Error);
        assert!(shutdown.is_cancelled());
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panic_and_an_early_return_are_failures() {
        let mut sup = Supervisor::new(CancellationToken::new());
        sup.critical("panics", async {
            if true {
                panic!("on purpose");
            }
            Ok::<(), String>(())
        });
        let failed = sup.wait().await.expect_err("panicked");
        assert_eq!((failed.task, failed.kind), ("panics", FailureKind::Panic));
        assert_eq!(failed.reason, "on purpose");

        let mut sup = Supervisor::new(CancellationToken::new());
        sup.critical("quits", async { Ok::<(), String>(()) });
        let failed = sup.wait().await.expect_err("stopped early");
        assert_eq!(failed.kind, FailureKind::Stopped);
    }

    #[tokio::test]
    async fn a_restarting_task_runs_again_and_shutdown_ends_it() {
        // Real time: two backoffs (1 s, 2 s).
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::new(shutdown.clone());
        let runs = Arc::new(AtomicUsize::new(0));
        let (r, s) = (runs.clone(), shutdown.clone());
        sup.restarting("flaky", move || {
            let (r, s) = (r.clone(), s.clone());
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err("not yet");
                }
                s.cancelled().await;
                Ok(())
            }
        });
        let stopper = shutdown.clone();
        let until = runs.clone();
        tokio::spawn(async move {
            while until.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stopper.cancel();
        });
        sup.wait()
            .await
            .expect("a restarting task never takes the process down");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
