//! PAP (RFC 1334 §2) in both roles: authenticatee sends Authenticate-Request until acked,
//! authenticator checks a user table. Owns only PAP packets and their timer; it must not log passwords.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::AuthOutcome;

/// PAP protocol number.
pub const PROTOCOL: u16 = 0xC023;
const REQUEST: u8 = 1;
const ACK: u8 = 2;
const NAK: u8 = 3;

fn packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    super::fsm::Packet {
        code,
        id,
        data: data.to_vec(),
    }
    .to_bytes()
}

fn msg(text: &str) -> Vec<u8> {
    let t = &text.as_bytes()[..text.len().min(200)];
    let mut v = vec![t.len() as u8];
    v.extend_from_slice(t);
    v
}

/// Parses a length-prefixed field; returns it and the rest.
fn field(d: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = d.split_first()?;
    let n = usize::from(n);
    (rest.len() >= n).then(|| rest.split_at(n))
}

/// Parses an Authenticate-Request body into (peer-id, password).
#[must_use]
pub fn parse_request(d: &[u8]) -> Option<(&[u8], &[u8])> {
    let (user, rest) = field(d)?;
    let (pass, _) = field(rest)?;
    Some((user, pass))
}

/// Authenticatee: sends our peer-id and password.
#[derive(Debug)]
pub struct PapClient {
    user: String,
    password: String,
    id: u8,
    tries: u32,
    max_tries: u32,
    restart: Duration,
    timer: Option<Instant>,
    out: VecDeque<Vec<u8>>,
    result: Option<AuthOutcome>,
}

impl PapClient {
    /// Client that retries every `restart`, at most `max_tries` requests.
    #[must_use]
    pub fn new(user: &str, password: &str, restart: Duration, max_tries: u32) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            id: 0,
            tries: 0,
            max_tries: max_tries.max(1),
            restart,
            timer: None,
            out: VecDeque::new(),
            result: None,
        }
    }

    fn send(&mut self, now: Instant) {
        self.id = self.id.wrapping_add(1);
        self.tries += 1;
        let u = &self.user.as_bytes()[..self.user.len().min(255)];
        let p = &self.password.as_bytes()[..self.password.len().min(255)];
        let mut d = vec![u.len() as u8];
        d.extend_from_slice(u);
        d.push(p.len() as u8);
        d.extend_from_slice(p);
        self.out.push_back(packet(REQUEST, self.id, &d));
        self.timer = Some(now + self.restart);
    }

    /// Authentication phase begins.
    pub fn start(&mut self, now: Instant) {
        self.send(now);
    }

    /// Handles a PAP packet from the authenticator.
    pub fn handle_packet(&mut self, code: u8, id: u8, data: &[u8]) {
        if id != self.id || self.result.is_some() {
            return;
        }
        let text = field(data)
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_default();
        match code {
            ACK => {
                self.timer = None;
                self.result = Some(AuthOutcome::Ok { peer_name: None });
            }
            NAK => {
                self.timer = None;
                self.result = Some(AuthOutcome::Failed(format!("PAP rejected by peer: {text}")));
            }
            _ => {}
        }
    }

    /// Retransmission timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer.is_some_and(|t| now >= t) {
            if self.tries >= self.max_tries {
                self.timer = None;
                self.result = Some(AuthOutcome::Failed(
                    "no answer to PAP Authenticate-Request".into(),
                ));
            } else {
                self.send(now);
            }
        }
    }

    /// When the retransmission timer fires.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Next PAP packet to send.
    pub fn poll_packet(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Outcome, once known (taken once).
    pub fn poll_result(&mut self) -> Option<AuthOutcome> {
        self.result.take()
    }
}

/// Authenticator: checks Authenticate-Requests against a user table.
#[derive(Debug)]
pub struct PapServer {
    users: Vec<(String, String)>,
    deadline: Option<Instant>,
    timeout: Duration,
    acked: Option<u8>,
    out: VecDeque<Vec<u8>>,
    result: Option<AuthOutcome>,
}

impl PapServer {
    /// Authenticator over `users` (name, password), waiting at most `timeout` for a request.
    #[must_use]
    pub fn new(users: Vec<(String, String)>, timeout: Duration) -> Self {
        Self {
            users,
            deadline: None,
            timeout,
            acked: None,
            out: VecDeque::new(),
            result: None,
        }
    }

    /// Authentication phase begins.
    pub fn start(&mut self, now: Instant) {
        self.deadline = Some(now + self.timeout);
    }

