//! Phone numbers: normalisation to E.164 and masking for logs and answers.
//!
//! Decisions:
//! - The kiosk sends one SMS with a link to a photo, so only numbers that can receive an SMS
//!   are accepted. For France (+33) that means **mobiles only**: `06` and `07` (`073`–`079`;
//!   `070`–`072` are not mobile ranges). Geographic numbers (`01`–`05`), VoIP (`09`), freephone
//!   (`080`) are refused as [`PhoneError::NotMobile`]; special-rate and premium ranges (`081`,
//!   `082`, `089`, and the rest of `08`) as [`PhoneError::PremiumRate`].
//! - French overseas departments have their own country codes but share the French national
//!   plan: a national `0692…`/`0693…`/`0639…` is Réunion/Mayotte (+262), `0690…`/`0691…`
//!   Guadeloupe (+590), `0694…` Guyane (+594), `0696…`/`0697…` Martinique (+596). Those national
//!   numbers (and the same digits wrongly written after +33) are rewritten to the right country
//!   code. With their own code (+262, +590, +594, +596) only numbers whose national part starts
//!   with 6 or 7 (mobile) are accepted.
//! - Other countries must be written with `+` or `00`; the result must have 8 to 15 digits
//!   and a plausible country code. International premium / shared-cost / satellite codes
//!   (+800, +808, +870, +878, +881, +882, +883, +888, +979, +991), NANP `900`/`976` and UK
//!   `+44 9…` are refused as premium.
//! - Short service numbers (3 to 6 digits: `3xxx`, `118xxx`, …) are refused.
//! - Errors never echo the number.

use std::fmt;
use std::str::FromStr;

/// Region used to read numbers written without an international prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Region {
    /// France (metropolitan national format `0X XX XX XX XX`).
    #[default]
    FR,
}

impl FromStr for Region {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "FR" => Ok(Region::FR),
            _ => Err(PhoneError::UnsupportedRegion),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::FR => f.write_str("FR"),
        }
    }
}

/// Why a phone number was refused. Never contains the number itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("no phone number given")]
    Empty,
    #[error("the phone number contains letters or symbols")]
    InvalidCharacters,
    #[error("the phone number is too short: a French mobile has 10 digits starting with 06 or 07; other numbers start with + and the country code")]
    TooShort,
    #[error("the phone number is too long")]
    TooLong,
    #[error("short service numbers cannot receive this SMS")]
    ShortNumber,
    #[error("premium-rate and special-rate numbers are not accepted")]
    PremiumRate,
    #[error("only mobile numbers can receive an SMS (French numbers must start with 06 or 07)")]
    NotMobile,
    #[error("unknown country calling code")]
    InvalidCountryCode,
    #[error("not a valid phone number")]
    Invalid,
    #[error("unsupported default region")]
    UnsupportedRegion,
}

/// Normalizes a phone number typed by a visitor to E.164 (`+33612345678`).
///
/// Spaces, dots, dashes, slashes and parentheses are ignored; `+33 (0)6…` drops the `(0)`.
pub fn normalize(input: &str, default_region: Region) -> Result<String, PhoneError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(PhoneError::Empty);
    }
    let mut seen_content = false;
    for c in s.chars() {
        match c {
            '0'..='9' => seen_content = true,
            '+' => {
                if seen_content {
                    return Err(PhoneError::InvalidCharacters);
                }
                seen_content = true;
            }
            ' ' | '\t' | '\u{a0}' | '\u{202f}' | '.' | '-' | '/' | '(' | ')' => {}
            _ => return Err(PhoneError::InvalidCharacters),
        }
    }
    if s.matches('+').count() > 1 {
        return Err(PhoneError::InvalidCharacters);
    }
    let all_digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let plus = s.starts_with('+');
    let international = plus || all_digits.starts_with("00");
    if all_digits.is_empty() {
        return Err(PhoneError::TooShort);
    }
    if international {
        // "+33 (0)6 …": the trunk prefix in parentheses is not dialled internationally.
        let without_trunk = s.replace("(0)", "");
        let digits: String = without_trunk.chars().filter(char::is_ascii_digit).collect();
        let digits = if plus {
            digits.as_str()
        } else {
            digits.get(2..).unwrap_or("")
        };
        return international_number(digits);
    }
    match default_region {
        Region::FR => french_national(&all_digits),
    }
}

