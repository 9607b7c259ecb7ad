//! What the authorization and logout requests share as `application/x-www-form-urlencoded`
//! parameters (a query or a form body): each known name taken once, a repeated one noticed (RFC
//! 6749 §3.1: "Request and response parameters MUST NOT be included more than once"), unknown
//! ones ignored; and the request written back for a hosted form to carry to its next step.

use std::borrow::Cow;

/// A request's parameters: where each known name goes, and the list of repeated names.
pub trait RequestParams: Default {
    /// The field of parameter `name`, `None` for a name the request ignores.
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>>;
    fn repeated(&mut self) -> &mut Vec<String>;
}

/// The parameters of `pairs` (a decoded query or form).
pub fn from_pairs<'a, P: RequestParams>(pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>) -> P {
    let mut params = P::default();
    for (name, value) in pairs {
        let Some(slot) = params.slot(&name) else { continue };
        if slot.is_some() {
            params.repeated().push(name.into_owned());
        } else {
            *slot = Some(value.into_owned());
        }
    }
    params
}

/// The parameters of `text`, a query string or a form body.
pub fn from_urlencoded<P: RequestParams>(text: &str) -> P {
    from_pairs(form_urlencoded::parse(text.as_bytes()))
}

/// `fields` that have a value, form-encoded in their order.
pub fn to_urlencoded(fields: &[(&str, Option<&str>)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        if let Some(value) = value {
            out.append_pair(name, value);
        }
    }
    out.finish()
}
