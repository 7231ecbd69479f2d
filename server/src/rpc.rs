//! gRPC services: authenticate, authorize, translate to and from protobuf.
