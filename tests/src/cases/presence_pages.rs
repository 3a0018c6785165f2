//! The client's `presence` reply in pages (`docs/protocol.md` §3 `presence`): `limit` and the
//! `after` cursor, every member listed exactly once across the pages, each reply within its
//! bound however large the room, a room whose list is megabytes read page by page from the node
//! that does not own it without the reader being closed as a slow consumer, and bad `after` /
//! `limit` values answered `bad_request`.

use crate::cluster::{builder, plan, wait_active};
use crate::{Client, Node};
use protocol::client::{PRESENCE_MAX_LIMIT, PRESENCE_REPLY_BYTES};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// Room in a reply frame for everything but the `members` array: the `op`, the id, `count`,
/// `next` and a short room name.
const ENVELOPE: usize = 256;

/// One page as the client saw it, with the sizes the bound is about.
struct Page {
    members: Vec<String>,
    next: Option<String>,
    /// Bytes of the whole reply frame.
    frame_bytes: usize,
    /// Bytes of its `members` array.
    members_bytes: usize,
}

/// Sends one `presence` request (with `after` and `limit` when given) and checks the reply's
/// shape: `ok`, the room, `count` equal to the members listed, `next` present (a string or
/// `null`), members sorted by client id.
async fn page(
    c: &mut Client,
    room: &str,
    after: Option<&str>,
    limit: Option<u64>,
    id: u64,
) -> Page {
    let mut req = json!({"op":"presence","room":room});
    if let Some(a) = after {
        req["after"] = json!(a);
    }
    if let Some(l) = limit {
        req["limit"] = json!(l);
    }
    let (r, _) = c.request(req, id).await;
    checked(&r, room)
}

/// The page a `presence` reply carries, checked as [`page`] says.
fn checked(r: &serde_json::Value, room: &str) -> Page {
    assert_eq!(r["ok"], true, "{r}");
    let result = &r["result"];
    assert_eq!(result["room"], room);
    let list = result["members"].as_array().expect("members is an array");
    assert_eq!(result["count"], list.len(), "count is the members listed");
    assert!(
        result
            .get("next")
            .is_some_and(|n| n.is_null() || n.is_string()),
        "next is a string or null: {}",
        result["next"]
    );
    let members: Vec<String> = list
        .iter()
        .map(|m| m["client"].as_str().expect("client id").to_owned())
        .collect();
    assert!(
        members.windows(2).all(|w| w[0] < w[1]),
        "members are sorted by client id"
    );
    // The node writes with serde_json, so the frame re-encoded here has the same length (same
    // escapes, same numbers; key order does not change a length).
    Page {
        members,
        next: result["next"].as_str().map(str::to_owned),
        frame_bytes: serde_json::to_string(r).unwrap().len(),
        members_bytes: serde_json::to_string(&result["members"]).unwrap().len(),
    }
}

/// Follows `next` from the first page to the last; asserts every page within the bound.
async fn all_pages(c: &mut Client, room: &str, limit: Option<u64>, first_id: u64) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut after: Option<String> = None;
    for k in 0..10_000 {
        let p = page(c, room, after.as_deref(), limit, first_id + k).await;
        assert!(
            p.members_bytes <= PRESENCE_REPLY_BYTES,
            "page {k}: members take {} bytes",
            p.members_bytes
        );
        assert!(
            p.frame_bytes <= PRESENCE_REPLY_BYTES + ENVELOPE,
            "page {k}: a {} byte reply",
            p.frame_bytes
        );
        assert!(
            p.members.len() <= limit.map_or(PRESENCE_MAX_LIMIT as usize, |l| l as usize),
            "page {k}: {} members",
            p.members.len()
        );
        after = p.next.clone();
        let last = after.is_none();
        if !last {
            assert!(
                !p.members.is_empty(),
                "page {k} lists nobody but has a next"
            );
        }
        pages.push(p);
        if last {
            return pages;
        }
    }
    panic!("more than 10 000 presence pages");
}

/// Asserts that `pages` together list each of `want` exactly once, in client id order.
fn lists_each_once(pages: &[Page], want: &BTreeSet<String>) {
    let listed: Vec<&String> = pages.iter().flat_map(|p| &p.members).collect();
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "pages follow each other in client id order, without repeats"
    );
    let listed: BTreeSet<String> = listed.into_iter().cloned().collect();
    assert_eq!(listed.len(), want.len(), "members listed");
    assert!(listed == *want, "the pages list exactly the room's members");
}

