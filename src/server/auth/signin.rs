//! Checking a login, password and TOTP code, the same way for the
//! authorization page and the device page. The person is told only that
//! something was wrong; the audit record says what.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::super::audit;
use super::super::outcome::FhirError;
use super::super::users::{self, Account, User};
use super::{Auth, event, password, totp};

/// What the person typed.
pub struct Credentials<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub totp: &'a str,
}

impl<'a> Credentials<'a> {
    pub fn from_form(form: &'a super::Form) -> Credentials<'a> {
        Credentials {
            login: form.get("login").unwrap_or("").trim(),
            password: form.get("password").unwrap_or(""),
            totp: form.get("totp").unwrap_or("").trim(),
        }
    }
}

pub enum SignIn {
    /// Signed in; the caller records it with what it does next.
    Ok(User),
    /// Wrong login, password or code (recorded).
    Refused,
    /// Too many failures lately (recorded); try again after this.
    Limited(Duration),
}

/// What every refusal tells the person.
pub const WRONG: &str = "Wrong login, password or code";

/// Why the password check failed, for the record. Without a stored hash
/// the same work is done at `nothing_cost`, so the answer's timing does
/// not tell a known login from an unknown one.
fn password_check(
    account: Option<&Account>,
    typed: &str,
    nothing_cost: password::Cost,
) -> Result<(), &'static str> {
    match account {
        None => {
            password::verify_nothing(typed, nothing_cost);
            Err("unknown login")
        }
        Some(Account { password: None, .. }) => {
            password::verify_nothing(typed, nothing_cost);
            Err("no password set")
        }
        Some(Account {
            password: Some(phc),
            ..
        }) => {
            if password::verify(typed, phc) {
                Ok(())
            } else {
                Err("wrong password")
            }
        }
    }
}

/// What the record says of a login that matched no user: only its
/// length, since people type passwords into the login field.
fn unknown(why: &str, typed: &str) -> String {
    format!("{why} ({} characters)", typed.chars().count())
}

/// Records the first refusal of a window: the user when the login is one.
async fn locked_out(auth: &Arc<Auth>, ctx: &audit::Context, login: &str) -> Result<(), FhirError> {
    let l = login.to_string();
    let user = auth
        .db
        .read(move |conn| -> Result<_, FhirError> { Ok(users::account(conn, &l)?) })
        .await?
        .map(|a| a.user);
    let why = "locked out: too many failed sign-ins";
    let detail = match &user {
        Some(_) => why.to_string(),
        None => unknown(&format!("{why}, unknown login"), login),
    };
    let e = event(ctx, user.as_ref(), "sign-in", 429, detail);
    auth.db.append(vec![e]).await
}

/// Checks the credentials; records a refusal itself.
pub async fn check(
    auth: &Arc<Auth>,
    ctx: &audit::Context,
    ip: Option<IpAddr>,
    c: &Credentials<'_>,
) -> Result<SignIn, FhirError> {
    let attempt = match auth.limiter.begin(c.login, ip) {
        Ok(a) => a,
        Err(refused) => {
            // One record a window: each refusal costs the server almost
            // nothing, and should not cost it a row.
            if refused.record {
                locked_out(auth, ctx, c.login).await?;
            }
            return Ok(SignIn::Limited(refused.wait));
        }
    };
    let login = c.login.to_string();
    let account = auth
        .db
        .read(move |conn| -> Result<_, FhirError> {
            let account = users::account(conn, &login)?;
            let cost = match &account {
                Some(Account {
                    password: Some(_), ..
                }) => None,
                _ => Some(users::usual_password_cost(conn)?),
            };
            Ok((account, cost))
        })
        .await?;
    let (account, nothing_cost) = account;
    let permit = auth
        .hashing
        .acquire()
        .await
        .map_err(|_| FhirError::internal())?;
    let typed = c.password.to_string();
    let nothing_cost = nothing_cost.flatten().unwrap_or(auth.options.password_cost);
    let (account, checked) = tokio::task::spawn_blocking(move || {
        let checked = password_check(account.as_ref(), &typed, nothing_cost);
        (account, checked)
    })
    .await
    .map_err(|_| FhirError::internal())?;
    drop(permit);

    let verdict = match (&account, checked) {
        (_, Err(why)) => Err(why),
        (None, Ok(())) => Err("unknown login"),
        (Some(a), Ok(())) if a.disabled => Err("user disabled"),
        (Some(a), Ok(())) => match &a.totp_secret {
            None => Ok(()),
            Some(_) if c.totp.is_empty() => Err("TOTP code missing"),
            Some(secret) => {
                match totp::matching_step(secret, c.totp, chrono::Utc::now().timestamp()) {
                    None => Err("wrong TOTP code"),
                    Some(step) => {
                        let id = a.user.id;
                        let fresh = auth
                            .db
                            .write(move |conn| -> Result<bool, FhirError> {
                                Ok(users::claim_totp_step(conn, id, step)?)
                            })
                            .await?;
                        if fresh {
                            Ok(())
                        } else {
                            Err("TOTP code already used")
                        }
                    }
                }
            }
        },
    };
    match verdict {
        Ok(()) => {
            auth.limiter.succeeded(attempt);
            match account {
                Some(a) => Ok(SignIn::Ok(a.user)),
                None => Ok(SignIn::Refused),
            }
        }
        Err(why) => {
            let user = account.as_ref().map(|a| &a.user);
            let detail = match user {
                Some(_) => why.to_string(),
                None => unknown(why, c.login),
            };
            let e = event(ctx, user, "sign-in", 401, detail);
            auth.db.append(vec![e]).await?;
            Ok(SignIn::Refused)
        }
    }
}
