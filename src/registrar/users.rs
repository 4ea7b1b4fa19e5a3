//! The users file: who may register and place calls, with their digest secrets.
//!
//! One entry per line, `user:realm:kind:value`; `#` starts a comment line.
//! - `kind` `MD5` or `SHA-256`: `value` is that algorithm's HA1 in hex
//!   (`H(user:realm:password)`, RFC 2617 §3.2.2.2) — what `ferrovia passwd` writes;
//! - `kind` `password`: `value` is the password itself, hashed for every algorithm at load.
//!
//! Lookups take the user name as received and never allocate. Only entries for the
//! configured realm are accepted: an HA1 is bound to its realm.

use std::collections::HashMap;
use std::fmt;

use super::digest::{Algorithm, Hex};

/// One user's HA1 per algorithm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    md5: Option<Hex>,
    sha256: Option<Hex>,
}

impl Secrets {
    /// HA1 for `algorithm`, when the file gave one (or a password).
    pub fn ha1(&self, algorithm: Algorithm) -> Option<&Hex> {
        match algorithm {
            Algorithm::Md5 => self.md5.as_ref(),
            Algorithm::Sha256 => self.sha256.as_ref(),
        }
    }

    fn set(&mut self, algorithm: Algorithm, ha1: Hex) {
        match algorithm {
            Algorithm::Md5 => self.md5 = Some(ha1),
            Algorithm::Sha256 => self.sha256 = Some(ha1),
        }
    }
}

/// The users of one realm.
#[derive(Clone, Debug, Default)]
pub struct Users {
    realm: String,
    users: HashMap<Box<[u8]>, Secrets>,
}

/// A line of the users file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsersError {
    pub line: usize,
    pub why: String,
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

impl std::error::Error for UsersError {}

impl Users {
    /// No users (every credential is refused).
    pub fn empty(realm: &str) -> Users {
        Users {
            realm: realm.to_owned(),
            users: HashMap::new(),
        }
    }

    /// Parses the file's text for `realm`.
    pub fn parse(text: &str, realm: &str) -> Result<Users, UsersError> {
        let mut users = Users::empty(realm);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| UsersError {
                line: i + 1,
                why: why.to_owned(),
            };
            let mut fields = line.splitn(4, ':');
            let (Some(user), Some(line_realm), Some(kind), Some(value)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected user:realm:kind:value"));
            };
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            if line_realm != realm {
                return Err(bad(&format!(
                    "realm {line_realm:?} is not the configured realm {realm:?}"
                )));
            }
            let secrets = users.users.entry(user.as_bytes().into()).or_default();
            if kind.eq_ignore_ascii_case("password") {
                for alg in Algorithm::ALL {
                    secrets.set(
                        alg,
                        alg.ha1(user.as_bytes(), realm.as_bytes(), value.as_bytes()),
                    );
                }
                continue;
            }
            let alg = Algorithm::parse(kind.as_bytes())
                .ok_or_else(|| bad("kind must be MD5, SHA-256 or password"))?;
            let ha1 = Hex::parse(alg, value.as_bytes())
                .ok_or_else(|| bad(&format!("expected {} hex digits", alg.hex_len())))?;
            secrets.set(alg, ha1);
        }
        Ok(users)
    }

    /// The realm these users belong to.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A user's secrets by the name a request gave.
    pub fn get(&self, user: &[u8]) -> Option<&Secrets> {
        self.users.get(user)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The lines `ferrovia passwd` writes for `user`: one HA1 per algorithm.
pub fn entry_lines(user: &str, realm: &str, password: &str) -> String {
    Algorithm::ALL
        .iter()
        .map(|alg| {
            let ha1 = alg.ha1(user.as_bytes(), realm.as_bytes(), password.as_bytes());
            format!(
                "{user}:{realm}:{}:{}\n",
                alg.name(),
                String::from_utf8_lossy(ha1.as_bytes())
            )
        })
        .collect()
}

/// `text` with every entry of `user` in `realm` replaced by `lines` (appended when absent).
pub fn replace_entry(text: &str, user: &str, realm: &str, lines: &str) -> String {
    let prefix = format!("{user}:{realm}:");
    let mut out: String = text
        .lines()
        .filter(|l| !l.trim().starts_with(&prefix))
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str(lines);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_entries_and_passwords_are_read() {
        let text = "# users\n\nalice:edge.example:password:alice-secret\n\
                    bob:edge.example:MD5:0123456789ABCDEF0123456789abcdef\n";
        let users = Users::parse(text, "edge.example").unwrap();
        assert_eq!(users.len(), 2);
        let alice = users.get(b"alice").unwrap();
        let want = Algorithm::Md5.ha1(b"alice", b"edge.example", b"alice-secret");
        assert_eq!(alice.ha1(Algorithm::Md5), Some(&want));
        assert!(alice.ha1(Algorithm::Sha256).is_some());
        let bob = users.get(b"bob").unwrap();
        assert_eq!(
            bob.ha1(Algorithm::Md5).unwrap().as_bytes(),
            b"0123456789abcdef0123456789abcdef"
        );
        assert!(bob.ha1(Algorithm::Sha256).is_none());
        assert!(users.get(b"Alice").is_none());
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, line) in [
            ("alice:edge.example:MD5\n", 1),
            ("# c\nalice:other:password:x\n", 2),
            ("alice:edge.example:SHA-1:00\n", 1),
            ("alice:edge.example:MD5:00\n", 1),
            (":edge.example:password:x\n", 1),
        ] {
            let err = Users::parse(text, "edge.example").unwrap_err();
            assert_eq!(err.line, line, "{text}: {err}");
        }
    }

    #[test]
    fn passwd_lines_parse_back_and_replace_the_old_ones() {
        let lines = entry_lines("carol", "edge.example", "carol-secret");
        let users = Users::parse(&lines, "edge.example").unwrap();
        let carol = users.get(b"carol").unwrap();
        let want = Algorithm::Sha256.ha1(b"carol", b"edge.example", b"carol-secret");
        assert_eq!(carol.ha1(Algorithm::Sha256), Some(&want));
        let old = "# keep\nalice:edge.example:password:a\ncarol:edge.example:password:old\n";
        let new = replace_entry(old, "carol", "edge.example", &lines);
        assert!(new.starts_with("# keep\nalice:edge.example:password:a\n"));
        assert!(!new.contains("old"));
        let users = Users::parse(&new, "edge.example").unwrap();
        assert_eq!(users.get(b"carol").unwrap(), carol);
    }
}
