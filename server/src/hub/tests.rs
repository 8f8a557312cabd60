//! Hub routing tests: dedupe across devices, fan-out exactness, forwarding rules, slow
//! consumers, icon sync, status fan-out, and leak-freedom after every connection closes.

use serde_json::{Value, json};
use signalbox_protocol::ws::{ChatMessageBroadcast, Identify, SdpSignal, TypingBroadcast};
use signalbox_protocol::{
    ChannelId, ClientEnvelope, CloseCode, ErrorCode, ServerEnvelope, ServerId, TimestampMs, UserId,
    UserStatus,
};

use super::*;

/// One connection with its queue, as a transport would hold it.
struct Client {
    handle: ConnectionHandle,
    rx: OutboundReceiver,
}

impl Client {
    fn key(&self) -> ConnKey {
        self.handle.key()
    }

    /// Every frame queued so far, parsed; panics on a close (use `closed` for those).
    fn frames(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(next) = self.rx.try_recv() {
            match next {
                Outbound::Frame(frame) => {
                    out.push(serde_json::from_str(frame.as_str()).expect("frames are JSON"))
                }
                Outbound::Close(code) => panic!("unexpected close {code:?}"),
            }
        }
        out
    }

    /// The frames of one wire type, dropping the others.
    fn of_type(&mut self, wire: &str) -> Vec<Value> {
        self.frames()
            .into_iter()
            .filter(|f| f["type"] == wire)
            .collect()
    }

    /// The close the writer would see after draining, if any.
    fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match self.rx.try_recv()? {
                Outbound::Frame(_) => continue,
                Outbound::Close(code) => return Some(code),
            }
        }
    }
}

fn sid(s: &str) -> ServerId {
    ServerId::from(s)
}

fn uid(s: &str) -> UserId {
    UserId::from(s)
}

fn profile(name: &str) -> Profile {
    Profile {
        display_name: name.to_owned(),
        ..Profile::default()
    }
}

fn connect(hub: &Hub, user: &str) -> Client {
    let (handle, rx) = hub.connect();
    hub.identify(handle.key(), uid(user), profile(&format!("{user}-name")))
        .expect("identify");
    Client { handle, rx }
}

fn join(hub: &Hub, client: &mut Client, server: &str) {
    hub.join_server(client.key(), &sid(server)).expect("join");
}

fn chat(hub: &Hub, from: &Client, server: &str, text: &str, exclude: Exclude) -> Fanout {
    let server_id = sid(server);
    hub.broadcast(from.key(), &server_id, exclude, |sender| {
        ServerEnvelope::ChatMessage(ChatMessageBroadcast {
            server_id: server_id.clone(),
            message: json!({ "text": text })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            sender_id: sender.user_id.clone(),
            sender_name: sender.display_name.to_owned(),
            timestamp: TimestampMs(1),
        })
    })
    .expect("broadcast")
}

fn offer(target: &str, spoofed_from: &str) -> ClientEnvelope {
    serde_json::from_value::<SdpSignal>(json!({
        "targetUserId": target,
        "sdp": { "type": "offer", "sdp": "v=0" },
        "fromUserId": spoofed_from,
        "extraField": 7
    }))
    .map(ClientEnvelope::Offer)
    .expect("offer")
}

fn rpc(target: &str, request_id: &str) -> ClientEnvelope {
    serde_json::from_value::<ClientEnvelope>(json!({
        "type": "rpc_request",
        "targetUserId": target,
        "requestId": request_id,
        "method": "ping"
    }))
    .expect("rpc")
}

fn assert_empty(hub: &Hub) {
    assert_eq!(hub.stats(), HubStats::default(), "every index is empty");
    let m = hub.metrics().snapshot();
    assert_eq!(m.connections_open, 0);
    assert_eq!(m.users_online, 0);
}

#[test]
fn hub_settings_come_from_the_realtime_and_security_sections() {
    assert_eq!(
        HubConfig::from_settings(&Realtime::default(), &Security::default()),
        HubConfig::default()
    );
    let realtime = Realtime {
        outbound_queue_envelopes: 7,
        outbound_queue_bytes: 4096,
        forwarding: ForwardingPolicy::Open,
        ..Realtime::default()
    };
    let security = Security {
        max_joined_servers_per_connection: 3,
        max_viewed_servers_per_connection: 2,
        ..Security::default()
    };
    let config = HubConfig::from_settings(&realtime, &security);
    assert_eq!(
        config.outbound,
        OutboundConfig {
            capacity: 7,
            max_bytes: 4096
        }
    );
    assert_eq!(config.forwarding, ForwardingPolicy::Open);
    assert_eq!(config.max_joined_servers_per_connection, 3);
    assert_eq!(config.max_viewed_servers_per_connection, 2);
}

