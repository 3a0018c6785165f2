//! Join, publish, receive in seq order; presence events and the presence op.

use crate::{Client, Node};
use serde_json::{json, Value};

fn seqs(frames: &[Value], room: &str) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["op"] == "message" && f["room"] == room)
        .map(|f| f["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn members_receive_every_message_in_seq_order_including_their_own() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let mut a = Client::connect(&node.ws_url("")).await;
    let mut b = Client::connect(&node.ws_url("")).await;
    let mut c = Client::connect(&node.ws_url("")).await;
    for cl in [&mut a, &mut b, &mut c] {
        cl.join("chat:lobby").await;
    }
    // Two publishers interleave without waiting for replies; ids are distinct.
    for i in 0..100u64 {
        a.send(json!({"op":"publish","room":"chat:lobby","data":{"from":"a","i":i}}))
            .await;
        b.send(json!({"op":"publish","room":"chat:lobby","data":{"from":"b","i":i}}))
            .await;
    }
    for cl in [&mut a, &mut b, &mut c] {
        let mut got = Vec::new();
        while got.len() < 200 {
            let f = cl.recv().await;
            if f["op"] == "message" {
                assert_eq!(f["room"], "chat:lobby");
                assert!(f["epoch"].is_string());
                assert!(f["from"]["client"].is_string() && f["from"]["user"].is_string());
                got.push(f);
            }
        }
        let s = seqs(&got, "chat:lobby");
        assert_eq!(
            s,
            (1..=200).collect::<Vec<_>>(),
            "seq order, no gaps or duplicates"
        );
        // Per publisher, payload order is preserved.
        for who in ["a", "b"] {
            let is: Vec<u64> = got
                .iter()
                .filter(|f| f["data"]["from"] == who)
                .map(|f| f["data"]["i"].as_u64().unwrap())
                .collect();
            assert_eq!(is, (0..100).collect::<Vec<_>>());
        }
    }
}

#[tokio::test]
async fn publish_reply_carries_the_seq_and_from_is_the_authenticated_identity() {
    let node = Node::start_default();
    let mut a = Client::connect(&node.ws_url("")).await;
    a.join("r1").await;
    let (reply, before) = a
        .request(
            json!({"op":"publish","room":"r1","data":{"text":"hi"},"from":{"client":"forged"}}),
            4,
        )
        .await;
    assert_eq!(
        reply,
        json!({"op":"reply","id":4,"ok":true,"result":{"seq":1}})
    );
    let msg = if before.is_empty() {
        a.recv().await
    } else {
        before[0].clone()
    };
    assert_eq!(msg["op"], "message");
    assert_eq!(msg["seq"], 1);
    assert_eq!(msg["from"]["client"], a.id());
    assert_eq!(msg["from"]["user"], a.welcome["user"]);
    assert_eq!(msg["data"], json!({"text":"hi"}));
}

#[tokio::test]
async fn presence_events_go_to_members_that_asked_and_presence_lists_members() {
    let node = Node::start_default();
    let mut watcher = Client::connect(&node.ws_url("")).await;
    let (r, _) = watcher
        .request(json!({"op":"join","room":"p","presence":true}), 1)
        .await;
    assert_eq!(r["ok"], true);
    let mut quiet = Client::connect(&node.ws_url("")).await;
    quiet.join("p").await;
    let ev = watcher.recv().await;
    assert_eq!(ev["op"], "presence_join");
    assert_eq!(ev["room"], "p");
    assert_eq!(ev["client"], quiet.id());
    assert_eq!(ev["user"], quiet.welcome["user"]);

    let (r, _) = quiet.request(json!({"op":"presence","room":"p"}), 2).await;
    assert_eq!(r["result"]["count"], 2);
    let ids: Vec<&str> = r["result"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&watcher.id().as_str()) && ids.contains(&quiet.id().as_str()));

    let (r, _) = quiet.request(json!({"op":"leave","room":"p"}), 3).await;
    assert_eq!(r["ok"], true);
    let ev = watcher.recv().await;
    assert_eq!(ev["op"], "presence_leave");
    assert_eq!(ev["client"], quiet.id());

    // A member that did not ask for presence gets no presence events.
    quiet.join("p").await;
    let _ = watcher.recv().await; // presence_join again
    let mut third = Client::connect(&node.ws_url("")).await;
    third.join("p").await;
    let (_, skipped) = quiet.request(json!({"op":"ping"}), 9).await;
    assert!(
        skipped.iter().all(|f| f["op"] != "presence_join"),
        "{skipped:?}"
    );

    // Closing a connection is a leave.
    drop(third);
    let (ev, _) = watcher.recv_until(|f| f["op"] == "presence_leave").await;
    assert_eq!(ev["room"], "p");
}

