//! The guest's side of a capture: its public names, the static share page uploaded beside
//! the photo, the links the app and the SMS give out, and their QR codes ([`qr`]).
//!
//! Public files are named by the capture's public token (128 random bits, made at insert),
//! never by its id, which the app may choose (`guest-001`) and so anyone could guess. The
//! page is rendered here, at upload time, from a template with `{name}` placeholders whose
//! values are all HTML-escaped; it holds no script and loads nothing from another host, so
//! the VPS's stock web server serves it as it is.

pub mod qr;

use std::path::Path;

use crate::catalog::CaptureRow;
use crate::settings::RuntimeSettings;

/// The built-in page (French: the kiosks run in France). Inline style only, no script,
/// nothing from another host; readable on a 360 px phone.
pub const DEFAULT_TEMPLATE: &str = include_str!("default-template.html");

/// The file an operator may put in the data directory to replace the built-in page (the
/// run-time setting `share_template`, when set, wins over it).
pub const TEMPLATE_FILE: &str = "share-template.html";

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "photo_url",
    "download_url",
    "expires",
    "event",
    "operator",
    "privacy_contact",
    "title",
];

/// What the SMS (and `share_url`'s `link_ready`) links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsLink {
    /// The share page `{token}.html` (the default).
    Page,
    /// The photo itself, `{token}.jpg`.
    Image,
}

impl SmsLink {
    pub fn parse(s: &str) -> Option<SmsLink> {
        match s {
            "page" => Some(SmsLink::Page),
            "image" => Some(SmsLink::Image),
            _ => None,
        }
    }
}

/// A capture's public photo file name.
pub fn image_name(token: &str) -> String {
    format!("{token}.jpg")
}

/// A capture's share page file name.
pub fn page_name(token: &str) -> String {
    format!("{token}.html")
}

/// The public URLs of a capture (`None` without `PUBLIC_BASE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub page_url: String,
    pub image_url: String,
}

pub fn links(public_base: Option<&str>, token: &str) -> Option<Links> {
    let base = public_base?;
    Some(Links {
        page_url: format!("{base}{}", page_name(token)),
        image_url: format!("{base}{}", image_name(token)),
    })
}

impl Links {
    /// The link the SMS carries.
    pub fn sms_link(&self, which: SmsLink) -> &str {
        match which {
            SmsLink::Page => &self.page_url,
            SmsLink::Image => &self.image_url,
        }
    }
}

/// Whether what a capture's link points at is in remote storage. The page goes up right
/// after the photo, and a capture's remote file step is marked done only when both are up,
/// so one mark answers for either link. With no remote storage configured there is nothing
/// to wait for (the SMS goes at once too).
pub fn link_ready(row: &CaptureRow, remote_storage: bool) -> bool {
    !remote_storage || row.remote_file_ms.is_some()
}

/// The share link of a capture (`None` without a public base) and whether it works yet:
/// what capture answers, the status route and `/share` carry.
pub fn fields(app: &crate::app::App, row: &CaptureRow) -> (Option<String>, bool) {
    match links(app.config.public_base_url.as_deref(), &row.public_token) {
        Some(l) => (
            Some(l.page_url),
            link_ready(row, app.remotes.files.is_some()),
        ),
        None => (None, false),
    }
}

/// Why a share link cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("PUBLIC_BASE_URL is not set: captures have no public link to share")]
    NoPublicUrl,
}

/// Why a share template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must contain {{photo_url}}")]
    NoPhoto,
    #[error("unknown placeholder {{{0}}} (known: {list})", list = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder(String),
    #[error("must be at most {0} bytes")]
    TooLong(usize),
}

/// Largest template accepted (a page, not a site).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// The `{name}` placeholders of a template, in order: `name` is a lower-case letter then
/// lower-case letters, digits or `_`. Anything else between braces (CSS rules) is text.
fn placeholders(t: &str) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
    let bytes = t.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] == b'{' {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_lowercase()
                        || (j > i + 1 && (bytes[j].is_ascii_digit() || bytes[j] == b'_')))
                {
                    j += 1;
                }
                if j > i + 1 && j < bytes.len() && bytes[j] == b'}' {
                    i = j + 1;
                    return Some((start, j + 1, &t[start + 1..j]));
                }
            }
            i += 1;
        }
        None
    })
}

