//! The directory conformance suite: every command and query of `Directory`, the access rules,
//! pagination cursors, prefix search, cascades and idempotency, written once against
//! `Arc<dyn Directory>` and run against every backend.
//!
//! A case is `async fn case(dir: Arc<dyn Directory>)`; [`conformance!`] instantiates each case
//! for each backend of [`backends`]. To add a backend: write `backends::<name>()` (a fresh,
//! empty directory, or `None` with a printed reason to skip) and add `<name>` to the list in the
//! `conformance!` call at the bottom.

use std::collections::BTreeMap;
use std::sync::Arc;

use signalbox::config::AuthMode;
use signalbox::directory::access::{Access, AdmissionRequest, Entry, IdentifyDenied, Staff, Step};
use signalbox::directory::idempotency::Claim;
use signalbox::directory::store::{NewUser, PageQuery, Proven};
use signalbox::directory::{Cx, Directory, DirectoryError, Outcome};
use signalbox_protocol::http::{
    CreateServerRequest, Invite, JoinRequest, JoinRequestStatus, MemberRole, PluginManifest,
    ServerVisibility, UpdateServerRequest, UpsertGameRequest,
};
use signalbox_protocol::{AccessDeniedReason, PluginId, Secret, ServerId, TimestampMs, UserId};

mod pg;

/// The backends the suite runs against.
mod backends {
    use std::sync::Arc;

    use signalbox::config::database::DatabaseSettings;
    use signalbox::directory::{Directory, SqliteDirectory};

    /// A fresh, empty directory and whatever must live as long as it.
    pub struct Backend {
        pub directory: Arc<dyn Directory>,
        pub _keep: Box<dyn Send>,
    }

    /// SQLite on a file in a temporary directory (removed when the case ends).
    pub async fn sqlite() -> Option<Backend> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("directory.db");
        let directory = tokio::task::spawn_blocking(move || {
            SqliteDirectory::open(&path, 4, &DatabaseSettings::default())
        })
        .await
        .expect("join")
        .expect("open");
        Some(Backend {
            directory: Arc::new(directory),
            _keep: Box::new(dir),
        })
    }

    /// PostgreSQL: a fresh schema on `SIGNALBOX_TEST_POSTGRES_URL` (see tests/pg), migrated
    /// under the migration lock; `None` (printed) without the variable, a failure under CI.
    pub async fn postgres() -> Option<Backend> {
        use signalbox::directory::postgres::{PgDirectory, PoolSettings};
        let base = crate::pg::server_url("directory_conformance::postgres")?;
        let url = crate::pg::fresh_schema_url(&base).await;
        let settings = PoolSettings {
            size: 4,
            ..PoolSettings::default()
        };
        let directory = PgDirectory::open(&url, &settings).await.expect("open");
        Some(Backend {
            directory: Arc::new(directory),
            _keep: Box::new(()),
        })
    }
}

/// Emits `<backend>::<case>` for every backend and case.
macro_rules! conformance {
    (backends: [$($backend:ident),* $(,)?]; cases: $cases:tt $(,)?) => {
        $( conformance_for!($backend, $cases); )*
    };
}

/// Emits `<backend>::<case>` for every case.
macro_rules! conformance_for {
    ($backend:ident, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backend) = crate::backends::$backend().await else {
                        return;
                    };
                    super::$case(std::sync::Arc::clone(&backend.directory)).await;
                }
            )*
        }
    };
}

const NOW: TimestampMs = TimestampMs(1_700_000_000_000);

fn cx() -> Cx {
    Cx::new("conformance")
}

fn claimed(claim: &Claim, status: u16) -> Cx {
    cx().with_claim(Some(claim.clone()), status)
}

fn user(id: &str) -> UserId {
    UserId::from(id)
}

fn server_id(id: &str) -> ServerId {
    ServerId::from(id)
}

fn owner(id: &str) -> NewUser {
    NewUser {
        id: user(id),
        display_name: Some(format!("{id} name")),
        public_key: None,
        guest: false,
    }
}

fn page(limit: u32, cursor: Option<String>) -> PageQuery {
    PageQuery { limit, cursor }
}

fn request(name: &str, visibility: ServerVisibility) -> CreateServerRequest {
    CreateServerRequest {
        id: None,
        name: name.into(),
        description: Some(format!("about {name}")),
        tags: Some(vec!["tag".into()]),
        visibility: Some(visibility),
    }
}

fn done<T: std::fmt::Debug>(outcome: Outcome<T>) -> T {
    match outcome {
        Outcome::Done(value) => value,
        Outcome::Replayed(r) => panic!("expected a change, got a replay {r:?}"),
    }
}

/// Creates `id` owned by `by` (`owner` as its first member).
async fn create(dir: &Arc<dyn Directory>, id: &str, by: &str, visibility: ServerVisibility) {
    let summary = done(
        dir.create_server(
            &cx(),
            owner(by),
            server_id(id),
            request(id, visibility),
            100,
            NOW,
        )
        .await
        .expect("create"),
    );
    assert_eq!(summary.id, server_id(id));
}

async fn add_member(dir: &Arc<dyn Directory>, server: &str, who: &str) {
    let code = format!("join-{server}-{who}");
    let invite = invite(&code, server, "owner", None, None);
    done(dir.create_invite(&cx(), invite).await.expect("invite"));
    done(
        dir.accept_invite(&cx(), &code, &user(who), NOW)
            .await
            .expect("accept"),
    );
}

fn invite(
    code: &str,
    server: &str,
    by: &str,
    expires_at: Option<TimestampMs>,
    max_uses: Option<u32>,
) -> Invite {
    Invite {
        code: code.into(),
        server_id: server_id(server),
        created_by: user(by),
        created_at: NOW,
        expires_at,
        max_uses,
        uses: 0,
    }
}

fn claim_for(key: &str, body: &[u8], ttl_ms: i64) -> Claim {
    Claim::new(
        "owner",
        "POST /api/servers".into(),
        key.into(),
        ("POST", "/api/servers", body),
        true,
        ttl_ms,
    )
}

fn manifest(plugin: &str) -> PluginManifest {
    PluginManifest {
        plugin_id: PluginId::from(plugin),
        version: "1.0.0".into(),
        required: false,
        max_payload_bytes: 1024,
        events: BTreeMap::new(),
        updated_at: NOW,
    }
}

fn admission(entry: Entry, server: &str, who: &str) -> AdmissionRequest {
    AdmissionRequest {
        entry,
        server: server_id(server),
        user: user(who),
        authenticated: true,
        durable: true,
        password: None,
        invite_code: None,
        display_name: Some(format!("{who} name")),
        mode: AuthMode::Open,
    }
}

// ---- servers ----