#[test]
fn join_sends_the_roster_to_the_joiner_and_user_joined_to_the_others() {
    let hub = Hub::default();
    let mut a = connect(&hub, "alice");
    let mut b = connect(&hub, "bob");
    join(&hub, &mut a, "s1");
    let roster = a.of_type("server_users");
    assert_eq!(roster.len(), 1);
    let typed: ServerEnvelope =
        serde_json::from_value(roster[0].clone()).expect("a valid envelope");
    let ServerEnvelope::ServerUsers(typed) = typed else {
        panic!("not server_users: {typed:?}")
    };
    assert_eq!(typed.server_id, sid("s1"));
    assert_eq!(
        typed.users,
        vec![profile("alice-name").summary(&uid("alice"), UserStatus::Online)]
    );
    assert_eq!(roster[0]["users"][0]["oderId"], "alice");
    assert_eq!(roster[0]["users"][0]["status"], "online");

    join(&hub, &mut b, "s1");
    let joined = a.of_type("user_joined");
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["serverId"], "s1");
    assert_eq!(joined[0]["oderId"], "bob");
    assert_eq!(joined[0]["displayName"], "bob-name");
    let frames = b.frames();
    assert_eq!(frames.len(), 1, "bob gets the roster only: {frames:?}");
    let mut names: Vec<&str> = frames[0]["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["oderId"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);

    let again = hub.join_server(b.key(), &sid("s1")).expect("join again");
    assert!(again.already_joined && !again.user_joined);
    assert!(a.frames().is_empty(), "a second join is silent for others");
    assert_eq!(b.of_type("server_users").len(), 1, "the roster is re-sent");
}

#[test]
fn user_joined_and_user_left_are_deduplicated_across_devices() {
    let hub = Hub::default();
    let mut observer = connect(&hub, "obs");
    join(&hub, &mut observer, "s1");
    observer.frames();

    let mut phone = connect(&hub, "alice");
    let mut laptop = connect(&hub, "alice");
    join(&hub, &mut phone, "s1");
    join(&hub, &mut laptop, "s1");
    let joined = observer.of_type("user_joined");
    assert_eq!(joined.len(), 1, "one user_joined for two devices");
    assert!(
        phone.of_type("user_joined").is_empty(),
        "no echo to own devices"
    );
    assert!(laptop.of_type("user_joined").is_empty());

    let left = hub.leave_server(phone.key(), &sid("s1")).expect("leave");
    assert!(left.was_joined && !left.user_left);
    assert!(
        observer.frames().is_empty(),
        "first device leaving is silent"
    );

    let gone = laptop.handle.disconnect().expect("was registered");
    assert_eq!(gone.user_left, vec![sid("s1")]);
    assert!(!gone.user_offline, "the phone is still connected");
    let left = observer.of_type("user_left");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["oderId"], "alice");
    assert_eq!(left[0]["displayName"], "alice-name");
}

#[test]
fn broadcast_excludes_the_sender_and_reaches_every_other_connection_once() {
    let hub = Hub::default();
    let mut a1 = connect(&hub, "alice");
    let mut a2 = connect(&hub, "alice");
    let mut b1 = connect(&hub, "bob");
    let mut b2 = connect(&hub, "bob");
    let mut c1 = connect(&hub, "carol");
    let mut outsider = connect(&hub, "dave");
    for c in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c1] {
        join(&hub, c, "s1");
    }
    join(&hub, &mut outsider, "s2");
    for c in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c1, &mut outsider] {
        c.frames();
    }
    let serialized_before = hub.metrics().snapshot().envelopes_serialized;

    let fanout = chat(&hub, &a1, "s1", "hi", Exclude::SenderConnection);
    assert_eq!(fanout.delivered, 4);
    assert!(
        a1.frames().is_empty(),
        "never echoed to the sending connection"
    );
    for c in [&mut a2, &mut b1, &mut b2, &mut c1] {
        let got = c.frames();
        assert_eq!(got.len(), 1, "exactly one copy each");
        assert_eq!(got[0]["type"], "chat_message");
        assert_eq!(got[0]["senderId"], "alice");
        assert_eq!(got[0]["senderName"], "alice-name");
        assert_eq!(got[0]["message"]["text"], "hi");
    }
    assert!(outsider.frames().is_empty(), "other servers hear nothing");

    let fanout = chat(&hub, &a1, "s1", "toju", Exclude::SenderUser);
    assert_eq!(fanout.delivered, 3);
    assert!(
        a2.frames().is_empty(),
        "the sender's other devices are skipped"
    );
    for c in [&mut b1, &mut b2, &mut c1] {
        assert_eq!(c.frames().len(), 1);
    }
    let serialized = hub.metrics().snapshot().envelopes_serialized - serialized_before;
    assert_eq!(
        serialized, 2,
        "each chat serialized once, not per recipient"
    );
}

