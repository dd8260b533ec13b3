//! Hostile input against every parser, with proptest: the image field decoder, the image
//! header checks and PNG conversion, ids, phone numbers, the configuration, the run-time
//! settings, and random JSON bodies against the live daemon. None may panic; each answers
//! with a value that keeps its documented invariants or with a named error.
//!
//! Case counts are kept small enough for the whole file to run in well under a minute in a
//! debug build. Failures print the shrunk input; nothing is persisted into the tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence};
use serde_json::{json, Value};

use selfie_kiosk::api::error::ApiError;
use selfie_kiosk::capture;
use selfie_kiosk::config::{Config, Vars};
use selfie_kiosk::ids::is_valid_id;
use selfie_kiosk::settings::{RuntimeSettings, KEYS};
use selfie_kiosk::sms::phone::{normalize, Region};
use selfie_kiosk::storage::image::{jpeg_dimensions, png_dimensions, png_to_jpeg, sniff, Format};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images;

/// `cases` scaled by `$HOSTILE_CASES_MULT` (default 1) for a longer hunt by hand.
fn cfg(cases: u32) -> PtConfig {
    let mult: u32 = std::env::var("HOSTILE_CASES_MULT")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    PtConfig {
        cases: cases.saturating_mul(mult.max(1)),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..PtConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Shared samples

/// A few real images of different sizes, generated once.
fn jpegs() -> &'static Vec<(Vec<u8>, u32, u32)> {
    static J: OnceLock<Vec<(Vec<u8>, u32, u32)>> = OnceLock::new();
    J.get_or_init(|| {
        [(1, 1), (16, 16), (33, 17), (64, 48)]
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| (images::jpeg(w, h, i as u32), w, h))
            .collect()
    })
}

fn pngs() -> &'static Vec<(Vec<u8>, u32, u32)> {
    static P: OnceLock<Vec<(Vec<u8>, u32, u32)>> = OnceLock::new();
    P.get_or_init(|| {
        [(1, 1), (9, 7), (40, 30)]
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| (images::png(w, h, i as u32), w, h))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------
// decode_image_field

/// The capture decoder's refusals as the API answers them (status, code, message).
fn decode_image_field(s: &str, max: u64, out: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    capture::decode_image_field(s, max, out).map_err(ApiError::from)
}

#[derive(Debug, Clone, Copy)]
enum B64Style {
    Standard,
    NoPad,
    UrlSafe,
    UrlSafeNoPad,
}

fn encode(style: B64Style, b: &[u8]) -> String {
    use base64::engine::general_purpose as gp;
    match style {
        B64Style::Standard => gp::STANDARD.encode(b),
        B64Style::NoPad => gp::STANDARD_NO_PAD.encode(b),
        B64Style::UrlSafe => gp::URL_SAFE.encode(b),
        B64Style::UrlSafeNoPad => gp::URL_SAFE_NO_PAD.encode(b),
    }
}

fn b64_style() -> impl Strategy<Value = B64Style> {
    prop_oneof![
        Just(B64Style::Standard),
        Just(B64Style::NoPad),
        Just(B64Style::UrlSafe),
        Just(B64Style::UrlSafeNoPad),
    ]
}

/// Inserts whitespace (what a line-wrapping encoder adds) every `every` characters.
fn wrap(s: &str, every: usize, ws: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for (i, c) in s.chars().enumerate() {
        if every > 0 && i > 0 && i % every == 0 {
            out.push_str(ws);
        }
        out.push(c);
    }
    out
}

const IMAGE_FIELD_CODES: &[&str] = &["invalid_base64", "missing_image", "payload_too_large"];

proptest! {
    #![proptest_config(cfg(600))]

    /// Any string: no panic, a named 4xx error, or bytes within the limit.
    #[test]
    fn image_field_random_strings(s in any::<String>(), max in 0u64..4096) {
        match decode_image_field(&s, max, Vec::new()) {
            Ok(b) => prop_assert!(b.len() as u64 <= max),
            Err(e) => {
                prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.code);
                prop_assert!(IMAGE_FIELD_CODES.contains(&e.code), "{}", e.code);
            }
        }
    }

    /// Strings over the base64 alphabet, '=', whitespace and the data: URL punctuation.
    #[test]
    fn image_field_base64ish_strings(
        s in "(data:[a-z/]{0,12}(;base64)?,)?[A-Za-z0-9+/=_ \n\r\t-]{0,200}",
        max in 0u64..300,
    ) {
        match decode_image_field(&s, max, Vec::new()) {
            Ok(b) => prop_assert!(b.len() as u64 <= max),
            Err(e) => prop_assert!(IMAGE_FIELD_CODES.contains(&e.code), "{}", e.code),
        }
    }

    /// Random bytes, base64'd in every flavour, wrapped or not, in a data: URL or not:
    /// decoded to the same bytes when they fit (into a buffer holding junk), else
    /// `payload_too_large`.
    #[test]
    fn image_field_roundtrip(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        style in b64_style(),
        wrap_every in prop_oneof![Just(0usize), 1usize..100],
        ws in prop_oneof![Just("\n"), Just("\r\n"), Just(" "), Just("\t")],
        data_url in prop_oneof![
            Just(None),
            Just(Some("data:image/jpeg;base64,")),
            Just(Some("data:image/png;base64,")),
            Just(Some("data:;base64,")),
        ],
        max in 0u64..4096,
        junk in 0usize..64,
    ) {
        let enc = wrap(&encode(style, &bytes), wrap_every, ws);
        let field = match data_url {
            Some(p) => format!("{p}{enc}"),
            None => enc,
        };
        // The output buffer may arrive used: what it held is not part of the image.
        let r = decode_image_field(&field, max, vec![0x5A; junk]);
        if bytes.is_empty() {
            prop_assert_eq!(r.err().map(|e| e.code), Some("missing_image"));
        } else if bytes.len() as u64 > max {
            prop_assert_eq!(r.err().map(|e| e.code), Some("payload_too_large"));
        } else {
            match r {
                Ok(b) => prop_assert!(b == bytes, "decoded bytes differ"),
                Err(e) => prop_assert!(false, "{style:?} {} bytes (max {max}, wrapped every {wrap_every} with {ws:?}, data URL {data_url:?}, field {} chars) refused: {} {}", bytes.len(), field.len(), e.code, e.message),
            }
        }
    }

    /// A data: URL that is not base64 is refused, whatever follows.
    #[test]
    fn image_field_data_url_not_base64(meta in "[a-z/;=+-]{0,30}", data in "[ -~]{0,60}") {
        prop_assume!(!meta.ends_with(";base64"));
        let r = decode_image_field(&format!("data:{meta},{data}"), 1 << 20, Vec::new());
        prop_assert_eq!(r.err().map(|e| e.code), Some("invalid_base64"));
    }
}

