//! In-process server tests on 127.0.0.1:0: authentication, allow-list, authorization
//! table, UNIMPLEMENTED without a control plane, rpc bodies over the real domain objects
//! (link manager without modems, nat control), health, reflection, reload and shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::auth_client::AuthClient;
use masqdial_proto::v1::dialer_client::DialerClient;
use masqdial_proto::v1::modems_client::ModemsClient;
use masqdial_proto::v1::nat_client::NatClient;
use masqdial_server::auth::ThrottlePolicy;
use masqdial_server::server;
use tonic::transport::Channel;
use tonic::Code;

#[path = "common/inproc.rs"]
mod inproc;

use inproc::{config, with_token, TestServer, TIMEOUT};

#[tokio::test]
async fn login_ok_and_whoami() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let r = s
        .login("alice", "alice-pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.token.len(), 64);
    assert_eq!(r.role, pb::Role::User as i32);
    let exp = r.expires_at.unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    assert!(
        exp.seconds > now.as_secs() as i64 + 11 * 3600,
        "expiry ~12 h ahead"
    );
    let mut a = AuthClient::new(s.channel().await);
    let w = a.who_am_i(with_token(pb::WhoAmIRequest {}, &r.token)).await;
    let w = w.unwrap_or_else(|e| panic!("{e}")).into_inner();
    assert_eq!(w.user, "alice");
    assert_eq!(w.allowed_connections, vec!["isp1".to_string()]);
    assert!(w.peer.starts_with("127.0.0.1:"), "{}", w.peer);
    s.stop().await;
}

#[tokio::test]
async fn bad_user_and_bad_password_look_the_same() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let a = s
        .login("alice", "wrong")
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    let b = s
        .login("nobody", "alice-pw")
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(a.code(), Code::Unauthenticated);
    assert_eq!(a.code(), b.code());
    assert_eq!(a.message(), b.message());
    s.stop().await;
}

#[tokio::test]
async fn failed_logins_are_counted_per_user_and_success_gives_back() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    assert_eq!(s.state.auth().attempts_of_user("alice"), 0);
    for _ in 0..3 {
        let e = s.login("alice", "bad").await.err().map(|e| e.code());
        assert_eq!(e, Some(Code::Unauthenticated));
    }
    assert_eq!(s.state.auth().attempts_of_user("alice"), 3);
    assert_eq!(s.state.auth().attempts_of_user("root"), 0);
    // The right password works and does not count.
    assert!(s.login("alice", "alice-pw").await.is_ok());
    assert_eq!(s.state.auth().attempts_of_user("alice"), 3);
    s.stop().await;
}

/// Issue 10 item 2: 40 parallel guesses for one user. Before, every guess slept its delay
/// side by side and then ran argon2 (all 40 verified); now the budget (5 a window, attempts
/// in flight counting) refuses the rest with RESOURCE_EXHAUSTED without checking them.
#[tokio::test]
async fn parallel_guesses_for_one_user_are_refused_not_slept() {
    let s =
        TestServer::start_with_policy(config(&["127.0.0.0/8"]), false, ThrottlePolicy::default())
            .await;
    let s = Arc::new(s);
    // One connection (the per-address connection cap would close most of 40).
    let ch = s.channel().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut a = AuthClient::new(ch.clone());
        tasks.push(tokio::spawn(async move {
            a.login(pb::LoginRequest {
                user: "alice".into(),
                password: format!("guess{i}"),
            })
            .await
            .err()
            .map(|e| e.code())
        }));
    }
    let (mut verified, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap_or(None) {
            Some(Code::Unauthenticated) => verified += 1,
            Some(Code::ResourceExhausted) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((verified, refused), (5, 35));
    // The (user, address) budget is spent, the right password included.
    let e = s.login("alice", "alice-pw").await.err().map(|e| e.code());
    assert_eq!(e, Some(Code::ResourceExhausted));
    // Another user is unaffected.
    assert!(s.login("root", "root-pw").await.is_ok());
    if let Ok(s) = Arc::try_unwrap(s) {
        s.stop().await;
    }
}

#[tokio::test]
async fn token_required_and_checked() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let mut d = DialerClient::new(s.channel().await);
    let e = d
        .list_connections(pb::ListConnectionsRequest {})
        .await
        .err();
    assert_eq!(e.as_ref().map(|e| e.code()), Some(Code::Unauthenticated));
    assert!(e
        .map(|e| e.message().contains("mclient login"))
        .unwrap_or(false));
    let e = d
        .list_connections(with_token(pb::ListConnectionsRequest {}, "abc"))
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some(Code::Unauthenticated));
    let e = d
        .list_connections(with_token(pb::ListConnectionsRequest {}, &"0".repeat(64)))
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some(Code::Unauthenticated));
    let mut a = AuthClient::new(s.channel().await);
    let e = a
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::Unauthenticated));
    s.stop().await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let long_ago = SystemTime::now() - Duration::from_secs(13 * 3600);
    let t = s
        .state
        .auth()
        .issue_token("alice", long_ago)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut d = DialerClient::new(s.channel().await);
    let e = d
        .status(with_token(pb::StatusRequest::default(), &t.token))
        .await
        .err();
    assert_eq!(e.as_ref().map(|e| e.code()), Some(Code::Unauthenticated));
    assert!(e.map(|e| e.message().contains("expired")).unwrap_or(false));
    s.stop().await;
}

