//! Link impairments, labwire's own extension of the link schema: the `impairments` field of a link
//! (delay, jitter, loss, corruption, duplication, reorder, rate), for the whole link or per
//! endpoint, and the same values as `labwire tools netem set` takes them.
//!
//! Owns the [`Impairment`] type, its units and limits, and the text forms (`100ms`, `20%`,
//! `1Mbit`). It says nothing about how they are applied (tc netem/tbf, in the node or the guest).

use serde::{Deserialize, Serialize};

use crate::diag::{did_you_mean, Diagnostics};
use crate::read;
use crate::yaml::{Kind, Value};

/// The parameters `impairments` takes, in the order they are documented.
pub const KEYS: [&str; 7] = [
    "delay",
    "jitter",
    "loss",
    "corruption",
    "duplication",
    "reorder",
    "rate",
];

/// What an endpoint does to the frames it sends (its egress), as tc netem and tbf do it. Every
/// field absent is no impairment. Percentages are 0–100; times are microseconds; rate is kbit/s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impairment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplication: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<u64>,
}

// Percentages are parsed from text and checked to be within 0–100: never NaN.
impl Eq for Impairment {}

/// The longest delay or jitter accepted (one minute), in microseconds.
pub const MAX_TIME_US: u64 = 60_000_000;
/// The highest rate accepted (1 Tbit/s), in kbit/s.
pub const MAX_RATE_KBIT: u64 = 1_000_000_000;

impl Impairment {
    /// No impairment at all.
    pub fn is_none(&self) -> bool {
        *self == Impairment::default()
    }

    /// Whether it needs the netem qdisc (everything but rate).
    pub fn needs_netem(&self) -> bool {
        self.delay_us.is_some()
            || self.jitter_us.is_some()
            || self.loss.is_some()
            || self.corruption.is_some()
            || self.duplication.is_some()
            || self.reorder.is_some()
    }

    /// `self` with the fields `over` sets replaced.
    pub fn merged(&self, over: &Impairment) -> Impairment {
        Impairment {
            delay_us: over.delay_us.or(self.delay_us),
            jitter_us: over.jitter_us.or(self.jitter_us),
            loss: over.loss.or(self.loss),
            corruption: over.corruption.or(self.corruption),
            duplication: over.duplication.or(self.duplication),
            reorder: over.reorder.or(self.reorder),
            rate_kbit: over.rate_kbit.or(self.rate_kbit),
        }
    }

    /// What makes no sense together, or `None`.
    pub fn problem(&self) -> Option<&'static str> {
        if self.jitter_us.is_some() && self.delay_us.is_none() {
            return Some("jitter needs a delay to vary");
        }
        if self.reorder.is_some() && self.delay_us.is_none() {
            return Some("reorder needs a delay (reordered packets are the ones sent without it)");
        }
        if let (Some(j), Some(d)) = (self.jitter_us, self.delay_us) {
            if j > d {
                return Some("jitter is larger than the delay it varies");
            }
        }
        None
    }

    /// The fields set, as the topology writes them (`delay=100ms loss=20%`), for messages and
    /// `tools netem show`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.delay_us {
            parts.push(format!("delay={}", format_time(d)));
        }
        if let Some(j) = self.jitter_us {
            parts.push(format!("jitter={}", format_time(j)));
        }
        for (k, v) in [
            ("loss", self.loss),
            ("corruption", self.corruption),
            ("duplication", self.duplication),
            ("reorder", self.reorder),
        ] {
            if let Some(p) = v {
                parts.push(format!("{k}={p}%"));
            }
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate={}", format_rate(r)));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    }

    /// Set one parameter from its text form; the error says what is accepted.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        match key {
            "delay" => self.delay_us = Some(parse_time(text)?),
            "jitter" => self.jitter_us = Some(parse_time(text)?),
            "loss" => self.loss = Some(parse_percent(text)?),
            "corruption" => self.corruption = Some(parse_percent(text)?),
            "duplication" => self.duplication = Some(parse_percent(text)?),
            "reorder" => self.reorder = Some(parse_percent(text)?),
            "rate" => self.rate_kbit = Some(parse_rate(text)?),
            _ => return Err(format!("accepted: {}", KEYS.join(", "))),
        }
        Ok(())
    }
}

