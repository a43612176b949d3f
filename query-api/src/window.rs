//! Parsing of `window=` and `bucket=` durations such as `15m`, `24h`, `7d`.

/// Seconds in a duration like `90s`, `15m`, `24h`, `7d` (at most 90 days).
pub(crate) fn parse_secs(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(n * mult).filter(|s| *s <= 90 * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_secs("24h"), Some(86_400));
        assert_eq!(parse_secs("15m"), Some(900));
        assert_eq!(parse_secs("7d"), Some(604_800));
        for bad in ["", "h", "0h", "-1h", "24x", "100d", "1.5h"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
    }
}
