//! Collected samples, and the Markdown report: medians, ratios and the targets.
//!
//! A figure is a named quantity one scenario run produces for one watcher; every repetition adds
//! one sample. The table shows medians; ratios are fsbridge's median over the reference's.
//! Targets stated "in every repetition" are judged on every sample, the others on the median.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::watcher::Watcher;

/// Converts a count to a float for arithmetic on figures.
pub(crate) fn to_f64(value: impl TryInto<u64>) -> f64 {
    let value = value.try_into().unwrap_or(u64::MAX);
    #[expect(
        clippy::cast_precision_loss,
        reason = "counts, ticks and kibibytes stay far below 2^52"
    )]
    let value = value as f64;
    value
}

/// Every sample of every figure, by figure and by who produced it.
#[derive(Debug, Default)]
pub(crate) struct Results {
    samples: BTreeMap<(&'static str, &'static str), Vec<f64>>,
    notes: Vec<String>,
}

impl Results {
    /// Adds one sample of `figure` for `who` (a watcher's name, or `find`).
    pub(crate) fn add(&mut self, figure: &'static str, who: &'static str, value: f64) {
        self.samples.entry((figure, who)).or_default().push(value);
    }

    /// Adds a line to the notes below the table (failures, surprises).
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn values(&self, figure: &'static str, who: &'static str) -> &[f64] {
        self.samples
            .get(&(figure, who))
            .map_or(&[], |values| values.as_slice())
    }

    fn median(&self, figure: &'static str, who: &'static str) -> Option<f64> {
        median(self.values(figure, who))
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        length if length % 2 == 1 => Some(sorted[middle]),
        _ => Some(f64::midpoint(sorted[middle - 1], sorted[middle])),
    }
}

/// The nearest-rank percentile `percent` of `values`.
pub(crate) fn percentile(values: &[f64], percent: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (percent / 100.0 * to_f64(sorted.len())).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rank is a small, non-negative whole number"
    )]
    let index = (rank as usize).saturating_sub(1);
    sorted
        .get(index.min(sorted.len().saturating_sub(1)))
        .copied()
}

/// What fsbridge's figure must satisfy, as the issue states it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// Every sample equals the value.
    Every(f64),
    /// The median is at most the value.
    AtMost(f64),
    /// The median over the reference's median is at most the value.
    RatioAtMost(Watcher, f64),
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) figure: &'static str,
    pub(crate) label: String,
    /// Whose figure fills the fsbridge column.
    pub(crate) subject: Watcher,
    pub(crate) decimals: usize,
    pub(crate) target: Option<(String, Target)>,
}

/// The reference columns of the table.
const REFERENCES: [Watcher; 2] = [Watcher::Inotifywait, Watcher::NotifyRaw];

/// Renders the table of medians and ratios, the notes and every sample, as Markdown.
pub(crate) fn render(results: &Results, rows: &[Row], reps: usize) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| figure | fsbridge | inotifywait | notify-raw | ÷ inotifywait | ÷ notify-raw | target | verdict |"
    );
    let _ = writeln!(text, "|---|--:|--:|--:|--:|--:|---|---|");
    for row in rows {
        let subject = row.subject.name();
        let mine = results.median(row.figure, subject);
        let format = |value: Option<f64>| {
            value.map_or_else(|| "—".into(), |value| format!("{value:.*}", row.decimals))
        };
        let mut cells = vec![row.label.clone(), format(mine)];
        for reference in REFERENCES {
            cells.push(format(results.median(row.figure, reference.name())));
        }
        for reference in REFERENCES {
            // A reference that shows as zero at the row's precision makes no useful divisor.
            let shown = results
                .median(row.figure, reference.name())
                .filter(|value| format!("{value:.*}", row.decimals).parse::<f64>() != Ok(0.0));
            cells.push(
                ratio(mine, shown).map_or_else(|| "—".into(), |ratio| format!("{ratio:.2}×")),
            );
        }
        let (target_text, verdict) = match &row.target {
            Some((target_text, target)) => (
                target_text.clone(),
                verdict(results, row, *target).unwrap_or_else(|| "—".into()),
            ),
            None => (String::new(), String::new()),
        };
        cells.push(target_text);
        cells.push(verdict);
        let _ = writeln!(text, "| {} |", cells.join(" | "));
    }

    if let Some(find) = results.median("startup_ready", "find") {
        let _ = writeln!(
            text,
            "\nFloor for a full scan: `find ROOT -printf '%s\\n'` over the startup tree took \
             {find:.3} s (median); fsbridge's time to ready is {} that.",
            ratio(
                results.median("startup_ready", Watcher::Fsbridge.name()),
                Some(find)
            )
            .map_or_else(|| "—".into(), |ratio| format!("{ratio:.2}×"))
        );
    }
    if !results.notes.is_empty() {
        let _ = writeln!(text, "\nNotes:\n");
        for note in &results.notes {
            let _ = writeln!(text, "- {note}");
        }
    }

    let _ = writeln!(
        text,
        "\nAll samples ({reps} repetition(s), in run order):\n"
    );
    let _ = writeln!(text, "| figure | who | samples |");
    let _ = writeln!(text, "|---|---|---|");
    for ((figure, who), values) in &results.samples {
        let values: Vec<String> = values.iter().map(|value| format!("{value:.4}")).collect();
        let _ = writeln!(text, "| {figure} | {who} | {} |", values.join(", "));
    }
    text
}

fn ratio(mine: Option<f64>, reference: Option<f64>) -> Option<f64> {
    match (mine, reference) {
        (Some(mine), Some(reference)) if reference > 0.0 => Some(mine / reference),
        _ => None,
    }
}

/// "met" or "missed (…)" for `row`, or `None` when there are no samples to judge.
fn verdict(results: &Results, row: &Row, target: Target) -> Option<String> {
    let subject = row.subject.name();
    let values = results.values(row.figure, subject);
    let mine = median(values)?;
    let (met, detail) = match target {
        Target::Every(expected) => {
            let worst = values
                .iter()
                .copied()
                .max_by(|left, right| (left - expected).abs().total_cmp(&(right - expected).abs()))
                .unwrap_or(mine);
            (
                values.iter().all(|value| (value - expected).abs() < 1e-9),
                format!("worst {worst:.*}", row.decimals),
            )
        }
        Target::AtMost(limit) => (mine <= limit, format!("{mine:.*}", row.decimals)),
        Target::RatioAtMost(reference, limit) => {
            let ratio = ratio(Some(mine), results.median(row.figure, reference.name()))?;
            (ratio <= limit, format!("{ratio:.3}× vs ≤ {limit}×"))
        }
    };
    Some(if met {
        "met".into()
    } else {
        format!("**missed** ({detail})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();

        assert_eq!(percentile(&values, 50.0), Some(100.0));
        assert_eq!(percentile(&values, 99.0), Some(198.0));
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
    }
}
