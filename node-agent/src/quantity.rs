//! Kubernetes resource quantities ("500m", "1.5", "128Mi", "1e3") as numbers.

/// A quantity string that is not a valid quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse quantity {0:?}")]
pub struct Error(pub String);

const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ei", 1_152_921_504_606_846_976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// The value of a quantity in base units.
pub fn parse(s: &str) -> Result<f64, Error> {
    let s = s.trim();
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| s.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((s, 1.0));
    let valid = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'));
    let value: f64 = if valid { number.parse().map_err(|_| Error(s.to_string()))? } else { return Err(Error(s.to_string())) };
    if !value.is_finite() || value < 0.0 {
        return Err(Error(s.to_string()));
    }
    Ok(value * factor)
}

/// The quantity in thousandths, rounded up (CPU millicores).
pub fn milli(s: &str) -> Result<i64, Error> {
    parse(s).map(|v| (v * 1000.0).ceil() as i64)
}

/// The quantity in whole units, rounded up (bytes).
pub fn whole(s: &str) -> Result<i64, Error> {
    parse(s).map(|v| v.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        struct Case {
            input: &'static str,
            milli: Option<i64>,
        }
        for case in [
            Case { input: "500m", milli: Some(500) },
            Case { input: "2", milli: Some(2000) },
            Case { input: "0.25", milli: Some(250) },
            Case { input: "1Ki", milli: Some(1_024_000) },
            Case { input: "1e3", milli: Some(1_000_000) },
            Case { input: "128Mi", milli: Some(134_217_728_000) },
            Case { input: "abc", milli: None },
            Case { input: "", milli: None },
            Case { input: "-1", milli: None },
        ] {
            assert_eq!(milli(case.input).ok(), case.milli, "{}", case.input);
        }
    }
}
