//! `/.well-known/smart-configuration` (also under the FHIR base) and the
//! id_token key set. Open to anyone: clients read them before signing in.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::{Auth, OAuthError, json_response, origin, scope};

pub async fn smart_configuration(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(o) = origin(&auth.options, &headers, &uri) else {
        return OAuthError::new("invalid_request", "the request names no usable Host").response();
    };
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": o,
            "authorization_endpoint": format!("{o}/auth/authorize"),
            "token_endpoint": format!("{o}/auth/token"),
            "device_authorization_endpoint": format!("{o}/auth/device"),
            "revocation_endpoint": format!("{o}/auth/revoke"),
            "jwks_uri": format!("{o}/auth/jwks"),
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code"
            ],
            "token_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "scopes_supported": scope::SUPPORTED,
            "capabilities": [
                "launch-standalone",
                "client-public",
                "permission-v1",
                "permission-v2",
                "permission-offline",
                "permission-user",
                "sso-openid-connect"
            ],
        }),
    )
}

pub async fn jwks(State(auth): State<Arc<Auth>>) -> Response {
    json_response(StatusCode::OK, &auth.signer.jwks())
}
