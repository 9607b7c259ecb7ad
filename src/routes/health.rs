//! `GET /health/live` and `GET /health/ready`.

use diesel_async::RunQueryDsl;
use rocket::serde::json::{json, Json, Value};
use rocket::{get, State};
use rocket_db_pools::Pool;

use super::responses::Unavailable;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// 200 while the process runs.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "The process runs.", body = serde_json::Value, example = json!({"status": "ok"}))))]
#[get("/health/live")]
fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers a query, else 503 `unavailable`.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "The database answers.", body = serde_json::Value, example = json!({"status": "ok"})),
    Unavailable))]
#[get("/health/ready")]
async fn ready(db: &State<Db>) -> ApiResult<Json<Value>> {
    let mut conn = db.get().await.map_err(ApiError::unavailable)?;
    crate::db::with_conn!(conn, |c| diesel::sql_query("SELECT 1").execute(c).await).map_err(ApiError::unavailable)?;
    Ok(Json(json!({"status": "ok"})))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![live, ready]
}
