//! Per-layer progress like docker's: indicatif bars on a terminal, plain lines otherwise.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Quiet,
}