#[test]
fn broadcast_needs_an_identified_joined_sender_and_skips_viewers() {
    let hub = Hub::default();
    let (anon, _anon_rx) = hub.connect();
    let mut member = connect(&hub, "alice");
    let mut viewer = connect(&hub, "bob");
    join(&hub, &mut member, "s1");
    hub.view_server(viewer.key(), &sid("s1")).expect("view");
    assert_eq!(viewer.of_type("server_users").len(), 1);

    let typing = |sender: &Sender<'_>| {
        ServerEnvelope::Typing(TypingBroadcast {
            server_id: sid("s1"),
            channel_id: ChannelId::from("general"),
            is_typing: true,
            oder_id: sender.user_id.clone(),
            display_name: sender.display_name.to_owned(),
        })
    };
    let err = hub
        .broadcast(viewer.key(), &sid("s1"), Exclude::SenderConnection, typing)
        .expect_err("a viewer may not post");
    assert_eq!(err, HubError::NotJoined(sid("s1")));
    assert_eq!(err.error_code(), ErrorCode::Forbidden);
    let err = hub
        .broadcast(anon.key(), &sid("s1"), Exclude::SenderConnection, typing)
        .expect_err("identify first");
    assert_eq!(err.error_code(), ErrorCode::NotIdentified);

    viewer.frames();
    chat(&hub, &member, "s1", "hello", Exclude::SenderConnection);
    assert!(viewer.frames().is_empty(), "viewers see rosters, not chat");

    let mut late = connect(&hub, "carol");
    join(&hub, &mut late, "s1");
    assert_eq!(
        viewer.of_type("user_joined").len(),
        1,
        "viewers see roster events"
    );
    assert_eq!(member.of_type("user_joined").len(), 1);
}

#[test]
fn forward_reaches_every_device_of_the_target_with_the_sender_stamped() {
    let hub = Hub::default();
    let mut a1 = connect(&hub, "alice");
    let mut a2 = connect(&hub, "alice");
    let mut b1 = connect(&hub, "bob");
    let mut b2 = connect(&hub, "bob");
    for c in [&mut a1, &mut b1, &mut b2] {
        join(&hub, c, "s1");
    }
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        c.frames();
    }

    let fanout = hub
        .forward(a1.key(), offer("bob", "mallory"))
        .expect("forward");
    assert_eq!(fanout.delivered, 2);
    for b in [&mut b1, &mut b2] {
        let got = b.frames();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["type"], "offer");
        assert_eq!(
            got[0]["fromUserId"], "alice",
            "client fromUserId is overwritten"
        );
        assert_eq!(got[0]["targetUserId"], "bob");
        assert_eq!(got[0]["extraField"], 7, "unknown fields are kept");
        assert_eq!(got[0]["sdp"]["sdp"], "v=0");
    }
    assert!(a1.frames().is_empty() && a2.frames().is_empty());

    // Own other devices are always reachable, even without a shared server (a2 joined none).
    let fanout = hub.forward(a1.key(), offer("alice", "x")).expect("self");
    assert_eq!(fanout.delivered, 1);
    assert_eq!(a2.of_type("offer").len(), 1);
    assert!(a1.frames().is_empty(), "not back to the sending connection");
}

