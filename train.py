"""Train the models decoding uses.

    python train.py stage=pretrain domain=dna [trainer.max_steps=N] [output_dir=DIR]
    python train.py stage=value domain=dna reward=hepg2_motif [value_training.num_rollouts=N] [output_dir=DIR]
    python train.py stage=oracle domain=dna data.path=TABLE.csv data.label_columns=[HepG2] [output_dir=DIR]
    python train.py stage=oracle domain=image [trainer.max_steps=N] [output_dir=DIR]

The stages are svdd_lightning/tasks/train.py (what each writes is in its docstring); this file is the command line.
"""

from svdd_lightning.tasks.train import cli, main  # noqa: F401  (main: what tests call with a composed config)

if __name__ == "__main__":
    cli()
