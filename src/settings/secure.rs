//! The `[tls]` and `[websocket]` settings: where the certificates are, who may connect, and
//! the handshake limits of the TLS, WS and WSS listeners (RFC 5922, RFC 6455, RFC 7118).
//!
//! Only paths and names are kept here; the runtime reads the PEM files when it starts, so a
//! bad file is reported with its path before any listener opens.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{SettingsError, parse_duration};

/// The lowest TLS version accepted and offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsVersion {
    #[default]
    V1_2,
    V1_3,
}

/// The `[tls]` table: used by `tls:` and `wss:` listeners and by outbound TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chains, the first the default (an SNI name matching none gets it).
    pub certificates: Vec<(PathBuf, PathBuf)>,
    /// PEM CA bundle: verifies clients (with `verify_client`) and, besides the system roots,
    /// the servers this proxy connects to.
    pub ca: Option<PathBuf>,
    /// Mutual TLS on `tls:` listeners (never asked of browsers on `wss:`).
    pub verify_client: bool,
    /// With `verify_client`: the names (DNS subject alternative names) a client certificate
    /// must carry one of; empty: any certificate that chains to `ca`.
    pub allowed_clients: Vec<String>,
    pub min_version: TlsVersion,
    /// A TLS handshake must complete within this time.
    pub handshake_timeout: Duration,
    /// Verify next hops against the system's trusted roots as well as `ca`.
    pub system_roots: bool,
}

impl Default for TlsSettings {
    fn default() -> TlsSettings {
        TlsSettings {
            certificates: Vec::new(),
            ca: None,
            verify_client: false,
            allowed_clients: Vec::new(),
            min_version: TlsVersion::V1_2,
            handshake_timeout: Duration::from_secs(10),
            system_roots: true,
        }
    }
}

/// The `[websocket]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// Allowed `Origin` values (RFC 6455 §10.2); empty: any origin.
    pub origins: Vec<String>,
    /// The HTTP upgrade must complete within this time (after TLS, for `wss:`).
    pub handshake_timeout: Duration,
}

impl Default for WebSocketSettings {
    fn default() -> WebSocketSettings {
        WebSocketSettings {
            origins: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The `[tls]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileTls {
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    /// More `{ certificate, key }` pairs, chosen by SNI.
    certificates: Option<Vec<FilePair>>,
    ca: Option<PathBuf>,
    verify_client: Option<bool>,
    allowed_clients: Option<Vec<String>>,
    min_version: Option<String>,
    handshake_timeout: Option<String>,
    system_roots: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePair {
    certificate: PathBuf,
    key: PathBuf,
}

impl FileTls {
    pub(super) fn apply(&self, tls: &mut TlsSettings) -> Result<(), SettingsError> {
        let bad = |what: &str| SettingsError(format!("tls.{what}"));
        match (&self.certificate, &self.key) {
            (Some(c), Some(k)) => tls.certificates = vec![(c.clone(), k.clone())],
            (None, None) => {}
            _ => return Err(bad("certificate and key go together")),
        }
        for pair in self.certificates.iter().flatten() {
            tls.certificates
                .push((pair.certificate.clone(), pair.key.clone()));
        }
        tls.ca = self.ca.clone().or(tls.ca.take());
        tls.verify_client = self.verify_client.unwrap_or(tls.verify_client);
        tls.system_roots = self.system_roots.unwrap_or(tls.system_roots);
        if let Some(names) = &self.allowed_clients {
            tls.allowed_clients = names.clone();
        }
        if let Some(v) = &self.min_version {
            tls.min_version = match v.as_str() {
                "1.2" => TlsVersion::V1_2,
                "1.3" => TlsVersion::V1_3,
                _ => return Err(bad("min-version must be \"1.2\" or \"1.3\"")),
            };
        }
        if let Some(t) = &self.handshake_timeout {
            tls.handshake_timeout = parse_duration(t).map_err(|e| bad(&e.0))?;
        }
        if tls.verify_client && tls.ca.is_none() {
            return Err(bad(
                "verify-client needs a ca bundle to check clients against",
            ));
        }
        Ok(())
    }
}

/// The `[websocket]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileWebSocket {
    origins: Option<Vec<String>>,
    handshake_timeout: Option<String>,
}

impl FileWebSocket {
    pub(super) fn apply(&self, ws: &mut WebSocketSettings) -> Result<(), SettingsError> {
        if let Some(origins) = &self.origins {
            ws.origins = origins.clone();
        }
        if let Some(t) = &self.handshake_timeout {
            ws.handshake_timeout = parse_duration(t)
                .map_err(|e| SettingsError(format!("websocket.handshake-timeout: {}", e.0)))?;
        }
        Ok(())
    }
}
