//! Go-style durations as the configuration writes them (`15s`, `1m30s`, `500ms`).

use std::time::Duration;

/// Parses `<number><unit>` pieces (units `h`, `m`, `s`, `ms`); `None` when malformed or empty.
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let piece = match &rest[..unit_len] {
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return None,
        };
        total = total.checked_add(piece)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let cases = [
            ("seconds", "15s", Some(Duration::from_secs(15))),
            ("minutes and seconds", "1m30s", Some(Duration::from_secs(90))),
            ("milliseconds", "500ms", Some(Duration::from_millis(500))),
            ("hours", "2h", Some(Duration::from_secs(7200))),
            ("no unit", "15", None),
            ("unknown unit", "3d", None),
            ("empty", "", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse(text), want, "case {name}");
        }
    }
}
