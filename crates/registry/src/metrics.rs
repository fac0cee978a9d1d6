//! Prometheus metrics at /metrics. (registry owner)
