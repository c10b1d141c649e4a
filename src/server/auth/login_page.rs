//! The sign-in pages: plain HTML forms, no script, every value that came
//! from the request escaped. Served with a policy that lets them load
//! nothing, be framed by no one, and post only to this server (and, for
//! the authorization page, redirect to the client's loopback origin:
//! browsers apply `form-action` to the redirect that follows a post).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `s` safe inside HTML text and double-quoted attributes.
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

const STYLE: &str = "body{font-family:sans-serif;max-width:26em;margin:3em auto;padding:0 1em}\
label{display:block;margin-top:1em}input{width:100%;padding:.4em;box-sizing:border-box}\
button{margin-top:1.2em;padding:.5em 1.2em}.error{color:#a00}.note{color:#555}\
.warning{color:#a00}dt{font-weight:bold;margin-top:.6em}dd{margin-left:1em}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head>\n<body><h1>{t}</h1>\n{body}</body></html>\n",
        t = escape(title)
    )
}

/// A sign-in form.
pub struct SignInForm<'a> {
    pub title: &'a str,
    /// The path it posts to.
    pub action: &'a str,
    /// A line under the title (escaped here).
    pub intro: &'a str,
    /// Parameters carried along unseen.
    pub hidden: Vec<(&'a str, &'a str)>,
    pub error: Option<&'a str>,
    /// The device flow offers to deny.
    pub deny: bool,
    /// What is being approved: (label, lines), each escaped here.
    pub about: Vec<(&'a str, Vec<String>)>,
    /// A caution above the form (escaped here).
    pub warning: Option<&'a str>,
}

impl SignInForm<'_> {
    pub fn html(&self) -> String {
        let mut b = String::new();
        b.push_str(&format!("<p class=\"note\">{}</p>\n", escape(self.intro)));
        if let Some(e) = self.error {
            b.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>\n",
                escape(e)
            ));
        }
        if let Some(w) = self.warning {
            b.push_str(&format!(
                "<p class=\"warning\"><strong>{}</strong></p>\n",
                escape(w)
            ));
        }
        if !self.about.is_empty() {
            b.push_str("<dl>\n");
            for (label, lines) in &self.about {
                b.push_str(&format!("<dt>{}</dt>\n", escape(label)));
                for l in lines {
                    b.push_str(&format!("<dd>{}</dd>\n", escape(l)));
                }
            }
            b.push_str("</dl>\n");
        }
        b.push_str(&format!(
            "<form method=\"post\" action=\"{}\">\n",
            escape(self.action)
        ));
        for (name, value) in &self.hidden {
            b.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            ));
        }
        b.push_str(
            "<label>Login<input name=\"login\" autocomplete=\"username\" autocapitalize=\"none\" required></label>\n\
             <label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\n\
             <label>Authenticator code (if you use one)<input name=\"totp\" inputmode=\"numeric\" \
             autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\"></label>\n",
        );
        if self.deny {
            b.push_str(
                "<button type=\"submit\" name=\"action\" value=\"approve\">Sign in</button> \
                 <button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button>\n",
            );
        } else {
            b.push_str("<button type=\"submit\">Sign in</button>\n");
        }
        b.push_str("</form>\n");
        document(self.title, &b)
    }
}

/// The device flow's first step: the code alone, sent back as a GET, so
/// that the next page says what the code is for before a password is
/// typed.
pub fn code_form(
    title: &str,
    intro: &str,
    code: &str,
    error: Option<&str>,
    warning: &str,
) -> String {
    let mut b = format!("<p class=\"note\">{}</p>\n", escape(intro));
    if let Some(e) = error {
        b.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(e)
        ));
    }
    b.push_str(&format!(
        "<p class=\"warning\"><strong>{}</strong></p>\n\
         <form method=\"get\" action=\"/auth/device/verify\">\n\
         <label>Code shown in your terminal<input name=\"user_code\" value=\"{}\" \
         autocomplete=\"off\" autocapitalize=\"characters\" required></label>\n\
         <button type=\"submit\">Continue</button>\n</form>\n",
        escape(warning),
        escape(code)
    ));
    document(title, &b)
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> String {
    document(title, &format!("<p>{}</p>\n", escape(text)))
}

/// An HTML answer with the pages' headers; `redirect_origin` is added to
/// `form-action` (see the module's note).
pub fn respond(status: StatusCode, html: String, redirect_origin: Option<&str>) -> Response {
    let csp = match redirect_origin {
        Some(o) => format!("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {o}"),
        None => "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'".to_string(),
    };
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflected_values_are_escaped() {
        let page = SignInForm {
            title: "Sign in",
            action: "/auth/authorize",
            intro: "<b>",
            hidden: vec![("state", "\"><script>alert(1)</script>'")],
            error: Some("a & b"),
            deny: false,
            about: vec![("From <i>", vec!["<img src=x>".to_string()])],
            warning: Some("<u>"),
        }
        .html();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img") && !page.contains("<i>") && !page.contains("<u>"));
        assert!(page.contains("From &lt;i&gt;") && page.contains("&lt;img src=x&gt;"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;"));
        assert!(page.contains("&lt;b&gt;") && page.contains("a &amp; b"));

        let page = code_form("T", "<b>", "\"><script>", Some("<i>"), "<u>");
        assert!(!page.contains("<script>") && !page.contains("<i>") && !page.contains("<u>"));
        assert!(
            page.contains("value=\"&quot;&gt;&lt;script&gt;\""),
            "{page}"
        );
        assert!(page.contains("method=\"get\"") && !page.contains("password"));
    }
}