#[tokio::test]
async fn logout_revokes() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let t = s.token("alice", "alice-pw").await;
    let mut a = AuthClient::new(s.channel().await);
    assert!(a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &t))
        .await
        .is_ok());
    assert!(a.logout(with_token(pb::LogoutRequest {}, &t)).await.is_ok());
    let e = a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &t))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::Unauthenticated));
    s.stop().await;
}

#[tokio::test]
async fn peer_outside_allow_list_is_denied_everything() {
    // Refused at accept: the connection is closed before any HTTP/2, so no rpc (Login,
    // health, a Dialer call before its token is looked at) gets an answer.
    let s = TestServer::start(config(&["10.0.0.0/8", "192.168.0.0/16"])).await;
    let ch = Channel::from_shared(format!("http://{}", s.addr))
        .unwrap_or_else(|e| panic!("{e}"))
        .timeout(TIMEOUT)
        .connect_lazy();
    let e = AuthClient::new(ch.clone())
        .login(pb::LoginRequest {
            user: "alice".into(),
            password: "alice-pw".into(),
        })
        .await
        .err()
        .map(|e| e.code());
    assert!(
        matches!(e, Some(Code::Unavailable | Code::Cancelled)),
        "{e:?}"
    );
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let e = h
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .err()
        .map(|e| e.code());
    assert!(
        matches!(e, Some(Code::Unavailable | Code::Cancelled)),
        "{e:?}"
    );
    let mut d = DialerClient::new(ch);
    let e = d
        .list_connections(pb::ListConnectionsRequest {})
        .await
        .err()
        .map(|e| e.code());
    assert!(
        matches!(e, Some(Code::Unavailable | Code::Cancelled)),
        "{e:?}"
    );
    let st = s.state.conn_stats();
    assert_eq!((st.accepted, st.refused_peer >= 3), (0, true), "{st:?}");
    s.stop().await;
}

#[tokio::test]
async fn user_versus_admin_permissions() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let user = s.token("alice", "alice-pw").await;
    let admin = s.token("root", "root-pw").await;
    let mut n = NatClient::new(s.channel().await);
    let mut d = DialerClient::new(s.channel().await);
    let append = |t: &str| {
        with_token(
            pb::AppendRuleRequest {
                chain: "forward".into(),
                spec: "-j MASQ".into(),
            },
            t,
        )
    };
    assert_eq!(
        n.append_rule(append(&user)).await.err().map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        n.append_rule(append(&admin)).await.err().map(|e| e.code()),
        Some(Code::Unimplemented)
    );
    let e = n
        .set_timeouts(with_token(pb::Timeouts::default(), &user))
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some(Code::PermissionDenied));
    // Reads are open to users (and unimplemented for now).
    let e = n
        .list_chains(with_token(pb::ListChainsRequest::default(), &user))
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some(Code::Unimplemented));

    let hang = |t: &str, name: &str, force| {
        with_token(
            pb::HangupRequest {
                name: name.into(),
                force,
            },
            t,
        )
    };
    assert_eq!(
        d.hangup(hang(&user, "isp1", true))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        d.hangup(hang(&user, "isp1", false))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::Unimplemented)
    );
    assert_eq!(
        d.hangup(hang(&user, "isp2", false))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        d.hangup(hang(&admin, "isp2", true))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::Unimplemented)
    );

    let dial = |t: &str, name: &str| with_token(pb::DialRequest { name: name.into() }, t);
    assert_eq!(
        d.dial(dial(&user, "isp2")).await.err().map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        d.dial(dial(&user, "isp1")).await.err().map(|e| e.code()),
        Some(Code::Unimplemented)
    );
    assert_eq!(
        d.dial(dial(&admin, "isp2")).await.err().map(|e| e.code()),
        Some(Code::Unimplemented)
    );
    assert_eq!(
        d.dial(dial(&admin, "nope")).await.err().map(|e| e.code()),
        Some(Code::NotFound)
    );
    // An unknown name is NOT_FOUND for a user too (not "may not use"), with a suggestion.
    let e = d.dial(dial(&user, "isp3")).await.err();
    assert_eq!(e.as_ref().map(tonic::Status::code), Some(Code::NotFound));
    assert_eq!(
        e.as_ref().map(tonic::Status::message),
        Some("no connection named `isp3` (did you mean `isp1`?)")
    );
    let e = d.hangup(hang(&user, "ips2", false)).await.err();
    assert_eq!(
        e.as_ref().map(tonic::Status::message),
        Some("no connection named `ips2` (did you mean `isp2`?)")
    );
    s.stop().await;
}

