//! The Prometheus text exposition format (version 0.0.4), written by hand: `# HELP` and
//! `# TYPE` lines, one sample per line, label values escaped, histograms as cumulative
//! `_bucket{le="…"}` lines ending at `+Inf`, then `_sum` and `_count`. The format is small
//! enough that a client crate would only add size to the kiosk binary.

use std::fmt::Write;

/// The `Content-Type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A histogram's figures: per-bucket counts (not cumulative) for the bounds it was made
/// with, their sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts `v` in the first bucket whose bound is ≥ `v` (none: only in `+Inf`).
    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// A sample's value.
pub trait Value {
    fn write_to(&self, out: &mut String);
}

impl Value for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for i64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            // Rust prints floats without exponent and integral ones without ".0": both parse.
            let _ = write!(out, "{self}");
        }
    }
}

impl Value for bool {
    fn write_to(&self, out: &mut String) {
        out.push(if *self { '1' } else { '0' });
    }
}

/// Builds one scrape's text.
#[derive(Debug, Default)]
pub struct Encoder {
    out: String,
}

impl Encoder {
    pub fn with_capacity(n: usize) -> Encoder {
        Encoder {
            out: String::with_capacity(n),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// A family with one sample and no label.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Value) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The lines of one histogram series (its family started with [`Kind::Histogram`]).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        let mut le = String::new();
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            le.clear();
            bound.write_to(&mut le);
            self.bucket(name, labels, &le, cumulative);
        }
        self.bucket(name, labels, "+Inf", h.count);
        self.suffixed(name, "_sum", labels, h.sum);
        self.suffixed(name, "_count", labels, h.count);
    }

    fn bucket(&mut self, name: &str, labels: &[(&str, &str)], le: &str, n: u64) {
        self.out.push_str(name);
        self.out.push_str("_bucket");
        self.labels(labels, Some(le));
        self.out.push(' ');
        n.write_to(&mut self.out);
        self.out.push('\n');
    }

    fn suffixed(&mut self, name: &str, suffix: &str, labels: &[(&str, &str)], v: impl Value) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.labels(labels, None);
        self.out.push(' ');
        v.write_to(&mut self.out);
        self.out.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let le = le.map(|v| ("le", v));
        for (i, (k, v)) in labels.iter().copied().chain(le).enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_value(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value inside double quotes: backslash, double quote and line feed escaped.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Encoder::default();
        e.family("m_total", Kind::Counter, "a \\ b\nc \"q\"");
        e.sample("m_total", &[("route", "a\"b\\c\nd"), ("x", "")], 3u64);
        assert_eq!(
            e.finish(),
            "# HELP m_total a \\\\ b\\nc \"q\"\n# TYPE m_total counter\n\
             m_total{route=\"a\\\"b\\\\c\\nd\",x=\"\"} 3\n"
        );
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        let mut e = Encoder::default();
        for v in [0.25, 1.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-7] {
            e.sample("g", &[], v);
        }
        e.sample("g", &[], true);
        e.sample("g", &[], -4i64);
        assert_eq!(
            e.finish(),
            "g 0.25\ng 1\ng +Inf\ng -Inf\ng NaN\ng 0.0000001\ng 1\ng -4\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        static BOUNDS: [f64; 3] = [0.125, 0.5, 1.0];
        let mut h = Histogram::new(&BOUNDS);
        // Binary fractions, so the sum is exact.
        for v in [0.0625, 0.125, 0.25, 0.75, 2.0] {
            h.observe(v);
        }
        // 0.125 is in the 0.125 bucket (le is "less than or equal").
        assert_eq!(h.counts, [2, 1, 1]);
        let mut e = Encoder::default();
        e.family("d_seconds", Kind::Histogram, "d");
        e.histogram("d_seconds", &[("route", "/x")], &h);
        let text = e.finish();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "d_seconds_bucket{route=\"/x\",le=\"0.125\"} 2",
                "d_seconds_bucket{route=\"/x\",le=\"0.5\"} 3",
                "d_seconds_bucket{route=\"/x\",le=\"1\"} 4",
                "d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5",
                "d_seconds_sum{route=\"/x\"} 3.1875",
                "d_seconds_count{route=\"/x\"} 5",
            ]
        );
    }

    #[test]
    fn an_empty_histogram_without_labels() {
        static BOUNDS: [f64; 1] = [1.0];
        let mut e = Encoder::default();
        e.histogram("h", &[], &Histogram::new(&BOUNDS));
        assert_eq!(
            e.finish(),
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }
}