async fn servers_create_read_update_delete(dir: Arc<dyn Directory>) {
    create(&dir, "alpha", "owner", ServerVisibility::Public).await;
    let record = dir
        .server(&cx(), &server_id("alpha"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.summary.owner_id, user("owner"));
    assert_eq!(record.summary.member_count, 1);
    assert_eq!(record.summary.tags, vec!["tag".to_owned()]);
    assert!(!record.summary.has_password);
    assert_eq!(record.password_hash, None);
    assert_eq!(
        dir.role(&cx(), &server_id("alpha"), &user("owner"))
            .await
            .expect("role"),
        Some(MemberRole::Owner)
    );
    // The owner's row was written (owning makes an identity durable).
    let profile = dir
        .user_profile(&cx(), &user("owner"))
        .await
        .expect("profile")
        .expect("row");
    assert_eq!(profile.display_name.as_deref(), Some("owner name"));

    let duplicate = dir
        .create_server(
            &cx(),
            owner("other"),
            server_id("alpha"),
            request("alpha", ServerVisibility::Public),
            100,
            NOW,
        )
        .await;
    assert!(matches!(duplicate, Err(DirectoryError::Conflict(_))));

    let update = UpdateServerRequest {
        name: Some("Alpha Two".into()),
        description: None,
        tags: Some(vec!["x".into(), "y".into()]),
        visibility: Some(ServerVisibility::Private),
    };
    let updated = done(
        dir.update_server(&cx(), &server_id("alpha"), update.clone())
            .await
            .expect("update"),
    );
    assert_eq!(updated.name, "Alpha Two");
    assert_eq!(updated.description.as_deref(), Some("about alpha"));
    assert_eq!(updated.visibility, ServerVisibility::Private);
    assert!(matches!(
        dir.update_server(&cx(), &server_id("nope"), update).await,
        Err(DirectoryError::NotFound("server"))
    ));

    done(
        dir.set_password_hash(&cx(), &server_id("alpha"), Some("$argon2id$fake".into()))
            .await
            .expect("password"),
    );
    let record = dir
        .server(&cx(), &server_id("alpha"))
        .await
        .expect("read")
        .expect("exists");
    assert!(record.summary.has_password);
    assert_eq!(record.password_hash.as_deref(), Some("$argon2id$fake"));
    done(
        dir.set_password_hash(&cx(), &server_id("alpha"), None)
            .await
            .expect("clear"),
    );
    assert!(matches!(
        dir.set_password_hash(&cx(), &server_id("nope"), None).await,
        Err(DirectoryError::NotFound("server"))
    ));

    done(
        dir.delete_server(&cx(), &server_id("alpha"))
            .await
            .expect("delete"),
    );
    assert_eq!(
        dir.server(&cx(), &server_id("alpha")).await.expect("read"),
        None
    );
    assert!(matches!(
        dir.delete_server(&cx(), &server_id("alpha")).await,
        Err(DirectoryError::NotFound("server"))
    ));
}

async fn delete_server_cascades(dir: Arc<dyn Directory>) {
    create(&dir, "doomed", "owner", ServerVisibility::Private).await;
    add_member(&dir, "doomed", "member").await;
    done(
        dir.ban(
            &cx(),
            &server_id("doomed"),
            &user("bad"),
            None,
            &user("owner"),
            NOW,
        )
        .await
        .expect("ban"),
    );
    done(
        dir.create_invite(&cx(), invite("left-over", "doomed", "owner", None, None))
            .await
            .expect("invite"),
    );
    let request = JoinRequest {
        id: "jr-1".into(),
        server_id: server_id("doomed"),
        user_id: user("applicant"),
        message: None,
        status: JoinRequestStatus::Pending,
        created_at: NOW,
        decided_at: None,
    };
    done(
        dir.create_join_request(&cx(), request)
            .await
            .expect("request"),
    );
    done(
        dir.put_plugin(&cx(), &server_id("doomed"), manifest("p"), 8)
            .await
            .expect("plugin"),
    );
    done(
        dir.delete_server(&cx(), &server_id("doomed"))
            .await
            .expect("delete"),
    );

    // Recreated under the same id, nothing of the old server remains.
    create(&dir, "doomed", "owner2", ServerVisibility::Public).await;
    let s = server_id("doomed");
    let members = dir
        .list_members(&cx(), &s, None, page(10, None))
        .await
        .expect("members")
        .expect("visible");
    assert_eq!(
        members
            .items
            .iter()
            .map(|m| m.user_id.clone())
            .collect::<Vec<_>>(),
        vec![user("owner2")]
    );
    assert!(
        dir.list_bans(&cx(), &s, page(10, None))
            .await
            .expect("bans")
            .items
            .is_empty()
    );
    assert_eq!(dir.invite(&cx(), "left-over").await.expect("invite"), None);
    assert_eq!(
        dir.join_request(&cx(), "jr-1").await.expect("request"),
        None
    );
    assert!(
        dir.plugin_manifests(&cx(), &s)
            .await
            .expect("plugins")
            .is_empty()
    );
}

async fn owner_cap_holds_under_concurrent_creates(dir: Arc<dyn Directory>) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let dir = Arc::clone(&dir);
        tasks.push(tokio::spawn(async move {
            dir.create_server(
                &cx(),
                owner("greedy"),
                server_id(&format!("greedy-{i}")),
                request(&format!("greedy {i}"), ServerVisibility::Public),
                3,
                NOW,
            )
            .await
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("join") {
            Ok(Outcome::Done(_)) => created += 1,
            Err(DirectoryError::Forbidden(message)) => {
                assert!(message.contains("security.maxServersPerOwner"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, refused), (3, 7));
    assert_eq!(
        dir.stats(&cx())
            .await
            .expect("stats")
            .most_servers_per_owner,
        3
    );
}

async fn public_servers_page_and_search_by_prefix(dir: Arc<dyn Directory>) {
    for id in ["a-1", "a-2", "a-3", "a-4", "a-5"] {
        create(&dir, id, "owner", ServerVisibility::Public).await;
    }
    create(&dir, "hidden", "owner", ServerVisibility::Private).await;
    done(
        dir.create_server(
            &cx(),
            owner("owner"),
            server_id("z-game"),
            request("Games Night", ServerVisibility::Public),
            100,
            NOW,
        )
        .await
        .expect("create"),
    );

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let got = dir
            .list_public_servers(&cx(), None, page(2, cursor))
            .await
            .expect("list");
        assert!(got.items.len() <= 2);
        seen.extend(got.items.into_iter().map(|s| s.id.0));
        match got.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["a-1", "a-2", "a-3", "a-4", "a-5", "z-game"]);

    let found = dir
        .list_public_servers(&cx(), Some("gAmEs"), page(10, None))
        .await
        .expect("search");
    assert_eq!(
        found
            .items
            .iter()
            .map(|s| s.id.0.as_str())
            .collect::<Vec<_>>(),
        ["z-game"]
    );
    let first = dir
        .list_public_servers(&cx(), Some("A-"), page(3, None))
        .await
        .expect("search");
    assert_eq!(first.items.len(), 3);
    let rest = dir
        .list_public_servers(&cx(), Some("a-"), page(3, first.next_cursor))
        .await
        .expect("search");
    assert_eq!(
        rest.items
            .iter()
            .map(|s| s.id.0.as_str())
            .collect::<Vec<_>>(),
        ["a-4", "a-5"]
    );
    assert_eq!(rest.next_cursor, None);
    let none = dir
        .list_public_servers(&cx(), Some("hidden"), page(10, None))
        .await
        .expect("search");
    assert!(none.items.is_empty(), "a private server is never listed");
}

async fn server_view_follows_the_view_rule(dir: Arc<dyn Directory>) {
    create(&dir, "open", "owner", ServerVisibility::Public).await;
    create(&dir, "closed", "owner", ServerVisibility::Private).await;
    add_member(&dir, "closed", "member").await;
    let view = |s: &'static str, who: Option<&'static str>| {
        let dir = Arc::clone(&dir);
        async move {
            let viewer = who.map(user);
            dir.server_view(&cx(), &server_id(s), viewer.as_ref())
                .await
                .expect("view")
                .map(|summary| summary.id.0)
        }
    };
    assert_eq!(view("open", None).await, Ok("open".into()));
    assert_eq!(view("open", Some("anyone")).await, Ok("open".into()));
    assert_eq!(view("closed", Some("member")).await, Ok("closed".into()));
    assert_eq!(view("closed", None).await, Err(AccessDeniedReason::Private));
    assert_eq!(
        view("closed", Some("stranger")).await,
        Err(AccessDeniedReason::Private)
    );
    assert_eq!(view("nope", None).await, Err(AccessDeniedReason::NotFound));
    done(
        dir.ban(
            &cx(),
            &server_id("open"),
            &user("bad"),
            None,
            &user("owner"),
            NOW,
        )
        .await
        .expect("ban"),
    );
    assert_eq!(
        view("open", Some("bad")).await,
        Err(AccessDeniedReason::Banned)
    );

    let listed = dir
        .list_members(
            &cx(),
            &server_id("closed"),
            Some(&user("stranger")),
            page(10, None),
        )
        .await
        .expect("members");
    assert_eq!(listed, Err(AccessDeniedReason::Private));
    let plugins = dir
        .list_plugins(&cx(), &server_id("closed"), None)
        .await
        .expect("plugins");
    assert_eq!(plugins, Err(AccessDeniedReason::Private));
}

// ---- members and bans ----

async fn members_roles_and_pages(dir: Arc<dyn Directory>) {
    create(&dir, "club", "owner", ServerVisibility::Public).await;
    for who in ["m1", "m2", "m3", "m4"] {
        add_member(&dir, "club", who).await;
    }
    let s = server_id("club");
    let first = dir
        .list_members(&cx(), &s, None, page(2, None))
        .await
        .expect("members")
        .expect("visible");
    let ids = |items: &[signalbox_protocol::http::Membership]| {
        items
            .iter()
            .map(|m| m.user_id.0.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first.items), ["m1", "m2"]);
    let second = dir
        .list_members(&cx(), &s, None, page(2, first.next_cursor))
        .await
        .expect("members")
        .expect("visible");
    assert_eq!(ids(&second.items), ["m3", "m4"]);
    let third = dir
        .list_members(&cx(), &s, None, page(2, second.next_cursor))
        .await
        .expect("members")
        .expect("visible");
    assert_eq!(ids(&third.items), ["owner"]);
    assert_eq!(third.next_cursor, None);

    let promoted = done(
        dir.set_role(&cx(), &s, &user("m1"), MemberRole::Moderator)
            .await
            .expect("role"),
    );
    assert_eq!(promoted.role, MemberRole::Moderator);
    assert_eq!(
        dir.staff(&cx(), &s, &user("m1")).await.expect("staff"),
        Some(Staff::Moderator)
    );
    assert_eq!(
        dir.staff(&cx(), &s, &user("owner")).await.expect("staff"),
        Some(Staff::Owner)
    );
    assert_eq!(
        dir.staff(&cx(), &s, &user("m2")).await.expect("staff"),
        None
    );
    assert!(matches!(
        dir.staff(&cx(), &server_id("nope"), &user("m2")).await,
        Err(DirectoryError::NotFound("server"))
    ));
    assert!(matches!(
        dir.set_role(&cx(), &s, &user("m2"), MemberRole::Owner)
            .await,
        Err(DirectoryError::Forbidden(_))
    ));
    assert!(matches!(
        dir.set_role(&cx(), &s, &user("owner"), MemberRole::Member)
            .await,
        Err(DirectoryError::Forbidden(_))
    ));
    assert!(matches!(
        dir.set_role(&cx(), &s, &user("stranger"), MemberRole::Member)
            .await,
        Err(DirectoryError::NotFound("member"))
    ));

    done(
        dir.remove_member(&cx(), &s, &user("m2"))
            .await
            .expect("remove"),
    );
    assert_eq!(dir.role(&cx(), &s, &user("m2")).await.expect("role"), None);
    assert!(matches!(
        dir.remove_member(&cx(), &s, &user("m2")).await,
        Err(DirectoryError::NotFound("member"))
    ));
    assert!(matches!(
        dir.remove_member(&cx(), &s, &user("owner")).await,
        Err(DirectoryError::Forbidden(_))
    ));
}

async fn bans_remove_membership_and_page(dir: Arc<dyn Directory>) {
    create(&dir, "strict", "owner", ServerVisibility::Public).await;
    add_member(&dir, "strict", "b1").await;
    let s = server_id("strict");
    for who in ["b1", "b2", "b3"] {
        let ban = done(
            dir.ban(
                &cx(),
                &s,
                &user(who),
                Some("spam".into()),
                &user("owner"),
                NOW,
            )
            .await
            .expect("ban"),
        );
        assert_eq!(ban.user_id, user(who));
        assert_eq!(ban.reason.as_deref(), Some("spam"));
        assert_eq!(ban.banned_by, user("owner"));
    }
    assert_eq!(dir.role(&cx(), &s, &user("b1")).await.expect("role"), None);
    assert!(matches!(
        dir.ban(&cx(), &s, &user("owner"), None, &user("owner"), NOW)
            .await,
        Err(DirectoryError::Forbidden(_))
    ));
    let first = dir.list_bans(&cx(), &s, page(2, None)).await.expect("bans");
    assert_eq!(first.items.len(), 2);
    let rest = dir
        .list_bans(&cx(), &s, page(2, first.next_cursor))
        .await
        .expect("bans");
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].user_id, user("b3"));
    assert_eq!(rest.next_cursor, None);

    done(dir.unban(&cx(), &s, &user("b2")).await.expect("unban"));
    assert!(matches!(
        dir.unban(&cx(), &s, &user("b2")).await,
        Err(DirectoryError::NotFound("ban"))
    ));
    assert_eq!(
        dir.list_bans(&cx(), &s, page(10, None))
            .await
            .expect("bans")
            .items
            .len(),
        2
    );
}

// ---- invites and join requests ----

async fn invites_resolve_accept_and_expire(dir: Arc<dyn Directory>) {
    create(&dir, "vip", "owner", ServerVisibility::Private).await;
    let once = invite(
        "once",
        "vip",
        "owner",
        Some(TimestampMs(NOW.0 + 60_000)),
        Some(1),
    );
    let stored = done(dir.create_invite(&cx(), once).await.expect("invite"));
    assert_eq!(stored.code, "once");
    let record = dir
        .invite(&cx(), "once")
        .await
        .expect("read")
        .expect("exists");
    assert!(!record.revoked);
    assert_eq!(record.invite.max_uses, Some(1));

    let resolved = dir
        .resolve_invite(&cx(), "once", NOW)
        .await
        .expect("resolve");
    assert_eq!(resolved.server.id, server_id("vip"));
    assert_eq!(resolved.expires_at, Some(TimestampMs(NOW.0 + 60_000)));
    assert!(matches!(
        dir.resolve_invite(&cx(), "once", TimestampMs(NOW.0 + 60_000))
            .await,
        Err(DirectoryError::Gone(_))
    ));
    assert!(matches!(
        dir.resolve_invite(&cx(), "nope", NOW).await,
        Err(DirectoryError::NotFound("invite"))
    ));

    let membership = done(
        dir.accept_invite(&cx(), "once", &user("guest1"), NOW)
            .await
            .expect("accept"),
    );
    assert_eq!(membership.role, MemberRole::Member);
    assert_eq!(
        dir.invite(&cx(), "once")
            .await
            .expect("read")
            .expect("exists")
            .invite
            .uses,
        1
    );
    assert!(matches!(
        dir.accept_invite(&cx(), "once", &user("guest2"), NOW).await,
        Err(DirectoryError::Gone(_))
    ));
    assert!(matches!(
        dir.accept_invite(&cx(), "nope", &user("guest2"), NOW).await,
        Err(DirectoryError::NotFound("invite"))
    ));

    done(
        dir.create_invite(&cx(), invite("many", "vip", "owner", None, None))
            .await
            .expect("invite"),
    );
    done(
        dir.ban(
            &cx(),
            &server_id("vip"),
            &user("bad"),
            None,
            &user("owner"),
            NOW,
        )
        .await
        .expect("ban"),
    );
    assert!(matches!(
        dir.accept_invite(&cx(), "many", &user("bad"), NOW).await,
        Err(DirectoryError::Forbidden(_))
    ));
    // A member accepting again counts no use and keeps the membership.
    for _ in 0..2 {
        let membership = done(
            dir.accept_invite(&cx(), "many", &user("guest4"), NOW)
                .await
                .expect("accept"),
        );
        assert_eq!(membership.role, MemberRole::Member);
    }
    assert_eq!(
        dir.invite(&cx(), "many")
            .await
            .expect("read")
            .expect("exists")
            .invite
            .uses,
        1
    );
    done(dir.revoke_invite(&cx(), "many").await.expect("revoke"));
    assert!(
        dir.invite(&cx(), "many")
            .await
            .expect("read")
            .expect("exists")
            .revoked
    );
    assert!(matches!(
        dir.accept_invite(&cx(), "many", &user("guest3"), NOW).await,
        Err(DirectoryError::Gone(_))
    ));
    assert!(matches!(
        dir.revoke_invite(&cx(), "nope").await,
        Err(DirectoryError::NotFound("invite"))
    ));
}

fn join_request(id: &str, server: &str, who: &str) -> JoinRequest {
    JoinRequest {
        id: id.into(),
        server_id: server_id(server),
        user_id: user(who),
        message: Some("let me in".into()),
        status: JoinRequestStatus::Pending,
        created_at: NOW,
        decided_at: None,
    }
}

async fn join_requests_are_filed_and_decided(dir: Arc<dyn Directory>) {
    create(&dir, "private", "owner", ServerVisibility::Private).await;
    create(&dir, "public", "owner", ServerVisibility::Public).await;
    let filed = done(
        dir.create_join_request(&cx(), join_request("r1", "private", "alice"))
            .await
            .expect("file"),
    );
    assert_eq!(filed.status, JoinRequestStatus::Pending);
    done(
        dir.create_join_request(&cx(), join_request("r2", "private", "bob"))
            .await
            .expect("file"),
    );
    done(
        dir.create_join_request(&cx(), join_request("r3", "private", "carol"))
            .await
            .expect("file"),
    );
    assert!(matches!(
        dir.create_join_request(&cx(), join_request("r4", "private", "alice"))
            .await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        dir.create_join_request(&cx(), join_request("r5", "public", "alice"))
            .await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        dir.create_join_request(&cx(), join_request("r6", "nope", "alice"))
            .await,
        Err(DirectoryError::NotFound("server"))
    ));
    assert!(matches!(
        dir.create_join_request(&cx(), join_request("r7", "private", "owner"))
            .await,
        Err(DirectoryError::Conflict(_))
    ));
    done(
        dir.ban(
            &cx(),
            &server_id("private"),
            &user("mallory"),
            None,
            &user("owner"),
            NOW,
        )
        .await
        .expect("ban"),
    );
    assert!(matches!(
        dir.create_join_request(&cx(), join_request("r8", "private", "mallory"))
            .await,
        Err(DirectoryError::Forbidden(_))
    ));

    let s = server_id("private");
    let first = dir
        .pending_join_requests(&cx(), &s, page(2, None))
        .await
        .expect("pending");
    assert_eq!(
        first
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    let rest = dir
        .pending_join_requests(&cx(), &s, page(2, first.next_cursor))
        .await
        .expect("pending");
    assert_eq!(
        rest.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r3"]
    );

    let approved = done(
        dir.decide_join_request(
            &cx(),
            "r1",
            JoinRequestStatus::Approved,
            &user("owner"),
            NOW,
        )
        .await
        .expect("approve"),
    );
    assert_eq!(approved.status, JoinRequestStatus::Approved);
    assert_eq!(approved.decided_at, Some(NOW));
    assert_eq!(
        dir.role(&cx(), &s, &user("alice")).await.expect("role"),
        Some(MemberRole::Member)
    );
    done(
        dir.decide_join_request(
            &cx(),
            "r2",
            JoinRequestStatus::Rejected,
            &user("owner"),
            NOW,
        )
        .await
        .expect("reject"),
    );
    assert_eq!(dir.role(&cx(), &s, &user("bob")).await.expect("role"), None);
    done(
        dir.decide_join_request(
            &cx(),
            "r3",
            JoinRequestStatus::Withdrawn,
            &user("carol"),
            NOW,
        )
        .await
        .expect("withdraw"),
    );
    assert!(matches!(
        dir.decide_join_request(
            &cx(),
            "r1",
            JoinRequestStatus::Rejected,
            &user("owner"),
            NOW
        )
        .await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        dir.decide_join_request(
            &cx(),
            "nope",
            JoinRequestStatus::Approved,
            &user("owner"),
            NOW
        )
        .await,
        Err(DirectoryError::NotFound("join request"))
    ));
    let read = dir
        .join_request(&cx(), "r2")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.status, JoinRequestStatus::Rejected);
    assert!(
        dir.pending_join_requests(&cx(), &s, page(10, None))
            .await
            .expect("pending")
            .items
            .is_empty()
    );
}

// ---- games, plugins, users ----

async fn games_upsert_page_and_delete(dir: Arc<dyn Directory>) {
    for id in ["chess", "go", "tetris"] {
        let game = done(
            dir.upsert_game(
                &cx(),
                id,
                UpsertGameRequest {
                    name: id.to_uppercase(),
                    executables: Some(vec![format!("{id}.exe")]),
                    icon_url: None,
                },
                NOW,
            )
            .await
            .expect("upsert"),
        );
        assert_eq!(game.id, id);
        assert_eq!(game.executables, vec![format!("{id}.exe")]);
    }
    let replaced = done(
        dir.upsert_game(
            &cx(),
            "go",
            UpsertGameRequest {
                name: "Go!".into(),
                executables: None,
                icon_url: Some("https://example.invalid/go.png".into()),
            },
            TimestampMs(NOW.0 + 1),
        )
        .await
        .expect("replace"),
    );
    assert_eq!(replaced.name, "Go!");
    let first = dir.list_games(&cx(), page(2, None)).await.expect("games");
    assert_eq!(
        first
            .items
            .iter()
            .map(|g| g.id.as_str())
            .collect::<Vec<_>>(),
        ["chess", "go"]
    );
    let rest = dir
        .list_games(&cx(), page(2, first.next_cursor))
        .await
        .expect("games");
    assert_eq!(
        rest.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["tetris"]
    );
    done(dir.delete_game(&cx(), "chess").await.expect("delete"));
    assert!(matches!(
        dir.delete_game(&cx(), "chess").await,
        Err(DirectoryError::NotFound("game"))
    ));
}

async fn plugins_are_capped_listed_and_removed(dir: Arc<dyn Directory>) {
    create(&dir, "modded", "owner", ServerVisibility::Public).await;
    let s = server_id("modded");
    for p in ["p1", "p2"] {
        done(
            dir.put_plugin(&cx(), &s, manifest(p), 2)
                .await
                .expect("put"),
        );
    }
    // Replacing one of the two is not a third.
    let mut newer = manifest("p1");
    newer.version = "2.0.0".into();
    done(dir.put_plugin(&cx(), &s, newer, 2).await.expect("replace"));
    assert!(matches!(
        dir.put_plugin(&cx(), &s, manifest("p3"), 2).await,
        Err(DirectoryError::Conflict(_))
    ));
    let listed = dir.plugin_manifests(&cx(), &s).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|m| m.plugin_id.as_str())
            .collect::<Vec<_>>(),
        ["p1", "p2"]
    );
    assert_eq!(listed[0].version, "2.0.0");
    let visible = dir
        .list_plugins(&cx(), &s, None)
        .await
        .expect("list")
        .expect("public");
    assert_eq!(visible, listed);
    let one = dir
        .plugin_manifest(&cx(), &s, &PluginId::from("p2"))
        .await
        .expect("get");
    assert_eq!(one, Some(manifest("p2")));
    done(
        dir.delete_plugin(&cx(), &s, &PluginId::from("p2"))
            .await
            .expect("delete"),
    );
    assert_eq!(
        dir.plugin_manifest(&cx(), &s, &PluginId::from("p2"))
            .await
            .expect("get"),
        None
    );
    assert!(matches!(
        dir.delete_plugin(&cx(), &s, &PluginId::from("p2")).await,
        Err(DirectoryError::NotFound("plugin"))
    ));
}

