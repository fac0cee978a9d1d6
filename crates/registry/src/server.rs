//! Running a registry: storage, auth and proxy from the config, the listener, TLS, and the
//! background garbage collection and upload expiry. (registry owner)