#[test]
fn forward_refuses_offline_targets_and_strangers() {
    let hub = Hub::default();
    let mut a = connect(&hub, "alice");
    let mut stranger = connect(&hub, "eve");
    join(&hub, &mut a, "s1");
    join(&hub, &mut stranger, "s2");

    let err = hub
        .forward(a.key(), rpc("nobody", "r1"))
        .expect_err("offline");
    assert_eq!(err.error_code(), ErrorCode::TargetNotFound);
    assert_eq!(err.request_id().map(|r| r.as_str()), Some("r1"));

    let err = hub
        .forward(a.key(), rpc("eve", "r2"))
        .expect_err("stranger");
    assert_eq!(err.error_code(), ErrorCode::Forbidden);
    assert_eq!(err.request_id().map(|r| r.as_str()), Some("r2"));
    assert!(stranger.of_type("rpc_request").is_empty());

    let err = hub
        .forward(a.key(), rpc("alice", "r3"))
        .expect_err("no other device");
    assert_eq!(err.error_code(), ErrorCode::TargetNotFound);

    // Viewing does not count as sharing; joining does.
    hub.view_server(stranger.key(), &sid("s1")).expect("view");
    let err = hub
        .forward(a.key(), rpc("eve", "r4v"))
        .expect_err("a viewer is not reachable");
    assert_eq!(err.error_code(), ErrorCode::Forbidden);
    hub.join_server(stranger.key(), &sid("s1")).expect("join");
    hub.forward(a.key(), rpc("eve", "r4"))
        .expect("shares s1 now");
    assert_eq!(stranger.of_type("rpc_request").len(), 1);

    let err = hub
        .forward(a.key(), ClientEnvelope::Keepalive(Default::default()))
        .expect_err("not forwarded");
    assert_eq!(err, HubError::NotForwardable("keepalive"));

    let m = hub.metrics().snapshot();
    assert_eq!(
        (
            m.forwards,
            m.forwards_forbidden,
            m.forwards_target_not_found
        ),
        (1, 2, 2)
    );

    let open = Hub::new(HubConfig {
        forwarding: ForwardingPolicy::Open,
        ..HubConfig::default()
    });
    let a = connect(&open, "alice");
    let mut e = connect(&open, "eve");
    open.forward(a.key(), rpc("eve", "r5"))
        .expect("open forwarding");
    assert_eq!(e.of_type("rpc_request").len(), 1);
}

#[test]
fn shares_server_counts_joined_servers_across_devices_and_not_viewing() {
    let hub = Hub::default();
    let mut a1 = connect(&hub, "alice");
    let a2 = connect(&hub, "alice");
    let mut b = connect(&hub, "bob");
    let (alice, bob) = (uid("alice"), uid("bob"));
    assert!(!hub.shares_server(&alice, &bob));
    assert!(hub.shares_server(&alice, &alice));
    assert!(!hub.shares_server(&alice, &uid("ghost")));

    join(&hub, &mut a1, "s1");
    hub.view_server(a2.key(), &sid("s2")).expect("view");
    join(&hub, &mut b, "s2");
    assert!(
        !hub.shares_server(&alice, &bob),
        "a2 only views s2, b joined it: viewing grants no forwarding"
    );
    assert!(!hub.shares_server(&bob, &alice));
    hub.join_server(a2.key(), &sid("s2")).expect("join");
    assert!(hub.shares_server(&alice, &bob), "both joined s2 now");
    assert!(hub.shares_server(&bob, &alice));

    hub.leave_server(a2.key(), &sid("s2")).expect("leave");
    assert!(!hub.shares_server(&alice, &bob));
    join(&hub, &mut b, "s1");
    assert!(hub.shares_server(&alice, &bob));
    drop(a1);
    assert!(!hub.shares_server(&alice, &bob), "a1 closed: alice left s1");
}