/// A time: a number with `us`, `ms` or `s` (a bare number is milliseconds), up to one minute.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let accepted =
        "a time such as `100ms`, `1.5s` or `500us` (a bare number is milliseconds), up to 60s";
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| accepted.to_string())?;
    let scale = match unit.trim() {
        "us" | "µs" => 1.0,
        "" | "ms" => 1e3,
        "s" => 1e6,
        _ => return Err(accepted.to_string()),
    };
    let us = (n * scale).round();
    if !(0.0..=MAX_TIME_US as f64).contains(&us) {
        return Err(accepted.to_string());
    }
    Ok(us as u64)
}

/// A percentage: `20%` or `20` (0–100, fractions allowed).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let accepted = "a percentage from 0 to 100, such as `20%`, `0.5%` or `20`";
    let t = text.trim();
    let n: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| accepted.to_string())?;
    if !(0.0..=100.0).contains(&n) {
        return Err(accepted.to_string());
    }
    Ok(n)
}

/// A rate: a number with `kbit`, `mbit`, `gbit` (or `k`, `M`, `G`, `kbps`, `Mbps`, `Gbps`,
/// `kbit/s`, …; any case); a bare number is kbit/s as containerlab's `--rate` takes it.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let accepted = "a rate such as `1Mbit`, `500kbit`, `10M` or `1G` (a bare number is kbit/s), from 8kbit to 1Tbit";
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| accepted.to_string())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("ps"))
        .unwrap_or(&unit);
    let unit = unit.strip_suffix("bit").unwrap_or(unit);
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let scale = match unit {
        "" | "k" => 1.0,
        "m" => 1e3,
        "g" => 1e6,
        _ => return Err(accepted.to_string()),
    };
    let kbit = (n * scale).round();
    if !(8.0..=MAX_RATE_KBIT as f64).contains(&kbit) {
        return Err(accepted.to_string());
    }
    Ok(kbit as u64)
}

