//! The page's files, embedded in the crate: no CDN, no build step, works
//! offline. The page itself (`assets/`) is one HTML file, one script and
//! one stylesheet; it renders every value from the API as text.

const INDEX_HTML: &str = include_str!("assets/index.html");
const PORTAL_JS: &str = include_str!("assets/portal.js");
const PORTAL_CSS: &str = include_str!("assets/portal.css");

/// The asset at `path` (below the prefix), if there is one.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/" => ("text/html; charset=utf-8", INDEX_HTML),
        "/portal.js" => ("text/javascript; charset=utf-8", PORTAL_JS),
        "/portal.css" => ("text/css; charset=utf-8", PORTAL_CSS),
        _ => return None,
    })
}
