//! Graph client.
