//! guestlist server library.
