//! L2 announcement of LoadBalancer IPs (in progress).