async fn challenges_work_once(dir: Arc<dyn Directory>) {
    let now = TimestampMs::now();
    dir.insert_challenge(&cx(), "c1", "KEY", "text", TimestampMs(now.0 + 60_000))
        .await
        .expect("insert");
    let (key, text) = dir
        .consume_challenge(&cx(), "c1", now)
        .await
        .expect("consume");
    assert_eq!((key.as_str(), text.as_str()), ("KEY", "text"));
    assert!(matches!(
        dir.consume_challenge(&cx(), "c1", now).await,
        Err(DirectoryError::Gone(_))
    ));
    assert!(matches!(
        dir.consume_challenge(&cx(), "nope", now).await,
        Err(DirectoryError::NotFound("challenge"))
    ));
    dir.insert_challenge(&cx(), "c2", "KEY", "text", TimestampMs(now.0 + 10))
        .await
        .expect("insert");
    assert!(matches!(
        dir.consume_challenge(&cx(), "c2", TimestampMs(now.0 + 10))
            .await,
        Err(DirectoryError::Gone(_))
    ));
}

async fn keys_bind_to_one_user(dir: Arc<dyn Directory>) {
    let first = dir
        .bind_key(&cx(), "PUBKEY", &user("key-derived"), NOW)
        .await
        .expect("bind");
    assert_eq!(first, user("key-derived"));
    // The key keeps its user even when another id would be derived now.
    let again = dir
        .bind_key(&cx(), "PUBKEY", &user("key-other"), NOW)
        .await
        .expect("bind");
    assert_eq!(again, user("key-derived"));
    assert!(
        dir.user_profile(&cx(), &user("key-derived"))
            .await
            .expect("profile")
            .is_some()
    );
    assert_eq!(
        dir.user_profile(&cx(), &user("key-other"))
            .await
            .expect("profile"),
        None
    );
}

