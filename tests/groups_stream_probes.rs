//! Health probes over TCP and TLS through the shipping service on loopback: a group
//! destination reached over TCP, or over TLS, is probed with OPTIONS on a connection the
//! proxy opens from its own listener (the Via names the transport and that listener); its
//! answers are consumed; when the destination stops listening (listener and connections
//! closed, as a box that dies) its probes fail — a refused connect each — and it goes down
//! after `down-after` of them, from probes alone; when it listens again it comes back after
//! `up-after` answered ones. Over TLS the destination's certificate is verified as the
//! proxy verifies any next hop: one that does not name the destination fails every probe.
//!
//! The waits are bounded state changes, not timings.

mod responder_support;
mod runtime_support;
mod secure_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrovia::groups::{DestinationConfig, DestinationSnapshot, GroupConfig, ProbeConfig};
use ferrovia::service::Service;
use ferrovia::settings::{ListenAddr, Settings};
use responder_support::Responder;
use runtime_support::tcp::Family;
use runtime_support::{loopback_settings, start_service};
use secure_support::{Pki, secure_settings};

/// Quick probes: every 300 ms, failed after 250 ms, down after 2, up after 2.
fn quick_probes() -> ProbeConfig {
    ProbeConfig {
        enabled: true,
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(250),
        down_after: 2,
        up_after: 2,
        alive_codes: vec![200],
    }
}

fn with_group(mut settings: Settings, uris: &[String]) -> Settings {
    let list = uris
        .iter()
        .map(|u| DestinationConfig::parse(u, 1, 0, |_| None).unwrap())
        .collect();
    let mut group = GroupConfig::new("core", list);
    group.probe = quick_probes();
    settings.groups = vec![group];
    settings.route_to_group = Some("core".into());
    settings
}

fn destination(proxy: &Service, i: usize) -> DestinationSnapshot {
    let snapshot = proxy.snapshot();
    snapshot.groups().expect("groups configured").groups[0].destinations[i].clone()
}

/// Waits (bounded) until destination `i` satisfies `done`.
fn wait_until(
    proxy: &Service,
    i: usize,
    what: &str,
    done: impl Fn(&DestinationSnapshot) -> bool,
) -> DestinationSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = destination(proxy, i);
        if done(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "destination {i} never {what}: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Up, down when `responder` stops, up when a new one listens on its address.
fn goes_down_and_comes_back(
    proxy: &Service,
    i: usize,
    responder: Responder,
    restart: impl Fn(SocketAddr) -> Responder,
) {
    // Counted from here: a first probe slow enough to fail on a loaded machine changes
    // nothing below.
    let up = wait_until(proxy, i, "answered and up", |d| {
        d.last_probe_rtt_us > 0 && d.state == "up"
    });
    let addr = responder.addr;
    responder.stop();
    let down = wait_until(proxy, i, "down", |d| d.state == "down");
    assert_eq!(down.went_down, up.went_down + 1, "{down:?}");
    assert_eq!(down.passive_downs, 0, "probes alone took it down: {down:?}");
    assert!(down.probes_failed >= up.probes_failed + 2, "{down:?}");
    let again = restart(addr);
    let back = wait_until(proxy, i, "up again", |d| d.state == "up");
    assert_eq!(back.went_up, down.went_up + 1, "{back:?}");
    assert!(
        again.seen().options.len() >= 2,
        "up after 2 answered probes"
    );
}

#[test]
fn a_tcp_destination_is_probed_over_tcp_and_goes_down_and_up() {
    let responder = Responder::start(Family::V4.any_port(), None);
    let mut settings = loopback_settings(2);
    settings
        .listen
        .push(ListenAddr::tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
    let uris = [format!("sip:{};transport=tcp", responder.addr)];
    let proxy = start_service(&with_group(settings, &uris));
    let tcp_listener = proxy.local_addrs()[1];

    wait_until(&proxy, 0, "answered", |d| d.last_probe_rtt_us > 0);
    let first = responder.seen().options[0].clone();
    let via = format!("Via: SIP/2.0/TCP {tcp_listener};branch=z9hG4bKfvp");
    assert!(first.contains(&via), "from the TCP listener: {first}");
    assert!(!first.contains("rport"), "{first}");
    assert!(responder.seen().requests.is_empty());

    goes_down_and_comes_back(&proxy, 0, responder, |addr| Responder::start(addr, None));
    drop(proxy.shutdown());
}

#[test]
fn a_tls_destination_is_probed_over_verified_tls_and_goes_down_and_up() {
    let pki = Pki::new("stream-probes");
    // Names 127.0.0.1: verified as the address, as the proxy verifies an IP literal.
    let good = Responder::start(Family::V4.any_port(), Some(pki.server_config()));
    // Names other.test only: the handshake fails, so does every probe.
    let other = Responder::start(Family::V4.any_port(), Some(other_test_config(&pki)));
    let uris = [
        format!("sips:{}", good.addr),
        format!("sip:{};transport=tls", other.addr),
    ];
    let settings = with_group(secure_settings(Family::V4, &pki, 2), &uris);
    let proxy = start_service(&settings);
    let tls_listener = proxy.local_addrs()[2];

    wait_until(&proxy, 0, "answered", |d| d.last_probe_rtt_us > 0);
    let first = good.seen().options[0].clone();
    let via = format!("Via: SIP/2.0/TLS {tls_listener};branch=z9hG4bKfvp");
    assert!(first.contains(&via), "from the TLS listener: {first}");
    assert_eq!(good.seen().sni[0], None, "an address is verified, no SNI");

    let refused = wait_until(&proxy, 1, "down", |d| d.state == "down");
    assert_eq!(refused.passive_downs, 0, "{refused:?}");
    assert_eq!(refused.last_probe_rtt_us, 0, "never answered: {refused:?}");
    assert!(
        other.seen().options.is_empty(),
        "nothing sent over an unverified session"
    );

    let config = pki.server_config();
    goes_down_and_comes_back(&proxy, 0, good, |addr| {
        Responder::start(addr, Some(Arc::clone(&config)))
    });
    drop(proxy.shutdown());
}

/// A server configuration presenting the certificate for `other.test` only.
fn other_test_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&pki.other_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.other_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}