/// Checks an operator's template: `{photo_url}` present, every placeholder known.
pub fn check_template(t: &str) -> Result<(), TemplateError> {
    if t.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLong(MAX_TEMPLATE_BYTES));
    }
    let mut photo = false;
    for (_, _, name) in placeholders(t) {
        if !PLACEHOLDERS.contains(&name) {
            return Err(TemplateError::UnknownPlaceholder(name.to_string()));
        }
        photo |= name == "photo_url";
    }
    if photo {
        Ok(())
    } else {
        Err(TemplateError::NoPhoto)
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What a page shows, unescaped.
#[derive(Debug, Clone)]
pub struct PageValues {
    pub photo_url: String,
    pub download_url: String,
    pub expires: String,
    /// The event the capture belongs to, if any.
    pub event: Option<String>,
    pub operator: String,
    pub privacy_contact: String,
}

/// Fills `template` (already checked) with `values`, each HTML-escaped. A placeholder is
/// replaced once: a value that looks like one stays text.
pub fn render(template: &str, v: &PageValues) -> String {
    let title = match &v.event {
        Some(e) if !e.is_empty() => format!("Votre photo – {e}"),
        _ => "Votre photo".to_string(),
    };
    let mut out = String::with_capacity(template.len() + 512);
    let mut last = 0;
    for (start, end, name) in placeholders(template) {
        let value: &str = match name {
            "photo_url" => &v.photo_url,
            "download_url" => &v.download_url,
            "expires" => &v.expires,
            "event" => v.event.as_deref().unwrap_or(""),
            "operator" => &v.operator,
            "privacy_contact" => &v.privacy_contact,
            "title" => &title,
            _ => continue, // left as written (a checked template has none)
        };
        out.push_str(&template[last..start]);
        out.push_str(&escape(value));
        last = end;
    }
    out.push_str(&template[last..]);
    out
}

/// The template in force: the run-time setting, else the data directory's file (when it
/// passes the check; a bad one is logged and the built-in page is used), else the built-in.
pub fn template(settings: &RuntimeSettings, data_dir: &Path) -> String {
    if !settings.share_template.is_empty() {
        return settings.share_template.clone();
    }
    let path = data_dir.join(TEMPLATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => match check_template(&t) {
            Ok(()) => t,
            Err(e) => {
                tracing::warn!(path = %path.display(), "share template ignored: {e}");
                DEFAULT_TEMPLATE.to_string()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_TEMPLATE.to_string(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "share template unreadable: {e}");
            DEFAULT_TEMPLATE.to_string()
        }
    }
}

/// When a capture's files are removed: its creation plus the retention.
pub fn expires_ms(row: &CaptureRow, retention_days: u32) -> i64 {
    row.created_ms + i64::from(retention_days) * 86_400_000
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// The calendar date of `ms` on the kiosk's clock (`KIOSK_TZ`), in French ("6 janvier
/// 2027").
pub fn local_date(ms: i64, tz: &crate::localtime::LocalTz) -> String {
    let wall = tz.wall_ms(ms);
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(wall) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    format!("{} {month} {}", t.day(), t.year())
}

/// The page of `row`: what the sync uploads as `{token}.html`. The photo is linked
/// absolutely when the public base is known (Open Graph previews need it) and relatively
/// otherwise (the page sits beside the photo).
pub fn page_for(
    row: &CaptureRow,
    settings: &RuntimeSettings,
    public_base: Option<&str>,
    data_dir: &Path,
    tz: &crate::localtime::LocalTz,
    event: Option<String>,
) -> String {
    let image = image_name(&row.public_token);
    let photo_url = match public_base {
        Some(base) => format!("{base}{image}"),
        None => image.clone(),
    };
    let values = PageValues {
        download_url: photo_url.clone(),
        photo_url,
        expires: local_date(expires_ms(row, settings.retention_days), tz),
        event,
        operator: settings.operator_name.clone(),
        privacy_contact: settings.privacy_contact.clone(),
    };
    render(&template(settings, data_dir), &values)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn values() -> PageValues {
        PageValues {
            photo_url: "https://vps.example/uploads/t.jpg".into(),
            download_url: "https://vps.example/uploads/t.jpg".into(),
            expires: "6 janvier 2027".into(),
            event: None,
            operator: "<script>alert('x')</script> & Cie".into(),
            privacy_contact: "dpo@example.fr".into(),
        }
    }

    #[test]
    fn the_default_template_passes_its_own_check() {
        check_template(DEFAULT_TEMPLATE).unwrap();
        let page = render(DEFAULT_TEMPLATE, &values());
        assert!(page.contains(r#"<meta name="robots" content="noindex">"#));
        assert!(page
            .contains(r#"<meta property="og:image" content="https://vps.example/uploads/t.jpg">"#));
        assert!(page.contains("6 janvier 2027"));
        assert!(!page.to_lowercase().contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Cie"));
        let left: Vec<&str> = placeholders(&page).map(|(_, _, n)| n).collect();
        assert!(left.is_empty(), "placeholders left in the page: {left:?}");
    }

    #[test]
    fn templates_need_the_photo_and_known_placeholders_only() {
        assert_eq!(check_template("<p>hi</p>"), Err(TemplateError::NoPhoto));
        assert_eq!(
            check_template("<img src=\"{photo_url}\">{nope}"),
            Err(TemplateError::UnknownPlaceholder("nope".into()))
        );
        // CSS between braces is not a placeholder.
        check_template("<style>a{color:red} .e:empty{display:none}</style>{photo_url}").unwrap();
        assert!(check_template(&format!("{{photo_url}}{}", "x".repeat(70_000))).is_err());
    }

    #[test]
    fn values_are_escaped_and_not_expanded_again() {
        let mut v = values();
        v.event = Some("{photo_url}\"".into());
        let page = render("<h1>{event}</h1><img src=\"{photo_url}\">", &v);
        assert_eq!(
            page,
            "<h1>{photo_url}&quot;</h1><img src=\"https://vps.example/uploads/t.jpg\">"
        );
    }

    #[test]
    fn dates_are_french_and_links_by_token() {
        let utc = crate::localtime::LocalTz::utc();
        assert_eq!(local_date(1_798_761_600_000, &utc), "1 janvier 2027");
        assert_eq!(local_date(1_786_060_800_000, &utc), "7 août 2026");
        // Half an hour before midnight UTC is already the new year in Paris.
        let paris = crate::localtime::LocalTz::from_posix_rule("CET-1CEST,M3.5.0,M10.5.0/3")
            .expect("a POSIX rule");
        assert_eq!(local_date(1_798_759_800_000, &utc), "31 décembre 2026");
        assert_eq!(local_date(1_798_759_800_000, &paris), "1 janvier 2027");
        let l = links(Some("https://v.example/u/"), "abc").unwrap();
        assert_eq!(l.page_url, "https://v.example/u/abc.html");
        assert_eq!(l.sms_link(SmsLink::Image), "https://v.example/u/abc.jpg");
        assert_eq!(links(None, "abc"), None);
        assert_eq!(SmsLink::parse("page"), Some(SmsLink::Page));
        assert_eq!(SmsLink::parse("pdf"), None);
    }
}
