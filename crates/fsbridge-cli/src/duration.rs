//! Durations on the command line: `10ms`, `1s`, `1.5s`, `2m`, and `0`.

use std::time::Duration;

/// Parses a duration written with a unit (`ms`, `s`, `m`, `h`, `us`), or a bare `0`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: write it like 10ms, 1s or 1.5s"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write it like 10ms, 1s or 1.5s"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{other}` is not a unit of time in `{text}`: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("`{text}` is out of range"))
}

/// Parses a polling interval: a duration of at least a millisecond.
pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse(text)?;
    if interval < Duration::from_millis(1) {
        return Err(format!("`{text}` is too short to poll at: use 1ms or more"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions_parse() {
        assert_eq!(parse("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("2m"), Ok(Duration::from_mins(2)));
    }

    #[test]
    fn missing_or_unknown_unit_is_refused_with_the_input() {
        assert!(parse("10").unwrap_err().contains("`10` has no unit"));
        assert!(parse("10 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse("abc").is_err());
    }
}
