//! Userspace PPP (sans-IO): HDLC framing, LCP, PAP/CHAP, IPCP, both roles.