#[test]
fn a_slow_consumer_is_closed_with_4008_while_others_get_everything() {
    let hub = Hub::new(HubConfig {
        outbound: OutboundConfig {
            capacity: 16,
            max_bytes: 1 << 20,
        },
        ..HubConfig::default()
    });
    let mut sender = connect(&hub, "alice");
    let mut fast = connect(&hub, "bob");
    let mut slow = connect(&hub, "carol");
    for c in [&mut sender, &mut fast, &mut slow] {
        join(&hub, c, "s1");
    }
    fast.frames();

    let mut received = Vec::new();
    for i in 0..200 {
        let fanout = chat(
            &hub,
            &sender,
            "s1",
            &format!("m{i}"),
            Exclude::SenderConnection,
        );
        assert!(fanout.attempted() <= 2);
        // The fast reader drains as it goes; the slow one never reads.
        received.extend(fast.frames());
    }
    let texts: Vec<String> = received
        .iter()
        .map(|f| f["message"]["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(
        texts, expected,
        "the fast reader got every message, in order"
    );

    assert_eq!(slow.handle.close_code(), Some(CloseCode::SlowConsumer));
    assert_eq!(slow.closed(), Some(CloseCode::SlowConsumer));
    let m = hub.metrics().snapshot();
    assert_eq!(m.slow_consumer_closes, 1);
    assert!(
        m.dropped_closed > 0,
        "later frames to the slow one are dropped"
    );

    // The transport closes the socket and disconnects: carol leaves, bob hears it.
    drop(slow);
    assert_eq!(fast.of_type("user_left").len(), 1);
}

#[test]
fn icon_sync_lists_newer_peers_newest_first() {
    let hub = Hub::default();
    let s = sid("s1");
    let mut clients: Vec<Client> = ["asker", "old", "new", "newest", "tie", "outside"]
        .into_iter()
        .map(|u| connect(&hub, u))
        .collect();
    for c in clients.iter_mut().take(5) {
        join(&hub, c, "s1");
    }
    let key = |i: usize| clients[i].key();
    hub.icon_available(key(0), &s, TimestampMs(100))
        .expect("asker");
    hub.icon_available(key(1), &s, TimestampMs(50))
        .expect("old");
    hub.icon_available(key(2), &s, TimestampMs(200))
        .expect("new");
    hub.icon_available(key(3), &s, TimestampMs(300))
        .expect("newest");
    hub.icon_available(key(3), &s, TimestampMs(250))
        .expect("an older announcement");
    hub.icon_available(key(4), &s, TimestampMs(200))
        .expect("tie");
    assert_eq!(
        hub.icon_available(key(5), &s, TimestampMs(999)),
        Err(HubError::NotJoined(s.clone())),
        "only a joined connection may announce a server's icon"
    );

    let answer = hub.icon_peers(key(0), &s, TimestampMs(100)).expect("peers");
    let peers: Vec<(&str, i64)> = answer
        .peers
        .iter()
        .map(|p| (p.oder_id.as_str(), p.icon_updated_at.0))
        .collect();
    assert_eq!(peers, [("newest", 300), ("new", 200), ("tie", 200)]);

    let none = hub.icon_peers(key(3), &s, TimestampMs(300)).expect("peers");
    assert!(none.peers.is_empty(), "nobody is newer than the newest");

    let capped = Hub::new(HubConfig {
        max_icon_records_per_user: 1,
        ..HubConfig::default()
    });
    let mut c = connect(&capped, "x");
    join(&capped, &mut c, "a");
    join(&capped, &mut c, "b");
    capped
        .icon_available(c.key(), &sid("a"), TimestampMs(1))
        .expect("first");
    capped
        .icon_available(c.key(), &sid("a"), TimestampMs(2))
        .expect("same server");
    assert_eq!(
        capped.icon_available(c.key(), &sid("b"), TimestampMs(1)),
        Err(HubError::IconLimit)
    );
}

#[test]
fn a_connection_joins_and_views_at_most_its_caps() {
    let hub = Hub::new(HubConfig {
        max_joined_servers_per_connection: 2,
        max_viewed_servers_per_connection: 1,
        ..HubConfig::default()
    });
    let mut c = connect(&hub, "alice");
    join(&hub, &mut c, "s1");
    join(&hub, &mut c, "s2");
    join(&hub, &mut c, "s2");
    let err = hub
        .join_server(c.key(), &sid("s3"))
        .expect_err("over the cap");
    assert_eq!(err.error_code(), ErrorCode::LimitExceeded);
    hub.view_server(c.key(), &sid("v1")).expect("view");
    let err = hub
        .view_server(c.key(), &sid("v2"))
        .expect_err("over the cap");
    assert_eq!(err.error_code(), ErrorCode::LimitExceeded);
    hub.leave_server(c.key(), &sid("s1")).expect("leave");
    hub.join_server(c.key(), &sid("s3")).expect("a freed slot");
    assert_eq!(hub.stats().memberships, 2);
}

#[test]
fn status_update_reaches_each_connection_sharing_a_server_once() {
    let hub = Hub::default();
    let mut a1 = connect(&hub, "alice");
    let mut a2 = connect(&hub, "alice");
    let mut b = connect(&hub, "bob");
    let mut c = connect(&hub, "carol");
    let mut d = connect(&hub, "dave");
    let mut viewer = connect(&hub, "vic");
    join(&hub, &mut a1, "s1");
    join(&hub, &mut a1, "s2");
    join(&hub, &mut a2, "s1");
    join(&hub, &mut b, "s1");
    join(&hub, &mut b, "s2");
    join(&hub, &mut c, "s2");
    join(&hub, &mut d, "s3");
    hub.view_server(viewer.key(), &sid("s1")).expect("view");
    for x in [&mut a1, &mut a2, &mut b, &mut c, &mut d, &mut viewer] {
        x.frames();
    }

    let fanout = hub
        .set_status(a1.key(), UserStatus::Away, Exclude::SenderConnection)
        .expect("status");
    assert_eq!(fanout.delivered, 3, "a2, b (once despite two servers), c");
    assert!(a1.frames().is_empty());
    for x in [&mut a2, &mut b, &mut c] {
        let got = x.frames();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0],
            json!({ "type": "status_update", "oderId": "alice", "status": "away" })
        );
    }
    assert!(d.frames().is_empty() && viewer.frames().is_empty());

    let mut e = connect(&hub, "erin");
    join(&hub, &mut e, "s1");
    let roster = e.of_type("server_users");
    let alice = roster[0]["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["oderId"] == "alice").cloned())
        .expect("alice in roster");
    assert_eq!(alice["status"], "away", "the roster carries the new status");
    for x in [&mut a2, &mut b, &mut c] {
        x.frames();
    }

    let fanout = hub
        .set_status(a1.key(), UserStatus::Busy, Exclude::SenderUser)
        .expect("status");
    assert_eq!(fanout.delivered, 3, "b, c, e; not a2");
    assert!(a2.frames().is_empty());
}

