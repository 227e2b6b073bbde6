//! The `knock` function: `messages/` (no auth) and `pubsub/`.

use lambda_http::{Body, Request, Response};
use push_aws::Deployment;
use push_core::{knock, ApiError, ApiRequest, ApiResponse, Deps};

/// The paths this function serves (each also with a trailing slash).
pub const ROUTES: &[&str] = &["/api/v1/messages", "/api/v1/pubsub"];

/// The function's name, in its metrics' `Function` dimension.
pub const FUNCTION: &str = "knock";

/// The Lambda handler (also served in-process by the local router).
pub async fn handle(apps: &Deployment, req: Request) -> Response<Body> {
    push_aws::lambda::serve(apps, req, FUNCTION, route).await
}

/// The operation a request names, by path and method.
pub async fn route(deps: Deps, req: ApiRequest) -> Result<ApiResponse, ApiError> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let result = match (segments.as_slice(), method) {
        (["messages"], "POST") => knock::knock(&deps, &req).await,
        (["pubsub"], "GET") => Ok(knock::pubsub(&deps)),
        (["messages"], _) => Err(ApiError::method_not_allowed(method, "POST")),
        (["pubsub"], _) => Err(ApiError::method_not_allowed(method, "GET")),
        _ => Err(ApiError::NotFound),
    };
    result
}