fn french_national(digits: &str) -> Result<String, PhoneError> {
    let len = digits.len();
    if len <= 2 {
        return Err(PhoneError::TooShort);
    }
    // A leading 0 is the trunk prefix of a full number, never a short service number
    // (those are 1x, 3xxxx, 118xxx): "0612" is a mobile typed half-way.
    if digits.starts_with('0') && len < 10 {
        return Err(PhoneError::TooShort);
    }
    if len <= 6 {
        return Err(PhoneError::ShortNumber);
    }
    if let Some(nsn) = digits.strip_prefix('0') {
        return match len {
            10 => french_nsn(nsn),
            l if l < 10 => Err(PhoneError::TooShort),
            _ => Err(PhoneError::TooLong),
        };
    }
    match len {
        // Written without the trunk 0: "6 12 34 56 78".
        9 => french_nsn(digits),
        // Country code without "+": "33 6 12 34 56 78".
        11 if digits.starts_with("33") => international_number(digits),
        l if l < 9 => Err(PhoneError::TooShort),
        _ => Err(PhoneError::TooLong),
    }
}

/// A 9-digit French national significant number (after the trunk 0 or after +33).
fn french_nsn(nsn: &str) -> Result<String, PhoneError> {
    let b = nsn.as_bytes();
    if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
        return Err(PhoneError::Invalid);
    }
    match b[0] {
        b'6' | b'7' => {
            // Overseas mobiles dialled within the French plan.
            let overseas = match &nsn[..3] {
                "639" | "692" | "693" => Some("262"),
                "690" | "691" => Some("590"),
                "694" => Some("594"),
                "696" | "697" => Some("596"),
                _ => None,
            };
            if let Some(cc) = overseas {
                return Ok(format!("+{cc}{nsn}"));
            }
            if b[0] == b'7' && !(b'3'..=b'9').contains(&b[1]) {
                return Err(PhoneError::NotMobile);
            }
            Ok(format!("+33{nsn}"))
        }
        b'8' if b[1] == b'0' => Err(PhoneError::NotMobile),
        b'8' => Err(PhoneError::PremiumRate),
        b'1'..=b'5' | b'9' => Err(PhoneError::NotMobile),
        _ => Err(PhoneError::Invalid),
    }
}

/// International premium-rate, shared-cost, satellite and network codes.
const PREMIUM_COUNTRY_CODES: &[&str] = &[
    "800", "808", "870", "878", "881", "882", "883", "888", "979", "991",
];

/// Two-digit ITU country calling codes (every other code but 1 and 7 has three digits).
const TWO_DIGIT_CODES: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// Spare (unassigned) two-digit prefixes: no country code starts with them.
const SPARE_PREFIXES: &[&str] = &["28", "83", "89"];

/// Length of the country calling code at the start of `digits` (without `+`), if plausible.
fn country_code_len(digits: &str) -> Option<usize> {
    let first = digits.as_bytes().first()?;
    match first {
        b'0' => None,
        b'1' | b'7' => Some(1),
        _ => {
            let two = digits.get(..2)?;
            if SPARE_PREFIXES.contains(&two) {
                None
            } else if TWO_DIGIT_CODES.contains(&two) {
                Some(2)
            } else if digits.len() >= 3 {
                Some(3)
            } else {
                None
            }
        }
    }
}

/// `digits`: everything after `+` / `00`.
fn international_number(digits: &str) -> Result<String, PhoneError> {
    if digits.len() < 3 {
        return Err(PhoneError::TooShort);
    }
    let cc_len = country_code_len(digits).ok_or(PhoneError::InvalidCountryCode)?;
    let (cc, rest) = digits.split_at(cc_len);
    if PREMIUM_COUNTRY_CODES.contains(&cc) {
        return Err(PhoneError::PremiumRate);
    }
    match cc {
        "33" => {
            // "+33 06…" written with the trunk 0: drop it.
            let nsn = if rest.len() == 10 && rest.starts_with('0') {
                &rest[1..]
            } else {
                rest
            };
            return match nsn.len() {
                9 => french_nsn(nsn),
                l if l < 9 => Err(PhoneError::TooShort),
                _ => Err(PhoneError::TooLong),
            };
        }
        "262" | "590" | "594" | "596" => {
            let nsn = if rest.len() == 10 && rest.starts_with('0') {
                &rest[1..]
            } else {
                rest
            };
            return match nsn.len() {
                9 if nsn.starts_with('6') || nsn.starts_with('7') => Ok(format!("+{cc}{nsn}")),
                9 => Err(PhoneError::NotMobile),
                l if l < 9 => Err(PhoneError::TooShort),
                _ => Err(PhoneError::TooLong),
            };
        }
        "1" => {
            match rest.len() {
                10 => {}
                l if l < 10 => return Err(PhoneError::TooShort),
                _ => return Err(PhoneError::TooLong),
            }
            if rest.starts_with('0') || rest.starts_with('1') {
                return Err(PhoneError::Invalid);
            }
            if rest.starts_with("900") || rest.starts_with("976") {
                return Err(PhoneError::PremiumRate);
            }
        }
        "44" if rest.starts_with('9') => return Err(PhoneError::PremiumRate),
        _ => {}
    }
    if rest.starts_with('0') && cc != "39" {
        // Trunk prefixes are not dialled after a country code (Italy keeps its 0).
        return Err(PhoneError::Invalid);
    }
    match digits.len() {
        l if l < 8 => Err(PhoneError::TooShort),
        l if l > 15 => Err(PhoneError::TooLong),
        _ => Ok(format!("+{digits}")),
    }
}

