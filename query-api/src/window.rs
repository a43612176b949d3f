//! Parsing of `window=` and `bucket=` durations such as `15m`, `24h`, `7d`.

/// Seconds in a duration like `90s`, `15m`, `24h`, `7d` (at most 90 days).
/// Any other text, including numbers whose product overflows and a last
/// character that is not ASCII, is `None` (never a panic, never a wrap).
pub(crate) fn parse_secs(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let num = &s[..s.len() - unit.len_utf8()];
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|s| *s <= MAX_WINDOW_SECS)
}

/// The longest `window=` (90 days).
pub(crate) const MAX_WINDOW_SECS: i64 = 90 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_secs("24h"), Some(86_400));
        assert_eq!(parse_secs("15m"), Some(900));
        assert_eq!(parse_secs("7d"), Some(604_800));
        for bad in [
            "",
            "h",
            "0h",
            "-1h",
            "+1h",
            "24x",
            "100d",
            "1.5h",
            " 1h",
            "1é",
            "é",
            "1\u{0}",
            // 213503982334602 * 86400 wraps to 61184 s in i64: must not pass.
            "106751991167301d",
            "213503982334602d",
            "9223372036854775807s",
            "99999999999999999999999h",
        ] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
    }
}
