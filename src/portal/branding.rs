//! The host's branding of the portal page (title, logo, accent colour) and
//! the checks that keep each value harmless wherever the page puts it.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Longest title, in characters.
const MAX_TITLE_CHARS: usize = 100;
/// Longest logo URL, in bytes.
const MAX_LOGO_URL_LEN: usize = 2048;

/// The branding the page reads from `GET {prefix}/api/v1/branding`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Branding {
    pub(crate) title: String,
    pub(crate) logo_url: Option<String>,
    pub(crate) accent_color: String,
}

impl Branding {
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |setting, reason: &str| {
            Err(Error::InvalidConfig {
                setting,
                reason: reason.to_string(),
            })
        };
        let chars = self.title.chars().count();
        if self.title.trim().is_empty() || chars > MAX_TITLE_CHARS {
            return invalid("title", "1 to 100 characters");
        }
        if self.title.chars().any(char::is_control) {
            return invalid("title", "no control characters");
        }
        if let Some(url) = &self.logo_url {
            if !logo_url_ok(url) {
                return invalid(
                    "logo_url",
                    "an http(s):// URL or a path starting with / (at most 2048 bytes, no \
                     quotes, spaces, angle brackets, parentheses or backslashes)",
                );
            }
        }
        if !color_ok(&self.accent_color) {
            return invalid("accent_color", "a hex colour: #rgb or #rrggbb");
        }
        Ok(())
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "title": self.title,
            "logo_url": self.logo_url,
            "accent_color": self.accent_color,
        })
    }
}

/// An `https://` (or `http://`, which the page's Content-Security-Policy
/// then allows only from the portal's own origin) URL with a host, or a
/// same-origin path; nothing that could
/// end an attribute or a CSS `url()` (quotes, spaces, `<>`, `\`, `()`), and
/// no scheme that runs code (`javascript:`, `data:`).
fn logo_url_ok(url: &str) -> bool {
    let safe_chars = url.bytes().all(|b| {
        b.is_ascii_graphic()
            && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'\\' | b'(' | b')' | b'`')
    });
    if url.is_empty() || url.len() > MAX_LOGO_URL_LEN || !safe_chars {
        return false;
    }
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        return !host.is_empty() && !host.contains('@') && url.parse::<http::Uri>().is_ok();
    }
    // A path on the host's own site; `//` would be another host.
    url.starts_with('/') && !url.starts_with("//") && url.parse::<http::Uri>().is_ok()
}

fn color_ok(c: &str) -> bool {
    let Some(hex) = c.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `frame-ancestors` source list: `'none'`, or `'self'` and origins
/// (`https://host[:port]`, `http://…`, with an optional `*.` host
/// wildcard), separated by spaces.
pub(crate) fn frame_ancestors_ok(list: &str) -> bool {
    if list == "'none'" {
        return true;
    }
    let mut any = false;
    for source in list.split(' ') {
        any = true;
        if source == "'self'" {
            continue;
        }
        let Some(host) = source
            .strip_prefix("https://")
            .or_else(|| source.strip_prefix("http://"))
        else {
            return false;
        };
        let host = host.strip_prefix("*.").unwrap_or(host);
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !ok {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding(title: &str, logo: Option<&str>, color: &str) -> Branding {
        Branding {
            title: title.into(),
            logo_url: logo.map(String::from),
            accent_color: color.into(),
        }
    }

    #[test]
    fn values_that_could_break_out_are_refused() {
        assert!(
            branding("Acme", Some("https://cdn.acme.example/l.svg"), "#0a7")
                .validate()
                .is_ok()
        );
        assert!(branding("Acme", Some("/static/logo.png"), "#00AA77")
            .validate()
            .is_ok());
        for logo in [
            "javascript:alert(1)",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "https://x\" onerror=\"alert(1)",
            "//evil.example/x.png",
            "https://user@evil.example/x",
            "https://",
            "https://a.example/x) ; background:url(y",
        ] {
            assert!(
                branding("A", Some(logo), "#000").validate().is_err(),
                "{logo}"
            );
        }
        for color in ["red", "#12", "#1234", "#gggggg", "#000;x", "#000000 ", ""] {
            assert!(branding("A", None, color).validate().is_err(), "{color}");
        }
        assert!(branding("", None, "#000").validate().is_err());
        assert!(branding("a\nb", None, "#000").validate().is_err());
    }

    #[test]
    fn frame_ancestors_are_sources_only() {
        assert!(frame_ancestors_ok("'none'"));
        assert!(frame_ancestors_ok(
            "'self' https://app.acme.example https://*.acme.example:8443"
        ));
        for bad in [
            "",
            "*",
            "'none'; script-src *",
            "https://a.example,b",
            "'unsafe-inline'",
            "a b",
        ] {
            assert!(!frame_ancestors_ok(bad), "{bad}");
        }
    }
}
