//! The harness end to end against a real server: `bench-relay` on 127.0.0.1 port 0, driven by
//! `signalbox-loadgen peers --protocol relay` through every workload. Proves the relay adapter,
//! the signal checks and the RESULT lines the report reads; asserts on no figure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The relay, killed when dropped.
struct Relay {
    child: Child,
    addr: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay() -> Relay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-relay"))
        .arg("127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bench-relay starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("bench-relay prints its address");
    let addr = line
        .trim()
        .strip_prefix("bench-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    Relay { child, addr }
}

/// Runs one workload; returns its stdout, failing the test when the run fails.
fn workload(relay: &Relay, args: &[&str]) -> String {
    let pid = relay.child.id().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox-loadgen"))
        .args(["peers", "--protocol", "relay", "--addr", &relay.addr])
        .args(["--server-pid", &pid, "--round", "2"])
        .args(args)
        .output()
        .expect("the load generator runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn result_metrics(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("RESULT\trelay\t2\t"))
        .filter_map(|rest| rest.split('\t').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_workload_delivers_every_signal_through_the_relay_and_reports_its_figures() {
    let relay = start_relay();

    let rate = workload(
        &relay,
        &[
            "rate",
            "--pairs",
            "4",
            "--rate",
            "400",
            "--duration-secs",
            "1",
        ],
    );
    assert!(rate.contains("delivered"), "{rate}");
    let metrics = result_metrics(&rate);
    for metric in [
        "p50_ms@400",
        "p99_ms@400",
        "sent_per_s@400",
        "cpu_us_per_signal@400",
    ] {
        assert!(
            metrics.iter().any(|m| m == metric),
            "{metric} missing: {rate}"
        );
    }

    let closed = workload(
        &relay,
        &[
            "closed",
            "--pairs",
            "4",
            "--in-flight",
            "2",
            "--duration-secs",
            "1",
        ],
    );
    let metrics = result_metrics(&closed);
    assert!(
        metrics.iter().any(|m| m == "closed_delivered_per_s"),
        "{closed}"
    );

    let idle = workload(&relay, &["idle", "--count", "20", "--hold-secs", "0"]);
    let metrics = result_metrics(&idle);
    assert_eq!(metrics, ["idle_kib_per_connection"], "{idle}");
}

#[test]
fn the_report_reads_the_result_lines_of_a_run() {
    let dir = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("results.tsv");
    std::fs::write(
        &file,
        "RESULT\tmatchbox\t1\tclosed_delivered_per_s\t100000\nRESULT\tsignalbox\t1\tclosed_delivered_per_s\t120000\n",
    )
    .expect("results written");
    let output = Command::new(env!("CARGO_BIN_EXE_signalbox-loadgen"))
        .arg("peers-report")
        .arg(&file)
        .output()
        .expect("the report runs");
    let _ = std::fs::remove_dir_all(&dir);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(
        table.contains("| closed loop, delivered/s | 100000 | 120000 (1.20x matchbox) |"),
        "{table}"
    );
}