#[tokio::test]
async fn batched_presence_comes_as_one_frame_per_tick_in_order_and_never_about_oneself() {
    let node = Node::start_default();
    let url = node.ws_url("");
    let mut batched = Client::connect(&url).await;
    let (r, _) = batched
        .request(json!({"op":"join","room":"b","presence_batch":true}), 1)
        .await;
    assert_eq!(r["ok"], true);
    let mut each = Client::connect(&url).await;
    let (r, _) = each
        .request(json!({"op":"join","room":"b","presence":true}), 1)
        .await;
    assert_eq!(r["ok"], true);
    // `each` joining is one event for `batched`, in a batch of its own.
    let (first, _) = batched.recv_until(|f| f["op"] == "presence_batch").await;
    assert_eq!(first["room"], "b");
    assert_eq!(first["events"][0]["op"], "presence_join");
    assert_eq!(first["events"][0]["client"], each.id());

    // Twenty members, one of them batched too, join at once.
    let mut joiners = Vec::new();
    for _ in 0..20 {
        joiners.push(Client::connect(&url).await);
    }
    let ids: Vec<String> = joiners.iter().map(Client::id).collect();
    let asks = joiners.iter_mut().enumerate().map(|(i, c)| {
        let req = if i == 7 {
            json!({"op":"join","room":"b","presence_batch":true})
        } else {
            json!({"op":"join","room":"b"})
        };
        c.request(req, 2)
    });
    for (r, _) in futures_util::future::join_all(asks).await {
        assert_eq!(r["ok"], true);
    }

    // `batched` hears of every join once, in batches (fewer frames than events).
    let mut heard = Vec::new();
    let mut frames = 0;
    while heard.len() < ids.len() {
        let f = batched.recv().await;
        if f["op"] == "presence_join" {
            panic!("a batched member got a single event: {f}");
        }
        if f["op"] != "presence_batch" {
            continue;
        }
        frames += 1;
        for e in f["events"].as_array().unwrap() {
            assert_eq!(e["op"], "presence_join", "{f}");
            assert_eq!(e["room"], "b");
            heard.push(e["client"].as_str().unwrap().to_owned());
        }
    }
    let mut sorted = heard.clone();
    sorted.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(sorted, want, "every join once");
    assert!(
        frames < ids.len(),
        "{frames} frames for {} events",
        ids.len()
    );

    // `each` gets them one frame per event; the batched joiner never hears of itself.
    let (_, before) = each
        .recv_until(|f| f["op"] == "presence_join" && f["client"] == ids[19])
        .await;
    assert!(before.iter().all(|f| f["op"] != "presence_batch"));
    let own = &ids[7];
    let (_, seen) = joiners[7].request(json!({"op":"ping"}), 3).await;
    for f in seen.iter().filter(|f| f["op"] == "presence_batch") {
        for e in f["events"].as_array().unwrap() {
            assert_ne!(&e["client"], own, "{f}");
        }
    }

    // A leave reaches the batched members too.
    drop(each);
    let (ev, _) = batched
        .recv_until(|f| {
            f["op"] == "presence_batch"
                && f["events"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e["op"] == "presence_leave"))
        })
        .await;
    assert_eq!(ev["room"], "b");
}

