"""The Slurm system: sbatch scripts, squeue polling and node selection, driven through the CLI tools."""
