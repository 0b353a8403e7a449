"""Running the GPU rules elsewhere: Snakemake profiles and RunPod clean-up; an edge no stage imports."""
