//! `irc-fixture`: the IRC side of the DCC end-to-end test (`masqdial_tests::irc`). `server`
//! runs an IRC server; `peer` is a WAN-side client taking DCC SEND/CHAT offers; `offer` is
//! the LAN-side client making them. Each prints `READY …` once listening/registered (server,
//! peer) or `OK irc-offer …` on success; failures print `FAIL …` to stderr and exit 1. Every
//! subcommand runs under `--timeout` seconds.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use masqdial_tests::irc::{self, Framing};
use masqdial_tests::wan;

#[derive(Debug, Parser)]
#[command(name = "irc-fixture")]
struct Cli {
    /// Total time allowed, in seconds.
    #[arg(long, default_value_t = 120, global = true)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run an IRC server on ADDR.
    Server {
        /// Listen address, e.g. 203.0.113.1:6667.
        addr: SocketAddr,
    },
    /// Register as NICK on SERVER and answer COUNT DCC offers, reporting each to its sender.
    Peer {
        /// IRC server.
        server: SocketAddr,
        /// Nick.
        #[arg(long, default_value = "bob")]
        nick: String,
        /// Offers to answer before quitting.
        #[arg(long, default_value_t = 2)]
        count: u32,
    },
    /// Register as NICK on SERVER, offer TO a DCC SEND (then a DCC CHAT with --chat).
    Offer {
        /// IRC server.
        server: SocketAddr,
        /// Nick.
        #[arg(long, default_value = "alice")]
        nick: String,
        /// The peer's nick.
        #[arg(long, default_value = "bob")]
        to: String,
        /// File name offered.
        #[arg(long, default_value = "masqdial test.bin")]
        name: String,
        /// File size in bytes.
        #[arg(long, default_value_t = 200_000)]
        bytes: u64,
        /// Also a DCC CHAT.
        #[arg(long)]
        chat: bool,
        /// Both offers in one write (one segment), before the transfer.
        #[arg(long)]
        together: bool,
        /// The SEND offer in two writes, cut inside its address.
        #[arg(long, conflicts_with = "together")]
        split: bool,
    },
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Server { addr } => {
            let l = tokio::net::TcpListener::bind(addr).await?;
            println!("READY irc-server {}", l.local_addr()?);
            irc::serve(l).await
        }
        Cmd::Peer {
            server,
            nick,
            count,
        } => irc::peer(server, &nick, count, Duration::from_secs(cli.timeout), None).await,
        Cmd::Offer {
            server,
            nick,
            to,
            name,
            bytes,
            chat,
            together,
            split,
        } => {
            let framing = if together {
                Framing::Together
            } else if split {
                Framing::Split
            } else {
                Framing::Lines
            };
            let r = irc::offer(
                server,
                &nick,
                &to,
                &name,
                bytes,
                wan::DEFAULT_SEED,
                chat,
                framing,
            )
            .await?;
            println!(
                "OK irc-offer bytes={bytes} sha256={} offered={} send_via={} send_peer={} chat_via={}",
                r.sha256,
                r.offered,
                r.send_via,
                r.send_peer,
                r.chat_via.as_deref().unwrap_or("-")
            );
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let limit = Duration::from_secs(cli.timeout);
    let what = match &cli.cmd {
        Cmd::Server { .. } => "server",
        Cmd::Peer { .. } => "peer",
        Cmd::Offer { .. } => "offer",
    };
    match tokio::time::timeout(limit, run(cli)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("FAIL {what}: {e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("FAIL {what}: timed out after {}s", limit.as_secs());
            ExitCode::FAILURE
        }
    }
}
