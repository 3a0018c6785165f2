//! Listing rooms for the admin API: each node lists the rooms that run on it (asked through its
//! room host), sorted and cut to one page, and the node that answers merges the pages. What
//! crosses the link is at most one page per node, whatever the number of rooms.
//!
//! Owns the sort keys of `/admin/v1/rooms` (its columns are `protocol::admin::ROOM_SORTS`); reads
//! rooms only through [`super::calls::info`].

use super::address::RoomRef;
use super::calls;
use crate::wire::listing::{RoomListPage, RoomListQuery};
use crate::wire::room::RoomInfo;

/// How many rooms are asked for their info at once.
const INFO_CONCURRENCY: usize = 64;

fn desc(v: u64) -> String {
    format!("{:020}", u64::MAX - v)
}

/// A room's cursor key for `sort`: the column, then the name (unique).
pub fn sort_key(r: &RoomInfo, sort: &str) -> String {
    match sort {
        "members" => format!("{}#{}", desc(r.members as u64), r.name),
        // Rates are whole or tenths of messages per second.
        "msgs_per_s" => format!("{}#{}", desc((r.msgs_per_s * 1000.0) as u64), r.name),
        "owner" => format!("{}#{}", r.owner, r.name),
        _ => r.name.clone(),
    }
}

/// The rooms running on this node.
pub fn local_rooms() -> Vec<(String, RoomRef)> {
    ractor::pg::which_groups()
        .into_iter()
        .filter_map(|g| {
            let name = g.strip_prefix("room:")?.to_owned();
            let actor = ractor::pg::get_local_members(&g)
                .into_iter()
                .find(crate::groups::is_live)?;
            Some((name, RoomRef::local(ractor::ActorRef::from(actor))))
        })
        .collect()
}

/// This node's page: every local room that matches is asked for its info (rooms that do not
/// answer are left out), sorted, cut after the cursor.
pub async fn local_page(query: RoomListQuery) -> RoomListPage {
    use futures_util::StreamExt;
    let q = query.q.as_deref().filter(|q| !q.is_empty());
    let rooms: Vec<RoomRef> = local_rooms()
        .into_iter()
        .filter(|(name, _)| q.is_none_or(|q| name.contains(q)))
        .map(|(_, r)| r)
        .collect();
    let infos: Vec<RoomInfo> = futures_util::stream::iter(rooms)
        .map(|r| async move { calls::info(&r).await.ok() })
        .buffer_unordered(INFO_CONCURRENCY)
        .filter_map(|i| async move { i })
        .collect()
        .await;
    let mut keyed: Vec<(String, RoomInfo)> = infos
        .into_iter()
        .filter(|r| {
            query
                .node
                .as_deref()
                .is_none_or(|n| r.owner == n || r.nodes.iter().any(|x| x == n))
        })
        .map(|r| (sort_key(&r, &query.sort), r))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let total = keyed.len();
    let start = query
        .after
        .as_ref()
        .map_or(0, |c| keyed.partition_point(|(k, _)| k <= c));
    let remaining = total - start;
    RoomListPage {
        rooms: keyed
            .into_iter()
            .skip(start)
            .take(query.limit.max(1))
            .map(|(_, r)| r)
            .collect(),
        total,
        remaining,
    }
}