/// `100ms`, `1.5s`, `250us`.
pub fn format_time(us: u64) -> String {
    if us >= 1_000_000 && us.is_multiple_of(1000) {
        format!("{}s", us as f64 / 1e6)
    } else if us >= 1000 {
        format!("{}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

/// `1Mbit`, `500kbit`, `2.5Gbit`.
pub fn format_rate(kbit: u64) -> String {
    if kbit >= 1_000_000 {
        format!("{}Gbit", kbit as f64 / 1e6)
    } else if kbit >= 1000 {
        format!("{}Mbit", kbit as f64 / 1e3)
    } else {
        format!("{kbit}kbit")
    }
}

/// Set parameter `k` of `imp` from the text `val` of `what`, reporting a value it does not accept.
fn set_from(imp: &mut Impairment, k: &str, val: &Value, what: &str, d: &mut Diagnostics) {
    let Some(text) = read::string(val, &format!("`{k}` of {what}"), d) else {
        return;
    };
    if let Err(accepted) = imp.set(k, &text) {
        d.error(
            Some(val.span),
            format!("{k} `{text}` of {what} is not valid"),
        )
        .help(accepted);
    }
}

/// Read a mapping of impairment parameters (`what` names it in messages).
pub fn read_params(v: &Value, what: &str, d: &mut Diagnostics) -> Option<Impairment> {
    let m = read::map(v, what, &KEYS, d)?;
    let mut imp = Impairment::default();
    for (k, _, val) in &m.entries {
        if !val.is_null() {
            set_from(&mut imp, k, val, what, d);
        }
    }
    if let Some(p) = imp.problem() {
        d.error(Some(v.span), format!("{what}: {p}"));
    }
    Some(imp)
}

/// A link's `impairments`: parameters for every endpoint, and entries keyed by one endpoint
/// (`node:interface` as the link writes it) for that endpoint alone, which override the shared
/// ones. Returns the impairment of each of `endpoints`, in order.
pub fn read_link(v: &Value, endpoints: &[String], d: &mut Diagnostics) -> Vec<Impairment> {
    let mut shared = Impairment::default();
    let mut own = vec![Impairment::default(); endpoints.len()];
    let Some(entries) = read::entries(v, "link impairments", d) else {
        return own;
    };
    let mut shared_keys = Vec::new();
    for (k, span, val) in entries {
        if KEYS.contains(&k) {
            shared_keys.push((k, span, val));
            continue;
        }
        match endpoints.iter().position(|e| e == k) {
            Some(i) => {
                if matches!(val.kind, Kind::Map(_)) || val.is_null() {
                    if let Some(imp) = read_params(val, &format!("impairments of {k}"), d) {
                        own[i] = imp;
                    }
                } else {
                    d.error(
                        Some(val.span),
                        format!(
                            "impairments of {k} must be a mapping, not {}",
                            val.describe()
                        ),
                    )
                    .help("e.g. `\"r1:eth1\": {delay: 50ms, loss: 1%}`");
                }
            }
            None => {
                let e = d.error(Some(span), format!("unknown key `{k}` in link impairments"));
                let names = KEYS
                    .iter()
                    .copied()
                    .chain(endpoints.iter().map(String::as_str));
                match did_you_mean(k, names) {
                    Some(s) => e.help(format!("did you mean `{s}`?")),
                    None => e.help(format!(
                        "accepted: {}, or one of this link's endpoints ({}) mapped to its own parameters",
                        KEYS.join(", "),
                        endpoints.join(", ")
                    )),
                };
            }
        }
    }
    for (k, _, val) in shared_keys {
        set_from(&mut shared, k, val, "link impairments", d);
    }
    let out: Vec<Impairment> = own.iter().map(|o| shared.merged(o)).collect();
    for (i, imp) in out.iter().enumerate() {
        if let Some(p) = imp.problem() {
            d.error(
                Some(v.span),
                format!("impairments of {}: {p}", endpoints[i]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_time("100ms"), Ok(100_000));
        assert_eq!(parse_time("1.5s"), Ok(1_500_000));
        assert_eq!(parse_time("250us"), Ok(250));
        assert_eq!(parse_time("20"), Ok(20_000));
        assert!(parse_time("2m").is_err());
        assert!(parse_time("-1ms").is_err());
        assert_eq!(parse_percent("20%"), Ok(20.0));
        assert_eq!(parse_percent("0.5"), Ok(0.5));
        assert!(parse_percent("101%").is_err());
        assert_eq!(parse_rate("1Mbit"), Ok(1000));
        assert_eq!(parse_rate("1mbps"), Ok(1000));
        assert_eq!(parse_rate("500kbit/s"), Ok(500));
        assert_eq!(parse_rate("2G"), Ok(2_000_000));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_rate("1Tbit").is_err());
        assert!(parse_rate("4").is_err());
        assert_eq!(format_time(100_000), "100ms");
        assert_eq!(format_time(2_000_000), "2s");
        assert_eq!(format_rate(1000), "1Mbit");
    }

    #[test]
    fn describe_and_merge() {
        let mut a = Impairment::default();
        a.set("delay", "100ms").unwrap();
        a.set("loss", "20%").unwrap();
        let mut b = Impairment::default();
        b.set("rate", "1M").unwrap();
        b.set("loss", "1").unwrap();
        let m = a.merged(&b);
        assert_eq!(m.describe(), "delay=100ms loss=1% rate=1Mbit");
        assert!(m.needs_netem());
        let mut r = Impairment::default();
        r.set("rate", "1M").unwrap();
        assert!(!r.needs_netem());
        assert_eq!(Impairment::default().describe(), "none");
        let mut j = Impairment::default();
        j.set("jitter", "5ms").unwrap();
        assert!(j.problem().is_some());
    }
}
