//! Sizes on the command line: `65536`, `64K`, `64M`, `1G` (powers of 1024), or with `iB`.

/// Parses a byte count, bare or with a binary unit (`K`, `M`, `G`, also `KiB`, `MiB`, `GiB`).
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write it like 65536, 64K or 64M"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "`{other}` is not a unit of size in `{text}`: use K, M or G"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_and_binary_units_parse() {
        assert_eq!(parse("65536"), Ok(65_536));
        assert_eq!(parse("64K"), Ok(65_536));
        assert_eq!(parse("64M"), Ok(64 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
    }

    #[test]
    fn unknown_unit_or_garbage_is_refused_with_the_input() {
        assert!(parse("10 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse("M").unwrap_err().contains("`M` is not a size"));
        assert!(
            parse("99999999999999G")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
