//! Money as exact decimals: stored in minor units (`i64`, two decimal places),
//! shown and read as decimal strings (`"12.50"`); tax rates in hundredths of a
//! percent (`1900` = `"19.00"`). Nothing here is a float.

use crate::error::AppError;

/// Formats minor units as a decimal string with two places.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses a non-negative decimal string with at most two places into minor units.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` for anything else (signs, exponents, three
/// places, overflow).
pub fn parse_minor(field: &'static str, text: &str) -> Result<i64, AppError> {
    let invalid = || AppError::bad_input(field, "expected a decimal amount like 12.50");
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if digits(fraction) => (whole, fraction),
        Some(_) => return Err(invalid()),
        None => (text, ""),
    };
    if !digits(whole) || fraction.len() > 2 {
        return Err(invalid());
    }
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .filter(|m| *m <= 100_000_000_000)
        .ok_or_else(invalid)
}

/// The tax included in a gross price at `rate_bp` hundredths of a percent,
/// rounded half up to the minor unit: `gross * rate / (100 % + rate)`.
pub fn included_tax(gross_minor: i64, rate_bp: i32) -> i64 {
    let rate = i128::from(rate_bp);
    let gross = i128::from(gross_minor);
    let denominator = 10_000 + rate;
    let tax = (gross * rate * 2 + denominator) / (denominator * 2);
    i64::try_from(tax).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_as_decimal_strings() {
        assert_eq!(parse_minor("price", "12.5").ok(), Some(1250));
        assert_eq!(parse_minor("price", "0.07").ok(), Some(7));
        assert_eq!(parse_minor("price", "40").ok(), Some(4000));
        assert_eq!(format_minor(1250), "12.50");
        assert_eq!(format_minor(7), "0.07");
        for bad in [
            "",
            "-1",
            "1.234",
            "1e3",
            "abc",
            ".5",
            "1.",
            "99999999999999999",
        ] {
            assert!(parse_minor("price", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn included_tax_is_exact() {
        // 119.00 gross at 19 % holds 19.00 tax.
        assert_eq!(included_tax(11_900, 1900), 1900);
        assert_eq!(included_tax(1000, 0), 0);
        // 10.00 at 7 %: 0.654… → 0.65.
        assert_eq!(included_tax(1000, 700), 65);
    }
}