/// Without a control plane every Dialer/Modems/Nat rpc answers UNIMPLEMENTED for an admin:
/// no fake data.
#[tokio::test]
async fn every_rpc_is_unimplemented_without_a_control_plane() {
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let t = s.token("root", "root-pw").await;
    let ch = s.channel().await;
    let mut d = DialerClient::new(ch.clone());
    let mut m = ModemsClient::new(ch.clone());
    let mut n = NatClient::new(ch);
    let mut codes = vec![
        d.list_connections(with_token(pb::ListConnectionsRequest {}, &t))
            .await
            .err(),
        d.get_connection(with_token(
            pb::GetConnectionRequest {
                name: "isp1".into(),
            },
            &t,
        ))
        .await
        .err(),
        d.dial(with_token(
            pb::DialRequest {
                name: "isp1".into(),
            },
            &t,
        ))
        .await
        .err(),
        d.hangup(with_token(
            pb::HangupRequest {
                name: "isp1".into(),
                force: false,
            },
            &t,
        ))
        .await
        .err(),
        d.status(with_token(pb::StatusRequest::default(), &t))
            .await
            .err(),
        d.who(with_token(pb::WhoRequest {}, &t)).await.err(),
        d.watch_links(with_token(pb::WatchLinksRequest::default(), &t))
            .await
            .err(),
        m.list_modems(with_token(pb::ListModemsRequest {}, &t))
            .await
            .err(),
        n.list_masq(with_token(pb::ListMasqRequest::default(), &t))
            .await
            .err(),
        n.watch_masq(with_token(pb::WatchMasqRequest::default(), &t))
            .await
            .err(),
        n.free_ports(with_token(pb::FreePortsRequest {}, &t))
            .await
            .err(),
        n.get_timeouts(with_token(pb::GetTimeoutsRequest {}, &t))
            .await
            .err(),
        n.set_timeouts(with_token(pb::Timeouts::default(), &t))
            .await
            .err(),
        n.list_chains(with_token(pb::ListChainsRequest::default(), &t))
            .await
            .err(),
        n.append_rule(with_token(pb::AppendRuleRequest::default(), &t))
            .await
            .err(),
        n.insert_rule(with_token(pb::InsertRuleRequest::default(), &t))
            .await
            .err(),
        n.replace_rule(with_token(pb::ReplaceRuleRequest::default(), &t))
            .await
            .err(),
        n.delete_rule(with_token(pb::DeleteRuleRequest::default(), &t))
            .await
            .err(),
        n.flush_chain(with_token(pb::FlushChainRequest::default(), &t))
            .await
            .err(),
        n.zero_counters(with_token(pb::ZeroCountersRequest::default(), &t))
            .await
            .err(),
        n.new_chain(with_token(pb::NewChainRequest::default(), &t))
            .await
            .err(),
        n.delete_chain(with_token(pb::DeleteChainRequest::default(), &t))
            .await
            .err(),
        n.set_policy(with_token(pb::SetPolicyRequest::default(), &t))
            .await
            .err(),
        n.check_packet(with_token(pb::CheckPacketRequest::default(), &t))
            .await
            .err(),
        n.apply_ruleset(with_token(pb::ApplyRulesetRequest::default(), &t))
            .await
            .err(),
        n.save_ruleset(with_token(pb::SaveRulesetRequest {}, &t))
            .await
            .err(),
        n.render_view(with_token(pb::RenderViewRequest::default(), &t))
            .await
            .err(),
        n.get_counters(with_token(pb::GetCountersRequest {}, &t))
            .await
            .err(),
    ]
    .into_iter()
    .map(|e| e.map(|e| e.code()));
    assert_eq!(codes.len(), 28);
    assert!(codes.all(|c| c == Some(Code::Unimplemented)));
    s.stop().await;
}

