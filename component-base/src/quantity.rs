//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as exact integers: CPU in millicores and
//! everything else in base units, both rounded up like upstream's `MilliValue()` / `Value()`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Failures parsing a quantity string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The text is not a quantity at all.
    #[error("failed to parse quantity {0:?}: not a number with an optional SI, binary or exponent suffix")]
    Syntax(String),
    /// The quantity does not fit in 64 bits at the requested scale.
    #[error("failed to parse quantity {0:?}: value out of range")]
    Overflow(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parsed quantity: `mantissa × 10^exponent × 2^binary_shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    mantissa: i128,
    exponent: i32,
    binary_shift: u32,
}

/// The value in base units (bytes, pods, devices), rounded up.
pub fn value(q: &Quantity) -> Result<i64> {
    parse_value(&q.0)
}

/// The value in thousandths (millicores for CPU), rounded up.
pub fn milli_value(q: &Quantity) -> Result<i64> {
    parse_milli_value(&q.0)
}

/// [`value`] of quantity text, as found in flags and annotations.
pub fn parse_value(text: &str) -> Result<i64> {
    scaled(text.trim(), 0)
}

/// [`milli_value`] of quantity text.
pub fn parse_milli_value(text: &str) -> Result<i64> {
    scaled(text.trim(), 3)
}

fn scaled(text: &str, extra_exponent: i32) -> Result<i64> {
    let p = parse(text)?;
    let overflow = || Error::Overflow(text.to_string());
    let mut m = p
        .mantissa
        .checked_mul(1_i128.checked_shl(p.binary_shift).ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    let e = p.exponent + extra_exponent;
    if e >= 0 {
        for _ in 0..e {
            m = m.checked_mul(10).ok_or_else(overflow)?;
        }
    } else if -e > 38 {
        // Far smaller than one unit: rounds up to 1 if positive, 0 otherwise.
        m = i128::from(m > 0);
    } else {
        let divisor = 10_i128.pow(e.unsigned_abs());
        let q = m.div_euclid(divisor);
        m = if m.rem_euclid(divisor) == 0 { q } else { q + 1 };
    }
    i64::try_from(m).map_err(|_| overflow())
}

fn parse(text: &str) -> Result<Parsed> {
    let syntax = || Error::Syntax(text.to_string());
    let s = text.trim();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(syntax());
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = 0;
    for d in digits.bytes() {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(d - b'0')))
            .ok_or_else(|| Error::Overflow(text.to_string()))?;
    }
    if negative {
        mantissa = -mantissa;
    }
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| syntax())?;
    let (exponent, binary_shift) = suffix_scale(suffix).ok_or_else(syntax)?;
    Ok(Parsed { mantissa, exponent: exponent - frac_digits, binary_shift })
}

/// `(decimal exponent, binary shift)` for a suffix.
fn suffix_scale(suffix: &str) -> Option<(i32, u32)> {
    let scale = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exp = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E'))?;
            let exp: i32 = exp.parse().ok()?;
            if exp.abs() > 100 {
                return None;
            }
            (exp, 0)
        }
    };
    Some(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn milli_values() {
        let cases = [
            ("whole cores", "2", 2000),
            ("millicores", "500m", 500),
            ("fraction", "0.1", 100),
            ("rounds sub-milli up", "1u", 1),
            ("nanocores round up", "1500000n", 2),
            ("exponent", "1e3", 1_000_000),
            ("leading plus", "+3", 3000),
            ("zero", "0", 0),
            ("hundred cores", "100", 100_000),
        ];
        for (name, text, want) in cases {
            assert_eq!(milli_value(&q(text)), Ok(want), "case {name}");
        }
    }

    #[test]
    fn values() {
        let cases = [
            ("plain bytes", "1024", 1024),
            ("binary mebi", "200Mi", 200 * 1024 * 1024),
            ("binary gibi fraction", "1.5Gi", 1536 * 1024 * 1024),
            ("decimal giga", "2G", 2_000_000_000),
            ("kilo", "3k", 3000),
            ("milli rounds up", "100m", 1),
            ("pods", "110", 110),
        ];
        for (name, text, want) in cases {
            assert_eq!(value(&q(text)), Ok(want), "case {name}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for (name, text) in [("empty", ""), ("letters", "abc"), ("bad suffix", "1Qi"), ("two dots", "1.2.3"), ("dot only", ".")] {
            assert!(matches!(value(&q(text)), Err(Error::Syntax(_))), "case {name}");
        }
        assert!(matches!(value(&q("9Ei9")), Err(Error::Syntax(_))), "suffix followed by digits");
        assert!(matches!(value(&q("100Ei")), Err(Error::Overflow(_))), "too large");
    }
}
