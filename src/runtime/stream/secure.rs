//! What the TLS and WebSocket layers of every worker share, built once at start from
//! `[tls]` and `[websocket]`: the rustls server configurations (one for `tls:` listeners,
//! which may ask for a client certificate, one for `wss:`, which never does), the client
//! configuration for outbound TLS, the names next hops are verified against, and the
//! WebSocket handshake rules.
//!
//! Crypto provider: `ring` (see docs/TRANSPORTS.md: it builds with a C compiler alone, where
//! `aws-lc-rs` needs cmake and takes several times longer on a small CI machine).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use rustls::client::{ResolvesClientCert, UnbufferedClientConnection};
use rustls::crypto::CryptoProvider;
use rustls::server::{
    ClientHello, ResolvesServerCert, UnbufferedServerConnection, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::tls::Handshake;
use crate::proxy::PeerName;
use crate::settings::{Settings, TlsVersion};
use crate::sip::Transport;

/// The shared configuration when a listener speaks TLS, WS or WSS (`None` for UDP and TCP
/// only: outbound TLS leaves from a `tls:` listener, so there is none without one).
pub(crate) fn secure(settings: &Settings) -> Result<Option<Arc<Secure>>, String> {
    let layered = |t: Transport| matches!(t, Transport::Tls | Transport::Ws | Transport::Wss);
    if !settings.listen.iter().any(|l| layered(l.transport)) {
        return Ok(None);
    }
    Secure::new(settings).map(|s| Some(Arc::new(s)))
}

/// The TLS and WebSocket configuration every worker reads.
pub(crate) struct Secure {
    /// The rustls configurations; replaced whole on a reload (SIGHUP). A connection keeps the
    /// configuration it started with, so established sessions are untouched.
    configs: ArcSwap<Configs>,
    /// What a reload reads again.
    settings: Settings,
    /// RFC 5922 §7.2: the name a next hop's certificate must carry, by the address it was
    /// resolved to (the static hosts' names); an address with no name is verified as an IP
    /// address.
    names: HashMap<IpAddr, ServerName<'static>>,
    pub(crate) origins: Vec<String>,
    /// Mutual TLS: the client names allowed (any when empty).
    allowed_clients: Vec<ServerName<'static>>,
    pub(crate) tls_handshake: Duration,
    pub(crate) ws_handshake: Duration,
}

struct Configs {
    /// For `tls:` listeners (mutual TLS when `verify-client`).
    tls_server: Option<Arc<ServerConfig>>,
    /// For `wss:` listeners: browsers are never asked for a certificate.
    wss_server: Option<Arc<ServerConfig>>,
    client: Arc<ClientConfig>,
}

impl Secure {
    /// Reads the PEM files and builds the configurations; the message names what failed.
    pub(crate) fn new(settings: &Settings) -> Result<Secure, String> {
        Ok(Secure {
            configs: ArcSwap::from_pointee(Configs::load(settings)?),
            settings: settings.clone(),
            names: names(settings),
            origins: settings.websocket.origins.clone(),
            allowed_clients: settings
                .tls
                .allowed_clients
                .iter()
                .filter_map(|n| ServerName::try_from(n.clone()).ok())
                .collect(),
            tls_handshake: settings.tls.handshake_timeout,
            ws_handshake: settings.websocket.handshake_timeout,
        })
    }

    /// Reads the certificate, key and CA files again and uses them for new connections;
    /// on an error the old ones stay.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let configs = Configs::load(&self.settings)?;
        self.configs.store(Arc::new(configs));
        Ok(())
    }

    /// A fresh server session for a connection accepted on a `transport` listener, or `None`
    /// for a plain one.
    pub(crate) fn accept(&self, transport: Transport) -> Option<Result<Handshake, ()>> {
        let configs = self.configs.load();
        let config = match transport {
            Transport::Tls => configs.tls_server.as_ref(),
            Transport::Wss => configs.wss_server.as_ref(),
            _ => return None,
        };
        Some(match config {
            Some(c) => UnbufferedServerConnection::new(Arc::clone(c))
                .map(Handshake::Server)
                .map_err(|_| ()),
            None => Err(()),
        })
    }

    /// Whether a client whose certificate chain is `chain` may use a `tls:` listener: any
    /// (verified) client when no allowlist is set, else one whose certificate names an
    /// allowed client (checked as webpki checks a server's name, wildcards included).
    pub(crate) fn client_allowed(&self, chain: Option<&[CertificateDer<'_>]>) -> bool {
        if self.allowed_clients.is_empty() || !self.settings.tls.verify_client {
            return true;
        }
        let Some(ee) = chain
            .and_then(<[_]>::first)
            .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
        else {
            return false;
        };
        self.allowed_clients
            .iter()
            .any(|name| ee.verify_is_valid_for_subject_name(name).is_ok())
    }

    /// A client session toward `peer` (RFC 5922 §7.2: verified against the domain it was
    /// reached by, `name`; without one, a `[hosts]` name of the address, else the address).
    /// A name rustls does not take as a DNS name is refused (the connection is not opened).
    pub(crate) fn connect(
        &self,
        peer: IpAddr,
        name: Option<&PeerName>,
    ) -> Result<Handshake, rustls::Error> {
        let name = match name {
            Some(name) => ServerName::try_from(name.as_str())
                .map_err(|_| rustls::Error::General("not a DNS name".into()))?
                .to_owned(),
            None => self
                .names
                .get(&peer)
                .cloned()
                .unwrap_or_else(|| ServerName::IpAddress(peer.into())),
        };
        let client = Arc::clone(&self.configs.load().client);
        UnbufferedClientConnection::new(client, name).map(Handshake::Client)
    }
}

impl Configs {
    fn load(settings: &Settings) -> Result<Configs, String> {
        let tls = &settings.tls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = versions(tls.min_version);
        let ca = match &tls.ca {
            Some(path) => Some(Arc::new(roots(path)?)),
            None => None,
        };
        let (tls_server, wss_server) = if tls.certificates.is_empty() {
            (None, None)
        } else {
            let resolver = Arc::new(SniResolver::load(&tls.certificates, &provider)?);
            let client_ca = ca.clone().filter(|_| tls.verify_client);
            let tls_server = server_config(&provider, versions, resolver.clone(), client_ca)?;
            let wss_server = server_config(&provider, versions, resolver, None)?;
            (Some(tls_server), Some(wss_server))
        };
        let client = client_config(&provider, versions, settings, ca.as_deref())?;
        Ok(Configs {
            tls_server,
            wss_server,
            client,
        })
    }
}

/// TLS 1.3 only, when asked for.
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        TlsVersion::V1_2 => rustls::ALL_VERSIONS,
        TlsVersion::V1_3 => &TLS13_ONLY,
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    resolver: Arc<SniResolver>,
    client_ca: Option<Arc<RootCertStore>>,
) -> Result<Arc<ServerConfig>, String> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(ca, Arc::clone(provider))
                .build()
                .map_err(|e| format!("tls.ca for verify-client: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    // RFC 7118 §5 / RFC 3261 §26.3.1: no ALPN is defined for SIP; stateless tickets keep
    // resumption free of per-session memory on the proxy (RFC 5077 / RFC 8446 §4.6.1).
    config.send_tls13_tickets = 2;
    if let Ok(ticketer) = rustls::crypto::ring::Ticketer::new() {
        config.ticketer = ticketer;
    }
    // Established sessions seal and open their records themselves (see `tls::record`).
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    settings: &Settings,
    ca: Option<&RootCertStore>,
) -> Result<Arc<ClientConfig>, String> {
    let mut store = RootCertStore::empty();
    if settings.tls.system_roots {
        let found = rustls_native_certs::load_native_certs();
        let (_added, _ignored) = store.add_parsable_certificates(found.certs);
    }
    if let Some(ca) = ca {
        store.roots.extend(ca.roots.iter().cloned());
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(store);
    // Toward a peer that asks (mutual TLS between carriers), our first certificate.
    let mut config = match SniResolver::load(&settings.tls.certificates, provider) {
        Ok(r) if !r.keys.is_empty() => builder.with_client_cert_resolver(Arc::new(r)),
        _ => builder.with_no_client_auth(),
    };
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The PEM CA bundle at `path`.
fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store
            .add(cert)
            .map_err(|e| format!("tls.ca {}: {e}", path.display()))?;
    }
    Ok(store)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The name by which each resolvable next hop is reached (RFC 5922 §7.2: the host part of
/// the URI, not the address it resolved to).
fn names(settings: &Settings) -> HashMap<IpAddr, ServerName<'static>> {
    let mut names = HashMap::new();
    for (name, ip) in &settings.hosts {
        if let Ok(n) = ServerName::try_from(name.clone()) {
            names.entry(*ip).or_insert(n);
        }
    }
    names
}

/// Certificates chosen by the SNI name a client sends (RFC 6066 §3); a name that matches
/// none, or no name, gets the first.
#[derive(Debug)]
struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn load(
        pairs: &[(std::path::PathBuf, std::path::PathBuf)],
        provider: &CryptoProvider,
    ) -> Result<SniResolver, String> {
        let mut keys = Vec::with_capacity(pairs.len());
        for (cert, key) in pairs {
            let chain = certificates(cert)?;
            let der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("tls.key {}: {e}", key.display()))?;
            let signing = provider
                .key_provider
                .load_private_key(der)
                .map_err(|e| format!("tls.key {}: {e}", key.display()))?;
            keys.push(Arc::new(CertifiedKey::new(chain, signing)));
        }
        Ok(SniResolver { keys })
    }

    fn for_name(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let wanted = ServerName::try_from(name).ok()?;
        self.keys
            .iter()
            .find(|k| {
                k.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&wanted).is_ok())
            })
            .cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.for_name(name))
            .or_else(|| self.keys.first().cloned())
    }
}

impl ResolvesClientCert for SniResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.keys.first().cloned()
    }

    fn has_certs(&self) -> bool {
        !self.keys.is_empty()
    }
}
