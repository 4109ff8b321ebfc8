//! See [`super`]. (Being built for issue 13.)

use axum::Router;

use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
