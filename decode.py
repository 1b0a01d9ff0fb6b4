"""Decode high-reward samples from a pre-trained diffusion model (SVDD and baselines).

    python decode.py [domain=dna] [reward=NAME|[A,B]] [decoder=svdd_pm|svdd_mc|best_of_n|pretrained|smc|svdd_r|dps|beam]
                     [num_samples=N] [batch_size=B] [seed=S] [steps=T] [decoder.num_candidates=M]
                     [decoder.alpha=A] [output_dir=DIR] [logger=wandb|csv|none] [trainer.devices=K]

See README.md and ../shared/INTERFACE.md for every option and the files written. The work is done by
svdd_lightning/tasks/decode.py; this file is the command line.
"""

from svdd_lightning.tasks.decode import cli, main  # noqa: F401  (main: what tests call with a composed config)

if __name__ == "__main__":
    cli()
