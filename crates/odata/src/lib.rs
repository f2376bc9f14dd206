//! OData query options (see Cargo.toml description).
