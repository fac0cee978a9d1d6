//! The distribution API: routes to storage, with the spec's status codes, headers and errors.
//! (registry owner)