async fn identify_follows_bindings_and_mode(dir: Arc<dyn Directory>) {
    dir.bind_key(&cx(), "K1", &user("legacy-bound"), NOW)
        .await
        .expect("bind");
    let proof = |id: &str, key: Option<&str>| {
        Some(Proven {
            user_id: user(id),
            public_key: key.map(str::to_owned),
        })
    };
    let open = AuthMode::Open;
    let identify = |claimed: &'static str, proven: Option<Proven>, mode: AuthMode| {
        let dir = Arc::clone(&dir);
        async move {
            dir.identify(&cx(), &user(claimed), proven, mode, "Name", NOW)
                .await
                .expect("identify")
        }
    };
    assert_eq!(identify("free", None, open).await, Ok(()));
    assert_eq!(
        identify("guest-1", None, open).await,
        Err(IdentifyDenied::IssuedWithToken)
    );
    assert_eq!(
        identify("key-x", None, open).await,
        Err(IdentifyDenied::IssuedWithToken)
    );
    assert_eq!(
        identify("legacy-bound", None, open).await,
        Err(IdentifyDenied::BoundToAnotherKey)
    );
    assert_eq!(
        identify("legacy-bound", proof("free", None), open).await,
        Err(IdentifyDenied::OtherIdentity)
    );
    assert_eq!(
        identify("free", None, AuthMode::Required).await,
        Err(IdentifyDenied::TokenRequired)
    );
    // A key-bound identity's row is refreshed with the name.
    assert_eq!(
        identify("legacy-bound", proof("legacy-bound", Some("K1")), open).await,
        Ok(())
    );
    let profile = dir
        .user_profile(&cx(), &user("legacy-bound"))
        .await
        .expect("profile")
        .expect("row");
    assert_eq!(profile.display_name.as_deref(), Some("Name"));
    // An ephemeral identity gets no row from identifying.
    assert_eq!(
        dir.user_profile(&cx(), &user("free"))
            .await
            .expect("profile"),
        None
    );
}

