//! Names of the `+CME ERROR: <err>` causes (3GPP TS 27.007 section 9.2) and of the
//! `+CMS ERROR: <err>` causes (3GPP TS 27.005 section 3.2.5, with the 24.011 / 23.040 causes
//! below 300 it passes through). Pure tables; the texts are the specification's wording.

/// 27.007 9.2.1 (general), 9.2.2 (GPRS / EPS) and 9.2.3 (VBS / VGCS) errors.
const CME: &[(u16, &str)] = &[
    (0, "phone failure"),
    (1, "no connection to phone"),
    (2, "phone-adaptor link reserved"),
    (3, "operation not allowed"),
    (4, "operation not supported"),
    (5, "PH-SIM PIN required"),
    (6, "PH-FSIM PIN required"),
    (7, "PH-FSIM PUK required"),
    (10, "SIM not inserted"),
    (11, "SIM PIN required"),
    (12, "SIM PUK required"),
    (13, "SIM failure"),
    (14, "SIM busy"),
    (15, "SIM wrong"),
    (16, "incorrect password"),
    (17, "SIM PIN2 required"),
    (18, "SIM PUK2 required"),
    (20, "memory full"),
    (21, "invalid index"),
    (22, "not found"),
    (23, "memory failure"),
    (24, "text string too long"),
    (25, "invalid characters in text string"),
    (26, "dial string too long"),
    (27, "invalid characters in dial string"),
    (30, "no network service"),
    (31, "network timeout"),
    (32, "network not allowed - emergency calls only"),
    (40, "network personalization PIN required"),
    (41, "network personalization PUK required"),
    (42, "network subset personalization PIN required"),
    (43, "network subset personalization PUK required"),
    (44, "service provider personalization PIN required"),
    (45, "service provider personalization PUK required"),
    (46, "corporate personalization PIN required"),
    (47, "corporate personalization PUK required"),
    (48, "hidden key required"),
    (49, "EAP method not supported"),
    (50, "incorrect parameters"),
    (51, "command implemented but currently disabled"),
    (52, "command aborted by user"),
    (
        53,
        "not attached to network due to MT functionality restrictions",
    ),
    (
        54,
        "modem not allowed - MT restricted to emergency calls only",
    ),
    (
        55,
        "operation not allowed because of MT functionality restrictions",
    ),
    (
        56,
        "fixed dial number only allowed - called number is not a fixed dial number",
    ),
    (57, "temporarily out of service due to other MT usage"),
    (58, "language/alphabet not supported"),
    (59, "unexpected data value"),
    (60, "system failure"),
    (61, "data missing"),
    (62, "call barred"),
    (63, "message waiting indication subscription failure"),
    (100, "unknown"),
    // 9.2.2.1: failure to attach.
    (103, "illegal MS"),
    (106, "illegal ME"),
    (107, "GPRS services not allowed"),
    (108, "GPRS services and non-GPRS services not allowed"),
    (111, "PLMN not allowed"),
    (112, "location area not allowed"),
    (113, "roaming not allowed in this location area"),
    (114, "GPRS services not allowed in this PLMN"),
    (115, "no suitable cells in location area"),
    (122, "congestion"),
    (125, "not authorized for this CSG"),
    // 9.2.2.2: failure to activate a context.
    (126, "insufficient resources"),
    (127, "missing or unknown APN"),
    (128, "unknown PDP address or PDP type"),
    (129, "user authentication failed"),
    (130, "activation rejected by GGSN, Serving GW or PDN GW"),
    (131, "activation rejected, unspecified"),
    (132, "service option not supported"),
    (133, "requested service option not subscribed"),
    (134, "service option temporarily out of order"),
    (140, "feature not supported"),
    (141, "semantic error in the TFT operation"),
    (142, "syntactical error in the TFT operation"),
    (143, "unknown PDP context"),
    (144, "semantic errors in packet filter(s)"),
    (145, "syntactical errors in packet filter(s)"),
    (146, "PDP context without TFT already activated"),
    // 9.2.2.4: other GPRS errors.
    (148, "unspecified GPRS error"),
    (149, "PDP authentication failure"),
    (150, "invalid mobile class"),
    // 9.2.3: VBS, VGCS and eMLPP.
    (151, "VBS/VGCS not supported by the network"),
    (152, "no service subscription on SIM"),
    (153, "no subscription for group ID"),
    (154, "group ID not activated on SIM"),
    (155, "no matching notification"),
    (156, "VBS/VGCS call already present"),
    (157, "congestion"),
    (158, "network failure"),
    (159, "uplink busy"),
    (160, "no access rights for SIM file"),
    (161, "no subscription for priority"),
    (162, "operation not applicable or not possible"),
    (163, "group ID prefixes not supported"),
    (164, "group ID prefixes not usable for VBS"),
    (165, "group ID prefix value invalid"),
    // 9.2.2.2 / 9.2.2.3 (later releases).
    (171, "last PDN disconnection not allowed"),
    (172, "semantically incorrect message"),
    (173, "mandatory information element error"),
    (174, "information element non-existent or not implemented"),
    (175, "conditional IE error"),
    (176, "protocol error, unspecified"),
    (177, "operator determined barring"),
    (178, "maximum number of PDP contexts reached"),
    (
        179,
        "requested APN not supported in current RAT and PLMN combination",
    ),
    (180, "request rejected, bearer control mode violation"),
    (181, "unsupported QCI value"),
    (182, "user data transmission via control plane is congested"),
];

