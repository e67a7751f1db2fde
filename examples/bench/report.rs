//! The report: a table, `name=value` lines, targets; figures over rounds.

use super::*;

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<(String, String, String)>,
    pub(crate) values: Vec<(String, String)>,
    pub(crate) failures: Vec<String>,
    /// Put before every workload's label and value name while set (W7's
    /// rerun of W1-W4 reports as "W7 W1", `w7_w1_...`).
    pub(crate) prefix: String,
}

impl Report {
    pub(crate) fn row(&mut self, workload: &str, figure: String, note: String) {
        let workload = format!("{}{workload}", self.prefix);
        println!("{workload:<34} {figure:<34} {note}");
        self.rows.push((workload, figure, note));
    }

    pub(crate) fn value(&mut self, name: &str, value: f64) {
        let prefix = self.prefix.trim().to_lowercase().replace(' ', "_");
        let name = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}_{name}")
        };
        self.values.push((name, format!("{value:.3}")));
    }

    /// Records a target and whether it was met.
    pub(crate) fn target(&mut self, name: &str, ok: bool, text: String) {
        self.value(&format!("{name}_met"), if ok { 1.0 } else { 0.0 });
        if !ok {
            self.failures.push(format!("{}{text}", self.prefix));
        }
    }
}

pub(crate) fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// The median of `rounds` timings.
pub(crate) fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// Peak and CPU over several rounds: the highest peak, the mean CPU.
pub(crate) fn combined(usages: &[Usage]) -> Usage {
    Usage {
        cpu: usages.iter().map(|u| u.cpu).sum::<f64>() / usages.len().max(1) as f64,
        peak: usages.iter().map(|u| u.peak).fold(0.0, f64::max),
    }
}