async fn signing_key_is_stored_once(dir: Arc<dyn Directory>) {
    let first = dir
        .signing_key_or_insert(&cx(), vec![1; 32], NOW)
        .await
        .expect("key");
    assert_eq!(first, vec![1; 32]);
    let second = dir
        .signing_key_or_insert(&cx(), vec![2; 32], NOW)
        .await
        .expect("key");
    assert_eq!(second, vec![1; 32]);
}

async fn purge_removes_only_unused(dir: Arc<dyn Directory>) {
    let now = TimestampMs::now();
    dir.insert_challenge(&cx(), "old", "K", "t", TimestampMs(now.0 - 1))
        .await
        .expect("insert");
    dir.insert_challenge(&cx(), "live", "K", "t", TimestampMs(now.0 + 60_000))
        .await
        .expect("insert");
    let guest = |id: &str| NewUser {
        id: user(id),
        display_name: None,
        public_key: None,
        guest: true,
    };
    // A guest owning a server stays; a guest who joined one stays.
    done(
        dir.create_server(
            &cx(),
            guest("guest-owner"),
            server_id("g"),
            request("g", ServerVisibility::Public),
            10,
            TimestampMs(now.0 - 10_000),
        )
        .await
        .expect("create"),
    );
    let mut joiner = admission(Entry::Join, "g", "guest-member");
    joiner.display_name = None;
    let step = dir.admission_step(&cx(), &joiner, now).await.expect("step");
    assert_eq!(step, Step::Decided(Ok(Access::Public)));
    dir.record_admission(&cx(), &joiner, Access::Public, TimestampMs(now.0 - 10_000))
        .await
        .expect("record")
        .expect("admitted");
    let (challenges, users) = dir
        .purge_unused(&cx(), now, TimestampMs(now.0 + 1))
        .await
        .expect("purge");
    assert_eq!((challenges, users), (1, 0));
    assert!(
        dir.user_profile(&cx(), &user("guest-member"))
            .await
            .expect("profile")
            .is_some()
    );
    // Once it leaves, the guest's row goes at the next purge.
    done(
        dir.remove_member(&cx(), &server_id("g"), &user("guest-member"))
            .await
            .expect("remove"),
    );
    let (_, users) = dir
        .purge_unused(&cx(), now, TimestampMs(now.0 + 1))
        .await
        .expect("purge");
    assert_eq!(users, 1);
    assert_eq!(
        dir.user_profile(&cx(), &user("guest-member"))
            .await
            .expect("profile"),
        None
    );
}