#[tokio::test]
async fn presence_pages_follow_limit_and_after_and_list_every_member_once() {
    let node = Node::start_default();
    let mut clients = Vec::new();
    for _ in 0..30 {
        let mut c = Client::connect(&node.ws_url("")).await;
        c.join("pp").await;
        clients.push(c);
    }
    let want: BTreeSet<String> = clients.iter().map(Client::id).collect();
    let reader = &mut clients[0];

    // Without `limit` (a client written before paging): the whole list of a room that fits one
    // reply, and `next` is null.
    let p = page(reader, "pp", None, None, 1).await;
    assert_eq!(p.next, None);
    lists_each_once(&[p], &want);

    // Pages of 7: 7, 7, 7, 7, 2, each starting after the last one's cursor.
    let pages = all_pages(reader, "pp", Some(7), 10).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.members.len()).collect();
    assert_eq!(sizes, [7, 7, 7, 7, 2]);
    lists_each_once(&pages, &want);

    // A limit of exactly the room's size ends on that page; one less needs a second page.
    let p = page(reader, "pp", None, Some(30), 20).await;
    assert_eq!((p.members.len(), p.next.as_deref()), (30, None));
    let pages = all_pages(reader, "pp", Some(29), 21).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.members.len()).collect();
    assert_eq!(sizes, [29, 1]);
    lists_each_once(&pages, &want);

    // A limit above the largest is served as the largest.
    let p = page(reader, "pp", None, Some(u64::from(u32::MAX)), 30).await;
    assert_eq!((p.members.len(), p.next.as_deref()), (30, None));

    // A cursor past every member: an empty last page.
    let p = page(reader, "pp", Some("zzzz"), None, 31).await;
    assert_eq!((p.members.len(), p.next.as_deref()), (0, None));

    // Members that leave between two pages are not listed; the others still exactly once.
    let first = page(reader, "pp", None, Some(10), 40).await;
    let leaving: Vec<String> = clients[1..]
        .iter()
        .map(Client::id)
        .filter(|id| !first.members.contains(id))
        .take(3)
        .collect();
    let mut left = 0;
    for c in clients.iter_mut().skip(1) {
        if leaving.contains(&c.id()) {
            let (r, _) = c.request(json!({"op":"leave","room":"pp"}), 2).await;
            assert_eq!(r["ok"], true, "{r}");
            left += 1;
        }
    }
    assert_eq!(left, 3);
    let mut pages = vec![first];
    let mut after = pages[0].next.clone();
    let mut id = 41;
    while let Some(a) = after {
        let p = page(&mut clients[0], "pp", Some(&a), Some(10), id).await;
        id += 1;
        after = p.next.clone();
        pages.push(p);
    }
    let still: BTreeSet<String> = want
        .iter()
        .filter(|m| !leaving.contains(m))
        .cloned()
        .collect();
    lists_each_once(&pages, &still);

    // The backend API pages the same way (`after`, `limit`, `next`), and refuses a bad cursor
    // or limit with a 400 naming it.
    let mut listed = BTreeSet::new();
    let mut after: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let mut url = "/api/v1/rooms/pp/presence?limit=8".to_owned();
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let p = crate::http::get_ok(&node.http(&url)).await;
        let members = p["members"].as_array().unwrap();
        assert_eq!(p["count"], members.len());
        sizes.push(members.len());
        for m in members {
            assert!(
                listed.insert(m["client"].as_str().unwrap().to_owned()),
                "listed twice"
            );
        }
        match p["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(sizes, [8, 8, 8, 3]);
    assert!(
        listed == still,
        "the API pages list exactly the room's members"
    );
    for (query, field) in [("limit=0", "limit"), ("after=%20x", "after")] {
        let (status, body) = crate::http::send(
            reqwest::Client::new().get(node.http(&format!("/api/v1/rooms/pp/presence?{query}"))),
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(field), "{query}: {body}");
    }
}

#[tokio::test]
async fn bad_presence_cursors_and_limits_are_bad_requests_naming_the_field() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("bad").await;
    let long = "a".repeat(65);
    let cases = [
        ("limit", json!(0)),
        ("limit", json!(-1)),
        ("limit", json!(1.5)),
        ("limit", json!("10")),
        ("limit", json!(4_294_967_296_u64)),
        ("limit", json!(true)),
        ("after", json!(5)),
        ("after", json!("")),
        ("after", json!("c_1 2")),
        ("after", json!("c_é")),
        ("after", json!(long)),
        ("after", json!({"x":1})),
        ("after", json!(["c_1"])),
    ];
    for (i, (field, value)) in cases.iter().enumerate() {
        let mut req = json!({"op":"presence","room":"bad"});
        req[*field] = value.clone();
        let (r, _) = c.request(req.clone(), 100 + i as u64).await;
        assert_eq!(r["ok"], false, "{req}: {r}");
        assert_eq!(r["error"]["code"], "bad_request", "{req}: {r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`{field}`")), "{req}: {msg}");
        // Without an id: an `error` frame, the same code.
        c.send(req.clone()).await;
        let e = c.recv().await;
        assert_eq!(e["op"], "error", "{req}: {e}");
        assert_eq!(e["code"], "bad_request", "{req}: {e}");
    }
    // `null` means absent, as for every optional field; the connection is still open.
    let (r, _) = c
        .request(
            json!({"op":"presence","room":"bad","after":null,"limit":null}),
            200,
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["count"], 1);
    // Membership is checked once the request decodes, as before.
    let (r, _) = c
        .request(json!({"op":"presence","room":"elsewhere","limit":5}), 201)
        .await;
    assert_eq!(r["error"]["code"], "not_joined", "{r}");
}

const MEMBERS: usize = 3000;
const COOKIE: &str = "test-cluster-cookie-presence-pages-0123";

