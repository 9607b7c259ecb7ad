//! What each message says, in plain text and HTML: the service's name (`auth.display_name`),
//! what happened, and the link when there is one. No images, no tracking, nothing but the
//! recipient's own address in `To`.

use super::MailKind;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a message needs besides its kind.
pub struct Context<'a> {
    pub display_name: &'a str,
    pub link: Option<&'a str>,
    /// The new address of an address change.
    pub detail: Option<&'a str>,
    /// Lifetime of the link, in seconds.
    pub ttl_secs: u64,
}

/// A lifetime as people say it: "15 minutes", "1 hour", "24 hours", "2 days"; whole days from
/// 48 hours on, whole hours from 1 hour on, otherwise minutes — rounded down (at least one), so a
/// link never promises more time than it has.
pub fn human_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    let (day, hour) = (86_400, 3_600);
    if secs >= 2 * day && secs.is_multiple_of(day) {
        plural(secs / day, "day")
    } else if secs >= hour && secs.is_multiple_of(hour) {
        plural(secs / hour, "hour")
    } else {
        plural((secs / 60).max(1), "minute")
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Paragraphs before the link, the link's label, and paragraphs after it.
fn wording(kind: MailKind, cx: &Context<'_>) -> (String, Vec<String>, &'static str, Vec<String>) {
    let name = cx.display_name;
    let ignore = "If you did not ask for this, ignore this message; nothing changes.".to_string();
    let valid = format!("The link works once, for {}.", human_duration(cx.ttl_secs));
    match kind {
        // A decoy is never sent; it is worded as the reset mail it stands in for.
        MailKind::Reset | MailKind::ResetRequest | MailKind::Decoy => (
            format!("Reset your {name} password"),
            vec![format!("Someone (hopefully you) asked to reset the password of your {name} account.")],
            "Choose a new password",
            vec![valid, ignore],
        ),
        MailKind::Verify => (
            format!("Confirm your email address for {name}"),
            vec![format!("Please confirm that this address belongs to your {name} account.")],
            "Confirm this address",
            vec![valid, ignore],
        ),
        MailKind::Change => (
            format!("Confirm your new email address for {name}"),
            vec![format!("Someone (hopefully you) asked to use this address for their {name} account.")],
            "Confirm the new address",
            vec![format!("{valid} Until then, the account keeps its old address."), ignore],
        ),
        MailKind::PasswordChanged => (
            format!("Your {name} password was changed"),
            vec![
                format!("The password of your {name} account was just reset, and every sign-in was ended."),
                "If this was not you, reset your password again at once and tell your administrator.".into(),
            ],
            "",
            vec![],
        ),
        MailKind::EmailChanging => (
            format!("Your {name} email address is being changed"),
            vec![
                format!(
                    "Someone signed in to your {name} account asked to change its address to {}.",
                    cx.detail.unwrap_or("another address")
                ),
                "The change happens only when the new address confirms it.".into(),
                "If this was not you, change your password and tell your administrator.".into(),
            ],
            "",
            vec![],
        ),
        MailKind::Test => (
            format!("Test message from {name}"),
            vec![format!("This message was sent by `portcullis mail test`: mail from {name} reaches you.")],
            "",
            vec![],
        ),
    }
}

/// The message of `kind`.
pub fn render(kind: MailKind, cx: &Context<'_>) -> Rendered {
    let (subject, before, label, after) = wording(kind, cx);
    let mut text = String::new();
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em\">\n",
        escape(&subject)
    );
    for p in &before {
        text.push_str(p);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    if let (Some(link), false) = (cx.link, label.is_empty()) {
        text.push_str(&format!("{label}:\n{link}\n\n"));
        html.push_str(&format!("<p><a href=\"{0}\">{1}</a></p>\n<p>{0}</p>\n", escape(link), escape(label)));
    }
    for p in &after {
        text.push_str(p);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    text.push_str(&format!("-- \n{}\n", cx.display_name));
    html.push_str("</body></html>\n");
    Rendered { subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_mail_carries_the_link_in_both_parts_and_escapes_html() {
        let cx = Context {
            display_name: "A<b>",
            link: Some("https://x.example/reset-password?token=t&u"),
            detail: None,
            ttl_secs: 900,
        };
        let mail = render(MailKind::Reset, &cx);
        assert!(mail.text.contains("https://x.example/reset-password?token=t&u"));
        assert!(mail.html.contains("token=t&amp;u") && mail.html.contains("A&lt;b&gt;"));
        assert!(!mail.html.contains("<img"));
        assert!(mail.text.contains("for 15 minutes."));
    }

    #[test]
    fn link_lifetimes_read_as_people_say_them() {
        let cases = [
            (900, "15 minutes"),
            (60, "1 minute"),
            (1, "1 minute"),
            (90, "1 minute"),
            (3_600, "1 hour"),
            (5_400, "90 minutes"),
            (86_400, "24 hours"),
            (172_800, "2 days"),
            (7 * 86_400, "7 days"),
        ];
        for (secs, said) in cases {
            assert_eq!(human_duration(secs), said, "{secs} s");
        }
        for kind in [MailKind::Verify, MailKind::Change] {
            let cx =
                Context { display_name: "P", link: Some("https://x/confirm?token=t"), detail: None, ttl_secs: 86_400 };
            let mail = render(kind, &cx);
            assert!(mail.text.contains("for 24 hours.") && !mail.text.contains("1440"), "{}", mail.text);
        }
    }
}
