//! Rendering tests: fixed states drawn into a `TestBackend` at 80×24.
#![allow(clippy::unwrap_used)]

use crate::action::{Action, View};
use crate::app::App;
use crate::client::Focus;
use crate::event::NetEvent;
use crate::model::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

pub(crate) fn fixture() -> App {
    let mut app = App::new("http://127.0.0.1:9701");
    let node = |name: &str, state: &str, conns: u64| NodeInfo {
        name: name.into(),
        state: state.into(),
        admin_address: Some(format!("127.0.0.1:97{}", &name[5..])),
        connections: Some(conns),
        rooms_owned: Some(1),
        msgs_in_per_s: Some(3.0),
        msgs_out_per_s: Some(6.0),
        rss_bytes: Some(24_576_000),
        uptime_s: Some(3600),
        version: Some("0.1.0".into()),
        rooms_left: (state == "draining").then_some(2),
        connections_left: (state == "draining").then_some(41),
        ..Default::default()
    };
    let client = |id: &str, user: &str, node: &str| ClientInfo {
        id: id.into(),
        user: user.into(),
        node: node.into(),
        remote_addr: "203.0.113.7".into(),
        rooms: 2,
        msgs_in: 12,
        msgs_out: 40,
        ..Default::default()
    };
    app.on_net(NetEvent::Snapshot(Box::new(Snapshot {
        node_url: "http://127.0.0.1:9701".into(),
        cluster: ClusterResp {
            nodes: vec![
                node("node-b", "draining", 41),
                node("node-a", "active", 2),
                node("node-c", "active", 0),
            ],
            missing: vec![],
        },
        rooms: Some(RoomsResp {
            rooms: vec![
                RoomInfo {
                    name: "chat:lobby".into(),
                    owner: "node-b".into(),
                    members: 17,
                    nodes: vec!["node-a".into(), "node-b".into()],
                    msgs_per_s: 4.0,
                    seq: 58,
                    epoch: "3f9a1c07".into(),
                    history_len: 58,
                },
                RoomInfo {
                    name: "board:7".into(),
                    owner: "node-a".into(),
                    members: 3,
                    nodes: vec!["node-a".into()],
                    seq: 120,
                    epoch: "77aa0011".into(),
                    ..Default::default()
                },
            ],
            total: 2,
        }),
        clients: Some(ClientsResp {
            clients: vec![
                client("c_7HqK2mX9pL4vR1sT", "u-42", "node-b"),
                client("c_1aBcDeFgHiJkLmNo", "u-7", "node-a"),
            ],
            total: 2,
            missing: vec![],
        }),
        detail: None,
        errors: vec![],
    })));
    app
}

pub(crate) fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| super::render(app, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn cluster_view() {
    let app = fixture();
    let s = screen(&app);
    for want in [
        "1 Cluster",
        "NAME",
        "STATE",
        "node-a",
        "node-b",
        "node-c",
        "draining",
        "2r/41c",
        "0.1.0",
        "23.4M",
        "1h00m",
        "127.0.0.1:9701",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    // Sorted by name: node-a above node-b.
    assert!(s.find("node-a").unwrap() < s.find("node-b").unwrap());
}

#[test]
fn rooms_view_and_detail() {
    let mut app = fixture();
    app.update(Action::Show(View::Rooms));
    let s = screen(&app);
    for want in [
        "chat:lobby",
        "board:7",
        "OWNER",
        "node-b",
        "58/3f9a1c07",
        "17",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.update(Action::Open);
    assert_eq!(app.drill, Some(Focus::Room("board:7".into())));
    app.detail = Some(Detail::Room(RoomDetail {
        name: "board:7".into(),
        owner: "node-a".into(),
        members: vec![Member {
            client: "c_7HqK2mX9pL4vR1sT".into(),
            user: "u-42".into(),
            node: "node-b".into(),
        }],
        members_total: 1,
        seq: 120,
        epoch: "77aa0011".into(),
        ..Default::default()
    }));
    let s = screen(&app);
    for want in [
        "room board:7",
        "members 1/1",
        "c_7HqK2mX9pL4vR1sT",
        "u-42",
        "epoch 77aa0011",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn clients_view_and_detail() {
    let mut app = fixture();
    app.update(Action::Show(View::Clients));
    let s = screen(&app);
    for want in [
        "c_1aBcDeFgHiJkLmNo",
        "c_7HqK2mX9pL4vR1sT",
        "u-42",
        "203.0.113.7",
        "QUEUE",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.update(Action::Open);
    app.detail = Some(Detail::Client(ClientDetail {
        id: "c_1aBcDeFgHiJkLmNo".into(),
        user: "u-7".into(),
        connections: app.clients[1..].to_vec(),
    }));
    let s = screen(&app);
    for want in [
        "client c_1aBcDeFgHiJkLmNo",
        "connections 1",
        "node-a",
        "default",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn events_view() {
    let mut app = fixture();
    app.update(Action::Show(View::Events));
    let s = screen(&app);
    for want in ["4 Events", "node stream + polls", "first answer from"] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
}

#[test]
fn help_prompt_and_confirm_render() {
    let mut app = fixture();
    app.update(Action::ToggleHelp);
    assert!(screen(&app).contains("throttle (msgs/s"));
    app.update(Action::ToggleHelp);
    app.update(Action::Show(View::Clients));
    app.update(Action::Kick);
    for c in "spam".chars() {
        app.update(Action::Input(c));
    }
    assert!(screen(&app).contains("reason: spam"));
    app.update(Action::Submit);
    assert!(screen(&app).contains("y to confirm"));
}
