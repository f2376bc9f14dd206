//! The mail templates, one folder per language under `templates/mail/` (embedded at compile
//! time). Adding a language adds a folder with the same six files and one line in [`LANGUAGES`].
//! `.html` templates escape every value; the text ones print them as they are.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use guestlist_domain::mail::choose_language;

/// The languages with templates; the first is the fallback (contract §4.1: `en-US`).
pub const LANGUAGES: &[&str] = &["en-US", "de-DE"];

macro_rules! language {
    ($tag:literal) => {
        [
            (concat!($tag, "/invitation.subject.txt"), include_str!(concat!("../../templates/mail/", $tag, "/invitation.subject.txt"))),
            (concat!($tag, "/invitation.txt"), include_str!(concat!("../../templates/mail/", $tag, "/invitation.txt"))),
            (concat!($tag, "/invitation.html"), include_str!(concat!("../../templates/mail/", $tag, "/invitation.html"))),
            (
                concat!($tag, "/one_time_passcode.subject.txt"),
                include_str!(concat!("../../templates/mail/", $tag, "/one_time_passcode.subject.txt")),
            ),
            (concat!($tag, "/one_time_passcode.txt"), include_str!(concat!("../../templates/mail/", $tag, "/one_time_passcode.txt"))),
            (concat!($tag, "/one_time_passcode.html"), include_str!(concat!("../../templates/mail/", $tag, "/one_time_passcode.html"))),
        ]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // Keep the text exactly as written in the files (a trailing newline ends the subject file).
    env.set_keep_trailing_newline(false);
    for (name, source) in language!("en-US").into_iter().chain(language!("de-DE")) {
        env.add_template(name, source).expect("the embedded mail templates parse");
    }
    env
});

/// A rendered message in one language.
#[derive(Clone, PartialEq)]
pub struct Rendered {
    pub language: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The bodies hold the redeem link or the one-time passcode: `Debug` leaves them out.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("language", &self.language)
            .field("subject", &self.subject)
            .field("text", &guestlist_identity::REDACTED)
            .field("html", &guestlist_identity::REDACTED)
            .finish()
    }
}

/// What the invitation email says (contract §4.1).
#[derive(Debug, Clone, Serialize)]
pub struct InvitationContent<'a> {
    pub inviter: &'a str,
    pub organization: &'a str,
    pub domain: &'a str,
    /// `customizedMessageBody`: plain text, never interpreted.
    pub message: Option<&'a str>,
    pub redeem_url: &'a str,
    pub redirect_url: &'a str,
    pub unsubscribe_url: &'a str,
}

/// What the one-time passcode email says (contract §4.5).
#[derive(Clone, Serialize)]
pub struct PasscodeContent<'a> {
    pub organization: &'a str,
    pub code: &'a str,
    pub minutes: u32,
}

pub fn language_for(requested: &[Option<&str>]) -> &'static str {
    choose_language(requested, LANGUAGES)
}

pub fn invitation(language: &'static str, content: &InvitationContent<'_>) -> Result<Rendered, minijinja::Error> {
    render(language, "invitation", content)
}

pub fn one_time_passcode(language: &'static str, content: &PasscodeContent<'_>) -> Result<Rendered, minijinja::Error> {
    render(language, "one_time_passcode", content)
}

fn render(language: &'static str, kind: &str, content: &impl Serialize) -> Result<Rendered, minijinja::Error> {
    let value = minijinja::Value::from_serialize(content);
    let subject = TEMPLATES.get_template(&format!("{language}/{kind}.subject.txt"))?.render(&value)?;
    // A subject is one line, whatever a display name holds.
    let subject = subject.split(['\r', '\n']).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ");
    let context = minijinja::context! { subject => subject.clone(), ..value };
    let text = TEMPLATES.get_template(&format!("{language}/{kind}.txt"))?.render(&context)?;
    let html = TEMPLATES.get_template(&format!("{language}/{kind}.html"))?.render(&context)?;
    Ok(Rendered { language, subject, text, html })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(message: Option<&'static str>) -> InvitationContent<'static> {
        InvitationContent {
            inviter: "Contoso",
            organization: "Contoso",
            domain: "contoso.onmicrosoft.com",
            message,
            redeem_url: "https://guests.example/redeem?tenant=t&user=u&ticket=abc&ver=2.0",
            redirect_url: "https://myapps.microsoft.com",
            unsubscribe_url: "https://guests.example/unsubscribe?token=xyz",
        }
    }

    #[test]
    fn every_language_renders_every_template() {
        for language in LANGUAGES {
            let mail = invitation(language, &content(Some("hi"))).unwrap();
            assert!(mail.text.contains("ticket=abc") && mail.html.contains("ticket=abc"), "{language}");
            assert!(mail.html.contains("unsubscribe?token=xyz") && mail.text.contains("unsubscribe?token=xyz"));
            let code = one_time_passcode(language, &PasscodeContent { organization: "Contoso", code: "12345678", minutes: 30 }).unwrap();
            assert!(code.text.contains("12345678") && code.html.contains("12345678") && code.subject.contains("Contoso"));
        }
    }

    #[test]
    fn debug_of_rendered_mail_leaves_out_the_link_and_the_code() {
        let invitation = invitation("en-US", &content(None)).unwrap();
        let code = one_time_passcode("en-US", &PasscodeContent { organization: "Contoso", code: "12345678", minutes: 30 }).unwrap();
        let shown = format!("{invitation:?} {code:?}");
        assert!(!shown.contains("ticket=abc") && !shown.contains("token=xyz") && !shown.contains("12345678"), "{shown}");
        assert!(shown.contains("text: [redacted]") && shown.contains(&invitation.subject), "{shown}");
    }

    #[test]
    fn the_custom_message_is_escaped_in_html_and_kept_in_text() {
        let mail = invitation("en-US", &content(Some("<b>Welcome</b> & \"hi\""))).unwrap();
        assert!(mail.text.contains("<b>Welcome</b> & \"hi\""));
        assert!(mail.html.contains("&lt;b&gt;Welcome&lt;&#x2f;b&gt; &amp; &quot;hi&quot;"), "{}", mail.html);
        assert!(!mail.html.contains("<b>Welcome"));
        assert_eq!(mail.subject, "Contoso invited you to access applications within their organization");
        let without = invitation("en-US", &content(None)).unwrap();
        assert!(!without.text.contains("Message from"));
    }

    #[test]
    fn a_subject_stays_on_one_line() {
        let mail = invitation("de-DE", &InvitationContent { inviter: "Evil\r\nBcc: x@example.com", ..content(None) }).unwrap();
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        assert!(mail.subject.starts_with("Evil Bcc: x@example.com hat Sie eingeladen"));
    }
}
