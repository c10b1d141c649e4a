//! The bearer token every request carries, shared by every clone of the
//! [`crate::api::ApiClient`]: a fixed token (`--token`), or a SMART sign-in
//! whose access token is refreshed before it expires (the rotated refresh
//! token goes back to the credential store). Locking drops every token from
//! memory; only the person who was signed in unlocks.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::kept::{Kept, KeptSignIns};
use super::{DeviceStart, Identity, RefreshFailed, SignIn, TokenSet};

/// What to do after the server refused a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Send again with this token.
    Retry(String),
    /// The sign-in has ended: sign in again.
    Ended,
    /// Nothing to renew (a fixed token), or not now: the refusal stands.
    No,
}

#[derive(Clone, Default)]
pub struct Bearer(Arc<tokio::sync::Mutex<Held>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

#[derive(Default)]
enum Held {
    #[default]
    Nothing,
    Token(String),
    Smart(Box<Smart>),
    Locked(Box<Locked>),
}

struct Smart {
    signin: SignIn,
    tokens: TokenSet,
    kept: Option<Arc<KeptSignIns>>,
}

/// What a locked session remembers: enough to know who may unlock, never a
/// token that works.
struct Locked {
    /// SHA-256 of the fixed token this session used.
    token_hash: Option<[u8; 32]>,
    /// Who was signed in (a SMART sign-in), or the server's login name.
    identity: Option<Identity>,
    login: Option<String>,
    signin: Option<SignIn>,
    kept: Option<Arc<KeptSignIns>>,
    /// Where to find the server's sign-in when the session had a fixed token.
    base: String,
    /// The session had no token at all (a server that asks for none).
    open: bool,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Bearer {
    pub fn fixed(token: Option<String>) -> Bearer {
        Bearer(Arc::new(tokio::sync::Mutex::new(match token {
            Some(t) => Held::Token(t),
            None => Held::Nothing,
        })))
    }

    pub fn signed_in(signin: SignIn, tokens: TokenSet, kept: Option<Arc<KeptSignIns>>) -> Bearer {
        Bearer(Arc::new(tokio::sync::Mutex::new(Held::Smart(Box::new(
            Smart {
                signin,
                tokens,
                kept,
            },
        )))))
    }

    /// The token to send now, refreshed first when it is about to expire.
    /// `Err` while locked: nothing is sent.
    pub async fn current(&self) -> Result<Option<String>, String> {
        let mut held = self.0.lock().await;
        match &mut *held {
            Held::Nothing => Ok(None),
            Held::Token(t) => Ok(Some(t.clone())),
            Held::Locked(_) => Err("the session is locked".to_string()),
            Held::Smart(s) => {
                if s.tokens.due(Instant::now()) {
                    refresh(s).await;
                }
                Ok(Some(s.tokens.access_token.clone()))
            }
        }
    }

    /// The server refused `used`: a SMART sign-in gets a new access token
    /// (unless another request already got one), or has ended.
    pub async fn renew_after_refusal(&self, used: &str) -> Renewal {
        let mut held = self.0.lock().await;
        let Held::Smart(s) = &mut *held else {
            return Renewal::No;
        };
        if s.tokens.access_token != used {
            return Renewal::Retry(s.tokens.access_token.clone());
        }
        let Some(refresh_token) = s.tokens.refresh_token.clone() else {
            return Renewal::Ended;
        };
        match renewed(s, &refresh_token).await {
            Ok(()) => Renewal::Retry(s.tokens.access_token.clone()),
            Err(RefreshFailed::Ended(_)) => Renewal::Ended,
            Err(RefreshFailed::Passing(_)) => Renewal::No,
        }
    }

    /// Who is signed in, where the server said (SMART `fhirUser`).
    pub async fn identity(&self) -> Option<Identity> {
        match &*self.0.lock().await {
            Held::Smart(s) => s.tokens.identity.clone(),
            Held::Locked(l) => l.identity.clone(),
            _ => None,
        }
    }

    /// Drops every token from memory. `login`: who the server says is
    /// signed in, for a session with a fixed token.
    pub async fn lock(&self, base: &str, login: Option<String>) {
        let mut held = self.0.lock().await;
        let locked = match std::mem::take(&mut *held) {
            Held::Locked(l) => *l,
            Held::Nothing => Locked {
                token_hash: None,
                identity: None,
                login,
                signin: None,
                kept: None,
                base: base.to_string(),
                open: true,
            },
            Held::Token(mut t) => {
                let token_hash = Some(hash(&t));
                t.zeroize();
                Locked {
                    token_hash,
                    identity: None,
                    login,
                    signin: None,
                    kept: None,
                    base: base.to_string(),
                    open: false,
                }
            }
            Held::Smart(s) => {
                let Smart {
                    signin,
                    mut tokens,
                    kept,
                } = *s;
                // The sign-in ends here: whoever comes to this terminal next
                // (quitting the lock screen and starting chartty again)
                // signs in anew. Unlocking makes a new one.
                if let Some(r) = &tokens.refresh_token {
                    let _ = signin.revoke(r, "refresh_token").await;
                }
                if let Some(k) = &kept {
                    forget(k.clone(), signin.base.clone()).await;
                }
                tokens.access_token.zeroize();
                if let Some(r) = tokens.refresh_token.as_mut() {
                    r.zeroize();
                }
                Locked {
                    token_hash: None,
                    identity: tokens.identity.clone(),
                    login,
                    signin: Some(signin),
                    kept,
                    base: base.to_string(),
                    open: false,
                }
            }
        };
        *held = Held::Locked(Box::new(locked));
    }

    pub async fn is_locked(&self) -> bool {
        matches!(&*self.0.lock().await, Held::Locked(_))
    }

    /// Unlocks with the fixed token the session was started with.
    pub async fn unlock_with_token(&self, token: &str) -> Result<(), String> {
        let mut held = self.0.lock().await;
        // Only a session whose tokens are already out of memory unlocks: one
        // still finishing its writes has nothing to unlock yet.
        let Held::Locked(l) = &*held else {
            return Err("the session is not locked yet".into());
        };
        match l.token_hash {
            Some(h) if h == hash(token.trim()) => {
                *held = Held::Token(token.trim().to_string());
                Ok(())
            }
            Some(_) => Err("that is not the token this session was signed in with".into()),
            None => Err("this session was not started with a token: unlock by signing in".into()),
        }
    }

    /// Unlocks a session that had no token: nobody to check.
    pub async fn unlock_open(&self) -> Result<(), String> {
        let mut held = self.0.lock().await;
        match &*held {
            Held::Locked(l) if l.open => {
                *held = Held::Nothing;
                Ok(())
            }
            Held::Locked(_) => Err("this session unlocks only by signing in again".into()),
            _ => Err("the session is not locked yet".into()),
        }
    }

    /// Starts the device sign-in that unlocks the session.
    pub async fn unlock_start(
        &self,
        http: &crate::api::http::HttpOptions,
    ) -> Result<DeviceStart, String> {
        let signin = {
            let held = self.0.lock().await;
            let Held::Locked(l) = &*held else {
                return Err("the session is not locked".into());
            };
            match &l.signin {
                Some(s) => s.clone(),
                None => {
                    let base = l.base.clone();
                    drop(held);
                    SignIn::discover(&base, http).await?
                }
            }
        };
        let start = signin.device_start().await?;
        if let Held::Locked(l) = &mut *self.0.lock().await
            && l.signin.is_none()
        {
            l.signin = Some(signin);
        }
        Ok(start)
    }

    /// Waits for the device sign-in begun by [`Bearer::unlock_start`]; the
    /// session unlocks only if the same person signed in.
    pub async fn unlock_wait(&self, start: &DeviceStart) -> Result<Identity, String> {
        let signin = match &*self.0.lock().await {
            Held::Locked(l) => l.signin.clone().ok_or("no sign-in started")?,
            _ => return Err("the session is not locked".into()),
        };
        let tokens = signin.device_wait(start).await?;
        let Some(who) = tokens.identity.clone() else {
            let _ = signin.revoke(&tokens.access_token, "access_token").await;
            return Err("the server did not say who signed in; quit and start again".into());
        };
        let mut held = self.0.lock().await;
        let Held::Locked(l) = &*held else {
            // Unlocked meanwhile (another attempt won): these tokens are
            // not needed; they must not stay valid on the server.
            drop(held);
            let _ = signin.revoke(&tokens.access_token, "access_token").await;
            if let Some(r) = &tokens.refresh_token {
                let _ = signin.revoke(r, "refresh_token").await;
            }
            return Err("the session is not locked".into());
        };
        let same = match (&l.identity, &l.login) {
            (Some(was), _) => was.same_person(&who),
            (None, Some(login)) => &who.subject == login,
            (None, None) => false,
        };
        if !same {
            drop(held);
            let _ = signin.revoke(&tokens.access_token, "access_token").await;
            if let Some(r) = &tokens.refresh_token {
                let _ = signin.revoke(r, "refresh_token").await;
            }
            return Err(format!(
                "{} signed in: this screen unlocks only for the person who locked it",
                who.label()
            ));
        }
        let kept = l.kept.clone();
        if let (Some(k), Some(r)) = (&kept, &tokens.refresh_token) {
            // The sign-in kept before the lock is replaced by this one: it
            // is revoked, not left valid on the server until it expires.
            if let Some(old) = kept_now(k.clone(), signin.base.clone()).await
                && &old.refresh_token != r
            {
                let _ = signin.revoke(&old.refresh_token, "refresh_token").await;
            }
            keep(
                k.clone(),
                signin.base.clone(),
                Kept::new(r.clone(), Some(&who)),
            )
            .await;
        }
        *held = Held::Smart(Box::new(Smart {
            signin,
            tokens,
            kept,
        }));
        Ok(who)
    }
}

async fn forget(kept: Arc<KeptSignIns>, base: String) {
    let result = tokio::task::spawn_blocking(move || kept.forget(&base)).await;
    if let Ok(Err(why)) | Err(why) = result.map_err(|e| e.to_string()) {
        tracing::warn!("the kept sign-in could not be forgotten at the lock: {why}");
    }
}

async fn kept_now(kept: Arc<KeptSignIns>, base: String) -> Option<Kept> {
    tokio::task::spawn_blocking(move || kept.load(&base))
        .await
        .ok()?
        .ok()?
        .map(|(k, _)| k)
}

async fn keep(kept: Arc<KeptSignIns>, base: String, k: Kept) {
    let result = tokio::task::spawn_blocking(move || kept.keep(&base, &k)).await;
    if let Ok(Err(why)) | Err(why) = result.map_err(|e| e.to_string()) {
        tracing::warn!("the renewed sign-in was not kept in the credential store: {why}");
    }
}

async fn refresh(s: &mut Smart) {
    let Some(refresh_token) = s.tokens.refresh_token.clone() else {
        return;
    };
    match renewed(s, &refresh_token).await {
        Ok(()) => {}
        Err(RefreshFailed::Ended(why)) => tracing::warn!("refresh: {why}"),
        Err(RefreshFailed::Passing(why)) => {
            tracing::info!("refresh failed, tried again later: {why}")
        }
    }
}

/// Refreshes with `refresh_token`; the new tokens replace the held ones
/// (and the kept refresh token, when rotated). A sign-in that has ended
/// forgets its refresh token.
async fn renewed(s: &mut Smart, refresh_token: &str) -> Result<(), RefreshFailed> {
    // Another chartty of the same person (another pane) may have rotated
    // the kept token since this one read it: the kept one is the live one,
    // and presenting the spent one would end the sign-in for both.
    let mut refresh_token = refresh_token.to_string();
    if let Some(k) = &s.kept
        && let Some(kept) = kept_now(k.clone(), s.signin.base.clone()).await
        && kept.identity().as_ref().map(|i| (&i.issuer, &i.subject))
            == s.tokens.identity.as_ref().map(|i| (&i.issuer, &i.subject))
    {
        refresh_token = kept.refresh_token;
    }
    let refresh_token = refresh_token.as_str();
    match s.signin.refresh(refresh_token).await {
        Ok(mut fresh) => {
            if fresh.identity.is_none() {
                fresh.identity = s.tokens.identity.clone();
            }
            if fresh.refresh_token.is_none() {
                fresh.refresh_token = Some(refresh_token.to_string());
            } else if let (Some(k), Some(r)) = (&s.kept, &fresh.refresh_token) {
                // Rotated: the old one is spent; the store must hold the new.
                keep(
                    k.clone(),
                    s.signin.base.clone(),
                    Kept::new(r.clone(), fresh.identity.as_ref()),
                )
                .await;
            }
            s.tokens = fresh;
            Ok(())
        }
        Err(e) => {
            if matches!(e, RefreshFailed::Ended(_)) {
                s.tokens.refresh_token = None;
            }
            Err(e)
        }
    }
}
