//! Credentials (`gorae login` store in auth.json) and the WWW-Authenticate challenge flow.
