//! Who may see the operator dashboard.
//!
//! - With `operatorUserIds` set: `GET /admin/stats` needs `Authorization: Bearer <token>` of a
//!   user listed there (401 without a valid token, 403 for anyone else), wherever the caller is.
//!   The page's static files hold no data and are served to anyone; the page asks for the token.
//! - With no operator configured: everything under `/admin` answers only to loopback callers
//!   (127.0.0.0/8, ::1); anyone else gets 403. Behind a reverse proxy on the same host every
//!   request looks like loopback, so configure an operator there.
//!
//! Never logs or echoes a token.

use std::net::SocketAddr;

use warp::http::HeaderMap;

use crate::auth::{AuthError, Authority};
use crate::http::ApiFailure;

fn loopback_only(remote: Option<SocketAddr>) -> Result<(), ApiFailure> {
    match remote {
        Some(addr) if addr.ip().is_loopback() => Ok(()),
        _ => Err(ApiFailure::forbidden(
            "the dashboard answers only to loopback callers while no operator is configured \
             (operatorUserIds)",
        )),
    }
}

/// The page and its files.
pub fn check_page(operators: &[String], remote: Option<SocketAddr>) -> Result<(), ApiFailure> {
    if !operators.is_empty() {
        Ok(())
    } else {
        loopback_only(remote)
    }
}

/// The snapshot.
pub fn check_stats(
    operators: &[String],
    authority: &Authority,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), ApiFailure> {
    if operators.is_empty() {
        return loopback_only(remote);
    }
    let token = crate::routes::bearer(headers)?.ok_or(AuthError::Missing)?;
    let caller = authority.check(token)?;
    if operators.contains(&caller.user_id.0) {
        Ok(())
    } else {
        Err(ApiFailure::forbidden(
            "only an operator may see the dashboard",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_only;

    #[test]
    fn only_loopback_addresses_pass_without_operators() {
        for ok in ["127.0.0.1:9", "127.3.2.1:9", "[::1]:9"] {
            assert!(
                loopback_only(Some(ok.parse().expect("addr"))).is_ok(),
                "{ok}"
            );
        }
        for denied in [
            "10.0.0.1:9",
            "192.168.1.2:9",
            "[2001:db8::1]:9",
            "0.0.0.0:9",
        ] {
            assert!(
                loopback_only(Some(denied.parse().expect("addr"))).is_err(),
                "{denied}"
            );
        }
        assert!(
            loopback_only(None).is_err(),
            "an unknown peer is not loopback"
        );
    }
}
