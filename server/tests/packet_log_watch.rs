//! A `-l` rule's `Packet log:` line reaches WatchLinks watchers (mtui's event log, `mclient
//! watch`) as a `PacketLog` event, besides the server log: in process on 127.0.0.1:0, the real
//! rpc server and domain objects, the packet fed to the engine as the pump feeds it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_proto::v1::dialer_client::DialerClient;
use masqdial_server::auth::{self, Auth};
use masqdial_server::config::{Config, UserConfig, UserRole};
use masqdial_server::dataplane::uplink::Uplink;
use masqdial_server::dataplane::NatHandle;
use masqdial_server::link::manager::LinkManager;
use masqdial_server::nat_control::NatControl;
use masqdial_server::rpc::{ControlPlane, ServerState};
use masqdial_server::server;
use masqdial_server::shutdown::Shutdown;
use nat_core::chains::syntax::parse_rule;
use tonic::metadata::MetadataValue;
use tonic::Request;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_log_rule_hit_reaches_a_link_watcher() {
    let mut cfg = Config::default();
    cfg.server.allow = vec!["127.0.0.0/8".parse().expect("net")];
    cfg.users.push(UserConfig {
        name: "alice".into(),
        password_hash: auth::hash_password_with("alice-pw", auth::fast_params()).expect("hash"),
        role: UserRole::User,
        connections: vec![],
    });
    let shutdown = Shutdown::new();
    let mut engine = masqdial_server::persist::build_engine(&cfg).expect("engine");
    let rule = parse_rule("-p udp -s 192.168.77.0/24 -d 203.0.113.1 7 -l").expect("rule");
    engine
        .firewall_mut()
        .append("input", &rule.rule)
        .expect("append");
    let nat = NatHandle::new(engine);
    let control = ControlPlane {
        links: LinkManager::start(&cfg, Uplink::new(nat.clone(), None, None), &shutdown),
        nat: NatControl::new(Arc::new(cfg.clone()), nat.clone(), None),
    };
    let auth = Auth::new(&cfg).expect("auth");
    let state = ServerState::with_shutdown(cfg, auth, Some(control), shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server::run(listener, state, None, async move {
            let _ = stopped.await;
        })
        .await;
    });
    let ch = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .timeout(TIMEOUT)
        .connect()
        .await
        .expect("connect");
    let token = AuthClient::new(ch.clone())
        .login(pb::LoginRequest {
            user: "alice".into(),
            password: "alice-pw".into(),
        })
        .await
        .expect("login")
        .into_inner()
        .token;
    let mut req = Request::new(pb::WatchLinksRequest::default());
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("header"),
    );
    let mut stream = DialerClient::new(ch)
        .watch_links(req)
        .await
        .expect("watch")
        .into_inner();
    // The watch is subscribed once the call answered; a LAN datagram hits the rule.
    let mut pkt = masqdial_sim::isp::udp_datagram(
        Ipv4Addr::new(192, 168, 77, 2),
        40000,
        Ipv4Addr::new(203, 0, 113, 1),
        7,
        b"hello",
    );
    {
        let now = nat.now();
        let mut e = nat.lock();
        let _ = e.process_from_lan(now, &mut pkt);
        nat.emit_packet_log(&mut e);
    }
    let line = loop {
        let ev = tokio::time::timeout(TIMEOUT, stream.message())
            .await
            .expect("an event in time")
            .expect("stream ok")
            .expect("stream open");
        if let Some(pb::link_event::Event::PacketLog(l)) = ev.event {
            break l.line;
        }
    };
    assert!(
        line.starts_with("Packet log: input - eth0 PROTO=17 192.168.77.2:40000 203.0.113.1:7 L="),
        "{line}"
    );
    assert!(line.ends_with(" (#1)"), "{line}");
    let _ = stop.send(());
    shutdown.stop(TIMEOUT).await;
    let _ = tokio::time::timeout(TIMEOUT, task).await;
}
