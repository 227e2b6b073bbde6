//! The `register` function: `accounts/` and `device/apns|gcm/`.

use lambda_http::{Body, Request, Response};
use push_aws::Deployment;
use push_core::model::DeviceKind;
use push_core::{accounts, devices, ApiError, ApiRequest, ApiResponse, Deps};

/// The paths this function serves (each also with a trailing slash); the
/// template must route exactly these here.
pub const ROUTES: &[&str] = &[
    "/api/v1/accounts",
    "/api/v1/accounts/{username}",
    "/api/v1/device/{kind}",
    "/api/v1/device/{kind}/{id}",
];

/// The function's name, in its metrics' `Function` dimension.
pub const FUNCTION: &str = "register";

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
        ["accounts"] => match method {
            "POST" => accounts::create_or_login(deps, req).await,
            "GET" => accounts::get_own(deps, req).await,
            _ => Err(ApiError::method_not_allowed(method, "GET, POST")),
        },
        ["accounts", username] => match method {
            "GET" => accounts::get_named(deps, req, username).await,
            "DELETE" => accounts::delete_named(deps, req, username).await,
            _ => Err(ApiError::method_not_allowed(method, "GET, DELETE")),
        },
        ["device", kind] => match (DeviceKind::from_path(kind), method) {
            (None, _) => Err(ApiError::NotFound),
            (Some(kind), "GET") => devices::list(deps, req, kind).await,
            (Some(kind), "POST") => devices::register(deps, req, kind).await,
            _ => Err(ApiError::method_not_allowed(method, "GET, POST")),
        },
        ["device", kind, id] => match (DeviceKind::from_path(kind), method) {
            (None, _) => Err(ApiError::NotFound),
            (Some(kind), "GET") => devices::retrieve(deps, req, kind, id).await,
            (Some(kind), "PUT") => devices::update(deps, req, kind, id, false).await,
            (Some(kind), "PATCH") => devices::update(deps, req, kind, id, true).await,
            (Some(kind), "DELETE") => devices::delete(deps, req, kind, id).await,
            _ => Err(ApiError::method_not_allowed(
                method,
                "GET, PUT, PATCH, DELETE",
            )),
        },
        _ => Err(ApiError::NotFound),
    };
    result
}
