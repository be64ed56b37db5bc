"""trainers/: episodes into samples; GRPO and PPO on one trainer core (settings in config.py); DPO/SFT data for TRL; the league."""
