//! `peers-report`: turns the `RESULT` lines of a side-by-side run into one table: the median of
//! each figure over the rounds, per server, with its ratio to the bare relay and to
//! matchbox_server when those ran. A ratio is taken within each round (this server's figure over
//! the reference's in the same round, so both saw the same machine) and its median reported.
//! Reads figures; never judges them.

use std::collections::BTreeMap;

/// One server's figures: metric → (round, value) over the rounds.
type Figures = BTreeMap<String, Vec<(u32, f64)>>;

/// Parsed `RESULT` lines: the servers in first-seen order and their figures.
#[derive(Debug, Default)]
pub struct Results {
    servers: Vec<String>,
    figures: BTreeMap<String, Figures>,
    rounds: BTreeMap<String, u32>,
}

impl Results {
    /// Collects every `RESULT\tlabel\tround\tmetric\tvalue` line of `text`, ignoring the rest.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut results = Self::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("RESULT\t") else {
                continue;
            };
            let fields: Vec<&str> = rest.split('\t').collect();
            let [label, round, metric, value] = fields[..] else {
                return Err(format!("malformed result line: {line}"));
            };
            let value: f64 = value
                .parse()
                .map_err(|e| format!("bad value in {line}: {e}"))?;
            let round: u32 = round
                .parse()
                .map_err(|e| format!("bad round in {line}: {e}"))?;
            if !results.servers.iter().any(|s| s == label) {
                results.servers.push(label.to_owned());
            }
            let rounds = results.rounds.entry(label.to_owned()).or_default();
            *rounds = (*rounds).max(round);
            results
                .figures
                .entry(label.to_owned())
                .or_default()
                .entry(metric.to_owned())
                .or_default()
                .push((round, value));
        }
        Ok(results)
    }

    fn values(&self, server: &str, metric: &str) -> &[(u32, f64)] {
        self.figures
            .get(server)
            .and_then(|figures| figures.get(metric))
            .map_or(&[], Vec::as_slice)
    }

    fn median(&self, server: &str, metric: &str) -> Option<f64> {
        median(
            self.values(server, metric)
                .iter()
                .map(|(_, v)| *v)
                .collect(),
        )
    }

    /// The median over rounds of `server`'s figure divided by `reference`'s in the same round.
    fn ratio(&self, server: &str, reference: &str, metric: &str) -> Option<f64> {
        let references = self.values(reference, metric);
        let ratios = self
            .values(server, metric)
            .iter()
            .filter_map(|(round, value)| {
                let (_, of) = references.iter().find(|(r, _)| r == round)?;
                (*of > 0.0).then(|| value / of)
            })
            .collect();
        median(ratios)
    }

    /// The markdown table.
    pub fn table(&self) -> String {
        let mut metrics: Vec<&String> = self
            .figures
            .values()
            .flat_map(|figures| figures.keys())
            .collect();
        metrics.sort_by_key(|metric| row_order(metric));
        metrics.dedup();
        let references: Vec<&str> = ["relay", "matchbox"]
            .into_iter()
            .filter(|r| self.servers.iter().any(|s| s == r))
            .collect();
        let mut out = String::new();
        out.push_str("| |");
        for server in &self.servers {
            let rounds = self.rounds.get(server).copied().unwrap_or(0);
            out.push_str(&format!(" {server} ({rounds} rounds) |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.servers.len()));
        out.push('\n');
        for metric in metrics {
            out.push_str(&format!("| {} |", describe(metric)));
            for server in &self.servers {
                let cell = match self.median(server, metric) {
                    None => "–".to_owned(),
                    Some(value) => {
                        let mut cell = format_value(value);
                        let ratios: Vec<String> = references
                            .iter()
                            .filter(|r| **r != server.as_str())
                            .filter_map(|r| {
                                let ratio = self.ratio(server, r, metric)?;
                                Some(format!("{ratio:.2}x {r}"))
                            })
                            .collect();
                        if !ratios.is_empty() {
                            cell.push_str(&format!(" ({})", ratios.join(", ")));
                        }
                        cell
                    }
                };
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Rows in the order: latency by rate, closed loop, CPU, memory, then anything else.
fn row_order(metric: &str) -> (u8, u64, String) {
    let (name, rate) = match metric.split_once('@') {
        Some((name, rate)) => (name, rate.parse().unwrap_or(u64::MAX)),
        None => (metric, 0),
    };
    let group = match name {
        "p99_ms" => 0,
        "p50_ms" => 1,
        "sent_per_s" => 2,
        "closed_delivered_per_s" => 3,
        "closed_cpu_us_per_signal" => 4,
        "cpu_us_per_signal" => 5,
        "idle_kib_per_connection" => 6,
        _ => 7,
    };
    (group, rate, metric.to_owned())
}

fn describe(metric: &str) -> String {
    let (name, rate) = match metric.split_once('@') {
        Some((name, rate)) => (name, format!(" at {rate} signals/s")),
        None => (metric, String::new()),
    };
    let what = match name {
        "p99_ms" => "one-way p99 (ms)",
        "p50_ms" => "one-way p50 (ms)",
        "sent_per_s" => "signals sent per second",
        "closed_delivered_per_s" => "closed loop, delivered/s",
        "closed_cpu_us_per_signal" => "server CPU per signal, closed loop (µs)",
        "cpu_us_per_signal" => "server CPU per signal (µs)",
        "idle_kib_per_connection" => "server memory per idle connection (KiB)",
        other => other,
    };
    format!("{what}{rate}")
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
rate relay: noise the report ignores
RESULT\trelay\t1\tp99_ms@10000\t0.5
RESULT\tsignalbox\t1\tp99_ms@10000\t1.0
RESULT\trelay\t2\tp99_ms@10000\t0.7
RESULT\tsignalbox\t2\tp99_ms@10000\t1.4
RESULT\trelay\t3\tp99_ms@10000\t0.6
RESULT\tsignalbox\t3\tp99_ms@10000\t9.0
RESULT\tsignalbox\t1\tidle_kib_per_connection\t12.5
";

    #[test]
    fn medians_over_rounds_with_same_round_ratios_to_the_relay() {
        let results = Results::parse(RUN).unwrap_or_default();
        assert_eq!(results.median("signalbox", "p99_ms@10000"), Some(1.4));
        assert_eq!(results.median("relay", "p99_ms@10000"), Some(0.6));
        let table = results.table();
        // Columns in the order the servers first appear.
        assert!(
            table.contains("| | relay (3 rounds) | signalbox (3 rounds) |"),
            "{table}"
        );
        // Ratios per round (2.0, 2.0, 15.0), then their median; not the ratio of the medians.
        assert!(
            table.contains("| one-way p99 (ms) at 10000 signals/s | 0.60 | 1.40 (2.00x relay) |"),
            "{table}"
        );
        assert!(
            table.contains("| server memory per idle connection (KiB) | – | 12.5 |"),
            "{table}"
        );
    }

    #[test]
    fn malformed_result_lines_are_refused() {
        assert!(Results::parse("RESULT\trelay\t1\tp99_ms").is_err());
        assert!(Results::parse("RESULT\trelay\tone\tp99_ms\t1").is_err());
    }
}
