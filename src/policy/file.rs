//! The policy's shape in the TOML config file: `[policy]`, `[sets]` and `[[route]]`. Only
//! parsing here; [`compile`](super::compile) turns it into rules.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The keys of the config file the policy reads; the rest belongs to the settings.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct PolicyFile {
    pub policy: Option<Spanned<PolicySection>>,
    #[serde(default)]
    pub sets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub route: Vec<Spanned<RouteFile>>,
}

/// `[policy]`: who is trusted, which domains are ours, the default, the script.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PolicySection {
    pub domains: Option<Vec<String>>,
    pub trusted: Option<Vec<String>>,
    pub default: Option<RouteFile>,
    pub script: Option<String>,
    pub script_fallback: Option<RouteFile>,
    pub script_instructions: Option<u32>,
    pub script_memory: Option<usize>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A text test: `"exact"`, `["any", "of"]`, or `{ prefix | suffix | regex | set = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum TextFile {
    Exact(String),
    AnyOf(Vec<String>),
    Table(TextTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextTable {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub regex: Option<String>,
    pub set: Option<String>,
}

/// A header test: `{ name = "X-Foo", equals | contains | regex = "...", present = bool }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderFile {
    pub name: String,
    pub present: Option<bool>,
    pub equals: Option<String>,
    pub contains: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum HeadersFile {
    One(HeaderFile),
    Many(Vec<HeaderFile>),
}

/// A redirect target: `"sip:uri"` or `{ uri = "sip:...", q = 0.5 }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ContactFile {
    Uri(String),
    Table { uri: String, q: Option<f32> },
}

/// One `[[route]]`: match keys, an action and its parameters, modifiers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RouteFile {
    pub name: Option<String>,
    // Matches.
    pub method: Option<OneOrMany>,
    pub uri_user: Option<TextFile>,
    pub uri_host: Option<TextFile>,
    pub from_user: Option<TextFile>,
    pub from_host: Option<TextFile>,
    pub to_user: Option<TextFile>,
    pub to_host: Option<TextFile>,
    pub source: Option<OneOrMany>,
    pub transport: Option<OneOrMany>,
    pub listener: Option<OneOrMany>,
    pub header: Option<HeadersFile>,
    pub in_dialog: Option<bool>,
    pub size_above: Option<usize>,
    pub size_at_most: Option<usize>,
    pub not: Option<Box<RouteFile>>,
    // The action.
    pub action: Option<String>,
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub headers: Option<Vec<String>>,
    pub to: Option<String>,
    pub contacts: Option<Vec<ContactFile>>,
    pub realm: Option<String>,
    pub function: Option<String>,
    // Modifiers.
    pub strip: Option<u8>,
    pub prefix: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub request_uri: Option<String>,
    pub add_headers: Option<Vec<String>>,
    pub remove_headers: Option<Vec<String>>,
    pub record_route: Option<bool>,
    pub rewrite_contacts: Option<bool>,
    pub media: Option<bool>,
}
