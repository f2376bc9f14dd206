//! Identity: keys and tokens.