#[tokio::test]
async fn health_and_reflection_answer_without_token() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let mut h = tonic_health::pb::health_client::HealthClient::new(s.channel().await);
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "masqdial.v1.Dialer".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut refl = ServerReflectionClient::new(s.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let msg = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = match msg.and_then(|m| m.message_response) {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    for svc in [
        "masqdial.v1.Auth",
        "masqdial.v1.Dialer",
        "masqdial.v1.Modems",
        "masqdial.v1.Nat",
    ] {
        assert!(
            names.iter().any(|n| n == svc),
            "{svc} missing from {names:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn reload_keeps_tokens_of_remaining_users_and_applies_allow_list() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = TestServer::start(config(&["127.0.0.0/8"])).await;
    let alice = s.token("alice", "alice-pw").await;
    let root = s.token("root", "root-pw").await;
    let mut a = AuthClient::new(s.channel().await);

    // New file: alice removed (the others' hashes unchanged).
    let mut c = (*s.state.config()).clone();
    c.users.retain(|u| u.name == "root");
    let path = dir.path().join("m.toml");
    std::fs::write(&path, toml::to_string(&c).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    server::reload(&s.state, &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &root))
        .await
        .is_ok());
    let e = a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &alice))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::Unauthenticated));

    // A broken file leaves everything as it was.
    std::fs::write(&path, "[server]\nbogus = 1\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(server::reload(&s.state, &path).is_err());
    assert!(a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &root))
        .await
        .is_ok());

    // Allow-list change: the open connection is closed and new ones are refused at accept.
    c.server.allow = vec!["10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    std::fs::write(&path, toml::to_string(&c).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    server::reload(&s.state, &path).unwrap_or_else(|e| panic!("{e}"));
    let e = a
        .who_am_i(with_token(pb::WhoAmIRequest {}, &root))
        .await
        .err()
        .map(|e| e.code());
    assert!(
        matches!(e, Some(Code::Unavailable | Code::Unknown)),
        "{e:?}"
    );
    assert_eq!(s.state.conn_stats().closed_by_allow_list, 1);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    // The real link manager's WatchLinks stream never ends by itself.
    let s = TestServer::start_with(config(&["127.0.0.0/8"]), true).await;
    let t = s.token("alice", "alice-pw").await;
    let mut d = DialerClient::new(s.channel().await);
    let mut stream = d
        .watch_links(with_token(pb::WatchLinksRequest::default(), &t))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let token = s.state.shutdown_token();
    s.stop().await;
    assert!(token.is_cancelled());
    // The stream ends (None or an error) instead of hanging; the two initial states may
    // or may not have reached the client before the shutdown.
    let end = tokio::time::timeout(TIMEOUT, async {
        let mut states = 0;
        loop {
            match stream.message().await {
                Ok(Some(_)) => states += 1,
                end => return (states, end),
            }
        }
    })
    .await;
    assert!(
        matches!(end, Ok((n, Ok(None) | Err(_))) if n <= 2),
        "{end:?}"
    );
}