#[test]
fn reidentifying_as_another_user_leaves_as_the_old_one() {
    let hub = Hub::default();
    let mut a = connect(&hub, "alice");
    let mut obs = connect(&hub, "obs");
    join(&hub, &mut a, "s1");
    join(&hub, &mut obs, "s1");
    obs.frames();

    let same = hub
        .identify(a.key(), uid("alice"), profile("Alice II"))
        .expect("profile update");
    assert_eq!(same.replaced_user, None);
    assert!(obs.frames().is_empty());

    let switched = hub
        .identify(a.key(), uid("mallory"), profile("M"))
        .expect("switch");
    assert_eq!(switched.replaced_user, Some(uid("alice")));
    assert!(switched.first_connection);
    let left = obs.of_type("user_left");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["displayName"], "Alice II");
    assert_eq!(hub.user_of(a.key()), Some(uid("mallory")));
    assert_eq!(hub.stats().users, 2);
}

#[test]
fn closing_every_connection_empties_every_index() {
    let hub = Hub::default();
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut c = connect(&hub, &format!("user{}", i % 13));
        join(&hub, &mut c, &format!("s{}", i % 5));
        join(&hub, &mut c, &format!("s{}", (i + 1) % 5));
        hub.view_server(c.key(), &sid(&format!("s{}", (i + 2) % 7)))
            .expect("view");
        let joined = sid(&format!("s{}", i % 5));
        hub.icon_available(c.key(), &joined, TimestampMs(i))
            .expect("icon");
        clients.push(c);
    }
    let (anon, _rx) = hub.connect();
    let stats = hub.stats();
    assert_eq!(stats.connections, 41);
    assert_eq!(stats.users, 13);
    assert_eq!(stats.memberships, 80);
    assert_eq!(stats.viewers, 40);
    assert_eq!(
        stats.icon_records, 40,
        "one per (user, joined server) announced"
    );
    assert_eq!(hub.metrics().snapshot().connections_open, 41);

    // Leave some explicitly, close the rest in an interleaved order.
    hub.leave_server(clients[0].key(), &sid("s0"))
        .expect("leave");
    hub.leave_server(clients[0].key(), &sid("s2"))
        .expect("stop viewing");
    let mut order: Vec<Client> = Vec::new();
    while let Some(c) = clients.pop() {
        order.push(c);
        if let Some(c) = (!clients.is_empty()).then(|| clients.remove(0)) {
            order.push(c);
        }
    }
    for c in order {
        let key = c.key();
        drop(c);
        assert_eq!(hub.disconnect(key), None, "already gone");
    }
    drop(anon);
    assert_empty(&hub);
}