// ---------------------------------------------------------------------------------------
// Image headers and PNG → JPEG

/// End of data ignoring trailing zero bytes (what the JPEG check tolerates).
fn ends_with_eoi(b: &[u8]) -> bool {
    let end = b.iter().rposition(|&x| x != 0);
    matches!(end, Some(e) if e >= 1 && b[e - 1] == 0xFF && b[e] == 0xD9)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match *m {
            Mutation::Flip(i, x) => b[i % n] ^= x,
            Mutation::Set(i, x) => b[i % n] = x,
            Mutation::Insert(i, x) => b.insert(i % (n + 1), x),
            Mutation::Remove(i) => {
                b.remove(i % n);
            }
            Mutation::Truncate(i) => b.truncate(i % n),
        }
    }
    b
}

/// Runs every image function on `b`; none may panic. PNG conversion is bounded in time.
fn all_image_parsers(b: &[u8]) -> Result<(), TestCaseError> {
    let _ = sniff(b);
    if let Ok((w, h)) = jpeg_dimensions(b) {
        prop_assert!(w > 0 && h > 0);
        prop_assert!(u64::from(w) * u64::from(h) <= selfie_kiosk::storage::image::MAX_PIXELS);
        prop_assert!(
            ends_with_eoi(b),
            "a JPEG without end-of-image marker was accepted"
        );
    }
    if let Ok((w, h)) = png_dimensions(b) {
        prop_assert!(w > 0 && h > 0);
    }
    let t = Instant::now();
    if let Ok((jpeg, w, h)) = png_to_jpeg(b) {
        prop_assert_eq!(jpeg_dimensions(&jpeg), Ok((w, h)));
    }
    prop_assert!(
        t.elapsed() < Duration::from_secs(5),
        "png_to_jpeg took {:?} on {} bytes",
        t.elapsed(),
        b.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(cfg(500))]

    #[test]
    fn images_random_bytes(
        prefix in prop_oneof![
            Just(vec![]),
            Just(vec![0xFF, 0xD8, 0xFF]),
            Just(vec![0xFF, 0xD8]),
            Just(b"\x89PNG\r\n\x1a\n".to_vec()),
            Just(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec()),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..512),
        eoi in any::<bool>(),
    ) {
        let mut b = prefix;
        b.extend(body);
        if eoi {
            b.extend([0xFF, 0xD9]);
        }
        all_image_parsers(&b)?;
    }

    /// Real JPEGs, mutated: never a panic, never an accepted JPEG without its end marker.
    #[test]
    fn images_mutated_jpegs(pick in 0usize..4, muts in proptest::collection::vec(mutation(), 1..6)) {
        let (orig, _, _) = &jpegs()[pick];
        let b = apply(orig.clone(), &muts);
        all_image_parsers(&b)?;
    }

    /// A truncated JPEG is refused unless the cut happens to leave an end marker.
    #[test]
    fn images_truncated_jpegs(pick in 0usize..4, cut in any::<prop::sample::Index>()) {
        let (orig, w, h) = &jpegs()[pick];
        prop_assert_eq!(sniff(orig), Some(Format::Jpeg));
        prop_assert_eq!(jpeg_dimensions(orig), Ok((*w, *h)));
        let b = &orig[..cut.index(orig.len())];
        let r = jpeg_dimensions(b);
        if !ends_with_eoi(b) {
            prop_assert!(r.is_err(), "truncated JPEG ({} of {} bytes) accepted", b.len(), orig.len());
        }
    }

    /// Real PNGs, mutated or truncated: no panic; the intact ones convert with their size.
    #[test]
    fn images_mutated_pngs(pick in 0usize..3, muts in proptest::collection::vec(mutation(), 0..5)) {
        let (orig, w, h) = &pngs()[pick];
        if muts.is_empty() {
            prop_assert_eq!(png_dimensions(orig), Ok((*w, *h)));
            let (jpeg, cw, ch) = png_to_jpeg(orig).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!((cw, ch), (*w, *h));
            prop_assert_eq!(sniff(&jpeg), Some(Format::Jpeg));
        }
        let b = apply(orig.clone(), &muts);
        all_image_parsers(&b)?;
    }

    /// A PNG cut inside its image data is refused.
    #[test]
    fn images_truncated_pngs(pick in 0usize..3, frac in 0.0f64..0.6) {
        let (orig, _, _) = &pngs()[pick];
        let cut = (orig.len() as f64 * frac) as usize;
        prop_assert!(png_to_jpeg(&orig[..cut]).is_err(), "PNG cut at {cut} of {} accepted", orig.len());
    }

    /// A PNG header claiming any size: refused fast when too big, never a huge allocation.
    #[test]
    fn images_png_lying_header(w in any::<u32>(), h in any::<u32>()) {
        let (orig, _, _) = &pngs()[1];
        let mut b = orig.clone();
        b[16..20].copy_from_slice(&w.to_be_bytes());
        b[20..24].copy_from_slice(&h.to_be_bytes());
        all_image_parsers(&b)?;
        if u64::from(w) * u64::from(h) > selfie_kiosk::storage::image::MAX_PIXELS {
            prop_assert!(png_dimensions(&b).is_err());
        }
    }

    /// A JPEG frame header claiming any size.
    #[test]
    fn images_jpeg_lying_header(w in any::<u16>(), h in any::<u16>()) {
        let (orig, _, _) = &jpegs()[2];
        let mut b = orig.clone();
        // Find SOF0 (FF C0) and overwrite height and width.
        let pos = b.windows(2).position(|x| x == [0xFF, 0xC0]).expect("SOF0");
        b[pos + 5..pos + 7].copy_from_slice(&h.to_be_bytes());
        b[pos + 7..pos + 9].copy_from_slice(&w.to_be_bytes());
        let r = jpeg_dimensions(&b);
        if w == 0 || h == 0 || u64::from(w) * u64::from(h) > selfie_kiosk::storage::image::MAX_PIXELS {
            prop_assert!(r.is_err(), "{w}x{h} accepted");
        } else {
            prop_assert_eq!(r, Ok((u32::from(w), u32::from(h))));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ids

fn reference_id_check(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

proptest! {
    #![proptest_config(cfg(2000))]

    #[test]
    fn ids_random(s in any::<String>()) {
        prop_assert_eq!(is_valid_id(&s), reference_id_check(&s), "{:?}", s);
    }

    #[test]
    fn ids_near_valid(s in "[A-Za-z0-9_./\\\\%\0-]{0,70}") {
        let ok = is_valid_id(&s);
        prop_assert_eq!(ok, reference_id_check(&s), "{:?}", s);
        if ok {
            // Nothing that could leave the uploads directory or hide an extension.
            prop_assert!(!s.contains(['/', '.', '\\', '\0', '%']));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Phone numbers

fn check_phone(input: &str) -> Result<(), TestCaseError> {
    if let Ok(n) = normalize(input, Region::FR) {
        let digits = n
            .strip_prefix('+')
            .ok_or_else(|| TestCaseError::fail(format!("{input:?} → {n:?}: no '+'")))?;
        prop_assert!(
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "{:?} → {:?}: not + and 8-15 digits",
            input,
            n
        );
        prop_assert!(!digits.starts_with('0'), "{:?} → {:?}", input, n);
        prop_assert_eq!(
            normalize(&n, Region::FR),
            Ok(n.clone()),
            "not idempotent for {:?}",
            input
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(1500))]

    #[test]
    fn phone_random_strings(s in any::<String>()) {
        check_phone(&s)?;
    }

    #[test]
    fn phone_typed_like_a_visitor(s in "[0-9 +().\\-/\u{a0}]{0,24}") {
        check_phone(&s)?;
    }

    #[test]
    fn phone_digit_strings(
        prefix in prop_oneof![
            Just(""), Just("0"), Just("+"), Just("+33"), Just("0033"), Just("33"),
            Just("06"), Just("07"), Just("+33 (0)"), Just("+262"), Just("+590"), Just("+1"),
            Just("+39"), Just("+44"), Just("00"),
        ],
        digits in "[0-9]{0,17}",
        sep in prop_oneof![Just(""), Just(" "), Just("."), Just("-")],
    ) {
        let body: String = digits
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let s = if i > 0 && i % 2 == 0 { sep } else { "" };
                s.chars().chain(std::iter::once(c))
            })
            .collect();
        check_phone(&format!("{prefix}{body}"))?;
    }
}

/// Every French mobile typed the usual ways gives the same E.164 number.
#[test]
fn phone_french_mobiles_all_spellings_agree() {
    for n in 0..2000u32 {
        let nsn = format!("6{:08}", n.wrapping_mul(2_654_435_761) % 100_000_000);
        if ["639", "690", "691", "692", "693", "694", "696", "697"].contains(&&nsn[..3]) {
            continue;
        }
        let want = format!("+33{nsn}");
        let spaced: String = format!("0{nsn}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let s = if i > 0 && i % 2 == 0 { " " } else { "" };
                s.chars().chain(std::iter::once(c))
            })
            .collect();
        for input in [
            format!("0{nsn}"),
            spaced,
            format!("+33{nsn}"),
            format!("+33 (0){nsn}"),
            format!("0033{nsn}"),
            format!("+330{nsn}"),
        ] {
            assert_eq!(normalize(&input, Region::FR), Ok(want.clone()), "{input}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration

/// Every variable `Config::from_vars` reads (an error must name one of them).
const CONFIG_VARS: &[&str] = &[
    "KIOSK_LISTEN",
    "HEALTH_LISTEN",
    "KIOSK_DATA_DIR",
    "UPLOADS_DIR",
    "KIOSK_ID",
    "ADMIN_API_KEY",
    "SECRET_KEY",
    "REMOTE_DATABASE_URL",
    "REMOTE_STORAGE_URL",
    "PUBLIC_BASE_URL",
    "OVH_ENDPOINT",
    "OVH_APP_KEY",
    "OVH_APP_SECRET",
    "OVH_CONSUMER_KEY",
    "SMS_SERVICE_NAME",
    "SMS_SENDER",
    "RETENTION_DAYS",
    "REDIS_URL",
    "MAX_CAPTURE_BYTES",
    "KIOSK_DISK_RESERVE",
    "KIOSK_CORS_ORIGINS",
    "KIOSK_LOG",
    "RUST_LOG",
    "OVH_TIMEOUT_SECS",
    "KIOSK_HEARTBEAT_SECS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
];

/// Marker embedded in every secret the generator makes: it must never show in an error
/// text or in `Debug` output.
const SECRET_MARK: &str = "Zq9SECRETv7";

fn secretish() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,20}".prop_map(|s| format!("{SECRET_MARK}{s}"))
}

/// A plausible-or-hostile value for a variable.
fn value_for(var: &'static str) -> BoxedStrategy<String> {
    let random = prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[0-9]{0,25}",
        Just(String::new()),
        Just("   ".to_string()),
    ];
    let specific: BoxedStrategy<String> = match var {
        "KIOSK_LISTEN" | "HEALTH_LISTEN" => prop_oneof![
            Just("127.0.0.1:0".to_string()),
            "[0-9.:\\[\\]a-f]{0,30}",
            (0u32..70000).prop_map(|p| format!("127.0.0.1:{p}")),
        ]
        .boxed(),
        "ADMIN_API_KEY"
        | "SECRET_KEY"
        | "OVH_APP_SECRET"
        | "OVH_CONSUMER_KEY"
        | "AWS_SECRET_ACCESS_KEY" => secretish().boxed(),
        "REMOTE_DATABASE_URL" => (
            prop_oneof![
                Just("postgresql://"),
                Just("postgres://"),
                Just("mysql://"),
                Just("")
            ],
            "[a-z]{0,8}",
            secretish(),
            "[ -~]{0,30}",
        )
            .prop_map(|(s, u, p, rest)| format!("{s}{u}:{p}@{rest}"))
            .boxed(),
        "REMOTE_STORAGE_URL" => (
            prop_oneof![
                Just("http://"),
                Just("https://"),
                Just("s3://"),
                Just("ftp://"),
                Just("")
            ],
            "[a-z]{0,8}",
            secretish(),
            "[ -~]{0,40}",
            any::<bool>(),
        )
            .prop_map(|(s, u, p, rest, creds)| {
                if creds {
                    format!("{s}{u}:{p}@{rest}")
                } else {
                    format!("{s}{rest}")
                }
            })
            .boxed(),
        "PUBLIC_BASE_URL"
        | "OVH_ENDPOINT"
        | "S3_ENDPOINT_URL"
        | "AWS_ENDPOINT_URL_S3"
        | "AWS_ENDPOINT_URL" => {
            prop_oneof![Just("ovh-eu".to_string()), "(https?://)?[ -~]{0,30}",].boxed()
        }
        "RETENTION_DAYS" | "OVH_TIMEOUT_SECS" | "KIOSK_HEARTBEAT_SECS" => {
            prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[0-9 ]{0,12}"].boxed()
        }
        "MAX_CAPTURE_BYTES" | "KIOSK_DISK_RESERVE" => (
            "[0-9]{0,22}",
            prop_oneof![
                Just(""),
                Just("B"),
                Just("KB"),
                Just("mb"),
                Just("GiB"),
                Just(" MB"),
                Just("TB"),
                Just("k"),
                Just("é")
            ],
        )
            .prop_map(|(n, u)| format!("{n}{u}"))
            .boxed(),
        "KIOSK_CORS_ORIGINS" => "((https?://)?[a-z0-9.:/ ]{0,15},?){0,3}".boxed(),
        "KIOSK_LOG" | "RUST_LOG" => prop_oneof![
            "[a-z_:=,]{0,30}",
            Just("info,selfie_kiosk=debug".to_string()),
            "[ -~]{0,30}",
        ]
        .boxed(),
        "KIOSK_ID" => "[A-Za-z0-9._/ -]{0,70}".boxed(),
        "SMS_SENDER" => "[A-Za-z0-9 +é-]{0,14}".boxed(),
        _ => random.clone().boxed(),
    };
    prop_oneof![3 => specific, 1 => random].boxed()
}

fn vars_strategy() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let per_var: Vec<_> = CONFIG_VARS
        .iter()
        .map(|&v| proptest::option::weighted(0.35, value_for(v)).prop_map(move |x| (v, x)))
        .collect();
    per_var.prop_map(|pairs| {
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    })
}

fn check_config(pairs: &[(&'static str, String)]) -> Result<(), TestCaseError> {
    let mut vars: Vars = HashMap::new();
    // A fixed kiosk id unless the case sets one (the host name would do too).
    vars.insert("KIOSK_ID".into(), "prop-kiosk".into());
    for (k, v) in pairs {
        vars.insert((*k).to_string(), v.clone());
    }
    match Config::from_vars(&vars) {
        Ok(c) => {
            let dbg = format!("{c:?}");
            prop_assert!(!dbg.contains(SECRET_MARK), "a secret in Debug: {}", dbg);
        }
        Err(e) => {
            let text = e.to_string();
            let named = CONFIG_VARS
                .iter()
                .any(|v| text.starts_with(&format!("{v}:")));
            prop_assert!(
                named,
                "error does not start with a variable name: {:?}",
                text
            );
            prop_assert!(
                !text.contains(SECRET_MARK),
                "a secret in the error: {:?}",
                text
            );
            prop_assert!(!text.contains('\n'), "not one line: {:?}", text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(1500))]

    #[test]
    fn config_random_values(pairs in vars_strategy()) {
        check_config(&pairs)?;
    }

    /// One variable at a time on top of a complete valid configuration: what is wrong is
    /// that variable (or a variable it depends on).
    #[test]
    fn config_one_bad_variable(idx in 0..CONFIG_VARS.len(), seed in any::<u64>()) {
        let var = CONFIG_VARS[idx];
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            PtConfig::default(),
            proptest::test_runner::TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &{
                    let mut s = [0u8; 32];
                    s[..8].copy_from_slice(&seed.to_le_bytes());
                    s
                },
            ),
        );
        let value = value_for(var).new_tree(&mut runner).map_err(TestCaseError::fail)?.current();
        let mut pairs: Vec<(&'static str, String)> = vec![
            ("KIOSK_LISTEN", "127.0.0.1:8000".into()),
            ("ADMIN_API_KEY", format!("{SECRET_MARK}-admin-key")),
            ("SECRET_KEY", format!("{SECRET_MARK}-hmac-key")),
            ("REMOTE_DATABASE_URL", format!("postgresql://kiosk:{SECRET_MARK}pw@127.0.0.1:5432/kiosk")),
            ("REMOTE_STORAGE_URL", format!("https://kiosk:{SECRET_MARK}dav@vps.example.com/uploads/")),
            ("PUBLIC_BASE_URL", "https://vps.example.com/uploads/".into()),
            ("OVH_APP_KEY", "appkey".into()),
            ("OVH_APP_SECRET", format!("{SECRET_MARK}-ovh")),
            ("OVH_CONSUMER_KEY", format!("{SECRET_MARK}-ck")),
            ("SMS_SERVICE_NAME", "sms-ab12345-1".into()),
            ("SMS_SENDER", "SelfieBox".into()),
        ];
        pairs.retain(|(k, _)| *k != var);
        pairs.push((var, value));
        check_config(&pairs)?;
    }
}

// ---------------------------------------------------------------------------------------
// Run-time settings

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0u64..200).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "[0-9 ]{0,8}".prop_map(Value::String),
        "[0-9]{1,4}(KB|MB|GB|B)?".prop_map(Value::String),
        Just(json!("true")),
        Just(json!("false")),
        "[a-z_=,]{0,20}".prop_map(Value::String),
        "[ -~]{0,30}\\{link\\}[ -~]{0,30}".prop_map(Value::String),
        "[\u{1F600}-\u{1F64F}a-z]{0,100}\\{link\\}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn setting_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "[a-z_]{0,24}",
    ]
}

proptest! {
    #![proptest_config(cfg(3000))]

    #[test]
    fn settings_set_random(key in setting_key(), v in json_value()) {
        let base = RuntimeSettings::from_config(&Config::with_data_dir(std::path::Path::new("/nonexistent")));
        let mut s = base.clone();
        match s.set(&key, &v) {
            Ok(()) => {
                prop_assert!(KEYS.contains(&key.as_str()), "unknown key {:?} accepted", key);
                // What was stored reads back and sets again to the same settings.
                let stored = s.to_map().get(&key).cloned();
                prop_assert!(stored.is_some(), "{} missing from to_map", key);
                let mut again = base.clone();
                again.set(&key, stored.as_ref().unwrap()).map_err(|e| TestCaseError::fail(format!("stored value of {key} does not validate: {e}")))?;
                prop_assert_eq!(&again, &s);
                prop_assert!((1..=3650).contains(&s.retention_days));
                prop_assert!(s.cleanup_hour <= 23);
                prop_assert!(s.sms_credits_low.is_finite() && s.sms_credits_low >= 0.0);
                prop_assert!(s.sms_template.contains("{link}"), "template without link");
            }
            Err(e) => {
                prop_assert_eq!(&e.key, &key);
                prop_assert_eq!(&s, &base, "a refused value changed the settings");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Random JSON bodies against the live daemon

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn http() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    })
}

/// A daemon with SMS "configured" (the OVH endpoint points at a closed port: nothing is
/// ever sent, but the request validation runs in full).
fn live_daemon() -> Daemon {
    let dead = format!("http://127.0.0.1:{}/1.0", support::daemon::free_port());
    Daemon::start(&[
        ("KIOSK_LOG", "warn"),
        ("OVH_ENDPOINT", dead.as_str()),
        ("OVH_APP_KEY", "k"),
        ("OVH_APP_SECRET", "s"),
        ("OVH_CONSUMER_KEY", "c"),
        ("SMS_SERVICE_NAME", "sms-ab12345-1"),
        ("SMS_SENDER", "SelfieBox"),
        ("PUBLIC_BASE_URL", "http://127.0.0.1:9/uploads/"),
    ])
}

/// Sends a request and checks the answer: no 500/502/504, 503 and 507 only as documented
/// JSON errors, every error in the JSON error shape, every success JSON.
fn check_answer(
    method: reqwest::Method,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    admin: bool,
) -> Result<u16, TestCaseError> {
    let (status, text) = runtime().block_on(async {
        let mut req = http()
            .request(method.clone(), url)
            .header("content-type", content_type)
            .body(body.clone());
        if admin {
            req = req.header("x-api-key", ADMIN_KEY);
        }
        let r = req.send().await.expect("request");
        let s = r.status();
        (s, r.bytes().await.expect("body"))
    });
    let shown = String::from_utf8_lossy(&text)
        .chars()
        .take(300)
        .collect::<String>();
    let sent = String::from_utf8_lossy(&body)
        .chars()
        .take(300)
        .collect::<String>();
    prop_assert!(
        !matches!(status.as_u16(), 500 | 501 | 502 | 504 | 505),
        "{method} {url} → {status}: {shown}\nbody sent: {sent}"
    );
    let v: Value = serde_json::from_slice(&text).map_err(|_| {
        TestCaseError::fail(format!(
            "{method} {url} → {status}: not JSON: {shown}\nbody sent: {sent}"
        ))
    })?;
    if !status.is_success() {
        let code = v["error"]["code"].as_str().unwrap_or("");
        prop_assert!(
            !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
                && v["error"]["message"].is_string(),
            "{method} {url} → {status}: not the JSON error shape: {shown}\nbody sent: {sent}"
        );
        if status.is_server_error() {
            prop_assert!(
                [
                    "insufficient_storage",
                    "sms_not_configured",
                    "sms_disabled",
                    "catalog_unavailable",
                    "storage_error",
                    "outbox_unavailable"
                ]
                .contains(&code)
                    || code.starts_with("sms_"),
                "{method} {url} → {status} {code}: {shown}\nbody sent: {sent}"
            );
        }
    }
    Ok(status.as_u16())
}

fn small_jpeg_b64() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| images::b64(&images::jpeg(8, 8, 5)))
}

/// A capture-like object: known keys with random (sometimes valid) values, plus noise.
fn capture_object() -> impl Strategy<Value = Value> {
    let image = prop_oneof![
        2 => Just(Value::String(small_jpeg_b64().to_string())),
        1 => Just(Value::String(format!("data:image/jpeg;base64,{}", small_jpeg_b64()))),
        3 => json_value(),
    ];
    let id = prop_oneof![
        json_value(),
        "[A-Za-z0-9_-]{1,64}".prop_map(Value::String),
        "[ -~]{0,70}".prop_map(Value::String)
    ];
    let taken = prop_oneof![
        json_value(),
        Just(json!("2024-05-01T12:00:00Z")),
        "[0-9T:Z.+-]{0,30}".prop_map(Value::String)
    ];
    (
        proptest::option::of(image),
        proptest::option::of(id),
        proptest::option::of(json_value()),
        proptest::option::of(taken),
        proptest::collection::hash_map("[a-z_]{1,8}", json_value(), 0..3),
    )
        .prop_map(|(image, id, bg, taken, noise)| {
            let mut m: serde_json::Map<String, Value> = noise.into_iter().collect();
            if let Some(v) = image {
                m.insert("image".into(), v);
            }
            if let Some(v) = id {
                m.insert("id".into(), v);
            }
            if let Some(v) = bg {
                m.insert("background_id".into(), v);
            }
            if let Some(v) = taken {
                m.insert("taken_at".into(), v);
            }
            Value::Object(m)
        })
}

/// A JSON body: mostly objects of the route's shape, sometimes anything at all, sometimes
/// not JSON.
fn body_bytes(shape: BoxedStrategy<Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => shape.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => "[{}\\[\\]\":,a-z0-9 ]{0,60}".prop_map(String::into_bytes),
    ]
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just("application/json"),
        1 => Just("text/plain"),
        1 => Just("application/json; charset=utf-8"),
        1 => Just("image/jpeg"),
        1 => Just("image/png"),
        1 => Just(""),
    ]
}

