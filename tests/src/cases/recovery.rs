//! Recovery with `since` (hit, epoch miss, history miss) and `last`, replayed before live
//! messages and answered `recovered:false` rather than a silent partial replay.

use crate::{Client, Node};
use serde_json::json;

async fn publish_n(c: &mut Client, room: &str, n: u64) -> u64 {
    let mut last = 0;
    for i in 0..n {
        last = c.publish(room, json!({ "i": i })).await;
    }
    last
}

#[tokio::test]
async fn since_replays_missed_messages_in_order_before_live_ones() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let mut publisher = Client::connect(&node.ws_url("")).await;
    let joined = publisher.join("rec").await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    publish_n(&mut publisher, "rec", 10).await; // seq 1..10

    let mut late = Client::connect(&node.ws_url("")).await;
    let (r, _) = late
        .request(
            json!({"op":"join","room":"rec","since":{"seq":4,"epoch":epoch}}),
            2,
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["recovered"], true);
    assert_eq!(r["result"]["replayed"], 6);
    assert_eq!(r["result"]["seq"], 10);
    publisher.publish("rec", json!({"live": true})).await; // seq 11
    let mut seqs = Vec::new();
    while seqs.len() < 7 {
        let f = late.recv().await;
        assert_eq!(f["op"], "message", "{f}");
        seqs.push(f["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, vec![5, 6, 7, 8, 9, 10, 11]);
}

#[tokio::test]
async fn since_with_another_epoch_or_beyond_history_is_not_recovered() {
    let node = Node::builder()
        .toml("[rooms]\nhistory_size = 5\n[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let mut publisher = Client::connect(&node.ws_url("")).await;
    let epoch = publisher.join("rec2").await["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    publish_n(&mut publisher, "rec2", 12).await;

    let mut c = Client::connect(&node.ws_url("")).await;
    let (r, _) = c
        .request(
            json!({"op":"join","room":"rec2","since":{"seq":3,"epoch":"other"}}),
            1,
        )
        .await;
    assert_eq!(r["result"]["recovered"], false);
    assert_eq!(r["result"]["replayed"], 0);
    assert_eq!(r["result"]["epoch"], epoch.as_str());

    let mut d = Client::connect(&node.ws_url("")).await;
    let (r, _) = d
        .request(
            json!({"op":"join","room":"rec2","since":{"seq":3,"epoch":epoch}}),
            1,
        )
        .await;
    assert_eq!(
        r["result"]["recovered"], false,
        "history holds only the last 5: {r}"
    );

    // Inside history: recovered.
    let mut e = Client::connect(&node.ws_url("")).await;
    let (r, _) = e
        .request(
            json!({"op":"join","room":"rec2","since":{"seq":8,"epoch":epoch}}),
            1,
        )
        .await;
    assert_eq!(r["result"]["recovered"], true);
    assert_eq!(r["result"]["replayed"], 4);
    // Nothing else is replayed after a failed recovery: the next frame is the live message.
    publisher.publish("rec2", json!("live")).await;
    let f = d.recv().await;
    assert_eq!(
        (f["op"].clone(), f["seq"].clone()),
        (json!("message"), json!(13))
    );
}

#[tokio::test]
async fn last_replays_the_most_recent_messages() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let mut publisher = Client::connect(&node.ws_url("")).await;
    publisher.join("board:7").await;
    publish_n(&mut publisher, "board:7", 30).await;
    let mut c = Client::connect(&node.ws_url("")).await;
    let (r, _) = c
        .request(json!({"op":"join","room":"board:7","last":20}), 8)
        .await;
    assert_eq!(r["result"]["replayed"], 20);
    let mut seqs = Vec::new();
    for _ in 0..20 {
        seqs.push(c.recv().await["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (11..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_op_reads_the_room_history() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    let epoch = c.join("h").await["epoch"].as_str().unwrap().to_owned();
    publish_n(&mut c, "h", 5).await;
    let (r, _) = c
        .request(
            json!({"op":"history","room":"h","since":{"seq":2,"epoch":epoch},"limit":2}),
            6,
        )
        .await;
    let msgs = r["result"]["messages"].as_array().unwrap();
    let seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(r["result"]["epoch"], epoch.as_str());
    let (r, _) = c
        .request(json!({"op":"history","room":"elsewhere"}), 7)
        .await;
    assert_eq!(r["error"]["code"], "not_joined");
}
