//! Dataplane: moves IPv4 packets between the TUN device, nat-core and the active PPP link.
