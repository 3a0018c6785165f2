//! Operational endpoints on the public listener, without auth: `/healthz` (liveness),
//! `/readyz` (readiness: 200 only while `active`), `/metrics` (Prometheus text).

use crate::context::NodeCtx;
use crate::lifecycle::NodeState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Liveness: 200 while the process serves.
pub async fn healthz(ctx: web::Data<NodeCtx>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "node": ctx.node,
        "state": ctx.state().as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": ctx.started.elapsed().as_secs(),
    }))
}

/// Readiness: 200 when active; 503 while joining, draining or drained.
pub async fn readyz(ctx: web::Data<NodeCtx>) -> HttpResponse {
    let s = ctx.state();
    let body = json!({ "ready": s == NodeState::Active, "state": s.as_str(), "node": ctx.node });
    if s == NodeState::Active {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
pub async fn metrics(ctx: web::Data<NodeCtx>) -> HttpResponse {
    // Counting the handles held for peers walks every process group, one per local room (about
    // 5 ms at 9 000 rooms): off the worker, whose other connections would wait meanwhile.
    if let Ok(remote) = web::block(crate::cluster::remote_handles).await {
        ctx.metrics
            .cluster_remote_actors
            .set(i64::try_from(remote).unwrap_or(i64::MAX));
    }
    if let Some(heap) = crate::memory::heap_bytes() {
        ctx.metrics
            .heap_bytes
            .set(i64::try_from(heap).unwrap_or(i64::MAX));
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(ctx.metrics.render())
}