    /// Handles a PAP packet from the authenticatee.
    pub fn handle_packet(&mut self, code: u8, id: u8, data: &[u8]) {
        if code != REQUEST {
            return;
        }
        if let Some(a) = self.acked {
            // A retransmitted request after our Ack: the Ack was lost, repeat it.
            if a == id {
                self.out.push_back(packet(ACK, id, &msg("Login ok")));
            }
            return;
        }
        if self.result.is_some() || self.deadline.is_none() {
            return;
        }
        let Some((user, pass)) = parse_request(data) else {
            return;
        };
        let name = String::from_utf8_lossy(user).into_owned();
        let ok = self
            .users
            .iter()
            .any(|(u, p)| u.as_bytes() == user && p.as_bytes() == pass);
        self.deadline = None;
        if ok {
            self.acked = Some(id);
            self.out.push_back(packet(ACK, id, &msg("Login ok")));
            self.result = Some(AuthOutcome::Ok {
                peer_name: Some(name),
            });
        } else {
            self.out.push_back(packet(NAK, id, &msg("Login incorrect")));
            self.result = Some(AuthOutcome::Failed(format!(
                "PAP: bad credentials for user {name:?}"
            )));
        }
    }

    /// Gives up if no request came.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|t| now >= t) {
            self.deadline = None;
            self.result = Some(AuthOutcome::Failed(
                "peer did not send a PAP Authenticate-Request".into(),
            ));
        }
    }

    /// When the wait for a request ends.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Next PAP packet to send.
    pub fn poll_packet(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Outcome, once known (taken once).
    pub fn poll_result(&mut self) -> Option<AuthOutcome> {
        self.result.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_agree() {
        let now = Instant::now();
        let mut c = PapClient::new("alice", "secret", Duration::from_secs(3), 3);
        let mut s = PapServer::new(
            vec![("alice".into(), "secret".into())],
            Duration::from_secs(30),
        );
        c.start(now);
        s.start(now);
        let req = c.poll_packet().unwrap_or_default();
        assert_eq!(
            req,
            [1, 1, 0, 17, 5, b'a', b'l', b'i', b'c', b'e', 6, b's', b'e', b'c', b'r', b'e', b't']
        );
        let (code, id, d) = super::super::fsm::Packet::parse(&req).unwrap_or((0, 0, &[]));
        s.handle_packet(code, id, d);
        assert!(matches!(s.poll_result(), Some(AuthOutcome::Ok { .. })));
        let ack = s.poll_packet().unwrap_or_default();
        let (code, id, d) = super::super::fsm::Packet::parse(&ack).unwrap_or((0, 0, &[]));
        c.handle_packet(code, id, d);
        assert!(matches!(c.poll_result(), Some(AuthOutcome::Ok { .. })));
    }

    #[test]
    fn wrong_password_and_retries() {
        let now = Instant::now();
        let mut s = PapServer::new(
            vec![("alice".into(), "secret".into())],
            Duration::from_secs(30),
        );
        s.start(now);
        s.handle_packet(1, 1, &[5, b'a', b'l', b'i', b'c', b'e', 1, b'x']);
        assert!(matches!(s.poll_result(), Some(AuthOutcome::Failed(_))));
        let mut c = PapClient::new("a", "b", Duration::from_secs(3), 2);
        c.start(now);
        c.handle_timeout(now + Duration::from_secs(3));
        c.handle_timeout(now + Duration::from_secs(6));
        assert_eq!(std::iter::from_fn(|| c.poll_packet()).count(), 2);
        assert!(matches!(c.poll_result(), Some(AuthOutcome::Failed(_))));
    }

    proptest::proptest! {
        #[test]
        /// The server authenticates exactly the Authenticate-Requests that carry peer-id "a"
        /// and password "b" (RFC 1334 §2.2.1), and answers each request once; the client
        /// succeeds only on an Authenticate-Ack to its own request.
        fn only_the_right_credentials_authenticate(
            d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            code in 0u8..5,
            id in proptest::prelude::any::<u8>(),
            creds in proptest::prelude::any::<bool>(),
        ) {
            let mut d = d;
            if creds {
                d.splice(0..0, [1, b'a', 1, b'b']);
            }
            let mut s = PapServer::new(vec![("a".into(), "b".into())], Duration::from_secs(1));
            s.start(Instant::now());
            s.handle_packet(code, id, &d);
            let right = code == 1 && d.len() >= 4 && d[..4] == [1, b'a', 1, b'b'];
            let well_formed = code == 1
                && d.first().is_some_and(|&n| {
                    let n = usize::from(n);
                    d.get(1 + n).is_some_and(|&m| d.len() > 1 + n + usize::from(m))
                });
            let ok = matches!(s.poll_result(), Some(AuthOutcome::Ok { .. }));
            proptest::prop_assert_eq!(ok, right);
            let answer = s.poll_packet();
            if well_formed || right {
                let a = answer.unwrap_or_default();
                proptest::prop_assert_eq!(a.get(..2), Some(&[if right { 2 } else { 3 }, id][..]));
            } else {
                proptest::prop_assert_eq!(answer, None);
            }

            let mut c = PapClient::new("a", "b", Duration::from_secs(1), 1);
            c.start(Instant::now());
            c.handle_packet(code, 1, &d);
            let ok = matches!(c.poll_result(), Some(AuthOutcome::Ok { .. }));
            proptest::prop_assert!(!ok || code == 2, "client succeeded on code {}", code);
        }
    }
}