// ---- access rules through admission ----

async fn admission_rules(dir: Arc<dyn Directory>) {
    create(&dir, "pub", "owner", ServerVisibility::Public).await;
    create(&dir, "pw", "owner", ServerVisibility::Public).await;
    create(&dir, "priv", "owner", ServerVisibility::Private).await;
    done(
        dir.set_password_hash(&cx(), &server_id("pw"), Some("HASH".into()))
            .await
            .expect("password"),
    );
    done(
        dir.ban(
            &cx(),
            &server_id("pub"),
            &user("bad"),
            None,
            &user("owner"),
            NOW,
        )
        .await
        .expect("ban"),
    );
    done(
        dir.create_invite(
            &cx(),
            invite("good", "priv", "owner", Some(TimestampMs(NOW.0 + 10)), None),
        )
        .await
        .expect("invite"),
    );
    done(
        dir.create_invite(&cx(), invite("elsewhere", "pub", "owner", None, None))
            .await
            .expect("invite"),
    );
    let step = |request: AdmissionRequest, now: TimestampMs| {
        let dir = Arc::clone(&dir);
        async move {
            dir.admission_step(&cx(), &request, now)
                .await
                .expect("step")
        }
    };
    let decided = |d| Step::Decided(d);
    let join = |s, u| admission(Entry::Join, s, u);
    let view = |s, u| admission(Entry::View, s, u);

    assert_eq!(
        step(join("nope", "u"), NOW).await,
        decided(Err(AccessDeniedReason::NotFound))
    );
    assert_eq!(
        step(join("pub", "u"), NOW).await,
        decided(Ok(Access::Public))
    );
    assert_eq!(
        step(join("pub", "bad"), NOW).await,
        decided(Err(AccessDeniedReason::Banned))
    );
    assert_eq!(
        step(join("pub", "owner"), NOW).await,
        decided(Ok(Access::Role(MemberRole::Owner)))
    );
    assert_eq!(
        step(join("pw", "u"), NOW).await,
        decided(Err(AccessDeniedReason::PasswordRequired))
    );
    let mut with_password = join("pw", "u");
    with_password.password = Some(Secret::from("guess"));
    assert_eq!(
        step(with_password, NOW).await,
        Step::CheckPassword("HASH".into())
    );
    assert_eq!(
        step(join("priv", "u"), NOW).await,
        decided(Err(AccessDeniedReason::Private))
    );
    let mut invited = join("priv", "u");
    invited.invite_code = Some("good".into());
    assert_eq!(
        step(invited.clone(), NOW).await,
        decided(Ok(Access::Invite))
    );
    assert_eq!(
        step(invited.clone(), TimestampMs(NOW.0 + 10)).await,
        decided(Err(AccessDeniedReason::InviteInvalid))
    );
    let mut wrong_server = join("priv", "u");
    wrong_server.invite_code = Some("elsewhere".into());
    assert_eq!(
        step(wrong_server, NOW).await,
        decided(Err(AccessDeniedReason::InviteInvalid))
    );
    // Viewing: a password server shows its live roster to members only.
    assert_eq!(
        step(view("pub", "u"), NOW).await,
        decided(Ok(Access::Public))
    );
    assert_eq!(
        step(view("pw", "u"), NOW).await,
        decided(Err(AccessDeniedReason::PasswordRequired))
    );
    assert_eq!(
        step(view("pw", "owner"), NOW).await,
        decided(Ok(Access::Role(MemberRole::Owner)))
    );
    assert_eq!(
        step(view("priv", "u"), NOW).await,
        decided(Err(AccessDeniedReason::Private))
    );

    // Recording: an invite makes a member and counts a use; a public join makes a member.
    assert_eq!(
        dir.record_admission(&cx(), &invited, Access::Invite, NOW)
            .await
            .expect("record"),
        Ok(Access::Invite)
    );
    assert_eq!(
        dir.role(&cx(), &server_id("priv"), &user("u"))
            .await
            .expect("role"),
        Some(MemberRole::Member)
    );
    assert_eq!(
        dir.invite(&cx(), "good")
            .await
            .expect("read")
            .expect("exists")
            .invite
            .uses,
        1
    );
    assert_eq!(
        dir.record_admission(&cx(), &join("pub", "newbie"), Access::Public, NOW)
            .await
            .expect("record"),
        Ok(Access::Public)
    );
    assert_eq!(
        dir.role(&cx(), &server_id("pub"), &user("newbie"))
            .await
            .expect("role"),
        Some(MemberRole::Member)
    );
    // A ban that landed while the password was checked wins.
    assert_eq!(
        dir.record_admission(&cx(), &join("pub", "bad"), Access::Public, NOW)
            .await
            .expect("record"),
        Err(AccessDeniedReason::Banned)
    );
    let mut spent = join("priv", "late");
    spent.invite_code = Some("good".into());
    assert_eq!(
        dir.record_admission(&cx(), &spent, Access::Invite, TimestampMs(NOW.0 + 10))
            .await
            .expect("record"),
        Err(AccessDeniedReason::InviteInvalid)
    );
}

