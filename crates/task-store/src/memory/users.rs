//! [`UserStore`] for [`MemoryStore`].

use async_trait::async_trait;
use task_core::UnixMillis;

use super::{MemoryStore, StoredToken};
use crate::backend::clock::now_millis;
use crate::backend::user_rules::{is_live, token_record, validate_email, validate_token};
use crate::users::{NewToken, Role, TokenRecord, User, UserStore};
use crate::{Result, StoreError, UserLimits};

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        validate_email(email)?;
        let mut state = self.state();
        if state.users.contains_key(email) {
            return Err(StoreError::Conflict(format!("user {email} already exists")));
        }
        let user = User {
            email: email.to_owned(),
            role,
            created_at: now_millis(),
        };
        let seq = state.next_seq();
        state.users.insert(email.to_owned(), (seq, user.clone()));
        Ok(user)
    }

    async fn get_user(&self, email: &str) -> Result<User> {
        self.state()
            .users
            .get(email)
            .map(|(_, user)| user.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let state = self.state();
        let mut users: Vec<&(u64, User)> = state.users.values().collect();
        users.sort_by_key(|(seq, user)| (user.created_at, *seq));
        Ok(users.into_iter().map(|(_, user)| user.clone()).collect())
    }

    async fn count_users(&self) -> Result<u64> {
        Ok(self.state().users.len() as u64)
    }

    async fn insert_token(&self, token: NewToken) -> Result<TokenRecord> {
        validate_token(&token)?;
        let mut state = self.state();
        if !state.users.contains_key(&token.user_email) {
            return Err(StoreError::NotFound);
        }
        if state.tokens.contains_key(&token.id) {
            return Err(StoreError::Conflict(format!(
                "token id {} is taken",
                token.id
            )));
        }
        if state
            .tokens
            .values()
            .any(|stored| stored.hash == token.hash)
        {
            return Err(StoreError::Conflict("token hash is taken".to_owned()));
        }
        let record = token_record(&token, now_millis());
        let seq = state.next_seq();
        state.tokens.insert(
            token.id,
            StoredToken {
                seq,
                hash: token.hash,
                record: record.clone(),
            },
        );
        Ok(record)
    }

    async fn find_token(&self, hash: &str, now: UnixMillis) -> Result<Option<(User, TokenRecord)>> {
        let state = self.state();
        let Some(stored) = state.tokens.values().find(|stored| stored.hash == hash) else {
            return Ok(None);
        };
        if !is_live(&stored.record, now) {
            return Ok(None);
        }
        Ok(state
            .users
            .get(&stored.record.user_email)
            .map(|(_, user)| (user.clone(), stored.record.clone())))
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        self.state()
            .tokens
            .remove(id)
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn get_user_limits(&self, email: &str) -> Result<UserLimits> {
        let state = self.state();
        if !state.users.contains_key(email) {
            return Err(StoreError::NotFound);
        }
        Ok(state.limits.get(email).copied().unwrap_or_default())
    }

    async fn set_user_limits(&self, email: &str, limits: UserLimits) -> Result<()> {
        limits.validate()?;
        let mut state = self.state();
        if !state.users.contains_key(email) {
            return Err(StoreError::NotFound);
        }
        state.limits.insert(email.to_owned(), limits);
        Ok(())
    }

    async fn delete_token_by_hash(&self, hash: &str) -> Result<()> {
        self.state().tokens.retain(|_, stored| stored.hash != hash);
        Ok(())
    }

    async fn list_tokens(&self, email: &str) -> Result<Vec<TokenRecord>> {
        let state = self.state();
        let mut tokens: Vec<&StoredToken> = state
            .tokens
            .values()
            .filter(|stored| stored.record.user_email == email)
            .collect();
        tokens.sort_by_key(|stored| (stored.record.created_at, stored.seq));
        Ok(tokens
            .into_iter()
            .map(|stored| stored.record.clone())
            .collect())
    }
}
