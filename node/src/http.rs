//! HTTP surfaces of a node. Routes:
//!
//! Public listener (`node.listen`):
//! - `GET /ws` — client WebSocket (protocol v1), [`ws`]
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` — operations, [`ops`]
//! - `/api/v1/…` — backend API (API key), [`api`]
//! - `GET /conformance/echo` — WebSocket echo for the Autobahn suite, only with
//!   `node.conformance_echo = true`, [`conformance`]
//!
//! Admin listener (`node.admin_listen`, bearer token or loopback-only), [`admin`]:
//! - `GET /admin/v1/stats`, `GET /admin/v1/cluster`
//! - `GET /admin/v1/clients`, `GET /admin/v1/clients/{client}`
//! - `POST /admin/v1/clients/{client}/kick`, `POST|DELETE /admin/v1/clients/{client}/throttle`
//! - `GET /admin/v1/rooms`, `GET /admin/v1/rooms/{room}`, `POST /admin/v1/rooms/{room}/migrate`
//! - `POST /admin/v1/nodes/{node}/drain`, `POST /admin/v1/nodes/{node}/undrain`
//! - `GET /admin/v1/events` (WebSocket: this node's event log)
//!
//! Handlers translate between HTTP and actor messages; they hold no state of their own.

pub mod admin;
pub mod api;
pub mod bearer;
pub mod body;
pub mod conformance;
pub mod error;
pub mod front;
pub mod ops;
pub mod pending;
pub mod proxy_header;
pub mod upgrade;
pub mod workers;
pub mod ws;

use actix_web::web;

/// Extractor settings that answer malformed query strings and paths with JSON errors.
fn json_extractor_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        error::ApiError::bad_request(format!("invalid query string: {e}")).into()
    }))
    .app_data(
        web::PathConfig::default().error_handler(|e, _| {
            error::ApiError::bad_request(format!("invalid path: {e}")).into()
        }),
    );
}

/// Routes of the public listener.
pub fn public(cfg: &mut web::ServiceConfig) {
    json_extractor_errors(cfg);
    cfg.route("/ws", web::get().to(ws::not_upgraded))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .service(web::scope("/api/v1").configure(api::routes))
        .route("/conformance/echo", web::get().to(conformance::echo))
        .default_service(web::to(error::not_found));
}

/// Routes of the admin listener.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    json_extractor_errors(cfg);
    cfg.service(web::scope("/admin/v1").configure(admin::routes))
        .default_service(web::to(error::not_found));
}