#[test]
fn live_random_bodies_capture_and_batch() {
    let d = live_daemon();
    let statuses = std::cell::RefCell::new(HashMap::<u16, usize>::new());
    let t = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(cfg(300));
    let single = d.url("/api/capture");
    runner
        .run(
            &(body_bytes(capture_object().boxed()), content_type()),
            |(body, ct)| {
                let s = check_answer(reqwest::Method::POST, &single, ct, body, false)?;
                *statuses.borrow_mut().entry(s).or_default() += 1;
                Ok(())
            },
        )
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(cfg(200));
    let batch = d.url("/api/capture-batch");
    let batch_shape = prop_oneof![
        4 => proptest::collection::vec(capture_object(), 0..5).prop_map(|v| json!({"captures": v})),
        1 => json_value().prop_map(|v| json!({"captures": v})),
        1 => proptest::collection::vec(json_value(), 0..4).prop_map(|v| json!({"captures": v})),
    ];
    runner
        .run(
            &(body_bytes(batch_shape.boxed()), content_type()),
            |(body, ct)| {
                let s = check_answer(reqwest::Method::POST, &batch, ct, body, false)?;
                *statuses.borrow_mut().entry(s).or_default() += 1;
                Ok(())
            },
        )
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!(
        "capture + batch: {} random bodies in {:?}, statuses {statuses:?}",
        statuses.values().sum::<usize>(),
        t.elapsed()
    );
    assert!(
        statuses.contains_key(&201),
        "no valid capture among the cases: {statuses:?}"
    );
    assert!(
        d.log_text().find("panicked").is_none(),
        "the daemon panicked:\n{}",
        d.log_text()
    );
}

