//! `estation command`: a signed command to one screen or a region, sent
//! over push (see `crate::core::command`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::core::command::{Action, Command, Target};
use crate::core::feed::keys;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ActionArg {
    /// Sync the feed now.
    Sync,
    /// Take a screenshot now (it goes to the central service with the next heartbeat).
    Screenshot,
    /// Restart the player (the kiosk unit starts it again at once).
    Restart,
    /// Show the status overlay on the screen for a minute.
    Overlay,
}

#[derive(Debug, clap::Args)]
pub struct CommandArgs {
    pub action: ActionArg,
    /// The screen's `[screen] id`.
    #[arg(long, value_name = "ID", required_unless_present = "region", conflicts_with = "region")]
    pub screen: Option<String>,
    /// Every screen in this area code (330500: the whole city).
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// The feed's private key (feed-key.pem): kiosks act only on commands it signed.
    #[arg(long, value_name = "PRIVATE")]
    pub key: PathBuf,
    /// How long the command stays valid (a screen offline longer never acts on it), at most 1d.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    pub expires: Duration,
    #[command(flatten)]
    pub push: crate::config::push_args::PushArgs,
}

pub fn run(args: CommandArgs) -> anyhow::Result<ExitCode> {
    let url = args.push.push.clone().context("--push URL (or ESTATION_PUSH_URL): commands travel by push")?;
    let key = keys::read_private(&args.key)?;
    let topics = args.push.topics().map_err(anyhow::Error::msg)?;
    let (to, topic) = match (&args.screen, &args.region) {
        (Some(id), _) => {
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                anyhow::bail!("--screen `{id}` is not a screen id (1-64 ASCII letters, digits, '-', '_' or '.')");
            }
            (Target::Screen(id.clone()), topics.command_to_screen(id))
        }
        (None, Some(code)) => {
            let prefix = crate::core::alert::target::code_prefix(code).with_context(|| format!("--region `{code}` is not a 6-, 9- or 12-digit area code"))?;
            (Target::Region(code.clone()), topics.command_to_region(prefix))
        }
        (None, None) => anyhow::bail!("--screen ID or --region CODE"),
    };
    let action = match args.action {
        ActionArg::Sync => Action::Sync,
        ActionArg::Screenshot => Action::Screenshot,
        ActionArg::Restart => Action::Restart,
        ActionArg::Overlay => Action::Overlay,
    };
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no random numbers for the nonce: {e}"))?;
    let life = chrono::Duration::from_std(args.expires).unwrap_or_else(|_| crate::core::command::max_life());
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0).fixed_offset();
    let command = Command::new(action, to, now, life, nonce);
    args.push.publish(&url, vec![(topic.clone(), command.sign(&key))])?;
    println!("sent `{}` to {} on {topic} (nonce {}, valid until {})", action.as_str(), command.to, command.nonce, command.expires);
    Ok(ExitCode::SUCCESS)
}
