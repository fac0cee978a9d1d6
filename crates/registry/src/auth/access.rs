//! (auth helper)