/// A 256-byte user id that JSON writes as 1 506 bytes: 250 control characters, each escaped
/// as `\u0001`. 3 000 such members make a member list of about 4.6 MB.
fn wide_user(i: usize) -> String {
    format!("{i:06}{}", "\u{1}".repeat(250))
}

#[tokio::test]
async fn a_room_whose_list_is_megabytes_is_read_across_nodes_in_bounded_pages_without_4008() {
    // A small outbound budget and snapshot limit make the reply allowance as small as it gets
    // (4 MiB + 1 KiB + 64 KiB): the whole list in one reply (as before pages) overran it and
    // the budget for a reader that does not take it at once.
    let m = plan(2);
    let seed = [m[0].cluster_port];
    let extra = format!(
        "[auth]\nrequired = true\nmax_connections_per_user = 1\n\
         [limits]\nroom_creates_burst = {MEMBERS}\noutbound_queue_bytes = 65536\n\
         [rooms]\nmax_snapshot_bytes = 1024"
    );
    let nodes: Vec<Node> = m
        .iter()
        .map(|mm| {
            builder(mm, &seed, COOKIE, &extra)
                .env("GATEHOUSE_JWT_SECRET", crate::tokens::SECRET)
                .start()
        })
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1"], Duration::from_secs(20)).await;
    }
    let token = |i: usize| {
        crate::tokens::hs256(&json!({"sub": wide_user(i), "exp": crate::tokens::now() + 600}))
    };
    let mut members = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let mut c = Client::connect(&nodes[i % 2].ws_url(&format!("token={}", token(i)))).await;
        let (r, _) = c.request(json!({"op":"join","room":"wide"}), 1).await;
        assert_eq!(r["ok"], true, "{r}");
        members.push(c);
    }
    let (status, info) =
        crate::http::send(nodes[0].admin_request(reqwest::Method::GET, "/admin/v1/rooms/wide"))
            .await;
    assert_eq!(status, 200, "{info}");
    // The readers are on the node that does not own the room: every page crosses the link. One
    // more member has a 4 KiB receive buffer, so what it does not read waits in the node.
    let other = if info["owner"] == "node-0" { 1 } else { 0 };
    let url = nodes[other].ws_url(&format!("token={}", token(MEMBERS)));
    let mut slow = Client::connect_small_buffer(&url, nodes[other].public).await;
    let (r, _) = slow.request(json!({"op":"join","room":"wide"}), 1).await;
    assert_eq!(r["ok"], true, "{r}");
    let mut want: BTreeSet<String> = members.iter().map(Client::id).collect();
    want.insert(slow.id());

    // Without `limit`: the first page, cut by bytes (about 677 of these members fit 1 MiB). The
    // reader starts reading only once the node has written it (its outbound bytes show it), so
    // the reply waits for the reader in the node, as it does for a client on a slow link.
    let full_page = (PRESENCE_REPLY_BYTES - 2 * 1547) as f64;
    let before = nodes[other].metric("gatehouse_bytes_out_total").await;
    slow.send(json!({"id":2,"op":"presence","room":"wide"}))
        .await;
    crate::wait::until(
        "the first page written",
        Duration::from_secs(10),
        || async {
            let out = nodes[other].metric("gatehouse_bytes_out_total").await;
            (out - before >= full_page).then_some(())
        },
    )
    .await;
    let (r, _) = slow
        .recv_until(|f| f["op"] == "reply" && f["id"] == 2)
        .await;
    let first = checked(&r, "wide");
    // Still open. (Before pages, the whole list overran the allowance and the budget: the node
    // wrote it out, then closed with 4008, so the reply came and this ping got the close.)
    let (r, _) = slow.request(json!({"op":"ping"}), 3).await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(first.next.is_some(), "a 4.6 MB list does not fit one reply");
    assert!(first.members_bytes <= PRESENCE_REPLY_BYTES);
    assert!(
        first.members_bytes > PRESENCE_REPLY_BYTES - 2 * 1547,
        "a page cut by bytes is full: {} bytes",
        first.members_bytes
    );

    // All of it, page by page: every member exactly once, each reply within the bound.
    let pages = all_pages(&mut slow, "wide", None, 10).await;
    assert!(pages.len() >= 5, "{} pages", pages.len());
    let total: usize = pages.iter().map(|p| p.members_bytes).sum();
    assert!(total > 4 << 20, "the whole list is {total} bytes");
    lists_each_once(&pages, &want);

    // Pages of 500 members (under the byte bound): 500 each, and the one member left.
    let pages = all_pages(&mut members[other], "wide", Some(500), 100).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.members.len()).collect();
    assert_eq!(sizes, [500, 500, 500, 500, 500, 500, 1]);
    lists_each_once(&pages, &want);

    // The readers are still connected, and nobody was closed as a slow consumer.
    for (c, id) in [(&mut slow, 500), (&mut members[other], 501)] {
        let (r, _) = c.request(json!({"op":"ping"}), id).await;
        assert_eq!(r["ok"], true, "{r}");
    }
    for n in &nodes {
        assert_eq!(n.metric("gatehouse_slow_consumer_closes_total").await, 0.0);
    }
}
