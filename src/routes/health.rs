//! `GET /health/live` and `GET /health/ready`.

use diesel_async::RunQueryDsl;
use rocket::serde::json::{json, Json, Value};
use rocket::State;
use rocket_db_pools::Pool;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// 200 while the process runs.
#[rocket::get("/health/live")]
fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers a query, else 503 `unavailable`.
#[rocket::get("/health/ready")]
async fn ready(db: &State<Db>) -> ApiResult<Json<Value>> {
    let mut conn = db.get().await.map_err(ApiError::unavailable)?;
    crate::with_conn!(conn, |c| diesel::sql_query("SELECT 1").execute(c).await).map_err(ApiError::unavailable)?;
    Ok(Json(json!({"status": "ok"})))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![live, ready]
}