#[test]
fn live_random_bodies_send_sms() {
    let d = live_daemon();
    // A real capture so some SMS requests get past the capture lookup.
    let id = runtime().block_on(async {
        let r = http()
            .post(d.url("/api/capture"))
            .json(&json!({"image": small_jpeg_b64(), "id": "prop-capture"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        "prop-capture".to_string()
    });
    let shape = (
        proptest::option::weighted(
            0.85,
            prop_oneof![
                4 => Just(json!(id)),
                1 => json_value(),
                1 => "[A-Za-z0-9_-]{1,70}".prop_map(Value::String)
            ],
        ),
        proptest::option::weighted(
            0.85,
            prop_oneof![
                1 => json_value(),
                4 => "(\\+33 ?|0)6( ?[0-9]{2}){4}".prop_map(Value::String),
                1 => "[0-9+() .-]{0,20}".prop_map(Value::String),
            ],
        ),
        proptest::collection::hash_map("[a-z_]{1,8}", json_value(), 0..2),
    )
        .prop_map(|(c, p, noise)| {
            let mut m: serde_json::Map<String, Value> = noise.into_iter().collect();
            if let Some(c) = c {
                m.insert("capture_id".into(), c);
            }
            if let Some(p) = p {
                m.insert("phone".into(), p);
            }
            Value::Object(m)
        });
    let url = d.url("/api/send-sms");
    let statuses = std::cell::RefCell::new(HashMap::<u16, usize>::new());
    let t = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(cfg(300));
    runner
        .run(
            &(body_bytes(shape.boxed()), content_type()),
            |(body, ct)| {
                let s = check_answer(reqwest::Method::POST, &url, ct, body, false)?;
                *statuses.borrow_mut().entry(s).or_default() += 1;
                Ok(())
            },
        )
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!(
        "send-sms: {} random bodies in {:?}, statuses {statuses:?}",
        statuses.values().sum::<usize>(),
        t.elapsed()
    );
    assert!(
        statuses.contains_key(&202) || statuses.contains_key(&200) || statuses.contains_key(&429),
        "no request got past validation: {statuses:?}"
    );
    assert!(
        d.log_text().find("panicked").is_none(),
        "the daemon panicked:\n{}",
        d.log_text()
    );
}

#[test]
fn live_random_bodies_admin_config() {
    let d = live_daemon();
    let url = d.url("/admin/config");
    let shape = proptest::collection::hash_map(setting_key(), json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let statuses = std::cell::RefCell::new(HashMap::<u16, usize>::new());
    let t = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(cfg(300));
    runner
        .run(
            &(body_bytes(shape.boxed()), content_type()),
            |(body, ct)| {
                let s = check_answer(reqwest::Method::PUT, &url, ct, body, true)?;
                *statuses.borrow_mut().entry(s).or_default() += 1;
                // Whatever was accepted, the configuration still reads back as JSON.
                let s = check_answer(
                    reqwest::Method::GET,
                    &url,
                    "application/json",
                    Vec::new(),
                    true,
                )?;
                prop_assert_eq!(s, 200);
                Ok(())
            },
        )
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!(
        "PUT /admin/config: {} random bodies in {:?}, statuses {statuses:?}",
        statuses.values().sum::<usize>(),
        t.elapsed()
    );
    assert!(
        statuses.contains_key(&200),
        "no valid setting among the cases: {statuses:?}"
    );
    assert!(
        statuses.keys().any(|s| *s == 400 || *s == 422),
        "no refused setting: {statuses:?}"
    );
    // The daemon still serves captures with whatever settings it was left with (the disk
    // reserve may have been set huge: 507 is then the right answer).
    let s = runtime().block_on(async {
        http()
            .post(d.url("/api/capture"))
            .json(&json!({"image": small_jpeg_b64()}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert!(s == 201 || s == 507, "capture after the fuzzing: {s}");
    assert!(
        d.log_text().find("panicked").is_none(),
        "the daemon panicked:\n{}",
        d.log_text()
    );
}