/// The rpc bodies answer from the real link manager and nat control, and translate both
/// ways: connections and status, typed link errors, rule edits saved to the state
/// directory, timeouts, views and modems.
#[tokio::test]
async fn rpc_bodies_answer_from_the_domain_objects() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut c = config(&["127.0.0.0/8"]);
    c.server.state_dir = dir.path().to_path_buf();
    let s = TestServer::start_with(c, true).await;
    let user = s.token("alice", "alice-pw").await;
    let admin = s.token("root", "root-pw").await;
    let ch = s.channel().await;
    let mut d = DialerClient::new(ch.clone());
    let mut m = ModemsClient::new(ch.clone());
    let mut n = NatClient::new(ch);

    let list = d
        .list_connections(with_token(pb::ListConnectionsRequest {}, &user))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let shown: Vec<(String, bool, i32)> = list
        .connections
        .iter()
        .map(|c| (c.name.clone(), c.allowed, c.state))
        .collect();
    let idle = pb::LinkState::Idle as i32;
    assert_eq!(
        shown,
        vec![("isp1".into(), true, idle), ("isp2".into(), false, idle)]
    );
    let st = d
        .status(with_token(pb::StatusRequest::default(), &user))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(st.links.len(), 2);
    assert!(st
        .links
        .iter()
        .all(|l| l.state == idle && l.local_address.is_empty() && l.holders.is_empty()));
    // Hanging up a link nobody holds: the manager's typed error, mapped in one table.
    let e = d
        .hangup(with_token(
            pb::HangupRequest {
                name: "isp1".into(),
                force: false,
            },
            &user,
        ))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::FailedPrecondition));
    let modems = m
        .list_modems(with_token(pb::ListModemsRequest {}, &user))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(modems.modems.is_empty());

    // A rule edit answers the changed chain and is saved to the state directory.
    let changed = n
        .append_rule(with_token(
            pb::AppendRuleRequest {
                chain: "forward".into(),
                spec: "-s 192.168.77.0/24 -j MASQ".into(),
            },
            &admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(changed.chains.len(), 1);
    assert_eq!(changed.chains[0].name, "forward");
    assert_eq!(changed.chains[0].rules.len(), 1);
    assert_eq!(changed.chains[0].rules[0].target, "MASQ");
    let saved = std::fs::read_to_string(dir.path().join("rules.ipchains"))
        .unwrap_or_else(|e| panic!("{e}"));
    let live = n
        .save_ruleset(with_token(pb::SaveRulesetRequest {}, &user))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .ruleset;
    // The saved file is the live ruleset between a version header and an end marker.
    let lines: Vec<&str> = saved.lines().collect();
    assert_eq!(lines.first().copied(), Some("# masqdial-state v1 rules"));
    assert_eq!(lines[1..lines.len() - 1].join("\n") + "\n", live);
    let e = n
        .append_rule(with_token(
            pb::AppendRuleRequest {
                chain: "nochain".into(),
                spec: "-j ACCEPT".into(),
            },
            &admin,
        ))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::NotFound));
    let e = n
        .append_rule(with_token(
            pb::AppendRuleRequest {
                chain: "forward".into(),
                spec: "-p".into(),
            },
            &admin,
        ))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::InvalidArgument));

    // Timeouts: set (0 leaves a value), answered and saved.
    let t = n
        .set_timeouts(with_token(
            pb::Timeouts {
                tcp: 600,
                tcpfin: 0,
                udp: 60,
                icmp: 0,
            },
            &admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((t.tcp, t.tcpfin, t.udp), (600, 120, 60));
    let saved =
        std::fs::read_to_string(dir.path().join("timeouts")).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = saved.lines().collect();
    assert_eq!(lines.len(), 3, "{saved}");
    assert_eq!(lines[..2], ["# masqdial-state v1 timeouts", "600 120 60"]);

    let e = n
        .render_view(with_token(pb::RenderViewRequest::default(), &user))
        .await
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::InvalidArgument));
    let free = n
        .free_ports(with_token(pb::FreePortsRequest {}, &user))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((free.port_low, free.port_high), (61_000, 65_095));
    assert_eq!(free.tcp, free.tcp_total);
    s.stop().await;
}

/// N3, the review's lockout: wrong passwords for `root` from other allowed addresses used to
/// lock the real admin out for a minute, again and again. Now a stranger spends only its own
/// (user, address) budget, the per-user slow-down spares an address root logged in from
/// before, and the refusal says which limit it was.
#[tokio::test]
async fn strangers_cannot_lock_the_admin_out() {
    let s =
        TestServer::start_with_policy(config(&["127.0.0.0/8"]), false, ThrottlePolicy::default())
            .await;
    // The admin has logged in from 127.0.0.1 before.
    assert!(s.login("root", "root-pw").await.is_ok());
    let from = |last: u8| {
        let addr = s.addr;
        async move {
            let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap_or_else(|e| panic!("{e}"))
                .local_address(Some(std::net::IpAddr::from([127, 0, 2, last])))
                .timeout(Duration::from_secs(10))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            AuthClient::new(ch)
        }
    };
    // 40 strangers, 6 wrong passwords each.
    let mut last_refusal = String::new();
    for a in 1..=40u8 {
        let mut c = from(a).await;
        for i in 0..6 {
            let r = c
                .login(pb::LoginRequest {
                    user: "root".into(),
                    password: format!("guess{i}"),
                })
                .await;
            if let Err(e) = r {
                if e.code() == Code::ResourceExhausted {
                    last_refusal = e.message().to_string();
                }
            }
        }
    }
    assert!(
        last_refusal.contains("too many login attempts"),
        "{last_refusal}"
    );
    // The admin, from its known address: still let in, every time.
    for _ in 0..3 {
        let r = s.login("root", "root-pw").await;
        assert!(r.is_ok(), "admin locked out: {r:?}");
    }
    s.stop().await;
}
