//! The cluster under test: `scripts/cluster up` started from a case, `scripts/cluster down` when
//! the [`Cluster`] is dropped (also when the case panics), node and service faults through the
//! same script, and waiting for conditions with generous deadlines (never timed assertions).
//! Owns no server code: it drives real processes only. Never touches another case's state: each
//! `up` makes a fresh database and key prefix.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a case waits for a condition before failing (generous: 2 shared cores).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The repository root (where `scripts/` lives).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How the nodes share state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cluster.mode: "redis"`: the backplane (issue 13's glue).
    Redis,
    /// Standalone hubs on the shared PostgreSQL directory (what is independent of the backplane).
    Standalone,
}

/// `None` (after printing why) when redis-server or PostgreSQL is missing; panics under
/// `CI=true`, where `scripts/test` must have installed both.
pub fn available(test: &str) -> Option<()> {
    let redis = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().any(|d| d.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    let missing: Vec<&str> = [(!redis, "redis-server"), (!postgres, "postgresql")]
        .into_iter()
        .filter_map(|(absent, name)| absent.then_some(name))
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    let reason = format!(
        "{} not installed (scripts/cluster up installs them as root)",
        missing.join(" and ")
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: the cluster suite cannot be skipped in CI: {reason}"
    );
    println!("SKIPPED {test}: {reason}");
    None
}

/// Runs `scripts/cluster ARGS`, panicking with its stderr on failure; returns its stdout.
pub fn script(args: &[&str]) -> String {
    let output = Command::new(repo().join("scripts/cluster"))
        .args(args)
        .env("SIGNALBOX_BINARY", env!("CARGO_BIN_EXE_signalbox"))
        .output()
        .expect("run scripts/cluster");
    assert!(
        output.status.success(),
        "scripts/cluster {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A running cluster; `scripts/cluster down` on drop.
pub struct Cluster {
    pub nodes: Vec<SocketAddr>,
    pub key_prefix: String,
    pub postgres_url: String,
}

impl Cluster {
    /// `scripts/cluster up --nodes n --mode mode` (a `down` first clears what a crashed run left).
    pub fn up(n: usize, mode: Mode) -> Self {
        Self::up_with(n, mode, "{}")
    }

    /// [`Cluster::up`] with `variables` (a JSON object) merged into every node's variables file.
    pub fn up_with(n: usize, mode: Mode, variables: &str) -> Self {
        let _ = Command::new(repo().join("scripts/cluster"))
            .arg("down")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mode = match mode {
            Mode::Redis => "redis",
            Mode::Standalone => "standalone",
        };
        script(&[
            "up",
            "--nodes",
            &n.to_string(),
            "--mode",
            mode,
            "--variables",
            variables,
        ]);
        Self::from_env()
    }

    fn from_env() -> Self {
        let env = script(&["env"]);
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing from scripts/cluster env: {env}"))
                .to_owned()
        };
        Self {
            nodes: var("SIGNALBOX_CLUSTER_NODES")
                .split(',')
                .map(|a| a.parse().expect("node address"))
                .collect(),
            key_prefix: var("SIGNALBOX_CLUSTER_KEY_PREFIX"),
            postgres_url: var("SIGNALBOX_TEST_POSTGRES_URL"),
        }
    }

    /// The recorded pid of node `i` (1-based, as `scripts/cluster node ... I`).
    pub fn pid(&self, i: usize) -> u32 {
        let env = script(&["env"]);
        let pids = env
            .lines()
            .find_map(|l| l.strip_prefix("SIGNALBOX_CLUSTER_PIDS="))
            .expect("pids");
        pids.split(',')
            .nth(i - 1)
            .expect("node")
            .parse()
            .expect("pid")
    }

    /// The address of node `i` (1-based).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i - 1]
    }

    /// `scripts/cluster node ACTION I` (kill, stop, cont, start).
    pub fn node(&self, action: &str, i: usize) {
        script(&["node", action, &i.to_string()]);
    }

    /// `scripts/cluster redis cli ARGS` output.
    pub fn redis(&self, args: &[&str]) -> String {
        let mut all = vec!["redis", "cli"];
        all.extend_from_slice(args);
        script(&all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // No assertion: a panic while unwinding would abort the test binary.
        let _ = Command::new(repo().join("scripts/cluster"))
            .arg("down")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `check` until it answers `Some`, failing with `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {DEADLINE:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