/// 27.005 3.2.5 (300..=500) and the 24.011 E-2 / 23.040 9.2.3.22 causes below 300.
const CMS: &[(u16, &str)] = &[
    (1, "unassigned (unallocated) number"),
    (8, "operator determined barring"),
    (10, "call barred"),
    (17, "network failure"),
    (21, "short message transfer rejected"),
    (22, "congestion"),
    (27, "destination out of service"),
    (28, "unidentified subscriber"),
    (29, "facility rejected"),
    (30, "unknown subscriber"),
    (38, "network out of order"),
    (41, "temporary failure"),
    (42, "congestion"),
    (47, "resources unavailable, unspecified"),
    (50, "requested facility not subscribed"),
    (69, "requested facility not implemented"),
    (81, "invalid short message transfer reference value"),
    (95, "invalid message, unspecified"),
    (96, "invalid mandatory information"),
    (97, "message type non-existent or not implemented"),
    (
        98,
        "message not compatible with short message protocol state",
    ),
    (99, "information element non-existent or not implemented"),
    (111, "protocol error, unspecified"),
    (127, "interworking, unspecified"),
    (128, "telematic interworking not supported"),
    (129, "short message type 0 not supported"),
    (130, "cannot replace short message"),
    (143, "unspecified TP-PID error"),
    (144, "data coding scheme (alphabet) not supported"),
    (145, "message class not supported"),
    (159, "unspecified TP-DCS error"),
    (160, "command cannot be actioned"),
    (161, "command unsupported"),
    (175, "unspecified TP-Command error"),
    (176, "TPDU not supported"),
    (192, "SC busy"),
    (193, "no SC subscription"),
    (194, "SC system failure"),
    (195, "invalid SME address"),
    (196, "destination SME barred"),
    (197, "SM rejected - duplicate SM"),
    (198, "TP-VPF not supported"),
    (199, "TP-VP not supported"),
    (208, "(U)SIM SMS storage full"),
    (209, "no SMS storage capability in (U)SIM"),
    (210, "error in MS"),
    (211, "memory capacity exceeded"),
    (212, "(U)SIM application toolkit busy"),
    (213, "(U)SIM data download error"),
    (255, "unspecified error cause"),
    (300, "ME failure"),
    (301, "SMS service of ME reserved"),
    (302, "operation not allowed"),
    (303, "operation not supported"),
    (304, "invalid PDU mode parameter"),
    (305, "invalid text mode parameter"),
    (310, "(U)SIM not inserted"),
    (311, "(U)SIM PIN required"),
    (312, "PH-(U)SIM PIN required"),
    (313, "(U)SIM failure"),
    (314, "(U)SIM busy"),
    (315, "(U)SIM wrong"),
    (316, "(U)SIM PUK required"),
    (317, "(U)SIM PIN2 required"),
    (318, "(U)SIM PUK2 required"),
    (320, "memory failure"),
    (321, "invalid memory index"),
    (322, "memory full"),
    (330, "SMSC address unknown"),
    (331, "no network service"),
    (332, "network timeout"),
    (340, "no +CNMA acknowledgement expected"),
    (500, "unknown error"),
];