#[test]
fn close_all_closes_every_connection_after_its_queued_frames() {
    let hub = Hub::default();
    let mut a = connect(&hub, "alice");
    let mut b = connect(&hub, "bob");
    join(&hub, &mut a, "s1");
    hub.close_all(CloseCode::GoingAway);
    assert_eq!(
        a.rx.try_recv().map(|o| matches!(o, Outbound::Frame(_))),
        Some(true)
    );
    assert_eq!(a.closed(), Some(CloseCode::GoingAway));
    assert_eq!(b.closed(), Some(CloseCode::GoingAway));
    assert_eq!(
        a.handle.send(&ServerEnvelope::UserLeft(
            signalbox_protocol::ws::UserLeft {
                server_id: sid("s1"),
                oder_id: uid("x"),
                display_name: None,
            }
        )),
        Ok(SendOutcome::Closed)
    );
}

#[test]
fn profile_comes_from_identify() {
    let identify: Identify = serde_json::from_value(json!({
        "oderId": "u1",
        "displayName": "Una",
        "connectionScope": "wss://signal.example",
        "description": "hi",
        "profileUpdatedAt": 42,
        "token": "secret"
    }))
    .expect("identify");
    let p = Profile::from_identify(&identify);
    let summary = serde_json::to_value(p.summary(&uid("u1"), UserStatus::Busy)).expect("json");
    assert_eq!(
        summary,
        json!({
            "oderId": "u1",
            "displayName": "Una",
            "description": "hi",
            "status": "busy",
            "profileUpdatedAt": 42,
            "connectionScope": "wss://signal.example"
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_broadcasts_deliver_every_frame_exactly_once() {
    let hub = Hub::default();
    let senders: Vec<Client> = (0..4)
        .map(|i| {
            let mut c = connect(&hub, &format!("sender{i}"));
            join(&hub, &mut c, "big");
            c
        })
        .collect();
    let mut readers: Vec<Client> = (0..50)
        .map(|i| {
            let mut c = connect(&hub, &format!("reader{i}"));
            join(&hub, &mut c, "big");
            c.frames();
            c
        })
        .collect();
    let per_sender = 200;
    let mut tasks = Vec::new();
    for sender in senders {
        let hub = hub.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            for i in 0..per_sender {
                chat(&hub, &sender, "big", &format!("{i}"), Exclude::SenderUser);
            }
            sender
        }));
    }
    let mut kept = Vec::new();
    for task in tasks {
        kept.push(task.await.expect("sender task"));
    }
    for reader in &mut readers {
        let chats = reader.of_type("chat_message");
        assert_eq!(chats.len(), 4 * per_sender, "every message exactly once");
        for s in 0..4 {
            let from: Vec<u64> = chats
                .iter()
                .filter(|c| c["senderId"] == format!("sender{s}"))
                .filter_map(|c| c["message"]["text"].as_str()?.parse().ok())
                .collect();
            assert_eq!(
                from,
                (0..per_sender as u64).collect::<Vec<_>>(),
                "per-sender order"
            );
        }
    }
    drop(kept);
    drop(readers);
    assert_empty(&hub);
}

#[test]
fn the_assembled_roster_is_the_envelope_serde_would_write() {
    let hub = Hub::default();
    let odd = sid("we\"ird\\id ✓");
    let mut clients = Vec::new();
    for name in ["a\"q", "b", "c"] {
        let (handle, rx) = hub.connect();
        let mut p = profile(&format!("{name}\n"));
        p.description = Some("multi\u{0001}line".to_owned());
        hub.identify(handle.key(), uid(name), p).expect("identify");
        hub.join_server(handle.key(), &odd).expect("join");
        clients.push(Client { handle, rx });
    }
    hub.set_status(
        clients[1].key(),
        UserStatus::Busy,
        Exclude::SenderConnection,
    )
    .expect("status");
    hub.view_server(clients[0].key(), &odd).expect("view");
    let roster = clients[0]
        .rx
        .try_recv()
        .into_iter()
        .chain(std::iter::from_fn(|| clients[0].rx.try_recv()))
        .filter_map(|o| match o {
            Outbound::Frame(f) if f.as_str().contains("server_users") => Some(f),
            _ => None,
        })
        .last()
        .expect("a roster");
    let typed: ServerEnvelope = serde_json::from_str(roster.as_str()).expect("valid JSON");
    let ServerEnvelope::ServerUsers(mut typed) = typed else {
        panic!("not server_users")
    };
    typed.users.sort_by(|a, b| a.oder_id.cmp(&b.oder_id));
    let reserialized = ServerEnvelope::ServerUsers(typed.clone());
    assert_eq!(typed.server_id, odd);
    assert_eq!(typed.users.len(), 3);
    assert_eq!(typed.users[1].status, UserStatus::Busy);
    assert_eq!(typed.users[0].display_name, "a\"q\n");
    let back: Value = serde_json::from_str(roster.as_str()).expect("json");
    let mut back_users = back["users"].as_array().cloned().unwrap_or_default();
    back_users.sort_by_key(|u| u["oderId"].as_str().map(str::to_owned));
    let expected = serde_json::to_value(&reserialized).expect("json");
    assert_eq!(
        back_users,
        expected["users"].as_array().cloned().unwrap_or_default()
    );
    assert_eq!(back["type"], expected["type"]);
    assert_eq!(back["serverId"], expected["serverId"]);
}

#[test]
fn the_roster_version_changes_with_every_join_and_leave_and_is_never_reused() {
    let hub = Hub::default();
    let mut a = connect(&hub, "alice");
    let mut b = connect(&hub, "bob");
    assert_eq!(hub.roster_version(&sid("s1")), None);
    join(&hub, &mut a, "s1");
    let first = hub.roster_version(&sid("s1")).expect("live");
    chat(&hub, &a, "s1", "hello", Exclude::SenderConnection);
    hub.set_status(a.key(), UserStatus::Away, Exclude::SenderConnection)
        .expect("status");
    assert_eq!(
        hub.roster_version(&sid("s1")),
        Some(first),
        "only membership counts"
    );
    join(&hub, &mut b, "s1");
    let (second, mut users) = hub.roster(&sid("s1")).expect("live");
    assert!(second > first);
    users.sort();
    assert_eq!(users, [uid("alice"), uid("bob")]);
    hub.leave_server(b.key(), &sid("s1")).expect("leave");
    hub.leave_server(a.key(), &sid("s1")).expect("leave");
    assert_eq!(
        hub.roster(&sid("s1")),
        None,
        "an empty server has no roster"
    );
    hub.view_server(b.key(), &sid("s1")).expect("view");
    let (recreated, users) = hub.roster(&sid("s1")).expect("viewed");
    assert!(
        recreated > second,
        "a recreated server gets a fresh version"
    );
    assert!(users.is_empty(), "a viewer is not on the roster");
}

/// A join storm: each join serializes its `user_joined` once and assembles one roster, however
/// many members already joined, and every earlier member's copy is the same shared bytes.
#[test]
fn each_join_of_a_storm_serializes_once_and_shares_one_frame() {
    const MEMBERS: usize = 40;
    let hub = Hub::default();
    let mut clients: Vec<Client> = (0..MEMBERS)
        .map(|i| connect(&hub, &format!("u{i}")))
        .collect();
    for i in 0..MEMBERS {
        let before = hub.metrics().snapshot().envelopes_serialized;
        join(&hub, &mut clients[i], "storm");
        let serialized = hub.metrics().snapshot().envelopes_serialized - before;
        assert_eq!(
            serialized, 2,
            "join {i}: one roster and one user_joined for all {i} earlier members"
        );
        let mut copies = Vec::new();
        for earlier in &mut clients[..i] {
            match earlier.rx.try_recv() {
                Some(Outbound::Frame(frame)) => copies.push(frame),
                other => panic!("expected one user_joined, got {other:?}"),
            }
            assert_eq!(earlier.rx.try_recv(), None);
        }
        let first = copies.first().map(|f| f.as_str().as_ptr());
        assert!(
            copies.iter().all(|f| Some(f.as_str().as_ptr()) == first),
            "join {i}: every copy points at the same bytes"
        );
        assert_eq!(clients[i].of_type("server_users").len(), 1);
    }
}