/// Masks a phone number for logs and API answers: keeps the country code and the last two
/// digits, e.g. `+33612345678` → `+33*******78`. Works (more bluntly) on anything.
pub fn mask(e164: &str) -> String {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return "***".to_string();
    }
    let cc_len = country_code_len(&digits).unwrap_or(0).min(digits.len());
    let (cc, rest) = digits.split_at(cc_len);
    if rest.len() <= 4 {
        return format!("+{cc}{}", "*".repeat(rest.len().max(3)));
    }
    let (hidden, last) = rest.split_at(rest.len() - 2);
    format!("+{cc}{}{last}", "*".repeat(hidden.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr(s: &str) -> Result<String, PhoneError> {
        normalize(s, Region::FR)
    }

    #[test]
    fn french_mobiles_in_all_spellings() {
        for s in [
            "06 12 34 56 78",
            "0612345678",
            "06.12.34.56.78",
            "06-12-34-56-78",
            "(06) 12 34 56 78",
            "+33612345678",
            "+33 6 12 34 56 78",
            "+33 (0)6 12 34 56 78",
            "+33 06 12 34 56 78",
            "0033 6 12 34 56 78",
            "0033 (0)6 12 34 56 78",
            "33 6 12 34 56 78",
            "6 12 34 56 78",
            "  06 12 34 56 78  ",
            "06\u{a0}12\u{a0}34\u{a0}56\u{a0}78",
        ] {
            assert_eq!(fr(s).as_deref(), Ok("+33612345678"), "{s}");
        }
        assert_eq!(fr("07 81 23 45 67").as_deref(), Ok("+33781234567"));
        assert_eq!(fr("+33 7 31 23 45 67").as_deref(), Ok("+33731234567"));
    }

    #[test]
    fn french_non_mobiles_are_refused() {
        assert_eq!(fr("01 23 45 67 89"), Err(PhoneError::NotMobile));
        assert_eq!(fr("+33 4 91 23 45 67"), Err(PhoneError::NotMobile));
        assert_eq!(fr("09 51 23 45 67"), Err(PhoneError::NotMobile));
        assert_eq!(fr("08 00 12 34 56"), Err(PhoneError::NotMobile));
        assert_eq!(fr("07 00 12 34 56"), Err(PhoneError::NotMobile));
        assert_eq!(fr("07 20 12 34 56"), Err(PhoneError::NotMobile));
    }

    #[test]
    fn premium_and_short_numbers_are_refused() {
        assert_eq!(fr("08 99 12 34 56"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("0899123456"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("08 92 12 34 56"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("08 10 12 34 56"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("08 21 12 34 56"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+33 8 99 12 34 56"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("3654"), Err(PhoneError::ShortNumber));
        assert_eq!(fr("36 15"), Err(PhoneError::ShortNumber));
        assert_eq!(fr("118 218"), Err(PhoneError::ShortNumber));
        assert_eq!(fr("112"), Err(PhoneError::ShortNumber));
        // A mobile typed half-way is too short, not a service number.
        assert_eq!(fr("0612"), Err(PhoneError::TooShort));
        assert_eq!(fr("06 12 34"), Err(PhoneError::TooShort));
        assert_eq!(fr("0899"), Err(PhoneError::TooShort));
        assert_eq!(fr("+882 1234 5678"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+883 1234 5678"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+881 6 1234 5678"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+979 1234 5678"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+870 7 1234 5678"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("001 900 555 1234"), Err(PhoneError::PremiumRate));
        assert_eq!(fr("+44 909 879 0000"), Err(PhoneError::PremiumRate));
    }

    #[test]
    fn overseas_french_mobiles() {
        assert_eq!(fr("+262 692 12 34 56").as_deref(), Ok("+262692123456"));
        assert_eq!(fr("0692 12 34 56").as_deref(), Ok("+262692123456"));
        assert_eq!(fr("0639 12 34 56").as_deref(), Ok("+262639123456"));
        assert_eq!(fr("0690 12 34 56").as_deref(), Ok("+590690123456"));
        assert_eq!(fr("+590 690 12 34 56").as_deref(), Ok("+590690123456"));
        assert_eq!(fr("0694 12 34 56").as_deref(), Ok("+594694123456"));
        assert_eq!(fr("0696 12 34 56").as_deref(), Ok("+596696123456"));
        assert_eq!(fr("+33 6 96 12 34 56").as_deref(), Ok("+596696123456"));
        assert_eq!(fr("+262 262 12 34 56"), Err(PhoneError::NotMobile));
        assert_eq!(fr("+596 596 12 34 56"), Err(PhoneError::NotMobile));
    }

    #[test]
    fn other_countries() {
        assert_eq!(fr("+44 7911 123456").as_deref(), Ok("+447911123456"));
        assert_eq!(fr("0044 7911 123456").as_deref(), Ok("+447911123456"));
        assert_eq!(fr("+44 (0)7911 123456").as_deref(), Ok("+447911123456"));
        assert_eq!(fr("+49 151 23456789").as_deref(), Ok("+4915123456789"));
        assert_eq!(fr("+1 (415) 555-2671").as_deref(), Ok("+14155552671"));
        assert_eq!(fr("+32 470 12 34 56").as_deref(), Ok("+32470123456"));
        assert_eq!(fr("+39 06 1234 5678").as_deref(), Ok("+390612345678"));
        assert_eq!(fr("+352 621 123 456").as_deref(), Ok("+352621123456"));
        assert_eq!(fr("+1 415 555 267"), Err(PhoneError::TooShort));
        assert_eq!(fr("+49 12"), Err(PhoneError::TooShort));
        assert_eq!(fr("+49 1512 3456 7890 1234"), Err(PhoneError::TooLong));
        assert_eq!(fr("+0 612345678"), Err(PhoneError::InvalidCountryCode));
        assert_eq!(fr("+28 1234 5678"), Err(PhoneError::InvalidCountryCode));
    }

    #[test]
    fn malformed_input() {
        assert_eq!(fr(""), Err(PhoneError::Empty));
        assert_eq!(fr("   "), Err(PhoneError::Empty));
        assert_eq!(fr("06 12 34 56 7a"), Err(PhoneError::InvalidCharacters));
        assert_eq!(fr("call me"), Err(PhoneError::InvalidCharacters));
        assert_eq!(fr("06+12345678"), Err(PhoneError::InvalidCharacters));
        assert_eq!(fr("++33612345678"), Err(PhoneError::InvalidCharacters));
        assert_eq!(fr("06 12 34 56 78;"), Err(PhoneError::InvalidCharacters));
        assert_eq!(fr("--"), Err(PhoneError::TooShort));
        assert_eq!(fr("06 12 34 56"), Err(PhoneError::TooShort));
        assert_eq!(fr("06 12 34 56 78 9"), Err(PhoneError::TooLong));
        assert_eq!(fr("+33 6 12 34 56"), Err(PhoneError::TooShort));
        assert_eq!(fr("+33 6 12 34 56 78 90"), Err(PhoneError::TooLong));
    }

    #[test]
    fn errors_do_not_echo_the_number() {
        for s in ["0899123456", "0123456789", "+33612345", "06123456789"] {
            let e = fr(s).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!e.is_empty());
            assert!(!e.contains("123456"), "{e}");
        }
    }

    #[test]
    fn region_parses() {
        assert_eq!("fr".parse::<Region>(), Ok(Region::FR));
        assert_eq!("XX".parse::<Region>(), Err(PhoneError::UnsupportedRegion));
        assert_eq!(Region::default().to_string(), "FR");
    }

    #[test]
    fn masking_keeps_country_code_and_last_two_digits() {
        assert_eq!(mask("+33612345678"), "+33*******78");
        assert_eq!(mask("+14155552671"), "+1********71");
        assert_eq!(mask("+262692123456"), "+262*******56");
        assert_eq!(mask("+447911123456"), "+44********56");
        assert_eq!(mask("+3312"), "+33***");
        assert_eq!(mask(""), "***");
        assert!(!mask("+33612345678").contains("612345"));
    }
}
