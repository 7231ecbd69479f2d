//! The `modems` command: the gateway's modem slots and their state.
//!
//! Read-only: must not dial, hang up or change NAT state.

use crate::format;
use crate::json as j;
use crate::run::Session;
use masqdial_proto::v1 as pb;
use serde_json::{json, Value};

impl Session {
    pub(crate) async fn modems(&mut self) -> anyhow::Result<()> {
        let mut c = self.clients().await?;
        let r = c
            .modems
            .list_modems(pb::ListModemsRequest {})
            .await?
            .into_inner();
        let rows: Vec<Vec<String>> = r
            .modems
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.device.clone(),
                    m.baud.to_string(),
                    format::modem_state_text(m, std::time::SystemTime::now()),
                    m.connection.clone(),
                    m.last_error.clone(),
                ]
            })
            .collect();
        let v: Vec<Value> = r.modems.iter().map(j::modem).collect();
        let mut text = format::table(
            &[
                "MODEM",
                "DEVICE",
                "BPS",
                "STATE",
                "CONNECTION",
                "LAST ERROR",
            ],
            &rows,
        );
        let cells: Vec<Vec<String>> = r
            .modems
            .iter()
            .filter_map(|m| {
                m.cellular
                    .as_ref()
                    .map(|c| format::cellular_row(&m.name, c))
            })
            .collect();
        if !cells.is_empty() {
            text.push('\n');
            text.push_str(&format::table(
                &[
                    "MODEM", "SIGNAL", "REG", "OPERATOR", "TECH", "SIM", "IMEI", "MODEL",
                ],
                &cells,
            ));
        }
        self.emit(&text, json!({"modems": v}));
        Ok(())
    }
}