fn lookup(table: &[(u16, &'static str)], code: u16) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Letters and digits only, lower case: `SIM PIN required` and `sim-pin-required` compare equal.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn reverse(table: &[(u16, &'static str)], text: &str) -> Option<u16> {
    let key = squash(text);
    if key.is_empty() {
        return None;
    }
    table
        .iter()
        .find(|(_, n)| squash(n) == key)
        .map(|(c, _)| *c)
}

/// The 27.007 name of `+CME ERROR: <code>`.
#[must_use]
pub fn cme_name(code: u16) -> Option<&'static str> {
    lookup(CME, code)
}

/// The 27.005 name of `+CMS ERROR: <code>`.
#[must_use]
pub fn cms_name(code: u16) -> Option<&'static str> {
    lookup(CMS, code)
}

/// The `+CME ERROR` code of a verbose text (`+CMEE=2`), compared ignoring case, spaces and
/// punctuation (`SIM not inserted` → 10).
#[must_use]
pub fn cme_code(text: &str) -> Option<u16> {
    reverse(CME, text)
}

/// The `+CMS ERROR` code of a verbose text.
#[must_use]
pub fn cms_code(text: &str) -> Option<u16> {
    reverse(CMS, text)
}

/// Every `+CME ERROR` code the table names (for tests and fuzzing).
pub fn cme_codes() -> impl Iterator<Item = u16> {
    CME.iter().map(|(c, _)| *c)
}

/// Every `+CMS ERROR` code the table names.
pub fn cms_codes() -> impl Iterator<Item = u16> {
    CMS.iter().map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_tables() {
        assert_eq!(cme_name(10), Some("SIM not inserted"));
        assert_eq!(cme_name(16), Some("incorrect password"));
        assert_eq!(cme_name(30), Some("no network service"));
        assert_eq!(cme_name(148), Some("unspecified GPRS error"));
        assert_eq!(cme_name(149), Some("PDP authentication failure"));
        assert_eq!(cme_name(8), None);
        assert_eq!(cms_name(310), Some("(U)SIM not inserted"));
        assert_eq!(cms_name(500), Some("unknown error"));
        assert_eq!(cme_code("SIM not inserted"), Some(10));
        assert_eq!(cme_code("Incorrect password"), Some(16));
        assert_eq!(cme_code("SIM PIN required"), Some(11));
        assert_eq!(cme_code("no such error"), None);
        assert_eq!(cme_code("--"), None);
        assert_eq!(cms_code("SMSC address unknown"), Some(330));
    }

    #[test]
    fn tables_have_unique_codes_and_names_map_back() {
        for table in [CME, CMS] {
            for (i, (c, n)) in table.iter().enumerate() {
                assert!(table[..i].iter().all(|(d, _)| d != c), "duplicate {c}");
                // A name maps back to its own code unless an earlier entry has the same name
                // (`congestion` is 122 and 157).
                let back = reverse(table, n).expect("name maps back");
                assert_eq!(lookup(table, back).map(squash), Some(squash(n)));
            }
        }
    }
}
