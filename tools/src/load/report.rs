//! Figures shared by every load mode: an ordered list of named values that renders as
//! one flat JSON object, and small formatting and statistics helpers.

use hdrhistogram::Histogram;
use serde_json::{Map, Number, Value};

/// Named figures in insertion order; [`Figures::to_json`] gives one flat JSON object.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    entries: Vec<(String, Value)>,
}

impl Figures {
    /// No figures yet.
    pub fn new() -> Self {
        Figures::default()
    }

    /// Sets a floating-point figure, rounded to 3 decimals; a non-finite value (a ratio
    /// over zero) becomes `null`.
    pub fn float(&mut self, key: impl Into<String>, v: f64) {
        let v = Number::from_f64((v * 1000.0).round() / 1000.0).map_or(Value::Null, Value::Number);
        self.set(key, v);
    }

    /// Sets an integer figure.
    pub fn int(&mut self, key: impl Into<String>, v: u64) {
        self.set(key, Value::from(v));
    }

    /// Sets a boolean figure.
    pub fn flag(&mut self, key: impl Into<String>, v: bool) {
        self.set(key, Value::Bool(v));
    }

    /// Sets a string figure.
    pub fn text(&mut self, key: impl Into<String>, v: impl Into<String>) {
        self.set(key, Value::String(v.into()));
    }

    /// Sets any JSON value, replacing an earlier one with the same key.
    pub fn set(&mut self, key: impl Into<String>, v: Value) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = v,
            None => self.entries.push((key, v)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The figures as one JSON object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.entries {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// Percentiles of a latency histogram recorded in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Largest sample, µs.
    pub max_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Samples recorded (after warm-up).
    pub samples: u64,
}

impl Latency {
    /// Summarizes a histogram of nanoseconds (NaN figures, `null` in JSON, if it is
    /// empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                p50_us: f64::NAN,
                p99_us: f64::NAN,
                max_us: f64::NAN,
                mean_us: f64::NAN,
                samples: 0,
            };
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1000.0,
            samples: h.len(),
        }
    }
}

/// `a / b`, or NaN (rendered `null` in JSON, `-` in tables) when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// A number for a table: `-` for NaN, otherwise with `decimals` decimals.
pub fn cell(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

/// A rate for a table, with thousands separators (`1 234 567`).
pub fn rate_cell(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_flat_json() {
        let mut f = Figures::new();
        f.float("a", 1.23456);
        f.int("b", 7);
        f.float("c", f64::NAN);
        f.flag("d", true);
        f.float("a", 2.0);
        let j = f.to_json();
        assert_eq!(j["a"], 2.0);
        assert_eq!(j["b"], 7);
        assert!(j["c"].is_null());
        assert_eq!(j["d"], true);
        assert_eq!(j.as_object().unwrap().len(), 4);
    }

    #[test]
    fn cells() {
        assert_eq!(rate_cell(1234567.4), "1 234 567");
        assert_eq!(rate_cell(999.0), "999");
        assert_eq!(cell(f64::NAN, 2), "-");
        assert_eq!(cell(1.005, 1), "1.0");
        assert!(ratio(1.0, 0.0).is_nan());
    }
}