#[tokio::test]
async fn ping_answers_pong_or_a_reply_with_its_id_and_leave_requires_membership() {
    let node = Node::start_default();
    let mut a = Client::connect(&node.ws_url("")).await;
    a.send(json!({"op":"ping"})).await;
    assert_eq!(a.recv().await, json!({"op":"pong"}));
    // With an id, a ping is answered like every request with an id: a reply echoing it.
    a.send(json!({"op":"ping","id":"x"})).await;
    assert_eq!(
        a.recv().await,
        json!({"op":"reply","id":"x","ok":true,"result":{}})
    );
    a.send(json!({"op":"ping","id":7})).await;
    assert_eq!(
        a.recv().await,
        json!({"op":"reply","id":7,"ok":true,"result":{}})
    );
    let (r, _) = a.request(json!({"op":"leave","room":"nowhere"}), 5).await;
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["code"], "not_joined");
}

#[tokio::test]
async fn a_resumed_session_keeps_its_client_id() {
    let node = Node::start_default();
    let mut a = Client::connect(&node.ws_url("")).await;
    let session = a.welcome["session"].as_str().unwrap().to_owned();
    let id = a.id();
    a.join("resume").await;
    let mut b = Client::connect(&node.ws_url(&format!("session={session}"))).await;
    // An anonymous client resumes as the session's anonymous user.
    assert_eq!(b.id(), id);
    assert_eq!(b.welcome["user"], a.welcome["user"]);
    // A forged or foreign token is ignored: a new client id.
    let other = Client::connect(&node.ws_url("session=not-a-token")).await;
    assert_ne!(other.id(), id);
    drop(b);

    let node = Node::builder()
        .env("GATEHOUSE_JWT_SECRET", crate::tokens::SECRET)
        .toml("[auth]\nrequired = true")
        .start();
    let token = crate::tokens::user("u-resume", 600);
    let mut a = Client::connect(&node.ws_url(&format!("token={token}"))).await;
    let session = a.welcome["session"].as_str().unwrap().to_owned();
    let id = a.id();
    let mut watcher =
        Client::connect(&node.ws_url(&format!("token={}", crate::tokens::user("w", 600)))).await;
    watcher
        .request(json!({"op":"join","room":"r","presence":true}), 1)
        .await;
    a.join("r").await;
    let _ = watcher.recv_until(|f| f["op"] == "presence_join").await;
    b = Client::connect(&node.ws_url(&format!("token={token}&session={session}"))).await;
    assert_eq!(b.id(), id, "same client id after resume");
    b.join("r").await;
    drop(a);
    let admin = node.admin_url(&format!("/admin/v1/clients/{id}"));
    crate::wait::until(
        "the old connection to close",
        std::time::Duration::from_secs(10),
        || {
            let admin = admin.clone();
            async move {
                let v: Value = reqwest::get(&admin).await.ok()?.json().await.ok()?;
                (v["connections"].as_array()?.len() == 1).then_some(())
            }
        },
    )
    .await;
    // The old connection's leave and the new one's join merge: no presence flap.
    let (_, seen) = watcher.request(json!({"op":"ping"}), 2).await;
    assert!(
        seen.iter()
            .all(|f| f["op"] != "presence_leave" && f["op"] != "presence_join"),
        "{seen:?}"
    );
    let (r, _) = watcher
        .request(json!({"op":"presence","room":"r"}), 3)
        .await;
    assert_eq!(r["result"]["count"], 2);
}

#[tokio::test]
async fn many_concurrent_first_joins_create_one_room_owner() {
    // See the bench finding: a room that was still starting counted as absent, so concurrent
    // joins spawned several owners with different epochs.
    let node = Node::start_default();
    let mut clients = Vec::new();
    for _ in 0..60 {
        clients.push(Client::connect(&node.ws_url("")).await);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(json!({"id": i, "op": "join", "room": format!("burst-{}", i % 3)}))
            .await;
    }
    let mut epochs: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.recv().await;
        assert_eq!(r["ok"], true, "{r}");
        let room = format!("burst-{}", i % 3);
        let epoch = r["result"]["epoch"].as_str().unwrap().to_owned();
        let first = epochs.entry(room.clone()).or_insert_with(|| epoch.clone());
        assert_eq!(*first, epoch, "two owners for {room}");
    }
    let rooms = crate::http::get_ok(&node.admin_url("/admin/v1/rooms")).await;
    assert_eq!(rooms["total"], 3);
    for r in rooms["rooms"].as_array().unwrap() {
        assert_eq!(r["members"], 20, "{r}");
    }
}