async fn still_admitted_rechecks_without_credentials(dir: Arc<dyn Directory>) {
    create(&dir, "s", "owner", ServerVisibility::Public).await;
    add_member(&dir, "s", "member").await;
    let entries = vec![
        (user("member"), Entry::Join),
        (user("visitor"), Entry::Join),
        (user("viewer"), Entry::View),
        (user("owner"), Entry::View),
    ];
    let s = server_id("s");
    let check = |entries: Vec<(UserId, Entry)>| {
        let (dir, s) = (Arc::clone(&dir), s.clone());
        async move {
            dir.still_admitted(&cx(), &s, entries, NOW)
                .await
                .expect("recheck")
        }
    };
    assert_eq!(
        check(entries.clone()).await,
        vec![
            Ok(Access::Role(MemberRole::Member)),
            Ok(Access::Public),
            Ok(Access::Public),
            Ok(Access::Role(MemberRole::Owner)),
        ]
    );
    done(
        dir.set_password_hash(&cx(), &s, Some("HASH".into()))
            .await
            .expect("password"),
    );
    assert_eq!(
        check(entries.clone()).await,
        vec![
            Ok(Access::Role(MemberRole::Member)),
            Err(AccessDeniedReason::PasswordRequired),
            Err(AccessDeniedReason::PasswordRequired),
            Ok(Access::Role(MemberRole::Owner)),
        ]
    );
    done(
        dir.ban(&cx(), &s, &user("member"), None, &user("owner"), NOW)
            .await
            .expect("ban"),
    );
    assert_eq!(
        check(vec![(user("member"), Entry::Join)]).await,
        vec![Err(AccessDeniedReason::Banned)]
    );
    done(dir.delete_server(&cx(), &s).await.expect("delete"));
    assert_eq!(
        check(vec![(user("owner"), Entry::Join)]).await,
        vec![Err(AccessDeniedReason::NotFound)]
    );
}

// ---- idempotency ----

