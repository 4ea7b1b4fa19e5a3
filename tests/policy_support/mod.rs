//! Policies of any size for the allocation test and the benches: `n - 1` rules that the
//! INVITE vector (from 10.0.0.1 to bob@10.0.0.7) fails, each after a few tests, then one it
//! matches (proxy to the registrar with a prefix and an added header). Also the requests the
//! worked example's tests send, in memory and to the binary.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use ferrovia::policy::{CompileOptions, Policy, compile_str};

/// A request to `uri` from `from` (`sip:{from_user}@a.example`), numbered `n` in its branch,
/// tag, Call-ID and CSeq; `extra` header lines go before Content-Length.
pub fn request(
    method: &str,
    uri: &str,
    from: impl std::fmt::Display,
    from_user: &str,
    n: u32,
    extra: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{n};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:{from_user}@a.example>;tag=t{n}\r\nTo: <{uri}>\r\n\
Call-ID: policy-{n}\r\nCSeq: {n} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The Request-URI of a request's text.
pub fn request_uri(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.split(' ').nth(1).unwrap_or_default().to_owned()
}

/// The text of an `n`-rule policy.
pub fn policy_text(n: usize) -> String {
    let mut text = String::from(
        "[policy]\ndomains = [\"edge.example\", \"biloxi.example.com\"]\ntrusted = [\"192.0.2.0/24\"]\n\n\
         [sets]\npeers = [\"198.51.100.0/24\", \"203.0.113.0/24\"]\n\n",
    );
    for i in 0..n.saturating_sub(1) {
        let rule = match i % 8 {
            0 => format!(
                "method = [\"INVITE\", \"MESSAGE\"]\nuri-user = {{ prefix = \"900{i}\" }}\naction = \"reject\"\ncode = 403"
            ),
            1 => format!(
                "uri-user = {{ regex = \"^\\\\+44{i}[0-9]+$\" }}\naction = \"proxy\"\nto = \"sip:10.0.0.8:5060\""
            ),
            2 => format!(
                "header = {{ name = \"X-Route-{i}\", equals = \"yes\" }}\naction = \"drop\""
            ),
            3 => format!(
                "method = \"INVITE\"\nfrom-host = {{ suffix = \".blocked{i}.example\" }}\naction = \"reject\"\ncode = 403"
            ),
            4 => format!("source = [\"peers\", \"172.16.{i}.0/24\"]\naction = \"proxy\""),
            5 => format!(
                "method = \"INVITE\"\nto-user = [\"carol{i}\", \"dave{i}\"]\naction = \"redirect\"\ncontacts = [\"sip:carol@10.0.0.{}\"]",
                i % 250
            ),
            6 => "size-above = 60000\naction = \"reject\"\ncode = 513".to_string(),
            _ => format!(
                "method = \"INVITE\"\nuri-host = {{ set = \"ours\" }}\nuri-user = \"user{i}\"\naction = \"accept\""
            ),
        };
        text.push_str(&format!("[[route]]\nname = \"rule-{i}\"\n{rule}\n\n"));
    }
    text.push_str(
        "[[route]]\nname = \"to-registrar\"\nmethod = [\"INVITE\", \"REGISTER\"]\nsource = \"10.0.0.0/8\"\n\
         action = \"proxy\"\nto = \"sip:10.0.0.9:5060\"\nprefix = \"00\"\nadd-headers = [\"X-Edge: 1\"]\n",
    );
    text
}

/// The compiled `n`-rule policy.
pub fn policy(n: usize) -> Policy {
    compile_str(
        &policy_text(n),
        Path::new("generated.toml"),
        &CompileOptions::new(1),
    )
    .expect("the generated policy compiles")
}
