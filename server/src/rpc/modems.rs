//! The `Modems` service: every modem with its state, init strings and the connections
//! that may use it. Reads the link manager and the configuration; decides nothing.

use masqdial_proto::v1 as pb;
use masqdial_proto::v1::modems_server;
use tonic::{Request, Response, Status};

use super::{begin, convert, Rpc, ServerState};

/// `Modems` service.
#[derive(Debug, Clone)]
pub struct ModemsService {
    state: ServerState,
}

impl ModemsService {
    /// New service over the shared state.
    pub fn new(state: ServerState) -> Self {
        ModemsService { state }
    }
}

#[tonic::async_trait]
impl modems_server::Modems for ModemsService {
    async fn list_modems(
        &self,
        req: Request<pb::ListModemsRequest>,
    ) -> Result<Response<pb::ListModemsResponse>, Status> {
        begin(req, Rpc::ListModems, None)?;
        let links = &self.state.control()?.links;
        let cfg = self.state.config();
        let modems = links
            .modems()
            .iter()
            .map(|v| {
                let mut m = convert::modem(v);
                if let Some(mc) = cfg.modems.iter().find(|c| c.name == m.name) {
                    m.init = mc.init.clone();
                    m.usable_by = cfg
                        .connections
                        .iter()
                        .filter(|c| c.modems.is_empty() || c.modems.contains(&m.name))
                        .map(|c| c.name.clone())
                        .collect();
                }
                m
            })
            .collect();
        Ok(Response::new(pb::ListModemsResponse { modems }))
    }
}