async fn idempotent_write_replays_and_refuses_another_request(dir: Arc<dyn Directory>) {
    let claim = claim_for("k1", br#"{"name":"once"}"#, 3_600_000);
    let first = dir
        .create_server(
            &claimed(&claim, 201),
            owner("owner"),
            server_id("once"),
            request("once", ServerVisibility::Public),
            100,
            NOW,
        )
        .await
        .expect("create");
    let summary = done(first);
    assert!(claim.handled());
    let text = serde_json::to_value(&summary).expect("json").to_string();
    // The same request again: the stored answer, and no second server.
    let again = dir
        .create_server(
            &claimed(&claim, 201),
            owner("owner"),
            server_id("once-again"),
            request("once", ServerVisibility::Public),
            100,
            NOW,
        )
        .await
        .expect("replay");
    match again {
        Outcome::Replayed(replayed) => {
            assert_eq!(replayed.status, 201);
            assert_eq!(replayed.text, text);
        }
        Outcome::Done(_) => panic!("the claim ran twice"),
    }
    assert_eq!(
        dir.server(&cx(), &server_id("once-again"))
            .await
            .expect("read"),
        None
    );
    let record = dir
        .idempotency_record(&cx(), &claim.scope, TimestampMs(0))
        .await
        .expect("record")
        .expect("stored");
    assert_eq!(record.status, 201);
    assert_eq!(record.request_hash, claim.request_hash);
    // The same key with another request.
    let other = claim_for("k1", br#"{"name":"other"}"#, 3_600_000);
    let refused = dir
        .create_server(
            &claimed(&other, 201),
            owner("owner"),
            server_id("other"),
            request("other", ServerVisibility::Public),
            100,
            NOW,
        )
        .await;
    assert!(matches!(refused, Err(DirectoryError::IdempotencyMismatch)));
    assert_eq!(
        dir.server(&cx(), &server_id("other")).await.expect("read"),
        None
    );
    // A failed write stores nothing: the same key may be retried.
    let failing = claim_for("k2", b"{}", 3_600_000);
    assert!(matches!(
        dir.delete_server(&claimed(&failing, 200), &server_id("nope"))
            .await,
        Err(DirectoryError::NotFound("server"))
    ));
    assert_eq!(
        dir.idempotency_record(&cx(), &failing.scope, TimestampMs(0))
            .await
            .expect("record"),
        None
    );
}

async fn expired_idempotency_records_are_replaced(dir: Arc<dyn Directory>) {
    create(&dir, "s", "owner", ServerVisibility::Public).await;
    // A negative TTL puts the cut-off in the future: every record is already expired.
    let expired = claim_for("k", b"{}", -3_600_000);
    for (i, user_id) in ["b1", "b2"].into_iter().enumerate() {
        let outcome = dir
            .ban(
                &claimed(&expired, 200),
                &server_id("s"),
                &user(user_id),
                None,
                &user("owner"),
                NOW,
            )
            .await
            .expect("ban");
        assert!(
            matches!(outcome, Outcome::Done(_)),
            "write {i} replayed an expired record"
        );
    }
    assert_eq!(
        dir.list_bans(&cx(), &server_id("s"), page(10, None))
            .await
            .expect("bans")
            .items
            .len(),
        2
    );
    let record = dir
        .idempotency_record(&cx(), &expired.scope, TimestampMs(0))
        .await
        .expect("record")
        .expect("stored");
    assert!(
        record.response.as_deref().is_some_and(|r| r.contains("b2")),
        "{record:?}"
    );
    // Purging at a cut-off after it removes it.
    let purged = dir
        .purge_idempotency(&cx(), TimestampMs(TimestampMs::now().0 + 1))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(
        dir.stats(&cx()).await.expect("stats").idempotency_records,
        0
    );
}

async fn concurrent_writes_with_one_key_make_one_change(dir: Arc<dyn Directory>) {
    let claim = claim_for("same", br#"{"name":"race"}"#, 3_600_000);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (dir, claim) = (Arc::clone(&dir), claim.clone());
        tasks.push(tokio::spawn(async move {
            dir.create_server(
                &claimed(&claim, 201),
                owner("racer"),
                server_id(&format!("race-{i}")),
                request("race", ServerVisibility::Public),
                100,
                NOW,
            )
            .await
            .expect("create")
        }));
    }
    let mut done_count = 0;
    let mut texts = std::collections::HashSet::new();
    for task in tasks {
        match task.await.expect("join") {
            Outcome::Done(summary) => {
                done_count += 1;
                texts.insert(serde_json::to_value(&summary).expect("json").to_string());
            }
            Outcome::Replayed(replayed) => {
                assert_eq!(replayed.status, 201);
                texts.insert(replayed.text);
            }
        }
    }
    assert_eq!(done_count, 1);
    assert_eq!(texts.len(), 1, "every duplicate answers the first answer");
    assert_eq!(
        dir.stats(&cx())
            .await
            .expect("stats")
            .most_servers_per_owner,
        1
    );
}

async fn answers_are_stored_after_the_fact(dir: Arc<dyn Directory>) {
    let secret = Claim::new(
        "u",
        "PUT /api/x".into(),
        "k".into(),
        ("PUT", "/api/x", br#"{"password":"hunter2"}"#),
        false,
        3_600_000,
    );
    dir.store_idempotency(&cx(), &secret, 200, r#"{"ok":true,"password":"hunter2"}"#)
        .await
        .expect("store");
    let record = dir
        .idempotency_record(&cx(), &secret.scope, TimestampMs(0))
        .await
        .expect("record")
        .expect("stored");
    assert_eq!(record.status, 200);
    assert_eq!(
        record.response, None,
        "a secret route keeps the status only"
    );
    assert_eq!(
        dir.idempotency_record(&cx(), &secret.scope, TimestampMs::now())
            .await
            .expect("record"),
        None,
        "a record made before `since` does not count"
    );
    assert_eq!(
        dir.stats(&cx()).await.expect("stats").idempotency_records,
        1
    );
    assert!(dir.ping().await);
}

/// A key holding U+0000 (a path segment or query a client sent) names nothing on every backend:
/// lookups find nothing, deletes answer `NotFound`, a cursor pages on, a search finds nothing.
/// (PostgreSQL text cannot hold U+0000 at all; the backend must not turn that into a failure.)
async fn keys_holding_nul_name_nothing(dir: Arc<dyn Directory>) {
    for id in ["a", "a-1", "b"] {
        create(&dir, id, "owner", ServerVisibility::Public).await;
    }
    let nul = server_id("a\0x");
    assert!(dir.server(&cx(), &nul).await.expect("server").is_none());
    assert_eq!(
        dir.server_view(&cx(), &nul, None).await.expect("view"),
        Err(AccessDeniedReason::NotFound)
    );
    assert!(matches!(
        dir.staff(&cx(), &nul, &user("owner")).await,
        Err(DirectoryError::NotFound(_))
    ));
    assert_eq!(
        dir.role(&cx(), &nul, &user("owner")).await.expect("role"),
        None
    );
    assert!(
        dir.user_profile(&cx(), &user("o\0"))
            .await
            .expect("profile")
            .is_none()
    );
    assert!(dir.invite(&cx(), "c\0").await.expect("invite").is_none());
    assert!(
        dir.join_request(&cx(), "r\0")
            .await
            .expect("request")
            .is_none()
    );
    assert!(matches!(
        dir.delete_server(&cx(), &nul).await,
        Err(DirectoryError::NotFound(_))
    ));
    assert!(matches!(
        dir.delete_game(&cx(), "g\0").await,
        Err(DirectoryError::NotFound(_))
    ));
    let after = dir
        .list_public_servers(&cx(), None, page(10, Some("a\0x".into())))
        .await
        .expect("page");
    let ids: Vec<String> = after.items.into_iter().map(|s| s.id.0).collect();
    assert_eq!(ids, ["a-1", "b"], "keys after the cursor, bytewise");
    let found = dir
        .list_public_servers(&cx(), Some("a\0"), page(10, None))
        .await
        .expect("search");
    assert!(found.items.is_empty());
    assert!(
        dir.list_games(&cx(), page(10, Some("\0".into())))
            .await
            .expect("games")
            .items
            .is_empty()
    );
}

conformance! {
    backends: [sqlite, postgres];
    cases: [
        servers_create_read_update_delete,
        delete_server_cascades,
        owner_cap_holds_under_concurrent_creates,
        public_servers_page_and_search_by_prefix,
        server_view_follows_the_view_rule,
        members_roles_and_pages,
        bans_remove_membership_and_page,
        invites_resolve_accept_and_expire,
        join_requests_are_filed_and_decided,
        games_upsert_page_and_delete,
        plugins_are_capped_listed_and_removed,
        challenges_work_once,
        keys_bind_to_one_user,
        identify_follows_bindings_and_mode,
        signing_key_is_stored_once,
        purge_removes_only_unused,
        admission_rules,
        still_admitted_rechecks_without_credentials,
        idempotent_write_replays_and_refuses_another_request,
        expired_idempotency_records_are_replaced,
        concurrent_writes_with_one_key_make_one_change,
        answers_are_stored_after_the_fact,
        keys_holding_nul_name_nothing,
    ],
}
