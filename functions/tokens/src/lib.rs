//! The `tokens` function: whitelist tokens.

use lambda_http::{Body, Request, Response};
use push_aws::Deployment;
use push_core::{tokens, ApiError, ApiRequest, ApiResponse, Deps};

/// The paths this function serves (each also with a trailing slash).
pub const ROUTES: &[&str] = &["/api/v1/tokens", "/api/v1/tokens/{token}"];

/// The function's name, in its metrics' `Function` dimension.
pub const FUNCTION: &str = "tokens";

/// The Lambda handler (also served in-process by the local router).
pub async fn handle(apps: &Deployment, req: Request) -> Response<Body> {
    push_aws::lambda::serve(apps, req, FUNCTION, route).await
}

/// The operation a request names, by path and method.
pub async fn route(deps: Deps, req: ApiRequest) -> Result<ApiResponse, ApiError> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let deps = &deps;
    let req = &req;
    let result = match segments.as_slice() {
        ["tokens"] => match method {
            "POST" => tokens::create(deps, req).await,
            "GET" => tokens::list(deps, req).await,
            _ => Err(ApiError::method_not_allowed(method, "GET, POST")),
        },
        ["tokens", token] => match method {
            "GET" => tokens::retrieve(deps, req, token).await,
            "PUT" => tokens::rename(deps, req, token, false).await,
            "PATCH" => tokens::rename(deps, req, token, true).await,
            "DELETE" => tokens::revoke(deps, req, token).await,
            _ => Err(ApiError::method_not_allowed(
                method,
                "GET, PUT, PATCH, DELETE",
            )),
        },
        _ => Err(ApiError::NotFound),
    };
    result
}
